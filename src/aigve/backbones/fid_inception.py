"""``fid_inception``: per-frame FID Inception-v3 features, shared by FID, KID and IS (one forward per frame).

Network: :class:`aigve.backbones.nets.fid_inception.FIDInceptionV3` with pytorch-fid's released weights
``pt_inception-2015-12-05-6726825d.pth`` (registry name ``fid_inception``; torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth`` is the same file). Checked against pytorch-fid 0.3.0's
``InceptionV3([3], resize_input=True, normalize_input=True, use_fid_inception=True)`` and torch-fidelity
0.4.0's ``FeatureExtractorInceptionV3`` (tests/backbones/test_inception_fid.py).

Output layout (option ``output``):

- ``"both"`` (default): float32 ``[T, 3056]`` = ``pool ‖ logits_unbiased``: columns ``0:2048`` are the
  pool3 features (FID, KID), columns ``2048:3056`` the 1008 unbiased logits (IS). Metrics slice it with
  :data:`POOL_SLICE` / :data:`LOGITS_SLICE` or :func:`split_features`, so FID, KID and IS requesting
  ``fid_inception`` with default options share one extractor, one forward pass and one cache entry.
- ``"pool"``: ``[T, 2048]``; ``"logits_unbiased"``: ``[T, 1008]``; ``"logits"``: ``[T, 1008]`` with the
  fc bias added.

Why *unbiased* logits for IS: the original Inception Score code (Salimans et al., improved-gan) takes
``pool3 @ W`` from the TF graph's ``softmax/logits/MatMul`` without the bias; torch-fidelity's ISC
(``get_default_feature_layer_for_metric("isc") == "logits_unbiased"``) and torchmetrics'
``InceptionScore(feature="logits_unbiased")`` do the same, so IS uses ``logits_unbiased``.

Preprocessing (option ``resize``):

- ``"pytorch-fid"`` (default): uint8 -> float ``/255`` -> bilinear resize to 299x299 inside the network
  (``align_corners=False``, no antialiasing) -> ``2x - 1``. Identical to pytorch-fid. (torch-fidelity
  resizes with a TF1-style bilinear kernel and scales ``(x-128)/128``: slightly different numbers.)
- ``"clean"``: clean-fid's "clean" resize: each channel resized as a float image with PIL bicubic
  (which antialiases when downscaling) to 299x299, clipped to [0, 255], then ``/255`` and ``2x - 1``.
  The network stays pytorch-fid's FID Inception (clean-fid itself runs NVIDIA's TorchScript port of
  the same TF graph and scales ``(x-128)/128``), so values are close to, not identical with, clean-fid's.

Options: ``output``, ``resize``, ``weights`` (explicit checkpoint path; its own sha256 goes into the
identity). ``identity()`` carries the weights sha256, ``output`` and ``resize``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Extractor
from aigve.backbones.nets.fid_inception import (
    INPUT_SIZE,
    NUM_CLASSES,
    POOL_DIM,
    FIDInceptionV3,
    fill_missing_bn_counters,
)
from aigve.backbones.registry import register_extractor
from aigve.errors import UsageError
from aigve.weights import load_into, resolve_for_backbone

if TYPE_CHECKING:
    from aigve.weights import ResolvedWeights

WEIGHTS_NAME = "fid_inception"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
Output = Literal["both", "pool", "logits_unbiased", "logits"]
Resize = Literal["pytorch-fid", "clean"]
OUTPUTS: tuple[str, ...] = ("both", "pool", "logits_unbiased", "logits")
RESIZES: tuple[str, ...] = ("pytorch-fid", "clean")
POOL_SLICE = slice(0, POOL_DIM)  # columns of the pool3 features in the "both" layout
LOGITS_SLICE = slice(POOL_DIM, POOL_DIM + NUM_CLASSES)  # columns of the unbiased logits in "both"
OUTPUT_DIMS: dict[str, int] = {
    "both": POOL_DIM + NUM_CLASSES,
    "pool": POOL_DIM,
    "logits_unbiased": NUM_CLASSES,
    "logits": NUM_CLASSES,
}


def split_features(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[K, 3056]`` "both" features -> (pool3 ``[K, 2048]``, unbiased logits ``[K, 1008]``) views."""
    if features.ndim != 2 or features.shape[1] != OUTPUT_DIMS["both"]:
        raise UsageError(
            f"fid_inception features must be [K, {OUTPUT_DIMS['both']}] (output='both'), got {features.shape}"
        )
    return features[:, POOL_SLICE], features[:, LOGITS_SLICE]


