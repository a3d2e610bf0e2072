"""Video decoding with PyAV: probe, decode inside a ``Window``, and parallel in-order decoding.

Every failure is an :class:`aigve.errors.DecodeError` naming the file, a reason a user can
understand and a fix; no raw PyAV/FFmpeg exception leaves this module.

Decisions (see also the docstrings below):

- Frames are decoded once, in presentation order, converted to RGB ``uint8 [T, H, W, 3]`` with
  ``frame.to_ndarray(format="rgb24")`` (works for odd sizes). Decoding stops as soon as the window
  is full; frames past it are never converted.
- ``Window.max_seconds`` is applied on the frames' presentation timestamps relative to the first
  frame when they exist (right for variable-frame-rate video), else on ``index / fps``.
  ``Window.fps_fallback`` only stands in where the container declares no frame rate.
- Rotation: a display matrix that rotates by a multiple of 90 degrees is applied (what players and
  OpenCV show); other angles are left alone and reported in ``VideoInfo.warnings``.
- Truncated files: if frames decoded before the damage, they are returned and
  ``VideoInfo.warnings`` gets ``"truncated: decoding stopped after N frames: <reason>"``; if none
  decoded, :class:`DecodeError`. "Damage" is a decoder/demuxer error after the first frame, or
  the stream ending before what the container declares (fewer frames than its frame count *and*
  the last frame ending well before its duration, whichever of the two is declared).
- The first video stream that is not an attached picture (cover art) is decoded.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from aigve.errors import DecodeError, UsageError
from aigve.types import Clip, VideoInfo
from aigve.video.sampling import Window

__all__ = [
    "MAX_REORDER",
    "THREAD_TYPES",
    "FrameChunk",
    "FrameStream",
    "WindowEstimate",
    "decode_video",
    "estimate_window",
    "iter_decoded",
    "probe_video",
]

THREAD_TYPES: tuple[str, ...] = ("AUTO", "FRAME", "SLICE", "NONE")

# Exceptions PyAV/FFmpeg raise for bad input; anything else is a bug and propagates.
_AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, EOFError, ValueError)

_FIX_REGENERATE = "re-download or re-generate the video, or drop it from the dataset"


# --------------------------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------------------------
def _sniff(path: Path) -> str | None:
    """A short description of what the file's first bytes look like, if recognisable."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"free", b"wide"):
        return "an MP4/MOV file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a Matroska/WebM file"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "an AVI file"
    if head[:3] == b"FLV":
        return "an FLV file"
    if head[:4] == b"\x00\x00\x01\xba" or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47):
        return "an MPEG program/transport stream"
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            return None
        printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
        if text and printable >= 0.95 * len(text):
            return "text"
    return None


