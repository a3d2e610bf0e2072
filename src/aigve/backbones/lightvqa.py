"""Light-VQA's per-slot features and its quality head (wenzhouyidu/Light-VQA, code commit eecf49d1).

The authors score a video in eight *slots*; slot ``i`` pairs key frame ``i`` with the SlowFast feature of
second ``i`` and the brightness consistency of the ``i``-th eighth of the video. The network gives one
score per slot (clamped to [0, 100]) and ``test.py`` reports their mean.

``lightvqa_spatial`` (kind ``clip``, float32 ``[8, 2C + 128]``, one row per slot): it declares one frame
window, its 8 key frames (:meth:`~aigve.backbones.base.Backbone.frame_windows`), and reads no other frame:

- **key frames** (``extract_key_frames.py``): ``number = floor(T / 8)`` and the loop keeps frames whose
  index is a multiple of ``number``, but it calls ``cv2.VideoCapture.read()`` only for those, so the frames
  it saves are the next ones in decoding order: frames 0..7. Option ``key_frames``: ``"first8"`` (default,
  what the code does and the checkpoint was trained on) or ``"strided"`` (frames ``i * floor(T / 8)``, what
  the loop evidently meant). Videos with fewer than 8 frames (the authors' code divides by zero) repeat
  their last frame.
- each key frame is resized to 512x960 (HxW; PIL-like bilinear: the authors feed their 960x512 LLVE-QA
  frames unresized, and the network's hand-crafted features need exactly this size), scaled to [0, 1],
  ImageNet-normalised, and goes through :meth:`LightVQANet.frame_features` (Swin-S of the Light-VQA
  checkpoint + brightness + noise): ``2C + 128`` columns.

``lightvqa_brightness`` (kind ``frames``, no network, float64 ``[T, 144]``, one row per frame: streamed in
bounded groups like any per-frame extractor): the first half of ``brightness_consistency.py`` — every frame
converted to 8-bit gray and resized to 720x1280 with PIL itself (``convert("L")``, bilinear ``resize``, as
their transforms do), scaled to [0, 1], normalised with mean 0.485 / std 0.229, reshaped row-major to
``[144, 6400]`` (so each "patch" is a band of five image rows, as their ``reshape`` does) and averaged: 144
numbers per frame.

**Brightness consistency** (the second half, computed by the head from those rows), 144 numbers per slot:
with ``number = floor(T / 8)``, the first ``8 * number`` frames form 8 slots of ``number`` consecutive
frames; per slot the unbiased variance over its frames (float64, then float32 as the features were).
Padding policy: a slot of one frame (``T < 16``, where the authors' ``torch.var`` gives NaN) or none
(``T < 8``) has consistency 0.

``lightvqa_head`` (scorer on ``lightvqa_spatial``, ``slowfast_r50`` and ``lightvqa_brightness``): the
temporal input of slot ``i`` is SlowFast row ``i`` (the 32-frame clip from second ``i``, see
:mod:`aigve.backbones.simplevqa`: the same clip cutting and preprocessing as Light-VQA's
``VideoDataset_extract_temporal_feature``) followed by 10 x the slot's brightness consistency
(``my_dataloader.py``); videos shorter than 8 seconds repeat their last second (as the authors' extraction
does), longer ones use their first 8. Output ``[1, 1]``: the mean of the eight clamped slot scores.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Extractor, Scorer, ScorerInput, checked_frames
from aigve.backbones.nets.lightvqa import BC_DIM, FRAME_H, FRAME_W, LightVQANet, upstream_to_ours
from aigve.backbones.registry import register_extractor
from aigve.backbones.simplevqa import IMAGENET_MEAN, IMAGENET_STD, _normalise, _resize_levels
from aigve.errors import MetricInputError, UsageError
from aigve.weights import load_into

log = logging.getLogger(__name__)

LIGHTVQA_WEIGHTS = "lightvqa"
SLOTS = 8
KEY_FRAME_MODES = ("first8", "strided")
BC_SIZE = (720, 1280)
BC_MEAN, BC_STD = 0.485, 0.229
BC_SCALE = 10.0  # my_dataloader.py multiplies the stored consistency by 10


def key_frame_rows(num_frames: int, mode: str = "first8") -> list[int]:
    """The 8 key frames' rows (see the module docstring); short videos repeat their last frame."""
    if num_frames < 1:
        raise UsageError("lightvqa: no frames")
    if mode == "first8":
        rows = list(range(SLOTS))
    elif mode == "strided":
        step = max(1, num_frames // SLOTS)
        rows = [i * step for i in range(SLOTS)]
    else:
        raise UsageError(f"lightvqa: key_frames must be one of {KEY_FRAME_MODES}, got {mode!r}")
    return [min(r, num_frames - 1) for r in rows]


def band_brightness(frames: np.ndarray) -> np.ndarray:
    """Per frame the 144 band means of the normalised 720x1280 gray frame, float64 ``[T, 144]``: PIL's
    ``convert("L")`` and bilinear ``resize`` (what torchvision's ``Resize`` does on a PIL image), exactly."""
    from PIL import Image

    out = np.empty((len(frames), BC_DIM))
    for i, f in enumerate(frames):
        g = Image.fromarray(np.ascontiguousarray(f)).convert("L")
        g = g.resize((BC_SIZE[1], BC_SIZE[0]), Image.Resampling.BILINEAR)
        x = (np.asarray(g, dtype=np.float32) / np.float32(255.0) - np.float32(BC_MEAN)) / np.float32(BC_STD)
        out[i] = x.reshape(BC_DIM, -1).mean(axis=1, dtype=np.float64)
    return out


def brightness_consistency(band_means: np.ndarray) -> np.ndarray:
    """``[T, 144]`` band means -> ``[8, 144]``: unbiased variance within each of 8 slots of ``T // 8``
    consecutive frames (first ``8 * (T // 8)`` frames); slots of fewer than 2 frames give 0."""
    number = band_means.shape[0] // SLOTS
    if number < 2:
        return np.zeros((SLOTS, BC_DIM))
    slots = band_means[: SLOTS * number].reshape(SLOTS, number, BC_DIM)
    return slots.var(axis=1, ddof=1)


def preprocess_key_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, 512, 960]``, ImageNet-normalised."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32)
    x = _resize_levels(x, (FRAME_H, FRAME_W))
    return _normalise(x, IMAGENET_MEAN, IMAGENET_STD)


