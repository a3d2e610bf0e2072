"""VBench dimensions whose networks aigve ports itself (family ``multi_aspect``).

Each metric gives one raw per-video number named like the metric, on VBench's own 0-1 scale, from VBench's
own frame sampling, preprocessing and formula (Vchitect/VBench commit 45e79ec, the same code as the ``vbench``
0.1.5 wheel). VBench's min-max normalisation and its Quality/Semantic/Total scores are the suite layer's
job: they read these outputs by name.

- ``vbench_motion_smoothness`` (``vbench/motion_smoothness.py``): every decoded frame; AMT-S predicts each
  odd frame from its two even neighbours (backbone ``amt_s``, :mod:`aigve.backbones.amt`); with ``d`` the
  mean over predicted frames of the mean absolute uint8 difference to the real frame, the score is
  ``(255 - d) / 255``. VBench's dimension score is the mean over videos (the engine's average).
- ``vbench_temporal_style`` and ``vbench_overall_consistency`` (``vbench/temporal_style.py``,
  ``vbench/overall_consistency.py``: the same code on different prompt lists): 8 "middle" frames,
  ``clip_transform(224)``, the cosine between ViCLIP's video embedding and its text embedding of the prompt
  (backbone ``viclip``, :mod:`aigve.backbones.viclip`). Both metrics make the same request, so one run computes
  the cosine once. VBench's standard mode feeds each dimension its own prompts; on custom prompts both give the
  same number (they differ only in which prompts VBench's suite pairs with them). The cosine can be negative
  (VBench's normalisation assumes Min 0, Max 0.364).
- ``vbench_human_action`` (``vbench/human_action.py``): 16 middle frames, UMT ViT-L/16 Kinetics-400 class
  probabilities (backbone ``umt_k400``, :mod:`aigve.backbones.umt`); the video is correct (1) when the action
  label is among the top-5 classes whose sigmoid probability, rounded to 4 decimals, is at least 0.85, else 0.
  The label is parsed from the prompt as VBench parses it from the file name ``{prompt}-{index}.mp4``
  (lower case, the text after ``"person is "``, cut at ``-`` and ``_``): VBench's prompts read
  ``"A person is <Kinetics-400 class>"``. Custom prompts need the same form with one of the 400 class names
  (listed in ``aigve/backbones/nets/kinetics400_umt_labels.json``); any other prompt gets an error record
  saying so (VBench would count it wrong).

Dimensions VBench has but aigve does not provide (the GRiT detector's four, Tag2Text's scene) are in
``catalog.UNAVAILABLE`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.backbones.amt import check_scale
from aigve.backbones.umt import UMTActionScorer
from aigve.backbones.umt import _config as umt_config
from aigve.backbones.viclip import ViCLIPScorer
from aigve.backbones.viclip import _config as viclip_config
from aigve.errors import MetricInputError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.types import Entry
from aigve.video.sampling import ALL_FRAMES

VBENCH_CITATION = (
    "Huang et al., VBench: Comprehensive Benchmark Suite for Video Generative Models, CVPR 2024 "
    "(github.com/Vchitect/VBench)"
)


def motion_smoothness_score(residuals: np.ndarray) -> float:
    """VBench's ``(255 - mean residual) / 255`` from the ``amt_s`` rows of one video."""
    return float((255.0 - float(np.mean(residuals))) / 255.0)


@register_metric
class VBenchMotionSmoothness(VideoMetric):
    """VBench motion smoothness: how well AMT-S predicts the odd frames from the even ones."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_motion_smoothness",
        family="multi_aspect",
        description=(
            "VBench motion smoothness: AMT-S interpolates every odd frame from its even neighbours; "
            "(255 - mean |predicted - real|) / 255"
        ),
        inputs=("generated",),
        backbone="amt_s",
        outputs=(
            OutputSpec(
                "vbench_motion_smoothness",
                True,
                (0.0, 1.0),
                "VBench's raw 0-1 score (before its min-max normalisation, Min 0.706 / Max 0.9975)",
            ),
        ),
        citation=VBENCH_CITATION + "; AMT: Li et al., CVPR 2023",
        weights=("amt_s",),
        suites=("vbench",),
        options={"weights": None, "scale": 1.0},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.options["scale"] = check_scale(self.options["scale"])

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("residuals", "amt_s", ALL_FRAMES)]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"scale": self.options["scale"]}
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return opts

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        prov["frames"] = "every decoded frame; even frames interpolated, odd frames compared (VBench)"
        return prov

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        res = np.asarray(feats["residuals"], dtype=np.float64)
        if res.ndim != 2 or res.shape[1] != 1 or len(res) == 0 or not np.all(np.isfinite(res)):
            raise MetricInputError(
                f"{entry.generated}: vbench_motion_smoothness expected [K, 1] finite interpolation residuals, "
                f"got {res.shape}"
            )
        return {"vbench_motion_smoothness": motion_smoothness_score(res)}


class _ViCLIPCosine(VideoMetric):
    """VBench's ViCLIP video-text cosine; subclasses name the dimension."""

    spec: ClassVar[MetricSpec]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        viclip_config(str(self.options["config"]))

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("cosine", "viclip", ALL_FRAMES)]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"config": self.options["config"]}
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return opts

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        prov["frames"] = (
            "8 frames, VBench get_frame_indices 'middle' over every decoded frame (last one repeated)"
        )
        return prov

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        out = np.asarray(feats["cosine"], dtype=np.float64)
        if out.shape != (1, len(ViCLIPScorer.columns)) or not np.all(np.isfinite(out)):
            raise MetricInputError(
                f"{entry.generated}: {self.spec.name} expected one finite ViCLIP cosine, got {out.shape}"
            )
        return {self.spec.name: float(out[0, 0])}