def _ffmpeg_message(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(msg).strip().rstrip(".")


def _link_problem(path: Path) -> str | None:
    """Why ``path`` is a symbolic link that leads nowhere (broken or looping), else ``None``."""
    if not path.is_symlink():
        return None
    try:
        os.stat(path)
        return None
    except OSError as exc:
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        if exc.errno == errno.ELOOP:
            why = "the links lead back to themselves (a loop)"
        elif exc.errno == errno.ENOENT:
            why = "its target does not exist"
        else:
            why = _ffmpeg_message(exc)
        return f"broken or looping symbolic link (-> {target}): {why}"


def check_file(path: Path) -> int:
    """Reject missing, non-regular and empty files before FFmpeg sees them; returns the size."""
    link = _link_problem(path)
    if link is not None:
        raise DecodeError(
            path,
            link,
            "point the link at the real video file (ln -sfn <video> <link>), or replace the link with the file",
        )
    if not path.exists():
        raise DecodeError(
            path, "file not found", "check the path (relative paths are resolved against the dataset root)"
        )
    if path.is_dir():
        raise DecodeError(path, "is a directory, not a video file", "point at a video file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DecodeError(
            path, f"cannot read the file ({_ffmpeg_message(exc)})", "check its permissions"
        ) from None
    if size == 0:
        raise DecodeError(path, "the file is empty (0 bytes)", _FIX_REGENERATE)
    return size


def _open_failure(path: Path, exc: BaseException) -> DecodeError:
    """Turn an ``av.open`` failure into a DecodeError whose reason says what the file is."""
    detail = _ffmpeg_message(exc)
    if isinstance(exc, (PermissionError, av.error.PermissionError)):
        return DecodeError(path, f"permission denied ({detail})", "check the file's permissions")
    kind = _sniff(path)
    if kind == "text":
        return DecodeError(
            path, f"is a text file, not a video (FFmpeg: {detail})", "point at the video file itself"
        )
    if kind is not None:
        return DecodeError(
            path,
            f"looks like {kind} but FFmpeg cannot parse it: it is probably truncated (an interrupted "
            f"download or a writer that never finished) or corrupt (FFmpeg: {detail})",
            _FIX_REGENERATE,
        )
    return DecodeError(
        path,
        f"is not a video container FFmpeg recognises (FFmpeg: {detail})",
        "check that it is a video file (mp4, mkv, webm, mov, avi, ...) and not another kind of file",
    )


def _video_stream(container: Any) -> Any | None:
    attached = int(av.stream.Disposition.attached_pic)
    for stream in container.streams.video:
        if not (int(stream.disposition) & attached):
            return stream
    return None


def _describe_streams(container: Any) -> str:
    counts: dict[str, int] = {}
    for stream in container.streams:
        kind = stream.type or "unknown"
        if kind == "video":
            kind = "cover-art image"
        counts[kind] = counts.get(kind, 0) + 1
    if not counts:
        return "no streams at all"
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


# FFmpeg demuxers that read single still images (``<kind>_pipe`` for each image format, e.g. png_pipe,
# jpeg_pipe, bmp_pipe, tiff_pipe, webp_pipe, are picked by content whatever the file is called).
_IMAGE_DEMUXERS: frozenset[str] = frozenset({"image2", "image2pipe"})
# Codec names to show as the image kind (FFmpeg decodes JPEG stills with its mjpeg decoder).
_IMAGE_KIND: dict[str, str] = {"mjpeg": "jpeg", "jpegls": "jpeg-ls", "jpeg2000": "jpeg 2000"}


def _image_kind(container: Any, stream: Any) -> str | None:
    """The image format (``"png"``, ``"jpeg"``, ...) when FFmpeg opened ``container`` as a still image
    (an image demuxer), else ``None``. Decided by the demuxer, not the codec: a real MJPEG AVI or a PNG
    track inside MOV/MKV is a video and is accepted."""
    names = set((getattr(container.format, "name", "") or "").split(","))
    pipes = {n for n in names if n.endswith("_pipe")}
    if not pipes and not names & _IMAGE_DEMUXERS:
        return None
    codec = getattr(stream.codec_context, "name", None) if stream is not None else None
    if codec:
        return _IMAGE_KIND.get(codec, codec)
    return min(pipes)[: -len("_pipe")] if pipes else "image"


def _open(path: Path) -> tuple[Any, Any]:
    """Open ``path`` and return ``(container, video_stream)``; the caller closes the container."""
    check_file(path)
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except _AV_ERRORS as exc:
        raise _open_failure(path, exc) from None
    stream = _video_stream(container)
    kind = _image_kind(container, stream)
    if kind is not None:
        container.close()
        raise DecodeError(
            path,
            f"is an image ({kind}), not a video"
            + (f", although its name ends in {path.suffix}" if path.suffix else ""),
            "point at the video file itself; to evaluate a still image, encode it as a video first "
            "(e.g. ffmpeg -loop 1 -i image -t 2 -pix_fmt yuv420p video.mp4)",
        )
    if stream is None:
        found = _describe_streams(container)
        container.close()
        raise DecodeError(
            path,
            f"contains no video stream (found: {found})",
            "point at a video file; audio-only files and images cannot be evaluated",
        )
    if stream.codec_context is None:
        container.close()
        raise DecodeError(
            path,
            "its video stream has no usable decoder: the codec is unknown to this FFmpeg build or "
            "its description in the container is corrupt",
            "re-encode the video with a common codec (e.g. H.264), or re-download/re-generate it",
        )
    return container, stream


# --------------------------------------------------------------------------------------------
# container facts
# --------------------------------------------------------------------------------------------
def _container_fps(stream: Any) -> float | None:
    rate = stream.average_rate
    if rate is None:
        return None
    value = float(rate)
    return value if value > 0 and math.isfinite(value) else None


def _stream_duration(container: Any, stream: Any) -> tuple[float | None, bool]:
    """(duration in seconds, whether it is the video stream's own duration)."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base), True
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base, False
    return None, False


def _container_frames(stream: Any) -> int | None:
    n = int(stream.frames or 0)
    return n if n > 0 else None


def _rotation_k(frame: Any, warnings: list[str]) -> int:
    """Quarter turns (counter-clockwise, ``np.rot90`` convention) the display matrix asks for."""
    angle = getattr(frame, "rotation", 0) or 0
    if angle % 90 != 0:
        warnings.append(
            f"rotation: display matrix rotates by {angle} degrees; not applied (only multiples of 90 are)"
        )
        return 0
    return int(round(angle / 90)) % 4


def _base_info(path: Path, container: Any, stream: Any) -> dict[str, Any]:
    cc = stream.codec_context
    duration, _ = _stream_duration(container, stream)
    return {
        "path": str(path),
        "fps": _container_fps(stream),
        "duration": duration,
        "width": int(cc.width or 0),
        "height": int(cc.height or 0),
        "codec": cc.name or None,
        "container_frames": _container_frames(stream),
    }


def probe_video(path: str | Path) -> VideoInfo:
    """Read what the container says about ``path`` without decoding its frames.

    ``fps`` is the container's average frame rate (``None`` if absent), ``duration`` the video
    stream's duration in seconds (else the container's), ``container_frames`` the declared frame
    count (``None`` if not declared). Width and height are the displayed size: one frame is
    decoded to read the rotation, if any (a failure there is ignored; ``decode_video`` reports it).
    """
    path = Path(path)
    container, stream = _open(path)
    try:
        fields = _base_info(path, container, stream)
        warnings: list[str] = []
        try:
            first = next(iter(container.decode(stream)), None)
        except _AV_ERRORS:
            first = None
        if first is not None and _rotation_k(first, warnings) % 2 == 1:
            fields["width"], fields["height"] = fields["height"], fields["width"]
        return VideoInfo(**fields, warnings=tuple(warnings))
    finally:
        container.close()


@dataclass(frozen=True)
class WindowEstimate:
    """What the container says a decode inside a window will give, read without decoding a frame:
    ``frames`` (None when it declares neither a frame count nor a duration), ``fps`` (the window's
    effective rate, None if unknown), and the coded ``height`` x ``width``."""

    frames: int | None
    fps: float | None
    height: int
    width: int

    @property
    def nbytes(self) -> int | None:
        """Bytes of the decoded RGB window, if the frame count is known."""
        return None if self.frames is None else self.frames * self.height * self.width * 3


def estimate_window(path: str | Path, window: Window = Window()) -> WindowEstimate:
    """How many frames (and at what rate) ``decode_video(path, window)`` should give, from the container's
    declarations only (an estimate: a cut or mis-declared file decodes to another count). DecodeError when
    the file cannot be opened, as ``decode_video``."""
    path = Path(path)
    container, stream = _open(path)
    try:
        fields = _base_info(path, container, stream)
        fps = window.effective_fps(fields["fps"])
        frames = fields["container_frames"]
        if frames is None and fields["duration"] and fps:
            frames = max(1, int(round(fields["duration"] * fps)))
        if frames is not None and fps:
            limit = window.frame_limit(fps)
            frames = min(frames, limit) if limit is not None else frames
        elif frames is not None and window.max_len is not None:
            frames = min(frames, window.max_len)
        return WindowEstimate(frames, fps, fields["height"], fields["width"])
    finally:
        container.close()


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------
class _FrameStore:
    """The decoded RGB frames in one preallocated ``[capacity, H, W, 3]`` array (grown if the container
    under-declared its length): the clip is held once, not as a list of frames plus a stacked copy."""

    def __init__(self, capacity_hint: int | None) -> None:
        self._hint = max(1, capacity_hint or 64)
        self._buf: np.ndarray | None = None
        self._n = 0

    def append(self, frame: np.ndarray) -> None:
        if self._buf is None:
            try:
                self._buf = np.empty((self._hint, *frame.shape), dtype=frame.dtype)
            except MemoryError:  # a container declaring far more frames than memory allows: grow instead
                self._buf = np.empty((64, *frame.shape), dtype=frame.dtype)
        elif self._n == len(self._buf):
            grown = np.empty((max(self._n + 1, int(self._n * 1.5)), *self._buf.shape[1:]), self._buf.dtype)
            grown[: self._n] = self._buf
            self._buf = grown
        self._buf[self._n] = frame
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> np.ndarray:
        assert self._buf is not None and -self._n <= i < self._n
        return self._buf[i % self._n]

    def truncate(self, n: int) -> None:
        self._n = min(self._n, n)

    def take_ready(self) -> np.ndarray | None:
        """Whole-window decoding hands nothing out before the end."""
        return None

    def array(self) -> np.ndarray:
        """``[T, H, W, 3]``; a view when the estimate was close, else a tight copy (frees the rest)."""
        assert self._buf is not None and self._n > 0
        if self._n >= 0.75 * len(self._buf):
            return self._buf[: self._n]
        return self._buf[: self._n].copy()


#: frames at the end of a truncated stream that may still be dropped as out of sequence
#: (``_drop_out_of_order_tail``): a streaming decode holds this many back until the stream ends
MAX_REORDER = 16


class _ChunkStore:
    """Streaming: the decoded frames handed out in blocks of ``chunk`` frames, holding back the last
    ``MAX_REORDER + 1`` until the stream ends (a truncated stream may drop those), so at most
    ``chunk + MAX_REORDER + 1`` decoded frames are in memory whatever the video's length."""

    def __init__(self, chunk: int) -> None:
        self.chunk = max(1, int(chunk))
        self._pending: list[np.ndarray] = []
        self._handed = 0  # frames already handed out

    def append(self, frame: np.ndarray) -> None:
        self._pending.append(frame)

    def __len__(self) -> int:
        return self._handed + len(self._pending)

    def truncate(self, n: int) -> None:
        keep = n - self._handed
        assert keep >= 0, "a frame already handed out cannot be dropped"
        del self._pending[keep:]

    def take_ready(self) -> np.ndarray | None:
        if len(self._pending) < self.chunk + MAX_REORDER + 1:
            return None
        return self._take(self.chunk)

    def take_rest(self) -> np.ndarray | None:
        return self._take(len(self._pending)) if self._pending else None

    def _take(self, n: int) -> np.ndarray:
        block = np.stack(self._pending[:n])
        del self._pending[:n]
        self._handed += n
        return block


