"""Small typed values passed between the stages of a run.

dataset -> ``Entry``; decode + sample -> ``Clip``; backbones -> feature arrays keyed by
``FeatureRequest``; metrics -> ``VideoRecord`` rows and aggregate values; results -> ``Results``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

Side = Literal["generated", "real"]


@dataclass(frozen=True)
class Entry:
    """One item of a dataset: a generated video, optionally its real counterpart and prompt.

    ``extra`` keeps every other field of the source (model name, category, human scores, ...)
    so it can be carried into the per-video results.
    """

    id: str
    generated: Path
    real: Path | None = None
    prompt: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def path(self, side: Side) -> Path | None:
        return self.generated if side == "generated" else self.real


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (and what decoding found)."""

    path: str
    fps: float | None
    duration: float | None
    width: int
    height: int
    codec: str | None
    container_frames: int | None  # as declared by the container, may be None or wrong
    decoded_frames: int | None = None  # frames actually decoded (within the window)
    warnings: tuple[str, ...] = ()  # e.g. 'truncated: decoding stopped at frame 40'


@dataclass
class Clip:
    """Decoded frames of one video: ``frames`` is uint8 ``[T, H, W, 3]`` RGB.

    ``indices`` are the source frame indices the rows of ``frames`` came from, so a sampler's
    choice is visible downstream and can be recorded.
    """

    frames: np.ndarray
    fps: float
    indices: tuple[int, ...]
    info: VideoInfo

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                f"Clip.frames must be uint8 [T,H,W,3], got {self.frames.dtype} {self.frames.shape}"
            )
        if len(self.indices) != self.frames.shape[0]:
            raise ValueError("Clip.indices must have one index per frame")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def select(self, rows: list[int] | tuple[int, ...]) -> Clip:
        """A clip made of the given rows of this one (rows may repeat, e.g. for padding)."""
        rows = list(rows)
        if rows == list(range(len(self.frames))):  # every frame in order: no copy of a possibly huge clip
            return self
        return Clip(self.frames[rows], self.fps, tuple(self.indices[r] for r in rows), self.info)


@dataclass
class SparseClip(Clip):
    """Some rows of a decoded clip, kept under their row numbers in the whole clip (``rows``, ascending):
    what a distributed run's decode task ships to a worker, only the frames its samplers will read.

    ``num_frames`` is the whole clip's length, so a sampler picks the same rows as on the whole clip, and
    ``select`` of kept rows gives the frames the whole clip would give."""

    length: int = 0
    rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.rows) != self.frames.shape[0]:
            raise ValueError("SparseClip.rows must name one row of the whole clip per kept frame")

    @classmethod
    def keep(cls, clip: Clip, rows: list[int] | tuple[int, ...] | set[int]) -> SparseClip:
        """The rows ``rows`` of ``clip`` (deduplicated, in order)."""
        kept = sorted(set(rows))
        return cls(
            clip.frames[kept],
            clip.fps,
            tuple(clip.indices[r] for r in kept),
            clip.info,
            length=clip.num_frames,
            rows=tuple(kept),
        )

    @property
    def num_frames(self) -> int:
        return self.length

    def select(self, rows: list[int] | tuple[int, ...]) -> Clip:
        at = {r: i for i, r in enumerate(self.rows)}
        missing = [r for r in rows if r not in at]
        if missing:
            raise ValueError(f"rows {missing[:5]} of the clip were not kept (kept: {len(self.rows)} rows)")
        take = [at[r] for r in rows]
        return Clip(self.frames[take], self.fps, tuple(self.indices[i] for i in take), self.info)


@dataclass(frozen=True)
class VideoRecord:
    """One per-video value of one metric output, or the error that prevented it."""

    video_id: str
    metric: str
    output: str
    value: float | None
    error: str | None = None
    warning: str | None = None  # the value exists but the video had a problem (e.g. truncated)
    #: JSON text of per-video detail (a judge's per-question answers, raw replies), on one record per video
    details: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "video_id": self.video_id,
            "metric": self.metric,
            "output": self.output,
            "value": self.value,
            "error": self.error,
            "warning": self.warning,
        }
        if self.details is not None:  # only when there are some: other metrics' files stay as they were
            d["details"] = self.details
        return d
