"""No-reference neural video quality: ``simplevqa``.

``simplevqa`` (Sun et al., "A Deep Learning based No-reference Quality Assessment Model for UGC Videos",
ACM MM 2022; code sunwei925/SimpleVQA @ 017edda, checkpoint ``UGC_BVQA_model.pth`` trained on LSVQ):
per whole second of the video, the SimpleVQA ResNet-50 mean/std features of the key frame
(``simplevqa_spatial``) and the SlowFast R50 motion features of the 32-frame clip starting there
(``slowfast_r50``) go through the checkpoint's linear head; the score is the mean over seconds.

Padding policy (the model's window is 8 seconds): a video with fewer than ``min_seconds`` (default 8)
seconds has its last second's features repeated up to 8 rows before averaging, which is what the authors'
training data preparation did for both branches (``extract_frame_LSVQ.py`` repeats the last key frame,
``VideoDataset_NR_LSVQ_SlowFast_feature`` the last clip); their ``test_demo.py`` pads only the motion
branch and then fails on the size mismatch. Longer videos use every second, as ``test_demo.py`` does.
So for a 2-second clip the score is ``(q0 + 7 q1) / 8``. ``min_seconds=1`` turns the padding off.
A video shorter than one second counts as one second (its key frame is frame 0).

Scale: LSVQ MOS / 20, i.e. about 0-5, higher is better; the head is linear, so values outside are
possible and are not clipped.

Weights (none can be downloaded on a machine without Google Drive access): ``weights`` = path of
``UGC_BVQA_model.pth`` (the original AIGVE flag ``--simplevqa-model``), ``slowfast_weights`` = path of
``SLOWFAST_8x8_R50.pyth``; otherwise the weights registry's ``simplevqa_ugc`` / ``slowfast_r50``. A
missing file fails the metric with a ``WeightsError`` naming it and where to put it; the run goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from aigve.errors import MetricInputError, UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.types import Entry
from aigve.video.sampling import ALL_FRAMES

SPATIAL_ROLE = "spatial"
MOTION_ROLE = "motion"
SIMPLEVQA_WINDOW = 8


def pad_seconds(rows: np.ndarray, min_rows: int) -> np.ndarray:
    """Repeat the last row until there are ``min_rows`` rows (no-op when there are enough)."""
    rows = np.asarray(rows)
    if rows.shape[0] >= min_rows:
        return rows
    return np.concatenate([rows, np.repeat(rows[-1:], min_rows - rows.shape[0], axis=0)], axis=0)


def simplevqa_score(
    spatial: np.ndarray, motion: np.ndarray, head: torch.nn.Module, min_seconds: int = SIMPLEVQA_WINDOW
) -> float:
    """Mean over seconds of ``head(spatial_i, motion_i)`` after padding both to ``min_seconds`` rows.

    ``spatial`` ``[n, 7168]`` and ``motion`` ``[n, 2304]`` must have one row per second each; the head runs
    in its own dtype on CPU.
    """
    if spatial.shape[0] != motion.shape[0]:
        raise ValueError(f"spatial ({spatial.shape[0]}) and motion ({motion.shape[0]}) rows differ")
    s = pad_seconds(spatial, min_seconds)
    m = pad_seconds(motion, min_seconds)
    p = next(head.parameters())
    with torch.inference_mode():
        q = head(torch.from_numpy(s).to(p), torch.from_numpy(m).to(p))
    return float(q.double().mean())


@register_metric
class SimpleVQA(VideoMetric):
    """SimpleVQA technical quality of a generated video (no reference)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="simplevqa",
        family="nn_based_video",
        description=(
            "SimpleVQA no-reference quality: ResNet-50 key-frame features + SlowFast motion features per "
            "second, linear head trained on LSVQ, mean over seconds"
        ),
        inputs=("generated",),
        backbone="simplevqa_spatial+slowfast_r50",
        outputs=(
            OutputSpec(
                "simplevqa",
                True,
                (None, None),
                "predicted quality on LSVQ's MOS/20 scale (about 0-5; linear head, not clipped)",
            ),
        ),
        citation=(
            "Sun, Min, Lu, Zhai, Zhai, A Deep Learning based No-reference Quality Assessment Model for UGC "
            "Videos, ACM MM 2022"
        ),
        extra="nnvqa",
        requires=(),
        weights=("simplevqa_ugc", "slowfast_r50"),
        options={"weights": None, "slowfast_weights": None, "min_seconds": SIMPLEVQA_WINDOW},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        ms = self.options["min_seconds"]
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 1:
            raise UsageError(f"simplevqa: min_seconds must be an integer >= 1, got {ms!r}")
        self._head: torch.nn.Module | None = None
        self._spatial_sha: str | None = None

    def requests(self) -> list[FeatureRequest]:
        sp = (("weights", str(self.options["weights"])),) if self.options.get("weights") else ()
        mo = (
            (("weights", str(self.options["slowfast_weights"])),)
            if self.options.get("slowfast_weights")
            else ()
        )
        return [
            FeatureRequest(SPATIAL_ROLE, "simplevqa_spatial", ALL_FRAMES, "generated", sp),
            FeatureRequest(MOTION_ROLE, "slowfast_r50", ALL_FRAMES, "generated", mo),
        ]

    def extractor_options(self) -> dict[str, Any]:
        # each request carries its own weights option (set in requests())
        return {}

    def bind(self, identities: Mapping[str, Mapping[str, Any]]) -> None:
        super().bind(identities)
        self._spatial_sha = identities.get(SPATIAL_ROLE, {}).get("weights_sha256")

    def head(self) -> torch.nn.Module:
        """The checkpoint's quality head (shared with the loaded spatial extractor when possible)."""
        if self._head is None:
            from aigve.backbones.vqa_features import simplevqa_head

            self._head, _ = simplevqa_head(self.options.get("weights"), self._spatial_sha)
        return self._head

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        s = np.asarray(feats[SPATIAL_ROLE], dtype=np.float32)
        m = np.asarray(feats[MOTION_ROLE], dtype=np.float32)
        if s.ndim != 2 or m.ndim != 2 or s.shape[0] < 1 or s.shape[0] != m.shape[0]:
            raise MetricInputError(
                f"{entry.generated}: simplevqa got {s.shape} spatial and {m.shape} motion features; they need "
                f"one row per second each — clear the feature cache (--cache-dir) if it holds stale entries"
            )
        return {"simplevqa": simplevqa_score(s, m, self.head(), int(self.options["min_seconds"]))}