def _capacity_hint(container_frames: int | None, window: Window, fps: float | None) -> int | None:
    """How many frames the window will keep, as far as the container tells (None: unknown)."""
    bounds = [b for b in (container_frames, window.max_len) if b]
    if window.max_seconds is not None and fps:
        bounds.append(int(window.max_seconds * fps) + 2)
    return min(bounds) if bounds else None


@dataclass
class _Scan:
    """What one pass over a video found (shared by ``decode_video`` and ``check_video``)."""

    info: VideoInfo
    frames: _FrameStore | _ChunkStore = field(
        default_factory=lambda: _FrameStore(None)
    )  # empty: not converting
    frame_hw: tuple[int, int] | None = None  # decoded (unrotated) height and width of the frames
    count: int = 0
    times: list[float | None] = field(default_factory=list)  # seconds since the first frame
    time_base: float | None = None
    stopped_by_window: bool = False
    error: str | None = None  # decoder/demuxer error after the last good frame
    truncated: bool = False
    rotation_k: int = 0
    first_pts: int | None = None


def _truncation_reason(scan: _Scan, container: Any, stream: Any, fps: float | None) -> str | None:
    """Why the stream looks cut short, or ``None``. Only meaningful after reaching the end."""
    if scan.error is not None:
        return scan.error
    n = scan.count
    declared = scan.info.container_frames
    short_count = None if declared is None else n < declared
    duration, own = _stream_duration(container, stream)
    if not own and len(container.streams) > 1:
        duration = None  # the container's duration may be another stream's
    short_time = None
    last = scan.times[-1] if scan.times else None
    if duration is not None and last is not None and fps:
        start = stream.start_time or 0
        offset = float((scan.first_pts - start) * stream.time_base) if scan.first_pts is not None else 0.0
        end = offset + last + 1.0 / fps
        # one and a half frame periods (at least 50 ms) of slack: declared durations are rounded
        short_time = end < duration - max(1.5 / fps, 0.05)
    checks = [c for c in (short_count, short_time) if c is not None]
    if not checks or not all(checks):
        return None
    parts = []
    if declared is not None:
        parts.append(f"{declared} frames")
    if short_time:
        parts.append(f"{duration:.3f} s")
    return "the stream ends before what the container declares (" + ", ".join(parts) + ")"


