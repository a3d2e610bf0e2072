"""``vgg16_meanstd``: per-frame VGG16 multi-stage mean and std features, the input GSTVQA was trained on.

Network: torchvision's VGG16 architecture (``torchvision.models.vgg16``'s ``features``) with the ImageNet weights ``vgg16-397923af.pth``
(registry name ``tv_vgg16``, loaded strictly). For each of the five convolution stages the feature map at
the stage's tap (below) is pooled per channel over space into its mean and its standard deviation; the
five stages give 64 + 128 + 256 + 512 + 512 = 1472 channels. One output row per frame, float32 ``[T, 2944]``:
columns ``0:1472`` the means (stage 1 first), columns ``1472:2944`` the stds in the same order
(:data:`MEAN_SLICE`, :data:`STD_SLICE`). GSTVQA concatenates its ``*_VGG16_cat_mean_features`` and
``*_VGG16_cat_std_features`` files in this order.

Preprocessing (id ``vsfa-imagenet-fullres``), as VSFA's feature extraction, on which the GSTVQA code is based
(its README): RGB uint8 -> ``/255`` -> ImageNet mean/std normalisation, at the frame's own resolution (the
authors' feature folders are named ``..._original_resolution``; no resize, no crop). The std is the
unbiased one (``torch.std``, as VSFA's ``global_std_pool2d``).

What could not be checked here: the authors' extraction script itself (linked from their README on a
file-sharing site, not in the repository) was not readable. The 1472 channel count fixes one tensor per
stage; which point of the stage is tapped is the one assumption: ``tap="relu"`` (default) takes the last
ReLU of each stage (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, before max-pooling), ``tap="pool"`` the
stage's max-pool output. Both are offered and recorded in the identity.

Options: ``tap`` ("relu" | "pool"), ``resize`` (None = full resolution, as trained; an int resizes the
shorter side to that many pixels with antialiased bilinear interpolation, a speed trade-off that changes
the numbers), ``weights`` (explicit VGG16 checkpoint path). Frames smaller than 32x32 are refused (the
fifth stage would have a single position, whose std is undefined); with ``tap="pool"`` frames smaller than
64x64 are (the last max-pool halves the map once more).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aigve.backbones.base import Extractor
from aigve.backbones.registry import register_extractor
from aigve.errors import UsageError
from aigve.weights import load_into, resolve_for_backbone

if TYPE_CHECKING:
    from aigve.weights import ResolvedWeights

WEIGHTS_NAME = "tv_vgg16"
WEIGHTS_FILE = "vgg16-397923af.pth"
_CONTEXT = "vgg16_meanstd (GSTVQA's frame features) needs VGG16 ImageNet weights"
_OPTION_NOTE = "for GSTVQA the VGG16 file is passed as --metric-option gstvqa.vgg_weights=PATH"
PREPROCESS_ID = "vsfa-imagenet-fullres"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STAGE_CHANNELS = (64, 128, 256, 512, 512)
FEATURE_DIM = sum(STAGE_CHANNELS)  # 1472
OUTPUT_DIM = 2 * FEATURE_DIM  # 2944
MEAN_SLICE = slice(0, FEATURE_DIM)
STD_SLICE = slice(FEATURE_DIM, OUTPUT_DIM)
MIN_SIDE = 32  # smallest frame side for tap="relu" (stage 5 at 1/16: 2x2); tap="pool" needs 2 * MIN_SIDE
#: indices into torchvision's ``vgg16().features`` of each stage's last ReLU and its max-pool
TAPS: dict[str, tuple[int, ...]] = {"relu": (3, 8, 15, 22, 29), "pool": (4, 9, 16, 23, 30)}
Tap = Literal["relu", "pool"]
_PIXELS_PER_CHUNK = 2_000_000  # bounds activation memory at full resolution (conv1 maps are 64 x H x W)


_CLASSIFIER_SHAPES = {
    "classifier.0.weight": (4096, 25088),
    "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096),
    "classifier.3.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}


def features_state(
    state_dict: Mapping[str, torch.Tensor], _features: nn.Module | None = None
) -> dict[str, torch.Tensor]:
    """A full torchvision VGG16 state dict -> its ``features.*`` entries, prefix dropped.

    The classifier entries must be exactly torchvision's (names and shapes), so the file is checked as a whole
    VGG16 checkpoint without allocating the unused 120 M-parameter classifier. ``RuntimeError`` otherwise.
    """
    rest = {k: tuple(v.shape) for k, v in state_dict.items() if not k.startswith("features.")}
    if rest != _CLASSIFIER_SHAPES:
        raise RuntimeError(f"classifier entries differ from torchvision VGG16's: {sorted(rest)[:6]}")
    return {k[len("features.") :]: v for k, v in state_dict.items() if k.startswith("features.")}


def build_vgg16_features(state_dict: Mapping[str, torch.Tensor] | None = None) -> nn.Sequential:
    """torchvision's VGG16 ``features`` module (``make_layers(cfgs["D"])``, the layout of ``vgg16().features``).

    With ``state_dict`` (a full torchvision VGG16 state dict): the ``features.*`` entries load strictly
    (see :func:`features_state`); ``RuntimeError`` otherwise.
    """
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=False)
    if state_dict is not None:
        features.load_state_dict(features_state(state_dict), strict=True)
    for m in features.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False  # the tapped activations must not be overwritten
    return features.eval()


def preprocess(frames: torch.Tensor, resize: int | None = None) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, H', W']`` ImageNet-normalised (``H' = H`` unless ``resize``)."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32) / 255.0
    if resize is not None:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        scale = resize / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def multistage_mean_std(features: nn.Sequential, x: torch.Tensor, tap: Tap = "relu") -> torch.Tensor:
    """Run ``features`` (torchvision VGG16 layout) on ``x`` ``[N, 3, H, W]`` and pool each stage's tapped map.

    Returns ``[N, 2944]``: the per-channel spatial means of the five stages, then their unbiased stds.
    """
    taps = TAPS[tap]
    means: list[torch.Tensor] = []
    stds: list[torch.Tensor] = []
    last = taps[-1]
    for i, layer in enumerate(features):
        if i > last:
            break
        x = layer(x)
        if i in taps:
            flat = x.flatten(2)
            means.append(flat.mean(dim=2))
            stds.append(flat.std(dim=2))
    return torch.cat(means + stds, dim=1)


def resolve_vgg16_weights(explicit_path: str | os.PathLike[str] | None = None) -> ResolvedWeights:
    """Find and hash-check ``vgg16-397923af.pth`` (registry name ``tv_vgg16``); ``WeightsError`` names the
    file and where to put it."""
    return resolve_for_backbone(WEIGHTS_NAME, explicit_path, context=_CONTEXT, note=_OPTION_NOTE)


@register_extractor
class VGG16MeanStdExtractor(Extractor):
    """Frames -> float32 ``[T, 2944]`` VGG16 five-stage mean ‖ std features (see the module docstring)."""

    name: ClassVar[str] = "vgg16_meanstd"
    kind = "frames"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("tap", "resize", "weights")

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        tap: str = "relu",
        resize: int | None = None,
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if tap not in TAPS:
            raise UsageError(f"vgg16_meanstd: tap must be one of {sorted(TAPS)}, got {tap!r}")
        min_side = MIN_SIDE * (2 if tap == "pool" else 1)
        if resize is not None and int(resize) < min_side:
            raise UsageError(f"vgg16_meanstd: resize must be None or >= {min_side} (tap={tap}), got {resize}")
        if int(batch_size) < 1:
            raise UsageError(f"vgg16_meanstd: batch_size must be >= 1, got {batch_size}")
        resize = None if resize is None else int(resize)
        super().__init__(device=device, batch_size=batch_size, tap=tap, resize=resize, **options)
        self.tap: Tap = tap  # type: ignore[assignment]
        self.smallest_side = min_side  # per instance: depends on tap
        self.resize = resize
        self.weights_path = str(weights) if weights else None
        self.model: nn.Sequential | None = None
        self._resolved: ResolvedWeights | None = None
        self._sha256: str | None = None

    def load(self) -> None:
        if self.model is not None:
            return
        if self._resolved is None:
            self._resolved = resolve_vgg16_weights(self.weights_path)
        loaded = load_into(
            build_vgg16_features,
            WEIGHTS_NAME,
            resolved=self._resolved,
            transform_state=features_state,
            what="a torchvision VGG16 checkpoint",
            fix=f"pass {WEIGHTS_FILE} ({_OPTION_NOTE})",
        )
        self.set_model(loaded.module, loaded.sha256)

    def set_model(self, features: nn.Sequential, sha256: str) -> None:
        """Use an already built VGG16 ``features`` module (tests, or weights loaded by the caller)."""
        self.model = features.eval().to(self.device)
        self._sha256 = sha256
        self._loaded = True

    def weights_sha256(self) -> str | None:
        if self._sha256 is None:
            if self._resolved is None:
                self._resolved = resolve_vgg16_weights(self.weights_path)
            return str(self._resolved.sha256)
        return self._sha256

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {
            "id": PREPROCESS_ID,
            "resize": self.resize or "none (full resolution)",
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "tap": self.tap,
            "pool": "per-channel spatial mean ‖ unbiased std",
        }
        return ident

    @property
    def dim(self) -> int:
        """Width of one feature row (2944)."""
        return OUTPUT_DIM

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` RGB -> float32 ``[T, 2944]``."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise UsageError(f"vgg16_meanstd needs uint8 [T,H,W,3] frames, got {frames.dtype} {frames.shape}")
        h, w = int(frames.shape[1]), int(frames.shape[2])
        if self.resize is None and min(h, w) < self.smallest_side:
            raise UsageError(
                f"vgg16_meanstd: frames of {w}x{h} are too small for tap={self.tap} (need at least "
                f"{self.smallest_side}x{self.smallest_side}); pass resize={self.smallest_side} or larger"
            )
        self.ensure_loaded()
        chunk = self.frames_per_call(h, w)
        outs = [self._run(frames[i : i + chunk]) for i in range(0, len(frames), chunk)]
        if not outs:
            raise UsageError("vgg16_meanstd: no frames to extract features from")
        return np.concatenate(outs, axis=0)

    def frames_per_call(self, height: int, width: int) -> int:
        """Frames per forward pass: ``batch_size``, fewer for large frames (a bound on the activations)."""
        h, w = int(height), int(width)
        pixels = h * w if self.resize is None else self.resize * self.resize * max(h, w) // max(1, min(h, w))
        return max(1, min(self.batch_size, _PIXELS_PER_CHUNK // max(1, pixels)))

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        assert self.model is not None
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chunk)).to(self.device)
            x = preprocess(x, self.resize)
            return multistage_mean_std(self.model, x, self.tap).float().cpu().numpy()
