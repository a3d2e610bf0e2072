"""The feature-extractor contract every backbone (neural or classic) follows.

An extractor turns the sampled frames of one video into a 2-D float array ``[K, D]``:
``kind="frames"`` gives one row per input frame (K = T), ``kind="clip"`` gives rows per clip
(e.g. one I3D feature per 16-frame window), ``kind="pairs"`` one row per consecutive frame pair.
Extractors are built once per run by the engine, shared by every metric that names them, and their
``identity()`` (name, options, weights hash, version) is part of the feature cache key and the
provenance of every score computed from them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.device import resolve_device

ExtractorKind = Literal["frames", "clip", "pairs"]


class Extractor(ABC):
    """Base class; subclasses set ``name``/``kind``/``version`` and implement ``extract``.

    ``load()`` is called once before the first ``extract``: heavy imports and weight loading go
    there (not in ``__init__``) so that listing metrics stays cheap.
    """

    name: ClassVar[str]
    kind: ClassVar[ExtractorKind] = "frames"
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = None  # pip extra providing its dependencies

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.options = dict(options)
        self._loaded = False

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        """Load weights / import heavy modules. Idempotent."""
        self._loaded = True

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    # -- identity --------------------------------------------------------------------------
    def weights_sha256(self) -> str | None:
        """sha256 of the weights in use (None for classic extractors without weights)."""
        return None

    def identity(self) -> dict[str, Any]:
        """Everything that changes the features: part of the cache key and the provenance."""
        return {
            "extractor": self.name,
            "version": self.version,
            "options": {k: self.options[k] for k in sorted(self.options)},
            "weights_sha256": self.weights_sha256(),
        }

    # -- work ------------------------------------------------------------------------------
    @abstractmethod
    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """``frames``: uint8 ``[T, H, W, 3]`` RGB -> float ``[K, D]`` features (numpy, on CPU)."""

    def extract_many(self, clips: list[np.ndarray], fps: list[float | None]) -> list[np.ndarray]:
        """Features of several videos at once. The engine calls this for ``kind="clip"`` extractors
        with the clips of several consecutive videos, so one forward pass can serve many; the
        default simply loops over ``extract``. Results must equal ``extract`` on each clip."""
        return [self.extract(c, f) for c, f in zip(clips, fps, strict=True)]

    def batched(self, frames: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Apply ``fn`` to chunks of ``batch_size`` frames and stack the results."""
        outs = [fn(frames[i : i + self.batch_size]) for i in range(0, len(frames), self.batch_size)]
        if not outs:
            raise ValueError("no frames to extract features from")
        return np.concatenate(outs, axis=0)


def extract_stacked_by_shape(
    clips: list[np.ndarray], extract_videos: Callable[[np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """For clip extractors: stack clips of equal shape, run ``extract_videos([B, T, H, W, 3]) -> [B, D]``
    once per shape, and return one ``[1, D]`` row per clip in the input order."""
    out: list[np.ndarray] = [np.empty((0, 0))] * len(clips)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(clips):
        groups.setdefault(tuple(np.shape(c)), []).append(i)
    for idx in groups.values():
        feats = extract_videos(np.stack([np.asarray(clips[i]) for i in idx]))
        for j, i in enumerate(idx):
            out[i] = feats[j : j + 1]
    return out


class TextExtractor(ABC):
    """Encodes prompts (for vision-language metrics). Same lifecycle as ``Extractor``."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"

    def identity(self) -> dict[str, Any]:
        return {"text_extractor": self.name, "version": self.version}

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray: ...
