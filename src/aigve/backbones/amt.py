"""``amt_s``: VBench's motion-smoothness residuals from the AMT-S frame interpolation network.

VBench's procedure (``vbench/motion_smoothness.py``, Vchitect/VBench commit 45e79ec; the same in the
``vbench`` 0.1.5 wheel), on every decoded frame of the video:

1. keep the even frames 0, 2, 4, ... (needs at least two of them, i.e. three frames);
2. each frame as float32 ``[1, 3, H, W]`` ``/ 255``; replicate-pad all of them to multiples of 16 (split
   evenly, the odd pixel at the bottom/right: AMT's ``InputPadder``);
3. for every consecutive pair of kept frames, AMT-S predicts the middle frame (``embt = 0.5``);
4. unpad; back to uint8 by ``(x * 255).clip(0, 255).astype(uint8)`` (truncation, as VBench's
   ``tensor2img``);
5. per predicted frame ``k``: the mean absolute difference (``cv2.absdiff``) between it and the real frame
   ``2k + 1``. With an even frame count the last real odd frame has no prediction and is not used.

Output: float64 ``[K, 1]``, K = (number of kept frames) - 1, the mean absolute difference of each predicted
frame on the 0-255 scale. The ``vbench_motion_smoothness`` metric turns their mean ``d`` into
``(255 - d) / 255``.

``scale`` (default 1.0) is the factor the network runs at. VBench keeps 1.0 on the CPU and, on CUDA, derives
a smaller one from the GPU's total memory and the frame size (``1 / floor(16 / sqrt(s)) * 16``); on an
80 GB GPU that stays 1.0 for frames up to about 1920 x 1080. A value below 1 must be ``16 / n`` for an
integer n, as VBench's formula gives; padding is then to multiples of ``16 / scale``.

The network needs padded frames of at least 128 x 128 at the scale it runs at (its 4-level correlation pyramid
at 1/8 resolution otherwise has a 1-pixel level, where VBench's own code divides by zero): smaller videos are an
error.

Frames declared (``frame_windows``): one window per predicted frame ``k``, the rows ``(2k, 2k + 1, 2k + 2)``,
``batch_size`` windows a forward pass (the batches the whole clip is cut into), so a streamed video holds
about one batch of frames whatever its length.

Options: ``scale``, ``config`` (``"amt_s"``), ``weights`` (an explicit checkpoint path).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from aigve.backbones.base import Extractor, checked_frames, run_windows
from aigve.backbones.nets.amt import AMT, CONFIGS
from aigve.backbones.registry import register_extractor
from aigve.errors import MetricInputError, UsageError
from aigve.types import DeclaredFrames
from aigve.weights import fetch_hint, load_into

WEIGHTS_NAME = "amt_s"
WEIGHTS_FILE = "amt-s.pth"
MIN_PADDED_SIDE = 128
PROCEDURE = (
    "even frames /255, replicate-pad to x16, AMT-S middle frame (embt=0.5) per even pair, unpad, "
    "(x*255).clip.astype(uint8), mean |pred - real odd frame| per prediction (VBench motion_smoothness)"
)


def load_amt(config: str = "amt_s", explicit_path: str | os.PathLike[str] | None = None) -> tuple[AMT, str]:
    """Resolve (registry ``amt_s``), verify and strictly load AMT weights: ``(model in eval mode, sha256)``.

    The released file keeps its weights under ``state_dict`` (VBench reads ``ckpt['state_dict']``)."""
    if config not in CONFIGS:
        raise UsageError(f"amt_s: unknown config {config!r}; known: {', '.join(sorted(CONFIGS))}")
    cfg = CONFIGS[config]
    loaded = load_into(
        lambda: AMT(cfg),
        WEIGHTS_NAME,
        explicit_path,
        key="auto",
        what=f"an AMT-S checkpoint ({WEIGHTS_FILE})",
        fix=f"pass {WEIGHTS_FILE} with --backbone-option amt_s.weights=PATH (`aigve weights fetch {WEIGHTS_NAME}`)",
        missing_hint=fetch_hint(WEIGHTS_NAME, size="about 12 MB"),
    )
    return loaded.module, loaded.sha256


def pad_amounts(h: int, w: int, divisor: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` replicate padding up to multiples of ``divisor`` (AMT's ``InputPadder``)."""
    ph = (((h // divisor) + 1) * divisor - h) % divisor
    pw = (((w // divisor) + 1) * divisor - w) % divisor
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def check_scale(scale: float) -> float:
    s = float(scale)
    if not (0 < s <= 1):
        raise UsageError(f"amt_s: scale must be in (0, 1], got {scale!r}")
    if s < 1:
        n = 16 / s
        if abs(n - round(n)) > 1e-9:
            raise UsageError(
                f"amt_s: a scale below 1 is 16/n for an integer n (VBench's formula), got {scale!r}"
            )
    return s


def vram_scale(height: int, width: int, total_memory: int) -> float:
    """The factor VBench's ``MotionSmoothness`` picks on CUDA for frames ``height x width`` and a GPU with
    ``total_memory`` bytes (anchor 1024*512 pixels, 1500 MB per anchor, 2500 MB bias)."""
    s = 1024 * 512 / (height * width) * math.sqrt((total_memory - 2500 * 1024**2) / (1500 * 1024**2))
    s = min(s, 1.0)
    return 1 / np.floor(1 / np.sqrt(s) * 16) * 16


@register_extractor
class AMTSmoothnessExtractor(Extractor):
    """All frames of one video -> ``[K, 1]`` interpolation residuals; see the module docstring."""

    name: ClassVar[str] = "amt_s"
    kind = "clip"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("scale", "config", "weights")
    weights_option: ClassVar[str | None] = "weights"
    min_side: ClassVar[int] = 113
    min_side_reason: ClassVar[str] = "AMT-S's correlation pyramid needs frames padded to at least 128 px"

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        scale: float = 1.0,
        config: str = "amt_s",
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if config not in CONFIGS:
            raise UsageError(f"amt_s: unknown config {config!r}; known: {', '.join(sorted(CONFIGS))}")
        super().__init__(
            device=device, batch_size=batch_size, scale=check_scale(scale), config=config, **options
        )
        self.scale = check_scale(scale)
        self.config = config
        self.weights_path = str(weights) if weights else None
        self.model: AMT | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        return load_amt(self.config, self.weights_path)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["weights"] = WEIGHTS_NAME
        ident["network"] = CONFIGS[self.config].to_dict()
        ident["procedure"] = PROCEDURE
        return ident

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """One window per predicted frame ``k``: the rows ``(2k, 2k + 1, 2k + 2)`` (its two even neighbours
        and the real odd frame it is compared with); with an even count the last odd frame is in none."""
        if num_frames < 3:
            raise MetricInputError(
                f"amt_s needs at least 3 frames (two even frames to interpolate between), got {num_frames}"
            )
        return [(2 * k, 2 * k + 1, 2 * k + 2) for k in range(len(range(0, num_frames, 2)) - 1)]

    def windows_per_call(self, height: int, width: int) -> int:
        return max(1, self.batch_size)  # ``batch_size`` predicted frames a forward pass, as on a whole clip

    def interpolate(self, kept: np.ndarray) -> np.ndarray:
        """uint8 even frames ``[N, H, W, 3]`` (frames ``0, 2, 4, ...`` of a stretch of the video) -> uint8
        ``[N - 1, H, W, 3]``: the predicted odd frames between consecutive ones, ``batch_size`` a pass."""
        self.ensure_loaded()
        assert self.model is not None
        h, w = kept.shape[1:3]
        divisor = int(16 / self.scale)
        left, right, top, bottom = pad_amounts(h, w, divisor)
        if min(h + top + bottom, w + left + right) * self.scale < MIN_PADDED_SIDE:
            raise MetricInputError(
                f"amt_s needs frames of at least {MIN_PADDED_SIDE - 15} px per side at scale 1 (padded frames "
                f"times the scale must reach {MIN_PADDED_SIDE}: AMT-S's correlation pyramid), got {h}x{w} at "
                f"scale {self.scale:g}"
            )
        x = torch.from_numpy(np.ascontiguousarray(kept)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        x = F.pad(x, [left, right, top, bottom], mode="replicate")
        outs = []
        with torch.inference_mode():
            n = len(x) - 1
            step = max(1, self.batch_size)
            for i in range(0, n, step):
                a = x[i : min(i + step, n)]
                b = x[i + 1 : min(i + step, n) + 1]
                embt = torch.full((len(a), 1, 1, 1), 0.5, device=self.device)
                pred = self.model(a, b, embt, scale_factor=self.scale)
                pred = pred[:, :, top : top + h, left : left + w]
                outs.append((pred * 255.0).permute(0, 2, 3, 1).float().cpu().numpy())
        return np.concatenate(outs).clip(0, 255).astype(np.uint8)

    def extract_windows(self, frames: DeclaredFrames, fps: float | None, lo: int, hi: int) -> np.ndarray:
        """Residuals of predicted frames ``lo .. hi - 1``: float64 ``[hi - lo, 1]``."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise UsageError(f"amt_s needs uint8 [T,H,W,3] frames, got {frames.dtype} {frames.shape}")
        self.frame_windows(len(frames), fps)  # too short: the same error as on the whole clip
        pred = self.interpolate(frames[list(range(2 * lo, 2 * hi + 1, 2))]).astype(np.int16)
        real = frames[[2 * k + 1 for k in range(lo, hi)]].astype(np.int16)
        return np.abs(pred - real).reshape(len(pred), -1).mean(axis=1, dtype=np.float64)[:, None]

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` (T >= 3) -> float64 ``[K, 1]`` mean |predicted - real| per odd frame."""
        return run_windows(self, checked_frames(self.name, frames, min_frames=0), fps)
