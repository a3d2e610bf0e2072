"""VBench dimensions computed natively: ``vbench_subject_consistency``, ``vbench_background_consistency``,
``vbench_temporal_flickering``, ``vbench_dynamic_degree``, ``vbench_aesthetic_quality``, ``vbench_appearance_style``,
``vbench_imaging_quality``.

Each follows ``vbench/<dimension>.py`` of Vchitect/VBench at commit 45e79ec: the same frames (every decoded frame),
the same preprocessing (:mod:`aigve.vbench.transforms`) and the same formula. The engine decodes each video once
for all of them; the per-video value is VBench's ``video_results``. The suite's Quality/Semantic/Total
(:mod:`aigve.vbench.suite`) reads these metrics (and any other ``vbench_<dimension>`` metric) by name.

Consistency (subject: DINO ViT-B/16 class token; background: CLIP ViT-B/32 image embedding): with L2-normalised
per-frame features f_0..f_{T-1}, the frame term of frame i >= 1 is ½·(max(0, cos(f_{i-1}, f_i)) + max(0,
cos(f_0, f_i))); the video's value is the mean of its T-1 terms. VBench's dimension score is *frame-weighted*
(sum of every video's terms / number of terms), so these metrics also give ``<name>_frames`` = T-1 and the suite
weights by it.

Temporal flickering: (255 - mean over consecutive pairs of mean |f_i - f_{i+1}|) / 255, the ``flicker`` formula.
VBench decodes with OpenCV here (BGR; the channel order does not change the mean) and we with PyAV: both use
FFmpeg's decoder, but the YUV->RGB conversion may differ slightly. VBench's standard protocol scores only the
videos its RAFT-based ``static_filter.py`` keeps (static scenes): ``static_filter=true`` runs that filter
(``vbench_raft_static``) and reports ``vbench_temporal_flickering_static``; the suite then leaves rejected videos
out of the dimension score.

Dynamic degree (RAFT), aesthetic quality (CLIP ViT-L/14 + LAION linear head) and appearance style (CLIP ViT-B/32
with the style text) follow ``dynamic_degree.py``, ``aesthetic_quality.py`` and ``appearance_style.py``; their
backbones are in :mod:`aigve.backbones.vbench`. Imaging quality follows ``imaging_quality.py`` (mode ``longer``):
MUSIQ (SPAQ) on every frame, :mod:`aigve.backbones.musiq`; the video's value is the mean frame score / 100 (VBench
divides its dimension mean by 100, which is the same as averaging the per-video values divided by 100).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.errors import MetricInputError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.types import Entry
from aigve.vbench.suite import frames_output
from aigve.video.sampling import ALL_FRAMES

VBENCH_CITATION = (
    "Huang et al., VBench: Comprehensive Benchmark Suite for Video Generative Models, CVPR 2024 "
    "(github.com/Vchitect/VBench, code at 45e79ec)"
)


def consistency_terms(features: np.ndarray) -> np.ndarray:
    """VBench's per-frame consistency terms (frames 1..T-1) of ``[T, D]`` features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"consistency needs [T >= 2, D] features, got shape {f.shape}")
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    prev = np.maximum(0.0, np.sum(f[:-1] * f[1:], axis=1))
    first = np.maximum(0.0, f[1:] @ f[0])
    return (prev + first) / 2.0


class _Consistency(VideoMetric):
    role: ClassVar[str] = "features"
    backbone: ClassVar[str]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        f = np.asarray(feats[self.role])
        if f.ndim != 2 or f.shape[0] < 2:
            raise MetricInputError(
                f"{entry.generated}: {self.name} needs at least 2 frames, got {f.shape[0]}"
            )
        terms = consistency_terms(f)
        return {self.name: float(terms.mean()), frames_output(self.name[len("vbench_") :]): float(terms.size)}


def _consistency_outputs(name: str, what: str) -> tuple[OutputSpec, ...]:
    return (
        OutputSpec(
            name,
            True,
            (0.0, 1.0),
            f"mean over frames i>=1 of ½(max(0,cos(f_i-1,f_i)) + max(0,cos(f_0,f_i))), {what} (VBench)",
        ),
        OutputSpec(
            f"{name}_frames",
            None,
            (1.0, None),
            "number of frame terms (T-1): the weight of this video in VBench's frame-weighted dimension score",
        ),
    )


