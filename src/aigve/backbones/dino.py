"""``dino_vitb16``: per-frame DINO ViT-B/16 class-token features with VBench's preprocessing.

VBench's ``subject_consistency`` (Vchitect/VBench 45e79ec, ``vbench/subject_consistency.py``) loads
``torch.hub.load('facebookresearch/dino:main', 'dino_vitb16')`` and feeds every decoded frame through
``dino_transform(224)``: the shorter side resized to 224 (bilinear, ``antialias=False``, on the float 0-255 frames),
**no crop**, /255, ImageNet mean/std. The network therefore sees non-square inputs and resizes its position
embeddings with DINO's own rule (:func:`aigve.backbones.nets.dino_vit.dino_pos_embed`).

Output: float32 ``[T, D]`` class-token features, not normalised (the metric normalises). VBench runs one frame
at a time; here frames are batched (``batch_size``), which gives the same features up to float rounding.

Weights: the registry's ``dino_vitb16`` (``dino_vitbase16_pretrain.pth`` from dl.fbaipublicfiles.com; only a 6-hex
md5 prefix is known, a weak check; the file's sha256 is recorded in the provenance). ``weights=PATH`` takes another file; the network
is sized from the file (tests use tiny random ViTs of the same architecture).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Extractor
from aigve.backbones.registry import register_extractor

log = logging.getLogger(__name__)

WEIGHTS_NAME = "dino_vitb16"
INPUT_SIDE = 224


@register_extractor
class DinoExtractor(Extractor):
    """DINO ViT class-token features of every frame, VBench preprocessing (shorter side 224, no crop)."""

    name: ClassVar[str] = "dino_vitb16"
    kind: ClassVar[Literal["frames"]] = "frames"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("weights",)
    input_side: ClassVar[int | None] = INPUT_SIDE
    min_side: ClassVar[int] = 16
    min_side_reason: ClassVar[str] = "one 16-px patch"
    weights_option: ClassVar[str | None] = "weights"

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 16, **options: Any
    ) -> None:
        super().__init__(device, batch_size, **options)
        self.model: torch.nn.Module | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        from aigve.backbones.nets.dino_vit import DinoViT, config_from_state
        from aigve.weights import load_into, resolve_for_backbone
        from aigve.weights.load import load_state_dict

        resolved = resolve_for_backbone(
            WEIGHTS_NAME,
            self.options.get("weights"),
            context="vbench_subject_consistency needs the DINO ViT-B/16 checkpoint",
        )
        cfg = config_from_state(load_state_dict(resolved.path))
        loaded = load_into(
            lambda: DinoViT(**cfg),
            WEIGHTS_NAME,
            resolved=resolved,
            what="a DINO ViT checkpoint (dino_vitbase16_pretrain.pth)",
        )
        return loaded.module, loaded.sha256

    @torch.inference_mode()
    def _run(self, chunk: np.ndarray) -> np.ndarray:
        from aigve.vbench.transforms import dino_transform

        assert self.model is not None
        x = dino_transform(chunk, INPUT_SIDE).to(self.device)
        return self.model(x).float().cpu().numpy()

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        self.ensure_loaded()
        return self.batched(np.asarray(frames), self._run)
