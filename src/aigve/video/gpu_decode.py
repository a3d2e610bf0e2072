"""Optional GPU decoding (``--decode-device cuda``) with torchcodec's CUDA decoder, CPU decoding as the fallback.

:func:`decode_on` decodes one video on ``device`` and returns the same :class:`~aigve.types.Clip` as
:func:`aigve.video.decode.decode_video` would: the leading frames inside the run's window, RGB uint8
``[T, H, W, 3]`` (on the host, where the engine's samplers and cache work), the container's frame rate. NVDEC
and FFmpeg's software decoder give the same decoded YUV samples; the colour conversion to RGB differs by the
codec's rounding (a few levels of 255 at most), which is the tolerance the frames are held to.

Any video the GPU path cannot decode the same way falls back to the CPU decoder, per video, with a warning (the
reason is returned and logged): torchcodec not installed or not loadable (its PyPI wheel needs a CUDA build of
torch and FFmpeg 4-8 shared libraries on the system), no CUDA device, a rotated video (the CPU path rotates it
upright), a codec NVDEC does not support, damage in the file (the CPU path keeps the frames before the damage and
says so), or no frame rate in the container.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from aigve.types import Clip, VideoInfo
from aigve.video.sampling import Window

log = logging.getLogger(__name__)

#: the frames torchcodec returns and the CPU decoder's may differ by this much (uint8 levels): the YUV->RGB
#: conversion is done by different code (NPP/CUDA kernels vs swscale) with different rounding
RGB_TOLERANCE = 3


class GpuDecodeUnavailable(RuntimeError):
    """The GPU path cannot decode this video (the message says why); the caller decodes it on the CPU."""


def _open_decoder(path: Path, device: str) -> Any:
    """torchcodec's ``VideoDecoder`` on ``device`` (frames as ``[N, H, W, 3]``), or GpuDecodeUnavailable."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise GpuDecodeUnavailable(f"torch is not importable ({exc})") from exc
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GpuDecodeUnavailable("CUDA is not available")
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception as exc:  # ImportError, or OSError/RuntimeError when its libraries cannot load
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GpuDecodeUnavailable(
            f"torchcodec is not usable ({type(exc).__name__}: {first}); install the gpudecode extra with a "
            "CUDA build of torch and FFmpeg's shared libraries"
        ) from exc
    try:
        return VideoDecoder(str(path), device=device, dimension_order="NHWC", seek_mode="exact")
    except Exception as exc:
        raise GpuDecodeUnavailable(
            f"torchcodec cannot open it on {device}: {type(exc).__name__}: {exc}"
        ) from exc


def decode_video_torchcodec(path: str | Path, window: Window = Window(), device: str = "cuda") -> Clip:
    """Decode the leading frames of ``path`` inside ``window`` with torchcodec on ``device`` (see the module
    docstring); raises :class:`GpuDecodeUnavailable` for anything the CPU decoder should handle instead."""
    path = Path(path)
    dec = _open_decoder(path, device)
    md = dec.metadata
    rotation = getattr(md, "rotation", None)
    if rotation not in (None, 0, 0.0):
        raise GpuDecodeUnavailable(
            f"the video is rotated by {rotation} degrees (the CPU path turns it upright)"
        )
    container_fps = getattr(md, "average_fps", None)
    fps = window.effective_fps(container_fps)
    if fps is None:
        raise GpuDecodeUnavailable("the container declares no frame rate")
    n = getattr(md, "num_frames", None)
    if not n:
        raise GpuDecodeUnavailable("the container does not say how many frames it holds")
    limit = window.frame_limit(container_fps)
    count = int(n) if limit is None else min(int(n), int(limit))
    try:
        batch = dec.get_frames_in_range(0, count)
    except Exception as exc:  # damage, or a stream shorter than declared: the CPU path keeps what decodes
        raise GpuDecodeUnavailable(f"decoding failed: {type(exc).__name__}: {exc}") from exc
    data = batch.data
    if (
        window.max_seconds is not None
    ):  # as the CPU path: frames whose time from the first is before the limit
        pts = [float(t) for t in batch.pts_seconds.tolist()]
        limit_s = Fraction(window.max_seconds) - Fraction(1, 10**9)
        n_keep = next((i for i, t in enumerate(pts) if i > 0 and Fraction(t - pts[0]) >= limit_s), len(pts))
        data = data[:n_keep]
    frames = np.ascontiguousarray(data.cpu().numpy())
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise GpuDecodeUnavailable(f"unexpected frames from torchcodec: {frames.dtype} {frames.shape}")
    h, w = int(frames.shape[1]), int(frames.shape[2])
    info = VideoInfo(
        path=str(path),
        fps=float(container_fps) if container_fps else None,
        duration=getattr(md, "duration_seconds", None),
        width=w,
        height=h,
        codec=getattr(md, "codec", None),
        container_frames=int(n),
        decoded_frames=len(frames),
    )
    return Clip(frames=frames, fps=float(fps), indices=tuple(range(len(frames))), info=info)


def decode_on(path: str | Path, window: Window, device: str) -> tuple[Clip, str | None]:
    """Decode ``path`` on ``device`` (``cpu``: the CPU decoder); a video the GPU path cannot decode is decoded
    on the CPU instead. Returns the clip and, after a fallback, the warning (also logged)."""
    from aigve.video.decode import decode_video

    if device == "cpu":
        return decode_video(path, window), None
    try:
        return decode_video_torchcodec(path, window, device), None
    except GpuDecodeUnavailable as exc:
        warning = f"{path}: decoded on the CPU: GPU decoding on {device} is not possible ({exc})"
        log.warning("%s", warning)
        return decode_video(path, window), warning