def load_lightvqa_net(
    explicit_path: str | os.PathLike[str] | None = None, build: Any = LightVQANet
) -> tuple[LightVQANet, str]:
    """Resolve (registry ``lightvqa``) and strictly load the Light-VQA checkpoint, mapping the authors'
    parameter names onto ours. Returns ``(network in eval mode on CPU, sha256)``."""
    loaded = load_into(
        build,
        LIGHTVQA_WEIGHTS,
        explicit_path,
        key="auto",
        transform_state=lambda state, _: upstream_to_ours(state),
        what="a Light-VQA (final_fusion_model.swin_small_patch4_window7_224) checkpoint",
        note="pass it with --metric-option lightvqa.weights=PATH",
    )
    return loaded.module, loaded.sha256


@register_extractor
class LightVQASpatialExtractor(Extractor):
    """The 8 key frames (its one declared window) -> per slot the Swin-S/brightness/noise features of its key
    frame, float32 ``[8, 2C + 128]``. Options: ``weights`` (the Light-VQA checkpoint; else the registry's
    ``lightvqa``), ``key_frames`` (``first8`` | ``strided``)."""

    name: ClassVar[str] = "lightvqa_spatial"
    kind = "clip"
    version: ClassVar[str] = "2"  # 2: the brightness consistency moved to lightvqa_brightness + the head
    known_options: ClassVar[tuple[str, ...] | None] = ("key_frames", "weights")
    extra: ClassVar[str | None] = "nnvqa"
    weights_option: ClassVar[str | None] = "weights"
    input_side: ClassVar[int | None] = FRAME_H

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        weights: str | os.PathLike[str] | None = None,
        key_frames: str = "first8",
        **options: Any,
    ) -> None:
        if key_frames not in KEY_FRAME_MODES:
            raise UsageError(f"lightvqa: key_frames must be one of {KEY_FRAME_MODES}, got {key_frames!r}")
        super().__init__(device=device, batch_size=batch_size, key_frames=key_frames, **options)
        self.weights_path = str(weights) if weights else None
        self.model: LightVQANet | None = None
        self.build: Any = LightVQANet  # tests swap in a tiny configuration

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        return load_lightvqa_net(self.weights_path, self.build)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {
            "key_frames": self.options["key_frames"],
            "resize": f"{FRAME_H}x{FRAME_W}-pil-like-bilinear-2pass-uint8",
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
        }
        return ident

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """One window: the 8 key frames (repeats of the last frame for videos shorter than 8 frames)."""
        return [key_frame_rows(num_frames, self.options["key_frames"])]

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` (only the key frames are read) -> float32 ``[8, 2C + 128]``."""
        frames = checked_frames("lightvqa", frames)
        rows = key_frame_rows(len(frames), self.options["key_frames"])
        self.ensure_loaded()
        assert self.model is not None
        step = max(1, self.batch_size // 8)  # 512x960 is ~10x the pixels of 224x224
        feats = []
        with torch.inference_mode():
            for i in range(0, SLOTS, step):
                x = torch.from_numpy(np.ascontiguousarray(frames[rows[i : i + step]])).to(self.device)
                feats.append(self.model.frame_features(preprocess_key_frames(x)).float().cpu().numpy())
        return np.concatenate(feats, axis=0)


@register_extractor
class LightVQABrightnessExtractor(Extractor):
    """Every frame -> its 144 band means of the normalised 720x1280 gray frame (:func:`band_brightness`),
    float64 ``[T, 144]``; the head turns them into the per-slot brightness consistency. No options."""

    name: ClassVar[str] = "lightvqa_brightness"
    kind = "frames"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ()
    extra: ClassVar[str | None] = "nnvqa"  # Pillow
    neural: ClassVar[bool] = False

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        super().__init__(device=device, batch_size=batch_size, **options)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {"bc": "pil-L, 720x1280 pil bilinear, (x-0.485)/0.229, 144 row bands, mean"}
        return ident

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` -> float64 ``[T, 144]`` (one frame at a time: no batch to form)."""
        return band_brightness(checked_frames(self.name, frames))


@register_extractor
class LightVQAHeadScorer(Scorer):
    """Light-VQA's MLP head on the 8 slots (``lightvqa_spatial`` || ``slowfast_r50`` || 10 x the brightness
    consistency of ``lightvqa_brightness``'s rows) -> ``[1, 1]``: the mean of the slot scores, each clamped
    to [0, 100]."""

    name: ClassVar[str] = "lightvqa_head"
    version: ClassVar[str] = "2"  # 2: reads the brightness rows (lightvqa_brightness) as a third upstream
    known_options: ClassVar[tuple[str, ...] | None] = ("key_frames", "slowfast_weights", "weights")
    extra: ClassVar[str | None] = "nnvqa"
    input: ClassVar[Literal["frames", "features"]] = "features"
    columns: ClassVar[tuple[str, ...]] = ("quality",)

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        super().__init__(device, batch_size, **options)
        self._net: LightVQANet | None = None
        self._sha: str | None = None

    def upstreams(self) -> dict[str, tuple[str, dict[str, Any]]]:
        sp: dict[str, Any] = {"weights": str(self.options["weights"])} if self.options.get("weights") else {}
        if self.options.get("key_frames", "first8") != "first8":
            sp["key_frames"] = self.options["key_frames"]
        mo = (
            {"weights": str(self.options["slowfast_weights"])} if self.options.get("slowfast_weights") else {}
        )
        return {
            "spatial": ("lightvqa_spatial", sp),
            "motion": ("slowfast_r50", mo),
            "brightness": ("lightvqa_brightness", {}),
        }

    def upstream(self) -> tuple[str, dict[str, Any]]:
        return self.upstreams()["spatial"]

    def load(self) -> None:
        if self._net is not None:
            return
        spatial = getattr(self, "upstream_extractors", {}).get("spatial")
        if isinstance(spatial, LightVQASpatialExtractor):  # the engine's: one read of the checkpoint
            spatial.ensure_loaded()
            assert spatial.model is not None
            self._net, self._sha = spatial.model, spatial.weights_sha256()
        else:
            net, self._sha = load_lightvqa_net(self.options.get("weights"))
            self._net = net.to(self.device)
        self._loaded = True

    def weights_sha256(self) -> str | None:
        self.ensure_loaded()
        return self._sha

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self.ensure_loaded()
        assert self._net is not None
        want = self._net.feature_dim
        out = []
        for it in items:
            s = np.asarray(it.features["spatial"], dtype=np.float32)
            m = np.asarray(it.features["motion"], dtype=np.float32)
            b = np.asarray(it.features["brightness"], dtype=np.float64)
            if (
                s.shape != (SLOTS, want)
                or m.ndim != 2
                or m.shape[0] < 1
                or m.shape[1] != 2304
                or b.ndim != 2
                or b.shape[0] < 1
                or b.shape[1] != BC_DIM
            ):
                raise MetricInputError(
                    f"lightvqa got {s.shape} spatial, {m.shape} motion and {b.shape} brightness features (want "
                    f"({SLOTS}, {want}), (n_seconds, 2304) and (n_frames, {BC_DIM})); clear the feature cache "
                    "(--cache-dir) if it holds stale entries"
                )
            bc = brightness_consistency(b).astype(np.float32)
            rows = [min(i, m.shape[0] - 1) for i in range(SLOTS)]
            y = np.concatenate([m[rows], BC_SCALE * bc], axis=1)
            p = next(self._net.parameters())
            with torch.inference_mode():
                q = self._net.head_forward(torch.from_numpy(s).to(p), torch.from_numpy(y).to(p))
            out.append(np.array([[float(q.double().mean())]], dtype=np.float64))
        return out
