"""``dover``: DOVER (Wu et al., ICCV 2023), technical and aesthetic quality of a video and their fusion.

The ``dover`` backbone (:mod:`aigve.backbones.dover_views`) samples DOVER's fragment (technical) and resized
(aesthetic) views of the generated video — seeded, so a score is repeatable — and returns the raw branch
scores ``t`` and ``a`` (means of the two heads' score maps). This module rescales them exactly as the
authors' released ``evaluate_a_set_of_videos.py`` does (VQAssessment/DOVER, f1ddc96):

- ``zt = (t - 0.1107) / 0.07355``, ``za = (a + 0.08285) / 0.03774`` (standardised against the authors'
  reference predictions);
- ``dover_technical = sigmoid(zt)``, ``dover_aesthetic = sigmoid(za)``;
- ``dover = sigmoid(0.6104 * zt + 0.3896 * za)``, the fused "overall" score (also what
  ``evaluate_one_video.py -f`` prints).

All three lie in (0, 1), higher is better (the authors' CSV multiplies them by 100). Weights: ``DOVER.pth``
(registry ``dover``), which must be obtained from the authors' release; without it every video gets an
error record naming the file and where to put it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.errors import MetricInputError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.types import Entry
from aigve.video.sampling import ALL_FRAMES

ROLE = "dover"
TECH_MEAN, TECH_STD = 0.1107, 0.07355
AES_MEAN, AES_STD = -0.08285, 0.03774
TECH_WEIGHT, AES_WEIGHT = 0.6104, 0.3896
_VIEW_OPTIONS = (
    "num_clips",
    "clip_len",
    "frame_interval",
    "fragments",
    "fragment_size",
    "resize",
    "antialias",
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def dover_scores(technical: float, aesthetic: float) -> dict[str, float]:
    """Raw branch scores -> ``{"dover", "dover_technical", "dover_aesthetic"}`` in (0, 1), the authors'
    rescaling (``fuse_results`` of ``evaluate_a_set_of_videos.py``)."""
    zt = (float(technical) - TECH_MEAN) / TECH_STD
    za = (float(aesthetic) - AES_MEAN) / AES_STD
    return {
        "dover": _sigmoid(TECH_WEIGHT * zt + AES_WEIGHT * za),
        "dover_technical": _sigmoid(zt),
        "dover_aesthetic": _sigmoid(za),
    }


@register_metric
class Dover(VideoMetric):
    """DOVER technical, aesthetic and fused quality (no reference)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="dover",
        family="nn_based_video",
        description=(
            "DOVER: technical quality (Swin-T 3-D on 7x7 fragments) and aesthetic quality (ConvNeXt-T 3-D on "
            "224x224 frames), fused; seeded view sampling"
        ),
        inputs=("generated",),
        backbone="dover",
        outputs=(
            OutputSpec(
                "dover",
                True,
                (0.0, 1.0),
                "fused overall quality: sigmoid(0.6104 * zt + 0.3896 * za) (authors' rescaling)",
            ),
            OutputSpec(
                "dover_technical",
                True,
                (0.0, 1.0),
                "technical quality: sigmoid((t - 0.1107) / 0.07355) of the technical branch's raw score t",
            ),
            OutputSpec(
                "dover_aesthetic",
                True,
                (0.0, 1.0),
                "aesthetic quality: sigmoid((a + 0.08285) / 0.03774) of the aesthetic branch's raw score a",
            ),
        ),
        citation=(
            "Wu et al., Exploring Video Quality Assessment on User Generated Contents from Aesthetic and "
            "Technical Perspectives, ICCV 2023"
        ),
        extra="nnvqa",
        weights=("dover",),
        options={
            "seed": 0,
            "sampling": "random",
            "num_clips": 3,
            "clip_len": 32,
            "frame_interval": 2,
            "fragments": 7,
            "fragment_size": 32,
            "resize": 224,
            "antialias": False,
        },
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(ROLE, "dover", ALL_FRAMES, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {k: self.options[k] for k in ("seed", "sampling", *_VIEW_OPTIONS)}
        if self.options.get("weights"):
            opts["weights"] = self.options["weights"]
        return opts

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        f = np.asarray(feats[ROLE], dtype=np.float64)
        if f.shape != (1, 2) or not np.all(np.isfinite(f)):
            raise MetricInputError(
                f"{entry.generated}: dover expected one finite [technical, aesthetic] row, got {f.shape} — "
                "clear the feature cache and run again"
            )
        return dover_scores(f[0, 0], f[0, 1])
