"""``i3d_kinetics400``: one Kinetics-400 I3D feature per clip, the FVD feature of StyleGAN-V / cd-fvd.

Network: :class:`aigve.backbones.nets.i3d.InceptionI3d` loaded (``strict=True``) from
``i3d_pretrained_400.pt`` (weights registry ``i3d_tats``; the checkpoint cd-fvd 0.1.1 and TATS use).
By default the extractor runs the fused inference copy (:meth:`InceptionI3d.fused`: batch norm folded,
1x1 branch convolutions merged, channels-last 3-D memory layout), which agrees with cd-fvd's model to float32 rounding (max abs
difference about 1e-5 on logits of magnitude ~20, tests/backbones/test_i3d.py); ``impl="reference"``
runs the unfused network, bit-identical to cd-fvd's ``InceptionI3d`` on the CPU.

Preprocessing, exactly cd-fvd 0.1.1's ``preprocess_i3d``: the clip's uint8 frames ``[T, H, W, 3]`` are
converted to float32 in ``[0, 255]``, resized to ``resolution x resolution`` (224) with
``F.interpolate(mode="bilinear", align_corners=False)`` (no antialiasing, aspect ratio not kept), laid
out as ``[1, 3, T, r, r]`` and scaled with ``2 * x / 255 - 1`` to ``[-1, 1]``.

Output (option ``layer``): ``"logits"`` (default) -> float32 ``[1, 400]``, the Kinetics-400 logits
averaged over the clip (cd-fvd's FVD feature); ``"pool"`` -> ``[1, 1024]``, the average-pooled
``Mixed_5c`` output. The extractor is of kind ``"clip"``: the caller's sampler decides which frames
form the clip (the ``fvd`` metric passes exactly ``frames`` frames); at least 9 frames are needed.

Options: ``resolution`` (224), ``layer``, ``impl`` (``"fused"``/``"reference"``), ``weights``
(explicit checkpoint path; its own sha256 goes into the identity).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from aigve.backbones.base import Extractor, extract_stacked_by_shape
from aigve.backbones.nets.i3d import (
    MIN_FRAMES,
    MIN_SIZE,
    NUM_CLASSES,
    POOL_DIM,
    FusedI3d,
    InceptionI3d,
    fill_missing_bn_counters,
)
from aigve.backbones.registry import register_extractor
from aigve.errors import UsageError
from aigve.weights import load_into

WEIGHTS_NAME = "i3d_tats"
WEIGHTS_FILE = "i3d_pretrained_400.pt"
LAYERS: dict[str, int] = {"logits": NUM_CLASSES, "pool": POOL_DIM}
IMPLS: tuple[str, ...] = ("fused", "reference")
PREPROCESS = (
    "uint8 -> float32 [0,255] -> bilinear resize to RxR (align_corners=False, no antialias) -> 2*x/255-1"
)


def load_i3d(explicit_path: str | os.PathLike[str] | None = None) -> tuple[InceptionI3d, str]:
    """Resolve (registry ``i3d_tats``), verify and strictly load the I3D weights.

    Returns ``(model in eval mode on CPU, sha256 of the file)``. Raises ``WeightsError`` naming the
    file and the fix when it is missing, unreadable or does not fit the network.
    """
    loaded = load_into(
        InceptionI3d,
        WEIGHTS_NAME,
        explicit_path,
        meta=True,  # no random init of 12M parameters that are overwritten right away
        transform_state=fill_missing_bn_counters,
        what="a Kinetics-400 I3D checkpoint in the pytorch-i3d/TATS layout",
    )
    return loaded.module, loaded.sha256


def preprocess(videos: np.ndarray, resolution: int = 224, device: torch.device | None = None) -> torch.Tensor:
    """uint8 ``[B, T, H, W, 3]`` -> float32 ``[B, 3, T, r, r]`` in ``[-1, 1]`` (cd-fvd's ``preprocess_i3d``)."""
    b, t, h, w, c = videos.shape
    x = torch.from_numpy(np.ascontiguousarray(videos)).to(device or "cpu").to(torch.float32)
    x = x.flatten(end_dim=1).permute(0, 3, 1, 2).contiguous()
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = x.view(b, t, c, resolution, resolution).transpose(1, 2).contiguous()
    return 2.0 * x / 255.0 - 1


@register_extractor
class I3DExtractor(Extractor):
    """Clip -> one I3D (Kinetics-400) feature row; see the module docstring."""

    name: ClassVar[str] = "i3d_kinetics400"
    input_side: ClassVar[int | None] = 224  # the instance holds its ``resolution`` option
    kind = "clip"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("resolution", "layer", "impl", "weights")
    extra: ClassVar[str | None] = None

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        resolution: int = 224,
        layer: str = "logits",
        impl: str = "fused",
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if layer not in LAYERS:
            raise UsageError(f"i3d_kinetics400: layer must be one of {sorted(LAYERS)}, got {layer!r}")
        if impl not in IMPLS:
            raise UsageError(f"i3d_kinetics400: impl must be one of {IMPLS}, got {impl!r}")
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < MIN_SIZE:
            raise UsageError(
                f"i3d_kinetics400: resolution must be an integer >= {MIN_SIZE} (the 7x7 head pool must fit; "
                f"the FVD protocol uses 224), got {resolution!r}"
            )
        super().__init__(
            device=device, batch_size=batch_size, resolution=resolution, layer=layer, impl=impl, **options
        )
        self.resolution = int(resolution)
        self.input_side = self.resolution  # type: ignore[misc]
        self.layer = layer
        self.impl = impl
        self.weights_path = str(weights) if weights else None
        self.model: InceptionI3d | FusedI3d | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        net, digest = load_i3d(self.weights_path)
        model: InceptionI3d | FusedI3d = net.fused() if self.impl == "fused" else net
        if self.impl == "fused":  # channels-last 3-D convolutions: ~20-30% faster per clip on the CPU
            model = model.to(memory_format=torch.channels_last_3d)
        return model, digest

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["weights"] = WEIGHTS_NAME
        ident["layer"] = self.layer
        ident["resolution"] = self.resolution
        ident["preprocess"] = PREPROCESS
        return ident

    @property
    def dim(self) -> int:
        """Width of one feature row."""
        return LAYERS[self.layer]

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` RGB (T >= 9) -> float32 ``[1, dim]``."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise UsageError(
                f"i3d_kinetics400 needs uint8 [T,H,W,3] frames, got {frames.dtype} {frames.shape}"
            )
        return self.extract_videos(frames[None])

    def extract_many(self, clips: list[np.ndarray], fps: list[float | None]) -> list[np.ndarray]:
        """Clips of equal shape go through the network together (``batch_size`` per pass)."""
        return extract_stacked_by_shape(clips, self.extract_videos)

    def extract_videos(self, videos: np.ndarray) -> np.ndarray:
        """uint8 ``[B, T, H, W, 3]`` (clips of equal length) -> float32 ``[B, dim]``, ``batch_size`` clips a pass."""
        videos = np.asarray(videos)
        if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != np.uint8:
            raise UsageError(
                f"i3d_kinetics400 needs uint8 [B,T,H,W,3] videos, got {videos.dtype} {videos.shape}"
            )
        if videos.shape[1] < MIN_FRAMES:
            raise UsageError(
                f"i3d_kinetics400 needs clips of at least {MIN_FRAMES} frames, got {videos.shape[1]}: "
                "sample more frames (the fvd metric pads short videos by repeating the last frame)"
            )
        self.ensure_loaded()
        assert self.model is not None
        outs = []
        with torch.inference_mode():
            for i in range(0, len(videos), max(1, self.batch_size)):
                x = preprocess(videos[i : i + self.batch_size], self.resolution, self.device)
                if self.impl == "fused":
                    x = x.contiguous(memory_format=torch.channels_last_3d)
                outs.append(self.model.features(x, self.layer).float().cpu().numpy())
        return np.concatenate(outs, axis=0)