def _drop_out_of_order_tail(scan: _Scan, max_reorder: int = MAX_REORDER) -> int:
    """Drop trailing frames that follow a timestamp jump in a truncated stream; returns how many.

    When a file is cut, the decoder flushes the reference frames it was holding back for
    reordering, but the frames that should have come between them were lost: the tail then skips
    ahead in time. Only the last ``max_reorder`` frames (the decoder's reorder window) are
    examined, so a variable frame rate earlier in the file is not mistaken for this.
    """
    times = scan.times
    if len(times) < 4 or any(t is None for t in times):
        return 0
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]  # type: ignore[operator]
    start = max(1, len(gaps) - max_reorder)
    reference = sorted(gaps[:start])[len(gaps[:start]) // 2]
    if reference <= 0:
        return 0
    for j in range(start, len(gaps)):
        if gaps[j] > 1.5 * reference:
            keep = j + 1
            dropped = scan.count - keep
            del scan.times[keep:]
            scan.frames.truncate(keep)
            scan.count = keep
            return dropped
    return 0


def _scan(
    path: Path,
    window: Window,
    *,
    thread_type: str = "AUTO",
    convert: bool = True,
    autorotate: bool = True,
) -> _Scan:
    """Decode ``path`` inside ``window``; raises DecodeError only when the file cannot be opened."""
    steps = _scan_iter(path, window, thread_type=thread_type, convert=convert, autorotate=autorotate)
    while True:
        try:
            next(steps)  # whole-window decoding hands out no block before the end
        except StopIteration as done:
            return done.value


def _scan_iter(
    path: Path,
    window: Window,
    *,
    thread_type: str = "AUTO",
    convert: bool = True,
    autorotate: bool = True,
    chunk: int | None = None,
) -> Generator[np.ndarray, None, _Scan]:
    """The one decode loop. With ``chunk``, yields the decoded (rotated) frames in blocks as they come
    (``_ChunkStore``); without, keeps them all in ``_Scan.frames``. Returns the ``_Scan``."""
    if thread_type not in THREAD_TYPES:
        raise UsageError(f"thread_type must be one of {', '.join(THREAD_TYPES)}, got {thread_type!r}")
    container, stream = _open(path)
    try:
        fields = _base_info(path, container, stream)
        fps = window.effective_fps(fields["fps"])
        warnings: list[str] = []
        scan = _Scan(info=VideoInfo(**fields))
        if chunk is not None:
            scan.frames = _ChunkStore(chunk)
        else:
            scan.frames = _FrameStore(_capacity_hint(fields.get("container_frames"), window, fps))
        with contextlib.suppress(*_AV_ERRORS):  # some codecs refuse threading options
            stream.thread_type = thread_type
        tb = stream.time_base
        scan.time_base = float(tb) if tb else None
        max_len = window.max_len
        max_seconds = window.max_seconds
        # frames within half a time-base tick of the limit count as on it (timestamps are rounded)
        tol = Fraction(1, 10**9) + (tb / 2 if tb else 0)
        limit_s = Fraction(max_seconds) - tol if max_seconds is not None else None
        first_pts: int | None = None
        decoder = container.decode(stream)
        try:
            for i, frame in enumerate(decoder):
                pts = frame.pts
                if i == 0:
                    first_pts = scan.first_pts = pts
                    scan.rotation_k = _rotation_k(frame, warnings) if autorotate else 0
                if pts is not None and first_pts is not None and tb:
                    t: Fraction | float | None = (pts - first_pts) * (frame.time_base or tb)
                elif fps:
                    t = Fraction(i) / Fraction(fps)
                else:
                    t = None
                if limit_s is not None:
                    if t is None:
                        raise DecodeError(
                            path,
                            "--max-seconds needs a frame rate, but the container declares none and "
                            "the frames carry no timestamps",
                            "pass --fps (the frame rate to assume for this video)",
                        )
                    if t >= limit_s and i > 0:
                        scan.stopped_by_window = True
                        break
                if convert:
                    try:
                        rgb = frame.to_ndarray(format="rgb24")
                        scan.frames.append(rgb)
                    except MemoryError:
                        raise DecodeError(
                            path,
                            f"out of memory after decoding {scan.count} frames "
                            f"({frame.width}x{frame.height}; every decoded frame is held in memory)",
                            "decode fewer frames: --max-seconds S or --max-len N",
                        ) from None
                    if scan.frame_hw is None:
                        scan.frame_hw = (int(rgb.shape[0]), int(rgb.shape[1]))
                scan.times.append(None if t is None else float(t))
                scan.count += 1
                if max_len is not None and scan.count >= max_len:
                    scan.stopped_by_window = True
                    break
                block = scan.frames.take_ready()
                if block is not None:
                    yield _rotate(block, scan.rotation_k)
        except av.error.MemoryError:  # FFmpeg itself out of memory: not damage in the file
            raise DecodeError(
                path,
                f"FFmpeg ran out of memory after {scan.count} frames",
                "decode fewer frames: --max-seconds S or --max-len N",
            ) from None
        except _AV_ERRORS as exc:
            scan.error = f"{type(exc).__name__}: {_ffmpeg_message(exc)}"
        finally:
            decoder.close()
        if not scan.stopped_by_window and scan.count > 0:
            reason = _truncation_reason(scan, container, stream, fps)
            if reason is not None:
                scan.truncated = True
                dropped = _drop_out_of_order_tail(scan)
                note = f" ({dropped} out-of-sequence frames after the damage dropped)" if dropped else ""
                warnings.append(f"truncated: decoding stopped after {scan.count} frames: {reason}{note}")
        if scan.rotation_k % 2 == 1:
            fields["width"], fields["height"] = fields["height"], fields["width"]
        if scan.frame_hw is not None and len(scan.frames):
            h, w = scan.frame_hw
            if scan.rotation_k % 2 == 1:
                h, w = w, h
            fields["width"], fields["height"] = int(w), int(h)
        scan.info = VideoInfo(**fields, decoded_frames=scan.count, warnings=tuple(warnings))
        if isinstance(scan.frames, _ChunkStore):
            rest = scan.frames.take_rest()
            if rest is not None:
                yield _rotate(rest, scan.rotation_k)
        return scan
    finally:
        container.close()


def _estimate_fps(times: list[float | None]) -> float | None:
    ts = [t for t in times if t is not None]
    if len(ts) < 2 or ts[-1] <= ts[0]:
        return None
    return (len(ts) - 1) / (ts[-1] - ts[0])


def decode_video(
    path: str | Path,
    window: Window = Window(),
    *,
    thread_type: str = "AUTO",
    autorotate: bool = True,
) -> Clip:
    """Decode the leading frames of ``path`` that fit ``window`` into a :class:`Clip`.

    Returns RGB ``uint8 [T, H, W, 3]`` frames, ``Clip.fps`` = the container's average frame rate,
    else ``window.fps_fallback``, else one estimated from the timestamps (with a warning);
    ``Clip.indices`` = source frame indices ``0..T-1`` (positions in the decoded stream, in
    presentation order; windows always keep leading frames); ``Clip.info.decoded_frames = T``.
    ``thread_type`` is FFmpeg's decoder threading (``AUTO``, ``FRAME``, ``SLICE``, ``NONE``);
    ``autorotate`` applies a display-matrix rotation by a multiple of 90 degrees.

    Raises :class:`DecodeError` for a missing, empty, unparsable or video-less file, when no
    frame can be decoded, and when no frame rate is known (pass ``--fps``). A file damaged after
    some frames returns those frames with a ``truncated: ...`` warning in ``Clip.info.warnings``.
    """
    path = Path(path)
    scan = _scan(path, window, thread_type=thread_type, convert=True, autorotate=autorotate)
    info, fps = _finish(path, scan, window)
    assert isinstance(scan.frames, _FrameStore)
    frames = _rotate(scan.frames.array(), scan.rotation_k)
    return Clip(frames=frames, fps=fps, indices=tuple(range(scan.count)), info=info)


def _rotate(frames: np.ndarray, k: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(frames, k=k, axes=(1, 2))) if k else frames


def _finish(path: Path, scan: _Scan, window: Window) -> tuple[VideoInfo, float]:
    """The decoded window's info and frame rate (estimated from the timestamps, with a warning, where the
    container declares none and ``--fps`` is not given); DecodeError when no frame decoded."""
    if scan.count == 0:
        raise _no_frames_error(path, scan)
    info = scan.info
    fps = window.effective_fps(info.fps)
    if fps is None:
        fps = _estimate_fps(scan.times)
        if fps is None:
            raise DecodeError(
                path,
                "the container declares no frame rate",
                "pass --fps (the frame rate to assume for this video)",
            )
        info = _with_warning(
            info, f"fps: the container declares no frame rate; estimated {fps:.3f} from timestamps"
        )
    return info, float(fps)


@dataclass(frozen=True)
class FrameChunk:
    """A block of consecutive decoded frames: rows ``start .. start + len(frames) - 1`` of the window."""

    start: int
    frames: np.ndarray  # uint8 [k, H, W, 3] RGB, rotation applied

    @property
    def stop(self) -> int:
        return self.start + int(self.frames.shape[0])


class FrameStream:
    """The frames of ``decode_video(path, window)`` in blocks of ``chunk`` frames, decoded as they are read.

    Iterating yields :class:`FrameChunk` s in order; the frames, their order, truncation handling and
    rotation are exactly ``decode_video``'s (the same decode loop), but at most ``chunk + MAX_REORDER + 1``
    decoded frames are held at once (the last ``MAX_REORDER + 1`` wait until the stream ends, since a
    truncated stream may drop them). After the iteration ``info``, ``fps`` and ``num_frames`` are those
    of ``decode_video``'s clip. Raises :class:`DecodeError` as ``decode_video`` does (when no frame decodes:
    at the end of the iteration). A stream is read once.
    """

    def __init__(
        self,
        path: str | Path,
        window: Window = Window(),
        *,
        chunk: int = 32,
        thread_type: str = "AUTO",
        autorotate: bool = True,
    ) -> None:
        if chunk < 1:
            raise UsageError(f"chunk must be >= 1, got {chunk}")
        self.path = Path(path)
        self.window = window
        self.chunk = int(chunk)
        self.thread_type = thread_type
        self.autorotate = autorotate
        self.info: VideoInfo | None = None
        self.fps: float | None = None
        self.num_frames: int | None = None
        self._used = False

    def __iter__(self) -> Iterator[FrameChunk]:
        if self._used:
            raise UsageError("a FrameStream is read once; open another for a second pass")
        self._used = True
        steps = _scan_iter(
            self.path,
            self.window,
            thread_type=self.thread_type,
            autorotate=self.autorotate,
            chunk=self.chunk,
        )
        start = 0
        while True:
            try:
                block = next(steps)
            except StopIteration as done:
                scan: _Scan = done.value
                break
            yield FrameChunk(start, block)
            start += len(block)
        self.info, self.fps = _finish(self.path, scan, self.window)
        self.num_frames = scan.count


def _with_warning(info: VideoInfo, warning: str) -> VideoInfo:
    return replace(info, warnings=(*info.warnings, warning))


def _no_frames_error(path: Path, scan: _Scan) -> DecodeError:
    declared = scan.info.container_frames
    detail = f" (FFmpeg: {scan.error})" if scan.error else ""
    if declared:
        return DecodeError(
            path,
            f"no frame could be decoded although the container declares {declared}: the file is "
            f"probably truncated or corrupt{detail}",
            _FIX_REGENERATE,
        )
    return DecodeError(path, f"no frame could be decoded from its video stream{detail}", _FIX_REGENERATE)


# --------------------------------------------------------------------------------------------
# parallel, in-order decoding
# --------------------------------------------------------------------------------------------
def _decode_or_error(path: str | Path, window: Window, thread_type: str) -> Clip | DecodeError:
    try:
        return decode_video(path, window, thread_type=thread_type)
    except DecodeError as exc:
        return exc


def iter_decoded(
    paths: Sequence[str | Path],
    window: Window = Window(),
    num_workers: int = 0,
    *,
    thread_type: str = "AUTO",
    prefetch: int | None = None,
) -> Iterator[tuple[int, Clip | DecodeError]]:
    """Decode ``paths`` and yield ``(position, Clip or DecodeError)`` in input order.

    ``num_workers=0`` decodes in the calling thread; otherwise a thread pool of that size keeps at
    most ``prefetch`` (default ``2 * num_workers``) decoded-or-decoding videos ahead of the
    consumer, so memory stays bounded. A file that cannot be decoded yields its
    :class:`DecodeError` at its position and the others are unaffected. Results do not depend on
    ``num_workers``.
    """
    if num_workers < 0:
        raise UsageError(f"num_workers must be >= 0, got {num_workers}")
    if thread_type not in THREAD_TYPES:
        raise UsageError(f"thread_type must be one of {', '.join(THREAD_TYPES)}, got {thread_type!r}")
    if num_workers == 0:
        for i, path in enumerate(paths):
            yield i, _decode_or_error(path, window, thread_type)
        return
    depth = max(1, prefetch if prefetch is not None else 2 * num_workers)
    pending: deque[tuple[int, Future[Clip | DecodeError]]] = deque()
    todo = iter(enumerate(paths))
    executor = ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="aigve-decode")
    try:

        def submit_next() -> None:
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt[0], executor.submit(_decode_or_error, nxt[1], window, thread_type)))

        for _ in range(depth):
            submit_next()
        while pending:
            i, fut = pending.popleft()
            result = fut.result()
            submit_next()
            yield i, result
    finally:
        for _, fut in pending:
            fut.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
