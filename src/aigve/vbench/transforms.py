"""VBench's tensor preprocessing (``vbench/utils.py`` of Vchitect/VBench at 45e79ec), on uint8 frames.

VBench decodes with decord, turns the ``[T, H, W, 3]`` uint8 array into a *float* tensor ``[T, 3, H, W]`` with values
0-255 (``torch.Tensor(frames)``) and resizes that float tensor: no rounding to uint8 after the resize and no clamping
(torchvision clamps bicubic output only for uint8 input). Both transforms below do the same.

- ``clip_transform(n)``: shorter side -> n, bicubic, ``antialias=False``; centre crop n x n; /255; CLIP mean/std.
- ``dino_transform(n)``: shorter side -> n, bilinear, ``antialias=False``, **no crop** (non-square output); /255;
  ImageNet mean/std.
"""

from __future__ import annotations

import numpy as np
import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_float_tchw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(frames))
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got shape {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2).float()


def _normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def clip_transform(frames: np.ndarray | torch.Tensor, n_px: int = 224) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[T, 3, n, n]`` as VBench's ``clip_transform(n_px)``."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    x = _as_float_tchw(frames)
    x = tvf.resize(x, [n_px], interpolation=InterpolationMode.BICUBIC, antialias=False)
    x = tvf.center_crop(x, [n_px, n_px])
    return _normalize(x / 255.0, CLIP_MEAN, CLIP_STD)


def dino_transform(frames: np.ndarray | torch.Tensor, n_px: int = 224) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[T, 3, h, w]`` (shorter side n) as VBench's ``dino_transform(n_px)``."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    x = _as_float_tchw(frames)
    x = tvf.resize(x, [n_px], interpolation=InterpolationMode.BILINEAR, antialias=False)
    return _normalize(x / 255.0, IMAGENET_MEAN, IMAGENET_STD)


def clip_transform_image(frames: np.ndarray, n_px: int = 224) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[T, 3, n, n]`` as VBench's ``clip_transform_Image(n_px)``: each frame as a
    PIL image, shorter side -> n with PIL's bicubic (torchvision ``Resize`` on PIL; ``antialias`` has no effect
    there), centre crop, ``ToTensor``, CLIP mean/std (``appearance_style`` uses it)."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    out = []
    for f in np.asarray(frames):
        img = tvf.resize(Image.fromarray(f), [n_px], interpolation=InterpolationMode.BICUBIC)
        img = tvf.center_crop(img, [n_px, n_px])
        out.append(tvf.to_tensor(img))
    return _normalize(torch.stack(out), CLIP_MEAN, CLIP_STD)