@register_metric
class VBenchSubjectConsistency(_Consistency):
    """VBench subject consistency: DINO ViT-B/16 class tokens of every frame (shorter side 224, no crop)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_subject_consistency",
        family="multi_aspect",
        description=(
            "VBench subject consistency: similarity of each frame's DINO ViT-B/16 feature to the previous and "
            "the first frame's (all frames, VBench preprocessing)"
        ),
        inputs=("generated",),
        backbone="dino_vitb16",
        outputs=_consistency_outputs("vbench_subject_consistency", "DINO ViT-B/16 class tokens"),
        citation=VBENCH_CITATION,
        weights=("dino_vitb16",),
        suites=("vbench",),
        options={"weights": None},
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(self.role, "dino_vitb16", ALL_FRAMES, "generated")]


@register_metric
class VBenchBackgroundConsistency(_Consistency):
    """VBench background consistency: CLIP ViT-B/32 image embeddings of every frame (VBench clip_transform)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_background_consistency",
        family="multi_aspect",
        description=(
            "VBench background consistency: similarity of each frame's CLIP ViT-B/32 embedding to the previous "
            "and the first frame's (all frames, VBench's clip_transform)"
        ),
        inputs=("generated",),
        backbone="clip",
        outputs=_consistency_outputs("vbench_background_consistency", "CLIP ViT-B/32 image embeddings"),
        citation=VBENCH_CITATION,
        extra="vlsim",
        requires=("transformers",),
        weights=("clip_vit_b32",),
        suites=("vbench",),
        options={"weights": None, "model": "clip_vit_b32"},
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(self.role, "clip", ALL_FRAMES, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        # the same keys clipsim/cliptemp give the clip extractor: with num_frames=all and image_backend=vbench
        # they share this forward pass
        opts: dict[str, Any] = {"model": self.options["model"], "image_backend": "vbench"}
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return opts


def static_decision(max_rad: np.ndarray, thres: float, count_num: float) -> bool:
    """``static_filter.py``'s ``check_static`` on the pair scores (consecutive pairs, then (first, last) and
    (last, first)): static unless more than ``count_num`` consecutive pairs exceed ``thres`` or a first/last pair
    exceeds ``thres * count_num * 2``."""
    scores = np.asarray(max_rad, dtype=np.float64).reshape(-1)
    count = 0
    for score in scores[:-2]:
        if score > thres:
            count += 1
        if count > count_num:
            return False
    return all(not score > thres * count_num * 2 for score in scores[-2:])


@register_metric
class VBenchTemporalFlickering(VideoMetric):
    """VBench temporal flickering: (255 - mean absolute difference of consecutive frames) / 255."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_temporal_flickering",
        family="multi_aspect",
        description=(
            "VBench temporal flickering: (255 - mean |frame[t+1] - frame[t]|) / 255 over all frames; "
            "static_filter=true adds VBench's RAFT static-video filter (its protocol scores static videos only)"
        ),
        inputs=("generated",),
        backbone="frame_absdiff",
        outputs=(
            OutputSpec(
                "vbench_temporal_flickering",
                True,
                (0.0, 1.0),
                "(255 - mean over consecutive pairs of the mean absolute RGB difference) / 255",
            ),
            OutputSpec(
                "vbench_temporal_flickering_static",
                None,
                (0.0, 1.0),
                "with static_filter=true: 1 if VBench's static filter keeps the video (only those count in the "
                "VBench dimension score), else 0",
            ),
        ),
        citation=VBENCH_CITATION,
        extra="offline",
        suites=("vbench",),
        options={"static_filter": False, "weights": None},
    )

    def requests(self) -> list[FeatureRequest]:
        reqs = [FeatureRequest("absdiff", "frame_absdiff", ALL_FRAMES, "generated")]
        if self.options["static_filter"]:
            # the RAFT weights go to the static filter only (the engine builds requests() as given)
            weights = (("weights", str(self.options["weights"])),) if self.options.get("weights") else ()
            reqs.append(FeatureRequest("static", "vbench_raft_static", ALL_FRAMES, "generated", weights))
        return reqs

    def extractor_options(self) -> dict[str, Any]:
        return {}

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        from aigve.metrics.functional.temporal import flicker_scores

        d = np.asarray(feats["absdiff"], dtype=np.float64)
        if d.ndim != 2 or d.shape[0] == 0:
            raise MetricInputError(f"{entry.generated}: {self.name} needs at least 2 frames")
        out = {self.name: flicker_scores(d[:, 0])[1]}
        if self.options["static_filter"]:
            from aigve.backbones.base import column
            from aigve.backbones.vbench import DYNAMIC_COLUMNS

            st = np.asarray(feats["static"], dtype=np.float64)
            rad = column(st, DYNAMIC_COLUMNS, "max_rad")
            thres = float(column(st, DYNAMIC_COLUMNS, "thres")[0])
            count_num = float(column(st, DYNAMIC_COLUMNS, "count_num")[0])
            out[f"{self.name}_static"] = 1.0 if static_decision(rad, thres, count_num) else 0.0
        return out


@register_metric
class VBenchAppearanceStyle(VideoMetric):
    """VBench appearance style: CLIP ViT-B/32 ``logits_per_text / 100`` of each frame with the style text."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_appearance_style",
        family="multi_aspect",
        description=(
            "VBench appearance style: CLIP ViT-B/32 exp(logit_scale)·cos(frame, style text)/100 over all frames; "
            "needs the auxiliary 'appearance_style' text per video (VBench's prompt suite, or a dataset field)"
        ),
        inputs=("generated",),
        backbone="vbench_clip_style",
        outputs=(
            OutputSpec(
                "vbench_appearance_style",
                True,
                (-1.0, 1.0),
                "mean over frames of logits_per_text/100 = exp(logit_scale)·cos/100 (= cos for OpenAI CLIP)",
            ),
            OutputSpec(
                "vbench_appearance_style_frames",
                None,
                (1.0, None),
                "number of frames: the weight of this video in VBench's frame-weighted dimension score",
            ),
        ),
        citation=VBENCH_CITATION,
        extra="vlsim",
        requires=("transformers",),
        weights=("clip_vit_b32",),
        suites=("vbench",),
        options={"weights": None, "model": "clip_vit_b32"},
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("style", "vbench_clip_style", ALL_FRAMES, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"model": self.options["model"], "image_backend": "vbench_pil"}
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return opts

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        from aigve.backbones.base import column
        from aigve.backbones.clip import CLIP_TEXT_COLUMNS

        out = np.asarray(feats["style"], dtype=np.float64)
        if out.ndim != 2 or out.shape[0] == 0:
            raise MetricInputError(f"{entry.generated}: {self.name} needs at least 1 frame")
        per_frame = column(out, CLIP_TEXT_COLUMNS, "scaled_cosine") / 100.0
        return {self.name: float(per_frame.mean()), f"{self.name}_frames": float(per_frame.size)}


@register_metric
class VBenchAestheticQuality(VideoMetric):
    """VBench aesthetic quality: LAION linear head on CLIP ViT-L/14 embeddings of every frame, /10, mean."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_aesthetic_quality",
        family="multi_aspect",
        description=(
            "VBench aesthetic quality: LAION aesthetic linear head on L2-normalised CLIP ViT-L/14 embeddings of "
            "all frames (VBench's clip_transform), divided by 10, mean over frames"
        ),
        inputs=("generated",),
        backbone="vbench_aesthetic",
        outputs=(
            OutputSpec(
                "vbench_aesthetic_quality",
                True,
                (None, None),
                "mean over frames of LAION-linear(normalised CLIP ViT-L/14 embedding)/10 (about 0-1 in practice)",
            ),
        ),
        citation=VBENCH_CITATION + "; LAION-AI/aesthetic-predictor (sa_0_4_vit_l_14_linear)",
        extra="vlsim",
        requires=("transformers",),
        weights=("clip_vit_l14", "laion_aesthetic_l14"),
        suites=("vbench",),
        options={"weights": None, "head_weights": None},
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("aesthetic", "vbench_aesthetic", ALL_FRAMES, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        return {k: str(self.options[k]) for k in ("weights", "head_weights") if self.options.get(k)}

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        a = np.asarray(feats["aesthetic"], dtype=np.float64)
        if a.ndim != 2 or a.shape[0] == 0:
            raise MetricInputError(f"{entry.generated}: {self.name} needs at least 1 frame")
        return {self.name: float(a[:, 0].mean())}


def dynamic_decision(max_rad: np.ndarray, thres: float, count_num: float) -> bool:
    """VBench's ``check_move``: True once ``count_num`` pairs have ``max_rad > thres`` (never without pairs)."""
    count = 0
    for score in np.asarray(max_rad, dtype=np.float64).reshape(-1):
        if score > thres:
            count += 1
        if count >= count_num:
            return True
    return False


@register_metric
class VBenchDynamicDegree(VideoMetric):
    """VBench dynamic degree: 1 if the video moves by VBench's RAFT rule, else 0 (the mean is the share)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_dynamic_degree",
        family="multi_aspect",
        description=(
            "VBench dynamic degree: RAFT-large flow on frames at ~8 fps; a video is dynamic when enough pairs' "
            "top-5% flow magnitude exceeds 6·min(H,W)/256 (mean over videos = share of dynamic videos)"
        ),
        inputs=("generated",),
        backbone="vbench_raft",
        outputs=(
            OutputSpec(
                "vbench_dynamic_degree",
                True,
                (0.0, 1.0),
                "1 if the video is dynamic by VBench's rule, else 0 (VBench's Quality score counts more as better)",
            ),
            OutputSpec(
                "vbench_dynamic_degree_pairs_over",
                None,
                (0.0, None),
                "number of sampled frame pairs whose top-5% flow magnitude exceeds the threshold",
            ),
        ),
        citation=VBENCH_CITATION + "; Teed & Deng, RAFT, ECCV 2020",
        weights=("tv_raft_large_c_t_v1",),
        suites=("vbench",),
        options={"weights": None},
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("flow", "vbench_raft", ALL_FRAMES, "generated")]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        from aigve.backbones.base import column
        from aigve.backbones.vbench import DYNAMIC_COLUMNS

        out = np.asarray(feats["flow"], dtype=np.float64)
        if out.ndim != 2 or out.shape[0] == 0:
            raise MetricInputError(
                f"{entry.generated}: {self.name} needs at least 2 frames after VBench's ~8 fps sampling"
            )
        rad = column(out, DYNAMIC_COLUMNS, "max_rad")
        thres = float(column(out, DYNAMIC_COLUMNS, "thres")[0])
        count_num = float(column(out, DYNAMIC_COLUMNS, "count_num")[0])
        return {
            self.name: 1.0 if dynamic_decision(rad, thres, count_num) else 0.0,
            f"{self.name}_pairs_over": float((rad > thres).sum()),
        }


@register_metric
class VBenchImagingQuality(VideoMetric):
    """VBench imaging quality: MUSIQ (SPAQ) score of every frame (longer side <= 512), mean over frames, /100."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_imaging_quality",
        family="multi_aspect",
        description=(
            "VBench imaging quality: MUSIQ (SPAQ checkpoint) on all frames, frames over 512 px on the longer side "
            "resized to 512 (VBench's 'longer' mode), mean over frames divided by 100"
        ),
        inputs=("generated",),
        backbone="musiq_spaq",
        outputs=(
            OutputSpec(
                "vbench_imaging_quality",
                True,
                (None, None),
                "mean over frames of the MUSIQ-SPAQ score / 100 (about 0-1; VBench's per-video value / 100)",
            ),
        ),
        citation=VBENCH_CITATION + "; Ke et al., MUSIQ: Multi-scale Image Quality Transformer, ICCV 2021",
        weights=("musiq_spaq",),
        suites=("vbench",),
        options={"weights": None},
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("musiq", "musiq_spaq", ALL_FRAMES, "generated")]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        s = np.asarray(feats["musiq"], dtype=np.float64)
        if s.ndim != 2 or s.shape[0] == 0:
            raise MetricInputError(f"{entry.generated}: {self.name} needs at least 1 frame")
        return {self.name: float(s[:, 0].mean() / 100.0)}