def clean_resize(frames: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """clean-fid's "clean" resize: uint8 ``[N, H, W, 3]`` -> float32 ``[N, size, size, 3]`` in [0, 255].

    Each channel is resized as a 32-bit float PIL image with bicubic filtering, then clipped.
    """
    from PIL import Image

    out = np.empty((frames.shape[0], size, size, 3), dtype=np.float32)
    for i, frame in enumerate(frames):
        for c in range(3):
            img = Image.fromarray(np.ascontiguousarray(frame[:, :, c], dtype=np.float32))
            out[i, :, :, c] = np.asarray(img.resize((size, size), resample=Image.Resampling.BICUBIC))
    return np.clip(out, 0.0, 255.0, out=out)


def load_fid_inception(
    explicit_path: str | os.PathLike[str] | None = None, *, resolved: ResolvedWeights | None = None
) -> tuple[FIDInceptionV3, str]:
    """Resolve (registry ``fid_inception``), verify and strictly load the FID Inception weights.

    Returns ``(model in eval mode on CPU, file sha256)``; ``resolved``: a file already resolved. A missing
    file raises ``WeightsError`` naming the file, where to put it and ``aigve weights fetch fid_inception``.
    """
    loaded = load_into(
        FIDInceptionV3,
        WEIGHTS_NAME,
        explicit_path,
        resolved=resolved,
        meta=True,  # no random init of 24M parameters that are overwritten right away
        transform_state=fill_missing_bn_counters,
        what="an FID Inception-v3 checkpoint in pytorch-fid's layout",
    )
    return loaded.module, loaded.sha256


@register_extractor
class FIDInceptionExtractor(Extractor):
    """Frames -> FID Inception-v3 features, one row per frame (see the module docstring for the layout)."""

    name: ClassVar[str] = "fid_inception"
    input_side: ClassVar[int | None] = INPUT_SIZE  # 299x299, either resize mode
    kind = "frames"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("output", "resize", "weights")
    extra: ClassVar[str | None] = None

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        output: str = "both",
        resize: str = "pytorch-fid",
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if output not in OUTPUTS:
            raise UsageError(f"fid_inception: output must be one of {OUTPUTS}, got {output!r}")
        if resize not in RESIZES:
            raise UsageError(f"fid_inception: resize must be one of {RESIZES}, got {resize!r}")
        if int(batch_size) < 1:
            raise UsageError(f"fid_inception: batch_size must be >= 1, got {batch_size}")
        super().__init__(device=device, batch_size=batch_size, output=output, resize=resize, **options)
        self.output: Output = output  # type: ignore[assignment]
        self.resize: Resize = resize  # type: ignore[assignment]
        self.weights_path = str(weights) if weights else None
        self.model: FIDInceptionV3 | None = None
        self._resolved: ResolvedWeights | None = None

    def _resolve(self) -> ResolvedWeights:
        if self._resolved is None:
            self._resolved = resolve_for_backbone(WEIGHTS_NAME, self.weights_path)
        return self._resolved

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        return load_fid_inception(resolved=self._resolve())

    def weights_sha256(self) -> str | None:
        """sha256 of the checkpoint file; resolves (and hashes, cached) it without loading the network."""
        return str(self._resolve().sha256)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {
            "value_range": [0, 1],
            "resize": (
                "bilinear-299-align_corners=False-no-antialias (inside the network)"
                if self.resize == "pytorch-fid"
                else "PIL-bicubic-299-per-channel-float, clip 0..255"
            ),
            "normalize": "2x-1",
        }
        return ident

    @property
    def dim(self) -> int:
        """Width of one feature row."""
        return OUTPUT_DIMS[self.output]

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` RGB -> float32 ``[T, dim]`` (``[T, 3056]`` for ``output="both"``)."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise UsageError(f"fid_inception needs uint8 [T,H,W,3] frames, got {frames.dtype} {frames.shape}")
        self.ensure_loaded()
        return self.batched(frames, self._run)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        assert self.model is not None
        with torch.inference_mode():
            if self.resize == "clean":
                x = torch.from_numpy(clean_resize(chunk)).to(self.device)
            else:
                x = torch.from_numpy(np.ascontiguousarray(chunk)).to(self.device).to(torch.float32)
            # NCHW contiguous, as pytorch-fid's ToTensor batches are: same kernels, same numbers
            x = x.permute(0, 3, 1, 2).contiguous().div_(255.0)
            out = self.model(x)
            if self.output == "pool":
                feats = out.pool
            elif self.output == "logits_unbiased":
                feats = out.logits_unbiased
            elif self.output == "logits":
                feats = self.model.add_bias(out.logits_unbiased)
            else:
                feats = torch.cat((out.pool, out.logits_unbiased), dim=1)
            return feats.float().cpu().numpy()
