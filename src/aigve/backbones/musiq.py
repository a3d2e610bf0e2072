"""``musiq_spaq``: per-frame MUSIQ quality scores (SPAQ checkpoint) with VBench's ``imaging_quality`` preprocessing.

VBench (Vchitect/VBench 45e79ec, ``vbench/imaging_quality.py``, default mode ``longer``) decodes every frame into a
float 0-255 tensor; when the longer side exceeds 512 px the frames are resized to ``(int(s·H), int(s·W))`` with
``s = 512 / max(H, W)`` (torchvision bilinear, ``antialias=False``, no rounding), then divided by 255 and fed one at
a time to pyiqa's ``MUSIQ(pretrained_model_path=musiq_spaq_ckpt-358bb6af.pth)`` (one output, the SPAQ MOS, about
0-100). The network builds its own multi-scale patches (:mod:`aigve.backbones.nets.musiq`).

Output: float32 ``[T, 1]``, the MUSIQ score of each frame on its 0-100 scale (the metric divides by 100). Frames are
batched (``batch_size``); every frame is an independent sequence, so this changes nothing beyond float rounding.

Weights: the registry's ``musiq_spaq`` (IQA-PyTorch release, sha256 published). ``weights=PATH`` takes another file
in pyiqa's key layout; the network is sized from the file (tests use tiny random MUSIQs).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Extractor
from aigve.backbones.registry import register_extractor

WEIGHTS_NAME = "musiq_spaq"
LONGER_SIDE = 512


def imaging_quality_transform(frames: np.ndarray | torch.Tensor, longer: int = LONGER_SIDE) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[T, 3, h, w]`` in [0, 1] as VBench's ``transform(images, 'longer')``."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    t = torch.as_tensor(np.asarray(frames))
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got shape {tuple(t.shape)}")
    x = t.permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    if max(h, w) > longer:
        s = longer / max(h, w)
        x = tvf.resize(x, [int(s * h), int(s * w)], interpolation=InterpolationMode.BILINEAR, antialias=False)
    return x / 255.0


@register_extractor
class MusiqExtractor(Extractor):
    """MUSIQ (SPAQ) score of every frame, VBench's imaging-quality preprocessing (longer side <= 512)."""

    name: ClassVar[str] = "musiq_spaq"
    kind: ClassVar[Literal["frames"]] = "frames"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("weights",)
    min_side: ClassVar[int] = 1
    weights_option: ClassVar[str | None] = "weights"

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 8, **options: Any
    ) -> None:
        super().__init__(device, batch_size, **options)
        self.model: torch.nn.Module | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        from aigve.backbones.nets.musiq import MUSIQ, config_from_state
        from aigve.weights import load_into, resolve_for_backbone
        from aigve.weights.load import load_state_dict

        resolved = resolve_for_backbone(
            WEIGHTS_NAME,
            self.options.get("weights"),
            context="vbench_imaging_quality needs the MUSIQ SPAQ checkpoint (musiq_spaq_ckpt-358bb6af.pth)",
        )
        cfg = config_from_state(load_state_dict(resolved.path))
        loaded = load_into(
            lambda: MUSIQ(**cfg),
            WEIGHTS_NAME,
            resolved=resolved,
            what="a pyiqa MUSIQ checkpoint (musiq_spaq_ckpt-358bb6af.pth)",
        )
        return loaded.module, loaded.sha256

    @torch.inference_mode()
    def _run(self, chunk: np.ndarray) -> np.ndarray:
        assert self.model is not None
        x = imaging_quality_transform(chunk).to(self.device)
        return self.model(x).float().cpu().numpy().reshape(-1, 1)

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        self.ensure_loaded()
        return self.batched(np.asarray(frames), self._run)
