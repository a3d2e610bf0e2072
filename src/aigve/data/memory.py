"""Videos held in memory (numpy arrays or torch tensors) as a dataset the engine runs on like any other.

Each video gets a path that names no file (``<aigve-memory>/<token>/<side>/<n>_<id>``): the engine's units,
records and cache keys stay path-based, and where it would hash or decode a file it asks the dataset's
:class:`MemoryVideos` instead (:meth:`aigve.engine.plan.Planner._memory_video`). The cache key of a video is
the sha256 of its frames, shape and frame rate, so the same frames hit the same cached features in memory and
on disk.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigve.data.dataset import Dataset
from aigve.errors import AigveError, UsageError
from aigve.types import Clip, Entry, Side, VideoInfo
from aigve.video.sampling import Window

MEMORY_ROOT = Path("/<aigve-memory>")


def as_frames(video: Any, what: str = "video") -> np.ndarray:
    """A uint8 ``[T, H, W, 3]`` RGB numpy array from a numpy array or a torch tensor (CPU or CUDA)."""
    if type(video).__module__.startswith("torch"):
        video = video.detach().cpu().numpy()
    arr = np.asarray(video)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise UsageError(
            f"{what}: expected uint8 frames [T, H, W, 3] (RGB, channels last), got {arr.dtype} {tuple(arr.shape)}"
            + (
                " — convert float frames in [0, 1] with (x * 255).round().clamp(0, 255).to(torch.uint8)"
                if arr.dtype != np.uint8
                else ""
            )
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise UsageError(f"{what}: an empty video {tuple(arr.shape)}")
    return np.ascontiguousarray(arr)


def as_batch(videos: Any, what: str = "videos") -> list[np.ndarray]:
    """A batch ``[B, T, H, W, 3]`` (array or tensor) or a sequence of ``[T, H, W, 3]`` videos (lengths and
    sizes may differ) as a list of uint8 numpy arrays."""
    if videos is None:
        return []
    if type(videos).__module__.startswith("torch") or isinstance(videos, np.ndarray):
        if videos.ndim != 5:
            raise UsageError(
                f"{what}: expected a batch [B, T, H, W, 3] of uint8 videos (or a list of [T, H, W, 3]), "
                f"got shape {tuple(videos.shape)}"
            )
        return [as_frames(videos[i], f"{what}[{i}]") for i in range(videos.shape[0])]
    if isinstance(videos, Sequence) and not isinstance(videos, str | bytes):
        return [as_frames(v, f"{what}[{i}]") for i, v in enumerate(videos)]
    raise UsageError(f"{what}: expected an array, a tensor or a list of them, got {type(videos).__name__}")


@dataclass
class MemoryVideo:
    """One video held in memory: its frames (``None`` once only its features are kept), frame rate and hash."""

    frames: np.ndarray | None
    fps: float
    sha: str
    #: why its features are missing, when the frames were dropped after a failed extraction
    error: str | None = None

    def clip(self, window: Window, path: Path) -> Clip:
        """The frames the engine's decoder would give for this window (leading frames, as ``decode_video``)."""
        if self.frames is None:
            raise AigveError(self.error or f"{path}: the frames of this in-memory video are no longer held")
        limit = window.frame_limit(self.fps)
        frames = self.frames if limit is None else self.frames[:limit]
        t, h, w = (int(n) for n in frames.shape[:3])
        info = VideoInfo(str(path), self.fps, t / self.fps, w, h, "memory", t, decoded_frames=t)
        return Clip(frames=frames, fps=float(self.fps), indices=tuple(range(t)), info=info)


def frames_sha256(frames: np.ndarray, fps: float) -> str:
    h = hashlib.sha256()
    h.update(f"aigve-memory-video|{tuple(frames.shape)}|{float(fps)!r}|".encode())
    h.update(np.ascontiguousarray(frames).data)
    return h.hexdigest()


@dataclass
class MemoryVideos:
    """The in-memory videos of a dataset, by path (see the module docstring)."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    videos: dict[str, MemoryVideo] = field(default_factory=dict)

    def add(self, frames: np.ndarray, fps: float, side: Side, name: str) -> Path:
        if not fps or fps <= 0:
            raise UsageError(f"{name}: fps must be > 0 for an in-memory video, got {fps!r}")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "video"
        path = MEMORY_ROOT / self.token / side / f"{len(self.videos):06d}_{safe}"
        self.videos[str(path)] = MemoryVideo(frames, float(fps), frames_sha256(frames, fps))
        return path

    def get(self, path: str | Path) -> MemoryVideo | None:
        return self.videos.get(str(path))


@dataclass
class MemoryDataset(Dataset):
    """A :class:`Dataset` whose videos are in memory (:func:`memory_dataset`)."""

    memory_videos: MemoryVideos = field(default_factory=MemoryVideos)


def memory_dataset(
    videos: Any,
    *,
    ids: Sequence[str] | None = None,
    prompts: Sequence[str | None] | None = None,
    real: Any = None,
    fps: float = 8.0,
    name: str = "in-memory",
    id_prefix: str = "video_",
    start: int = 0,
) -> MemoryDataset:
    """A dataset of in-memory videos: ``videos`` (``[B, T, H, W, 3]`` uint8 array/tensor, a list of
    ``[T, H, W, 3]`` ones, or a mapping id -> video), optional ``prompts`` (one per video) and ``real`` videos:
    as many as ``videos`` pairs them (``real[i]`` is the reference of ``videos[i]``), any other number adds
    them to the real set of set-level metrics. Ids default to ``{id_prefix}{start + i:06d}``."""
    if isinstance(videos, Mapping):
        if ids is not None:
            raise UsageError("give ids either as the keys of the videos mapping or as ids=, not both")
        ids = [str(k) for k in videos]
        videos = list(videos.values())
    gen = as_batch(videos, "videos")
    reals = as_batch(real, "real")
    if ids is None:
        ids = [f"{id_prefix}{start + i:06d}" for i in range(len(gen))]
    ids = [str(i) for i in ids]
    if len(ids) != len(gen):
        raise UsageError(f"{len(ids)} ids for {len(gen)} videos")
    if prompts is not None:
        prompts = list(prompts)
        if len(prompts) != len(gen):
            raise UsageError(
                f"{len(prompts)} prompts for {len(gen)} videos: give one per video (None for none)"
            )
    store = MemoryVideos()
    paired = len(reals) == len(gen) and len(gen) > 0
    entries = []
    for i, (vid, frames) in enumerate(zip(ids, gen, strict=True)):
        rpath = store.add(reals[i], fps, "real", vid) if paired else None
        entries.append(
            Entry(
                id=vid,
                generated=store.add(frames, fps, "generated", vid),
                real=rpath,
                prompt=None if prompts is None or prompts[i] is None else str(prompts[i]),
            )
        )
    extra = (
        [] if paired else [store.add(r, fps, "real", f"real_{start + i:06d}") for i, r in enumerate(reals)]
    )
    return MemoryDataset(name=name, entries=entries, extra_reals=extra, source="memory", memory_videos=store)