def _viclip_spec(dim: str, what: str, prompts: str) -> MetricSpec:
    return MetricSpec(
        name=f"vbench_{dim}",
        family="multi_aspect",
        description=(
            f"VBench {what}: cosine of ViCLIP ViT-L/14 embeddings of 8 middle frames and of the prompt"
        ),
        inputs=("generated", "prompt"),
        backbone="viclip",
        outputs=(
            OutputSpec(
                f"vbench_{dim}",
                True,
                (-1.0, 1.0),
                f"VBench's raw score, a cosine (VBench normalises with Min 0 / Max 0.364); {prompts}",
            ),
        ),
        citation=VBENCH_CITATION + "; ViCLIP: Wang et al., InternVid, ICLR 2024",
        extra="vlsim",
        weights=("viclip_internvid_10m_flt",),
        options={"weights": None, "config": "vit_l14"},
        suites=("vbench",),
    )


@register_metric
class VBenchTemporalStyle(_ViCLIPCosine):
    """VBench temporal style (camera motion / temporal style prompts)."""

    spec: ClassVar[MetricSpec] = _viclip_spec(
        "temporal_style", "temporal style", "VBench's standard prompts name a camera motion or temporal style"
    )


@register_metric
class VBenchOverallConsistency(_ViCLIPCosine):
    """VBench overall consistency (overall video-text consistency)."""

    spec: ClassVar[MetricSpec] = _viclip_spec(
        "overall_consistency", "overall consistency", "any prompt: overall video-text consistency"
    )


@register_metric
class VBenchHumanAction(VideoMetric):
    """VBench human action: is the prompt's Kinetics-400 action among UMT's confident top-5 classes?"""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vbench_human_action",
        family="multi_aspect",
        description=(
            'VBench human action: 1 if the prompt\'s Kinetics-400 action ("A person is <action>") is among UMT '
            "ViT-L/16's top-5 classes with sigmoid probability >= 0.85 on 16 middle frames, else 0"
        ),
        inputs=("generated", "prompt"),
        backbone="umt_k400+umt_k400_action",
        outputs=(
            OutputSpec(
                "vbench_human_action",
                True,
                (0.0, 1.0),
                "1 = action recognised, 0 = not; the mean over videos is VBench's accuracy (Min 0 / Max 1)",
            ),
        ),
        citation=VBENCH_CITATION + "; UMT: Li et al., Unmasked Teacher, ICCV 2023",
        extra="offline",
        requires=("cv2",),
        weights=("umt_l16_k400",),
        options={"weights": None, "config": "vit_l16_k400"},
        suites=("vbench",),
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        umt_config(str(self.options["config"]))

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("action", "umt_k400_action", ALL_FRAMES)]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"config": self.options["config"]}
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return opts

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        prov["frames"] = (
            "16 frames, VBench get_frame_indices 'middle' over every decoded frame (last one repeated)"
        )
        prov["label"] = (
            "parsed from the prompt: lower case, text after 'person is ', cut at '-' and '_' (VBench)"
        )
        return prov

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        out = np.asarray(feats["action"], dtype=np.float64)
        cols = UMTActionScorer.columns
        if out.shape != (1, len(cols)) or not np.all(np.isfinite(out)):
            raise MetricInputError(
                f"{entry.generated}: vbench_human_action expected one [hit, label_known] row"
            )
        if out[0, cols.index("label_known")] != 1.0:
            raise MetricInputError(
                f"{entry.generated}: vbench_human_action needs a prompt of the form 'A person is <action>' with one "
                "of the 400 Kinetics-400 class names (VBench's human_action prompts; the list is "
                "aigve/backbones/nets/kinetics400_umt_labels.json); this prompt names none"
            )
        return {"vbench_human_action": float(out[0, cols.index("hit")])}
