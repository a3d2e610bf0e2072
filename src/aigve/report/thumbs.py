"""Thumbnail strips for the report: a few real frames of each video, as JPEG data URIs.

Frames are decoded with :func:`aigve.video.decode.decode_video` within a leading window (so a long
video costs at most ``max_frames`` decoded frames), ``n`` of them picked uniformly, downscaled to
``width`` px and laid side by side in one JPEG. A missing or undecodable video gives ``None``
(the report shows a placeholder), never an exception.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from aigve.video.sampling import Window

log = logging.getLogger(__name__)


def uniform_rows(t: int, n: int) -> list[int]:
    """``n`` row indices evenly spaced over ``t`` frames (rounded ``linspace(0, t-1, n)``, unique)."""
    if t <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, t - 1, min(n, t))})


def strip_image(frames: np.ndarray, width: int = 96) -> np.ndarray:
    """Frames ``[k, H, W, 3]`` resized to ``width`` px wide (aspect kept) and concatenated left to right."""
    from PIL import Image

    h = max(1, round(frames.shape[1] * width / frames.shape[2]))
    tiles = [np.asarray(Image.fromarray(f).resize((width, h), Image.Resampling.BILINEAR, reducing_gap=2.0))
             for f in frames]  # fmt: skip
    return np.concatenate(tiles, axis=1)


def jpeg_data_uri(img: np.ndarray, quality: int = 72) -> str:
    """A ``data:image/jpeg;base64,...`` URI of an RGB uint8 image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_strip(
    path: str | Path | None, n: int = 4, width: int = 96, max_frames: int = 96, quality: int = 72
) -> str | None:
    """A data URI with ``n`` uniformly spaced frames of the video's first ``max_frames`` frames, or
    ``None`` if the file is missing or cannot be decoded."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        return None
    try:
        from aigve.video.decode import decode_video

        clip = decode_video(p, Window(max_len=max_frames))
        rows = uniform_rows(clip.num_frames, n)
        return jpeg_data_uri(strip_image(clip.frames[rows], width), quality)
    except Exception as exc:  # any failure -> placeholder; the report must not fail on one video
        log.debug("no thumbnail for %s: %s", p, exc)
        return None


def thumbnails(
    paths: Iterable[str | Path | None], n: int = 4, width: int = 96, max_frames: int = 96, workers: int = 2
) -> dict[str, str | None]:
    """:func:`thumbnail_strip` for each distinct path (decoded in ``workers`` threads): ``str(path) -> uri``."""
    uniq = list(dict.fromkeys(str(p) for p in paths if p is not None))
    if not uniq:
        return {}

    def one(p: str) -> str | None:
        return thumbnail_strip(p, n=n, width=width, max_frames=max_frames)

    if workers <= 1 or len(uniq) == 1:
        return {p: one(p) for p in uniq}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(uniq, pool.map(one, uniq), strict=True))
