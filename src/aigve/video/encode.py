"""Write frames to a video file with PyAV (used by the demo dataset and the tests)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float = 8.0,
    codec: str = "libx264",
    crf: int | None = 18,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode uint8 ``[T, H, W, 3]`` RGB frames. H.264/yuv420p needs even sizes; use
    ``codec="mpeg4"`` or ``pix_fmt="yuv444p"`` for odd ones where the codec allows."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T,H,W,3], got {frames.dtype} {frames.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream: Any = container.add_stream(codec, rate=rate)
        stream.width = int(frames.shape[2])
        stream.height = int(frames.shape[1])
        stream.pix_fmt = pix_fmt
        if codec in ("libx264", "libx265"):
            # reproducible bytes (the demo dataset and the test fixtures depend on it): x264's macroblock
            # tree gave different encodings of identical frames from run to run on a loaded machine (about
            # half of the demo regenerations); without it, and with one thread, 13 of 13 were identical
            opts = {"threads": "1"}
            if codec == "libx264":
                opts["x264-params"] = "mbtree=0"
            if crf is not None:
                opts["crf"] = str(crf)
            stream.options = opts
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
