"""Integrity check of video files (``aigve check``): decode every frame once and list problems.

Each problem is a string ``"<code>: <explanation>"``; the codes and their severity are in
:data:`PROBLEM_SEVERITY`. ``error`` problems mean the video cannot be evaluated as it is (or only
a damaged part of it can); ``warning`` problems are worth knowing but do not stop an evaluation.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from aigve.errors import DecodeError, UsageError
from aigve.video.decode import _scan
from aigve.video.sampling import Window

__all__ = ["PROBLEM_SEVERITY", "CheckReport", "SizeLimit", "check_many", "check_video"]

Severity = Literal["error", "warning"]

PROBLEM_SEVERITY: dict[str, Severity] = {
    "unreadable": "error",  # cannot be opened: missing, empty, not a video, no video stream
    "zero_frames": "error",  # opens, but no frame decodes
    "truncated": "error",  # decoding stopped early (the frames before the damage are usable)
    "frame_count_mismatch": "warning",  # declared frame count != decoded frame count
    "missing_fps": "warning",  # no container frame rate (time-based protocols need --fps)
    "odd_dimensions": "warning",  # width or height odd (some encoders/models need even sizes)
    "single_frame": "warning",  # only one frame: temporal metrics are undefined
    "variable_frame_rate": "warning",  # frame intervals differ (time-based sampling uses timestamps)
    "rotation": "warning",  # display rotation that is not a multiple of 90 degrees (not applied)
    "small_frames": "warning",  # frames smaller than some backbones accept (given as size limits)
}


@dataclass(frozen=True)
class SizeLimit:
    """A stage that needs frames with both sides >= ``min_side`` px (for ``small_frames``).

    ``aigve check`` passes one per backbone of the catalogue that declares a minimum
    (:func:`aigve.metrics.catalog.frame_size_limits`): ``name`` is the backbone, ``used_by`` the metrics
    that use it, ``reason`` why the limit exists. This module knows no metric or backbone itself.
    """

    name: str
    min_side: int
    reason: str = ""
    used_by: tuple[str, ...] = ()


def _small_frames_problem(width: int, height: int, limits: Sequence[SizeLimit]) -> str | None:
    """``small_frames`` problem for ``width x height`` frames, naming each stage they are too small for."""
    if width <= 0 or height <= 0:
        return None
    short = min(width, height)
    hits = [lim for lim in limits if short < lim.min_side]
    if not hits:
        return None

    def who(lim: SizeLimit) -> str:
        return f"{lim.name} ({', '.join(lim.used_by)})" if lim.used_by else lim.name

    parts = "; ".join(
        f"{lim.name} needs both sides >= {lim.min_side} px" + (f" ({lim.reason})" if lim.reason else "")
        for lim in hits
    )
    metrics = list(dict.fromkeys(m for lim in hits for m in lim.used_by))
    return (
        f"small_frames: {width}x{height} px is too small for {', '.join(who(lim) for lim in hits)}: {parts}; "
        f"{', '.join(metrics) if metrics else 'they'} will report an error for this video (the others are "
        "unaffected) — use a higher-resolution video or leave them out"
    )


@dataclass
class CheckReport:
    """What checking one video found. ``frames`` is the number of frames that decoded."""

    path: str
    readable: bool
    frames: int = 0
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    duration: float | None = None
    size_bytes: int | None = None
    problems: list[str] = field(default_factory=list)
    declared_frames: int | None = None  # frame count the container declares, if any

    @property
    def codes(self) -> list[str]:
        """The problem codes (the part of each problem before the colon)."""
        return [p.split(":", 1)[0] for p in self.problems]

    @property
    def ok(self) -> bool:
        """Readable and free of ``error``-level problems (warnings allowed)."""
        return self.readable and not any(PROBLEM_SEVERITY.get(c) == "error" for c in self.codes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus ``ok``."""
        out = asdict(self)
        out["ok"] = self.ok
        return out


