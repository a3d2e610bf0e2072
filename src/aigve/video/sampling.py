"""Frame sampling protocols.

Which frames feed a metric is part of what its number means, so every choice here has an
``id`` that goes into the cache key and the provenance of each score.

Two levels:
- ``Window``: run-level limits applied while decoding (``--max-len``, ``--max-seconds``; ``--fps``
  only stands in where the container has no frame rate). Frames past the window are never decoded.
- ``Sampler``: a metric's choice of rows inside the decoded window (all, first N, first S seconds,
  uniform N, every k-th, resample to a target fps, segment centres), with a padding policy for short clips.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from aigve.errors import UsageError

Protocol = Literal["all", "first", "seconds", "uniform", "stride", "fps", "segments"]
PadPolicy = Literal["repeat_last", "none"]
PROTOCOLS: tuple[str, ...] = ("all", "first", "seconds", "uniform", "stride", "fps", "segments")


@dataclass(frozen=True)
class Window:
    """Run-level decode limits. ``None`` means no limit."""

    max_len: int | None = None
    max_seconds: float | None = None
    fps_fallback: float | None = None  # used only when the container declares no fps

    def __post_init__(self) -> None:
        if self.max_len is not None and self.max_len < 1:
            raise UsageError(f"--max-len must be >= 1, got {self.max_len}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise UsageError(f"--max-seconds must be > 0, got {self.max_seconds}")
        if self.fps_fallback is not None and self.fps_fallback <= 0:
            raise UsageError(f"--fps must be > 0, got {self.fps_fallback}")

    def effective_fps(self, container_fps: float | None) -> float | None:
        if container_fps and container_fps > 0:
            return float(container_fps)
        return self.fps_fallback

    def frame_limit(self, container_fps: float | None) -> int | None:
        """Largest number of leading frames to decode, or ``None`` for all."""
        limits: list[int] = []
        if self.max_len is not None:
            limits.append(self.max_len)
        if self.max_seconds is not None:
            fps = self.effective_fps(container_fps)
            if fps is None:
                raise UsageError(
                    "--max-seconds needs a frame rate, but the container declares none: pass --fps"
                )
            # frames whose timestamp i/fps lies before max_seconds
            limits.append(max(1, math.ceil(self.max_seconds * fps - 1e-9)))
        return min(limits) if limits else None

    @property
    def id(self) -> str:
        return f"win(len={self.max_len},sec={self.max_seconds},fps={self.fps_fallback})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sampler:
    """A metric's frame selection inside the decoded window.

    - ``all``: every frame (``n`` caps the count if given);
    - ``first``: the first ``n`` frames;
    - ``seconds``: the frames of the first ``seconds`` seconds;
    - ``uniform``: ``n`` frames evenly spaced over the clip (rounded ``linspace(0, T-1, n)``);
    - ``stride``: every ``stride``-th frame from the first (``n`` caps the count);
    - ``fps``: resampled to ``fps`` frames per second, nearest earlier frame (``n`` caps the count);
    - ``segments``: ``n`` frames near the centres of ``n`` equal segments, the index rule of
      mPLUG-Owl-Video's ``get_index`` (VideoPhy): with ``s = (T - 1) / n``, row ``i`` is
      ``int(s / 2) + round(s * i)`` (round half to even); always ``n`` rows, so a clip shorter than ``n``
      repeats frames (each row is the frame nearest its segment), never pads.

    ``pad="repeat_last"`` repeats the last frame until ``n`` rows exist when the clip is shorter;
    ``pad="none"`` returns what there is.
    """

    protocol: Protocol = "all"
    n: int | None = None
    stride: int = 1
    fps: float | None = None
    seconds: float | None = None
    pad: PadPolicy = "none"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UsageError(
                f"unknown sampling protocol '{self.protocol}', choose from {', '.join(PROTOCOLS)}"
            )
        if self.protocol in ("first", "uniform", "segments") and (self.n is None or self.n < 1):
            raise UsageError(f"sampling protocol '{self.protocol}' needs n >= 1")
        if self.n is not None and self.n < 1:
            raise UsageError(f"sampler n must be >= 1, got {self.n}")
        if self.stride < 1:
            raise UsageError(f"sampler stride must be >= 1, got {self.stride}")
        if self.protocol == "fps" and (self.fps is None or self.fps <= 0):
            raise UsageError("sampling protocol 'fps' needs fps > 0")
        if self.protocol == "seconds" and (self.seconds is None or self.seconds <= 0):
            raise UsageError("sampling protocol 'seconds' needs seconds > 0")
        if self.pad not in ("repeat_last", "none"):
            raise UsageError(f"unknown padding policy '{self.pad}', use repeat_last or none")

    def select(self, num_frames: int, fps: float | None = None) -> list[int]:
        """Row indices (into a clip of ``num_frames`` frames) this sampler picks."""
        t = int(num_frames)
        if t <= 0:
            return []
        p = self.protocol
        if p == "all":
            rows = list(range(t))
        elif p == "first":
            rows = list(range(min(t, self.n or t)))
        elif p == "seconds":
            if not fps:
                raise UsageError("sampling protocol 'seconds' needs the video's fps")
            assert self.seconds is not None
            rows = list(range(min(t, max(1, math.ceil(self.seconds * fps - 1e-9)))))
        elif p == "uniform":
            assert self.n is not None
            if t >= self.n:
                if self.n == 1:
                    rows = [(t - 1) // 2]
                else:
                    rows = [int(round(i * (t - 1) / (self.n - 1))) for i in range(self.n)]
            else:
                rows = list(range(t))
        elif p == "stride":
            rows = list(range(0, t, self.stride))
        elif p == "fps":
            if not fps:
                raise UsageError("sampling protocol 'fps' needs the video's fps")
            assert self.fps is not None
            duration = t / fps
            count = max(1, math.ceil(duration * self.fps - 1e-9))
            rows = [min(t - 1, int(math.floor(j * fps / self.fps + 1e-6))) for j in range(count)]
        elif p == "segments":
            assert self.n is not None
            seg = (t - 1) / self.n
            rows = [int(seg / 2) + int(round(seg * i)) for i in range(self.n)]
        else:  # pragma: no cover - guarded in __post_init__
            raise AssertionError(p)
        if self.n is not None and p in ("all", "stride", "fps", "seconds"):
            rows = rows[: self.n]
        if self.pad == "repeat_last" and self.n is not None and 0 < len(rows) < self.n:
            rows = rows + [rows[-1]] * (self.n - len(rows))
        return rows

    @property
    def id(self) -> str:
        parts: list[str] = [self.protocol]
        if self.n is not None:
            parts.append(f"n={self.n}")
        if self.protocol == "stride":
            parts.append(f"k={self.stride}")
        if self.fps is not None:
            parts.append(f"fps={self.fps:g}")
        if self.seconds is not None:
            parts.append(f"s={self.seconds:g}")
        parts.append(f"pad={self.pad}")
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ALL_FRAMES = Sampler("all")
