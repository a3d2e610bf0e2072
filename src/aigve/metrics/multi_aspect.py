"""Multi-aspect model judges: ``videoscore`` and ``videophy``.

``videoscore`` — VideoScore (He et al., EMNLP 2024; TIGER-Lab/VideoScore-v1.1 by default): a
Mantis-Idefics2 model with a 5-output regression head, reading up to 48 frames of the generated video and
the upstream evaluation prompt around the video's text prompt (details, frame sampling and the verification
against mantis-vl's class: :mod:`aigve.backbones.videoscore`). The five outputs are the head's raw values in
the authors' order; ``videoscore_mean`` is their mean, the number VideoScore's benchmark scripts compare for
pairwise accuracy (GenAI-Bench, VBench).

A video without a prompt gets an error record for *all* outputs: every aspect, visual quality included, is
read from the same decoder state, which attends to the prompt text — a "video-only" visual quality would
need an empty or invented prompt and would be a different number from the one the model was trained to give.
Videos with fewer frames than ``num_frames`` use all their frames (no padding), as upstream.

``videophy`` — VideoPhy's auto-rater VideoCon-Physics (Bansal et al., 2024), two yes/no questions per video:
does the video entail its caption (semantic adherence) and does it follow the physical laws (physical
commonsense), each scored as ``p(Yes) / (p(Yes) + p(No))``. The model, prompts, frame sampling and reading are
the authors' (see :mod:`aigve.backbones.videophy`). The original AIGVE toolkit fed the raw caption without the
template, so no video tokens were inserted and its score ignored the video; it had no SA/PC split. A video
without a prompt gets an error record for both outputs: the engine records a missing input per metric (the
physics question itself does not contain the prompt, and its value does not depend on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.backbones.videoscore import ASPECTS, DTYPES, SAMPLINGS, V11_FRAMES
from aigve.errors import MetricInputError, UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.types import Entry
from aigve.video.sampling import ALL_FRAMES, Sampler

VIDEOSCORE_ROLE = "aspects"
NOMINAL = (1.0, 4.0)
_ASPECT_TEXT = {
    "visual_quality": "visual quality: clearness, resolution, brightness and colour",
    "temporal_consistency": "temporal consistency of objects and humans, smoothness of motion",
    "dynamic_degree": "dynamic degree: how much changes",
    "text_to_video_alignment": "text-to-video alignment between the prompt and the video content",
    "factual_consistency": "factual consistency with common sense and factual knowledge",
}


@register_metric
class VideoScore(VideoMetric):
    """VideoScore's five aspect scores (raw regression outputs) and their mean."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="videoscore",
        family="multi_aspect",
        description=(
            "VideoScore-v1.1 (Mantis-Idefics2 + 5-output regression head): visual quality, temporal "
            "consistency, dynamic degree, text-to-video alignment, factual consistency from 48 frames + prompt"
        ),
        inputs=("generated", "prompt"),
        backbone="videoscore",
        outputs=(
            *(
                OutputSpec(
                    f"videoscore_{a}",
                    True,
                    NOMINAL,
                    f"{_ASPECT_TEXT[a]}; raw head output, nominally 1.0 (bad) - 4.0 (perfect/real), not clipped",
                )
                for a in ASPECTS
            ),
            OutputSpec(
                "videoscore_mean",
                True,
                NOMINAL,
                "mean of the five aspect scores (what VideoScore's benchmarks compare pairwise)",
            ),
        ),
        citation=(
            "He et al., VideoScore: Building Automatic Metrics to Simulate Fine-grained Human Feedback for "
            "Video Generation, EMNLP 2024 (github.com/TIGER-AI-Lab/VideoScore)"
        ),
        extra="vlsim",
        weights=("videoscore_v1_1",),
        options={"weights": None, "num_frames": V11_FRAMES, "sampling": "arange", "dtype": "auto"},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        n = o["num_frames"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise UsageError(f"videoscore: num_frames must be an integer >= 1, got {n!r}")
        if o["sampling"] not in SAMPLINGS:
            raise UsageError(f"videoscore: sampling must be one of {SAMPLINGS}, got {o['sampling']!r}")
        if o["dtype"] not in DTYPES:
            raise UsageError(f"videoscore: dtype must be one of {DTYPES}, got {o['dtype']!r}")

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(VIDEOSCORE_ROLE, "videoscore", ALL_FRAMES, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {k: self.options[k] for k in ("num_frames", "sampling", "dtype")}
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return opts

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        prov["frames"] = (
            f"{self.options['sampling']} rule, num_frames={self.options['num_frames']}; shorter videos use all "
            "frames (no padding)"
        )
        return prov

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        out = np.asarray(feats[VIDEOSCORE_ROLE], dtype=np.float64)
        if out.shape != (1, len(ASPECTS)) or not np.all(np.isfinite(out)):
            raise MetricInputError(
                f"{entry.generated}: videoscore expected one finite row of 5 aspect scores, got {out.shape} — "
                "clear the feature cache and run again"
            )
        res = {f"videoscore_{a}": float(out[0, i]) for i, a in enumerate(ASPECTS)}
        res["videoscore_mean"] = float(out[0].mean())
        return res


VIDEOPHY_ROLE = "videophy"
VIDEOPHY_COLUMNS = ("semantic_adherence", "physical_commonsense")


@register_metric
class VideoPhy(VideoMetric):
    """VideoCon-Physics' probability of "Yes" to the semantic-adherence and physical-commonsense questions."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="videophy",
        family="multi_aspect",
        description=(
            "VideoPhy auto-rater (VideoCon-Physics, mPLUG-Owl-Video on LLaMA-7B): P(yes) that the video entails "
            "its prompt and that it follows the physical laws; 32 frames at segment centres"
        ),
        inputs=("generated", "prompt"),
        backbone="videophy",
        outputs=(
            OutputSpec(
                "videophy_sa",
                True,
                (0.0, 1.0),
                "semantic adherence: p(Yes) / (p(Yes) + p(No)) for 'Does this video entail the description: "
                '"<prompt>"?\'',
            ),
            OutputSpec(
                "videophy_pc",
                True,
                (0.0, 1.0),
                "physical commonsense: p(Yes) / (p(Yes) + p(No)) for 'Does this video follow the physical laws?'",
            ),
        ),
        citation=(
            "Bansal et al., VideoPhy: Evaluating Physical Commonsense for Video Generation, arXiv:2406.03520 "
            "(2024); checkpoint videophysics/videocon_physics"
        ),
        extra="multiaspect",
        requires=("sentencepiece",),
        weights=("videocon_physics",),
        options={"num_frames": 32, "max_length": 256, "dtype": "auto"},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        n, ml, dtype = self.options["num_frames"], self.options["max_length"], self.options["dtype"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UsageError(f"videophy: num_frames must be an integer >= 1 (the authors use 32), got {n!r}")
        if isinstance(ml, bool) or not isinstance(ml, int) or ml < 67:
            raise UsageError(
                f"videophy: max_length must be an integer >= 67 (the authors use 256), got {ml!r}"
            )
        if dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise UsageError(f"videophy: dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")

    def requests(self) -> list[FeatureRequest]:
        sampler = Sampler("segments", n=int(self.options["num_frames"]))
        return [FeatureRequest(VIDEOPHY_ROLE, "videophy", sampler, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "max_length": int(self.options["max_length"]),
            "dtype": str(self.options["dtype"]),
        }
        if self.options.get("weights"):
            opts["weights"] = self.options["weights"]
        return opts

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        f = np.asarray(feats[VIDEOPHY_ROLE], dtype=np.float64)
        if f.shape != (1, 2) or not np.all(np.isfinite(f)):
            raise MetricInputError(
                f"{entry.generated}: videophy expected one finite [semantic_adherence, physical_commonsense] row, "
                f"got {f.shape} — clear the feature cache and run again"
            )
        return {"videophy_sa": float(f[0, 0]), "videophy_pc": float(f[0, 1])}
