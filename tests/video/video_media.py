"""Test media for the video tests: every file is made here, with known content, in tmp_path.

(A uniquely named module rather than conftest.py so `import` is unambiguous across test folders.)
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from aigve.video.encode import write_video


def toy_dir() -> Path | None:
    """The AIGVE toy set (AIGVE_TOY_DIR, else <repo>/../shared/data/aigve_toy), or None."""
    env = os.environ.get("AIGVE_TOY_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "aigve_toy"
    return root if root.is_dir() and any(root.rglob("*.mp4")) else None


def moving_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth moving gradients plus a per-frame marker, so frames differ and compress well."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3)
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        out[i, ..., 0] = (xx * 3 + i * 7 + base[0]) % 256
        out[i, ..., 1] = (yy * 2 + i * 5 + base[1]) % 256
        out[i, ..., 2] = (xx + yy + i * 11 + base[2]) % 256
    return out


class Media:
    """Writers for good and bad test files under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def clip(
        self, name: str = "clip.mp4", t: int = 20, h: int = 64, w: int = 48, fps: float = 8.0, **kw
    ) -> Path:
        return write_video(self.root / name, moving_frames(t, h, w), fps=fps, **kw)

    def faststart_clip(self, name: str = "fast.mp4", t: int = 40, h: int = 64, w: int = 48) -> Path:
        """An mp4 with its index at the front, so a cut file still has decodable frames."""
        path = self.root / name
        with av.open(str(path), mode="w", options={"movflags": "faststart"}) as c:
            s = c.add_stream("libx264", rate=8)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            for img in moving_frames(t, h, w):
                for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        return path

    def timed_clip(
        self,
        name: str,
        pts_ms: list[int],
        codec: str = "mpeg4",
        rate: int | None = 24,
        h: int = 32,
        w: int = 32,
    ) -> Path:
        """Frames at the given presentation times (ms), container from the extension: variable frame rate."""
        path = self.root / name
        tb = Fraction(1, 1000)
        frames = moving_frames(len(pts_ms), h, w)
        with av.open(str(path), mode="w") as c:
            s = c.add_stream(codec, rate=rate) if rate else c.add_stream(codec)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.time_base = tb
            s.codec_context.time_base = tb
            if rate is None:
                s.codec_context.framerate = Fraction(0, 1)
            for img, t in zip(frames, pts_ms, strict=True):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = t, tb
                for pkt in s.encode(frame):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        return path

    def raw_h264(self, name: str = "raw.h264", t: int = 40) -> Path:
        """An H.264 elementary stream: no container timestamps at all."""
        return write_video(self.root / name, moving_frames(t, 32, 32), fps=8)

    def audio_only(self, name: str = "audio.mkv") -> Path:
        path = self.root / name
        with av.open(str(path), mode="w") as c:
            s = c.add_stream("aac", rate=16000)
            s.layout = "mono"
            for i in range(8):
                frame = av.AudioFrame.from_ndarray(
                    np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
                )
                frame.sample_rate, frame.pts = 16000, i * 1024
                for pkt in s.encode(frame):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        return path

    def rotated_clip(self, name: str, degrees: int) -> tuple[Path, np.ndarray]:
        img = np.zeros((32, 64, 3), np.uint8)
        img[:8, :16] = (255, 0, 0)  # marker in the top-left corner of a landscape frame
        img[-8:, -8:] = (0, 0, 255)
        path = self.root / name
        with av.open(str(path), mode="w") as c:
            s = c.add_stream("libx264", rate=8)
            s.width, s.height, s.pix_fmt = 64, 32, "yuv444p"
            s.set_display_rotation(degrees)
            for _ in range(3):
                for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        return path, img

    def cut(self, src: Path, fraction: float, name: str | None = None) -> Path:
        data = src.read_bytes()
        out = self.root / (name or f"cut_{src.name}")
        out.write_bytes(data[: int(len(data) * fraction)])
        return out

    def zeroed_payload(self, src: Path, name: str = "zeroed.mp4") -> Path:
        """An mp4 whose index is intact but whose frame data ('mdat' payload) is all zeros."""
        data = bytearray(src.read_bytes())
        i = data.find(b"mdat")
        size = int.from_bytes(data[i - 4 : i], "big")
        data[i + 4 : i - 4 + size] = bytes(size - 8)
        out = self.root / name
        out.write_bytes(bytes(data))
        return out

    def random_bytes(self, name: str = "random.mp4") -> Path:
        out = self.root / name
        out.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
        return out

    def text_file(self, name: str = "notes.mp4") -> Path:
        out = self.root / name
        out.write_text("this is not a video\n" * 50)
        return out

    def empty(self, name: str = "empty.mp4") -> Path:
        out = self.root / name
        out.touch()
        return out
