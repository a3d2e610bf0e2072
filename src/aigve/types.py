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


class DeclaredFrames:
    """The frames of a clip that a backbone declared it reads (:meth:`aigve.backbones.base.Backbone.frame_windows`),
    indexed like the whole clip's uint8 ``[T, H, W, 3]`` array.

    ``len``, ``shape`` and row numbers are those of the whole clip, so a backbone's own frame choice (``frames[
    rows]``, ``frames[::k]``) reads the same pixels as on the whole array; reading a row that was not declared
    raises ``IndexError`` naming it, so a declaration that misses a row fails in every run instead of changing
    a number. Two stores: a view of the whole array (``whole``, no copy; a video decoded whole) or only the
    declared frames (``kept`` with their ``rows``; a streamed video, whose other frames were never held).
    """

    __slots__ = ("_data", "_where", "length", "owner")

    def __init__(self, data: np.ndarray, where: np.ndarray, owner: str = "the backbone") -> None:
        self._data = data
        self._where = where  # per row of the whole clip: its position in ``data``, or -1
        self.length = int(len(where))
        self.owner = owner

    @classmethod
    def whole(cls, frames: np.ndarray, rows: Any, owner: str = "the backbone") -> DeclaredFrames:
        """The declared ``rows`` of the whole clip ``frames`` (a view: nothing is copied)."""
        where = np.full(len(frames), -1, dtype=np.int64)
        idx = np.unique(np.asarray(list(rows), dtype=np.int64))
        where[idx] = idx
        return cls(frames, where, owner)

    @classmethod
    def kept(cls, frames: np.ndarray, rows: Any, length: int, owner: str = "the backbone") -> DeclaredFrames:
        """``frames[i]`` is row ``rows[i]`` of a clip of ``length`` frames (``rows`` ascending, unique)."""
        where = np.full(int(length), -1, dtype=np.int64)
        where[np.asarray(list(rows), dtype=np.int64)] = np.arange(len(frames))
        return cls(frames, where, owner)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.length, *self._data.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return int(self._data.ndim)

    @property
    def rows(self) -> list[int]:
        """The declared rows (ascending)."""
        return [int(r) for r in np.flatnonzero(self._where >= 0)]

    def __len__(self) -> int:
        return self.length

    def _positions(self, rows: np.ndarray) -> np.ndarray:
        if rows.size and (rows.min() < -self.length or rows.max() >= self.length):
            raise IndexError(f"row index out of range for a clip of {self.length} frames")
        pos = self._where[rows]
        if (pos < 0).any():
            missing = sorted({int(r) % self.length for r in rows[pos < 0]})
            raise IndexError(
                f"{self.owner} read row(s) {missing[:5]} of a {self.length}-frame clip that its frame_windows "
                "did not declare"
            )
        return pos

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):  # frames[rows, ...]: the rows first, then the rest on what they gave
            first = self[key[0]]
            if isinstance(key[0], int | np.integer):
                return first[key[1:]]
            return first[(slice(None), *key[1:])]
        if isinstance(key, int | np.integer):
            return self._data[int(self._positions(np.asarray([int(key)]))[0])]
        if isinstance(key, slice):
            key = range(*key.indices(self.length))
        rows = np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False)
        return self._data[self._positions(rows.reshape(-1))].reshape(*rows.shape, *self._data.shape[1:])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[np.arange(self.length)]
        return out if dtype is None else out.astype(dtype)


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
