"""Multi-aspect judges: vision-language models asked several questions about one video.

``videophy``: VideoPhy's auto-rater VideoCon-Physics (Bansal et al., 2024), two yes/no questions per video --
does the video entail its caption (semantic adherence) and does it follow the physical laws (physical
commonsense) -- each scored as ``p(Yes) / (p(Yes) + p(No))``. The model, prompts, frame sampling and reading
are the authors' (see :mod:`aigve.backbones.videophy`). The original AIGVE toolkit fed the raw caption without
the template, so no video tokens were inserted and its score ignored the video; it had no SA/PC split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.errors import MetricInputError, UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.types import Entry
from aigve.video.sampling import Sampler

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