def _vfr_problem(times: list[float | None], tick: float | None) -> str | None:
    """Frame intervals that differ by more than timestamp rounding (2 ticks + 1 %)."""
    ts = [t for t in times if t is not None]
    if len(ts) < 3:
        return None
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
    lo, hi, med = min(gaps), max(gaps), statistics.median(gaps)
    slack = 2 * (tick or 0.0) + 0.01 * abs(med) + 1e-6
    if hi - lo <= slack:
        return None
    return (
        f"variable_frame_rate: frame intervals range from {lo * 1000:.1f} ms to {hi * 1000:.1f} ms "
        f"(median {med * 1000:.1f} ms); time-based windows and samplers use the timestamps"
    )


def check_video(
    path: str | Path, *, thread_type: str = "AUTO", size_limits: Sequence[SizeLimit] = ()
) -> CheckReport:
    """Decode all of ``path`` (without converting to RGB) and report what is wrong with it.

    ``size_limits``: stages with a minimum frame side; frames below one give a ``small_frames`` warning.

    Never raises for a bad video: an unreadable file gives ``readable=False`` and an
    ``unreadable: <reason>`` problem.
    """
    path = Path(path)
    try:
        size: int | None = path.stat().st_size if path.is_file() else None
    except OSError:
        size = None
    try:
        scan = _scan(path, Window(), thread_type=thread_type, convert=False)
    except DecodeError as exc:
        return CheckReport(str(path), readable=False, size_bytes=size, problems=[f"unreadable: {exc.reason}"])
    info = scan.info
    report = CheckReport(
        path=str(path),
        readable=scan.count > 0,
        frames=scan.count,
        fps=info.fps,
        width=info.width,
        height=info.height,
        codec=info.codec,
        duration=info.duration,
        size_bytes=size,
        declared_frames=info.container_frames,
    )
    problems = report.problems
    if scan.count == 0:
        detail = f" (FFmpeg: {scan.error})" if scan.error else ""
        declared = f"; the container declares {info.container_frames}" if info.container_frames else ""
        problems.append(f"zero_frames: no frame could be decoded{declared}{detail}")
    for warning in info.warnings:
        if warning.startswith("truncated:") or warning.startswith("rotation:"):
            problems.append(warning)
    if (
        info.container_frames is not None
        and scan.count > 0
        and info.container_frames != scan.count
        and not scan.truncated
    ):
        problems.append(
            f"frame_count_mismatch: the container declares {info.container_frames} frames, "
            f"{scan.count} decoded"
        )
    if info.fps is None:
        problems.append(
            "missing_fps: the container declares no frame rate; pass --fps for time-based protocols"
        )
    if info.width % 2 or info.height % 2:
        problems.append(
            f"odd_dimensions: {info.width}x{info.height} (fine for decoding; some encoders and models "
            "need even sizes)"
        )
    small = _small_frames_problem(info.width, info.height, size_limits) if scan.count > 0 else None
    if small is not None:
        problems.append(small)
    if scan.count == 1:
        problems.append("single_frame: the video has 1 frame; temporal metrics are undefined for it")
    vfr = _vfr_problem(scan.times, scan.time_base)
    if vfr is not None:
        problems.append(vfr)
    return report


def check_many(
    paths: Sequence[str | Path],
    num_workers: int = 0,
    *,
    thread_type: str = "AUTO",
    size_limits: Sequence[SizeLimit] = (),
) -> list[CheckReport]:
    """:func:`check_video` on each path, in input order; ``num_workers>0`` uses a thread pool."""
    if num_workers < 0:
        raise UsageError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers == 0:
        return [check_video(p, thread_type=thread_type, size_limits=size_limits) for p in paths]
    with ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="aigve-check") as pool:
        return list(
            pool.map(lambda p: check_video(p, thread_type=thread_type, size_limits=size_limits), paths)
        )
