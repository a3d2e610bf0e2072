"""Per-second features of the no-reference VQA models: SimpleVQA's spatial branch and SlowFast motion.

Both extractors are given all decoded frames (``ALL_FRAMES``) with the video's frame rate (they read only
the rows they declare, see below) and cut them into seconds the way SimpleVQA's ``test_demo.py`` does
(sunwei925/SimpleVQA @ 017edda):

- ``r = round(fps)`` frames per second, ``n = T // r`` whole seconds (``int(video_length / r)``);
- key frame of second ``i`` = frame ``i * r``;
- motion clip of second ``i`` = frames ``i*r .. i*r + 31`` (32 frames), the missing tail filled with the
  clip's last available frame.

Padding policy for short clips: a video shorter than one second (``T < r``) gets one second (key frame 0,
one clip padded with its last frame) instead of the authors' crash; both extractors return ``n`` rows and
nothing else is padded here (the metric repeats the last second up to the model's 8-second window, as the
authors' training data preparation did).

``simplevqa_spatial`` (kind ``clip``, one row per second, float32 ``[n, 7168]``): the key frame resized so
its shorter side is 520 (longer side ``int(520 * long / short)``, PIL-like bilinear: antialiased, width then height, each
pass rounded to 8-bit levels, like torchvision's ``Resize(520)`` on a PIL image), centre-cropped to
448x448 (torchvision's ``CenterCrop`` offsets), scaled to [0, 1] and normalised with the ImageNet mean/std,
through the ResNet-50 *of the SimpleVQA checkpoint* (``UGC_BVQA_model.pth``: the backbone was fine-tuned
with the head, so torchvision's ImageNet weights would be a different network); the row is the mean and
std of layer2/3/4 (:class:`aigve.backbones.nets.simplevqa.SimpleVQANet`).

``slowfast_r50`` (kind ``clip``, one row per second, float32 ``[n, 2304]`` = slow 2048 || fast 256): every
frame resized to 224x224 (aspect not kept; the same PIL-like bilinear), scaled to
[0, 1], normalised with mean 0.45 / std 0.225; per 32-frame clip the fast pathway sees all 32 frames and
the slow pathway the 8 frames ``linspace(0, 31, 8).long()``; features are the head's average pools of
pytorchvideo's Kinetics-400 SlowFast 8x8 R50 (``SLOWFAST_8x8_R50.pyth``).

Batching: ``batch_size`` counts frames per forward pass as for per-frame extractors: the spatial branch runs
``max(1, batch_size // 4)`` key frames at a time (448 px = 4x the pixels of 224), the motion branch
``max(1, batch_size // 32)`` clips of 32 frames. Batch norm is in eval mode, so results do not depend on it.

Declared frames (:meth:`~aigve.backbones.base.Backbone.frame_windows`): one window per second, in order —
``[key frame]`` for ``simplevqa_spatial``, the second's 32 clip rows (repeats of the last frame included)
for ``slowfast_r50`` — and one call of ``extract_windows`` takes the batch above
(:meth:`~aigve.backbones.base.Backbone.windows_per_call`). ``extract`` runs through those windows
(:func:`~aigve.backbones.base.run_windows`), so a streamed video holds one batch of seconds at a time and
both paths give the same rows; the extractors index only their declared rows, never the whole clip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from aigve.backbones.base import Extractor, Scorer, ScorerInput, checked_frames, run_windows
from aigve.backbones.nets.simplevqa import SimpleVQAHead, SimpleVQANet, head_state, strip_data_parallel
from aigve.backbones.nets.slowfast import SlowFastR50
from aigve.backbones.registry import register_extractor
from aigve.errors import MetricInputError, UsageError
from aigve.types import DeclaredFrames
from aigve.weights import load_into

log = logging.getLogger(__name__)

SIMPLEVQA_WEIGHTS = "simplevqa_ugc"  # UGC_BVQA_model.pth
SLOWFAST_WEIGHTS = "slowfast_r50"  # SLOWFAST_8x8_R50.pyth
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
SPATIAL_RESIZE = 520
SPATIAL_CROP = 448
MOTION_SIZE = 224
CLIP_FRAMES = 32
SIMPLEVQA_WINDOW = 8  # seconds: the model's window; shorter videos repeat their last second


# ------------------------------------------------------------------------------------------------
# seconds, key frames, clips
# ------------------------------------------------------------------------------------------------
def frames_per_second(fps: float | None) -> int:
    """SimpleVQA's ``int(round(fps))`` (at least 1); ``UsageError`` without a frame rate."""
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise UsageError(
            "SimpleVQA/SlowFast features cut the video into seconds and need its frame rate, but none is "
            "known: pass --fps"
        )
    return max(1, int(round(float(fps))))


def num_seconds(num_frames: int, fps: float | None) -> int:
    """Whole seconds ``T // round(fps)``, at least 1 for a non-empty clip (see the padding policy)."""
    if num_frames < 1:
        raise UsageError("no frames to extract SimpleVQA/SlowFast features from")
    return max(1, num_frames // frames_per_second(fps))


def key_frame_rows(num_frames: int, fps: float | None) -> list[int]:
    """Rows of the key frames: ``i * round(fps)`` for each whole second."""
    r = frames_per_second(fps)
    return [i * r for i in range(num_seconds(num_frames, fps))]


def clip_rows(num_frames: int, fps: float | None, length: int = CLIP_FRAMES) -> list[list[int]]:
    """Rows of each second's motion clip: ``length`` frames from ``i * round(fps)``, the tail repeating the
    last frame of the video."""
    r = frames_per_second(fps)
    return [
        [min(i * r + j, num_frames - 1) for j in range(length)] for i in range(num_seconds(num_frames, fps))
    ]


# ------------------------------------------------------------------------------------------------
# preprocessing
# ------------------------------------------------------------------------------------------------
def _to_float_nchw(frames: torch.Tensor) -> torch.Tensor:
    return frames.permute(0, 3, 1, 2).to(torch.float32)


def _resize_levels(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL-like bilinear resize of 8-bit images: antialiased (support scaled with the downscale factor),
    width first, then height, each pass rounded and clamped to 8-bit levels as PIL's uint8 passes are.
    Within 1-2 levels of ``PIL.Image.resize(BILINEAR)`` everywhere, 0.01-0.03 levels on average."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if w != size[1]:
        x = F.interpolate(x, size=(h, size[1]), mode="bilinear", align_corners=False, antialias=True)
        x = x.round().clamp(0.0, 255.0)
    if h != size[0]:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = x.round().clamp(0.0, 255.0)
    return x


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision ``Resize(size)``: shorter side -> ``size``, longer side -> ``int(size * long / short)``."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def center_crop_offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    """torchvision ``CenterCrop`` offsets ``int(round((dim - crop) / 2))`` (Python rounding)."""
    return int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))


def _normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x / 255.0 - m) / s


def preprocess_spatial(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, 448, 448]``: Resize(520), CenterCrop(448), ImageNet norm."""
    x = _to_float_nchw(frames)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    nh, nw = shorter_side_size(h, w, SPATIAL_RESIZE)
    x = _resize_levels(x, (nh, nw))
    top, left = center_crop_offsets(nh, nw, SPATIAL_CROP)
    x = x[..., top : top + SPATIAL_CROP, left : left + SPATIAL_CROP]
    return _normalise(x, IMAGENET_MEAN, IMAGENET_STD)


def preprocess_motion(frames: torch.Tensor, size: int = MOTION_SIZE) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, size, size]``: Resize([size, size]), mean 0.45 / std 0.225."""
    x = _resize_levels(_to_float_nchw(frames), (size, size))
    return _normalise(x, KINETICS_MEAN, KINETICS_STD)


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------
def load_simplevqa_net(explicit_path: str | os.PathLike[str] | None = None) -> tuple[SimpleVQANet, str]:
    """Resolve (registry ``simplevqa_ugc``), un-``DataParallel`` and strictly load ``UGC_BVQA_model.pth``.

    Returns ``(network in eval mode on CPU, sha256)``. ``WeightsError`` (naming the file, where to get it and where to put it) when it is
    absent or not a SimpleVQA checkpoint.
    """
    loaded = load_into(
        SimpleVQANet,
        SIMPLEVQA_WEIGHTS,
        explicit_path,
        key="auto",
        transform_state=lambda state, _: strip_data_parallel(state),
        what="a SimpleVQA (UGC_BVQA_model.pth) checkpoint",
    )
    return loaded.module, loaded.sha256


def load_simplevqa_head(explicit_path: str | os.PathLike[str] | None = None) -> tuple[SimpleVQAHead, str]:
    """Just the quality head of ``UGC_BVQA_model.pth`` (``quality.*``), on CPU in float64, with the sha256."""
    loaded = load_into(
        SimpleVQAHead,
        SIMPLEVQA_WEIGHTS,
        explicit_path,
        key="auto",
        transform_state=lambda state, _: head_state(strip_data_parallel(state)),
        what="a SimpleVQA checkpoint with its quality head",
    )
    return loaded.module.double().eval(), loaded.sha256


def head_from_network(net: SimpleVQANet) -> SimpleVQAHead:
    """The quality head of a loaded SimpleVQA network (its own tensors, copied to CPU), in float64."""
    head = SimpleVQAHead()
    head.load_state_dict({k: v.detach().cpu() for k, v in head_state(net.state_dict()).items()}, strict=True)
    return head.double().eval()


def pad_seconds(rows: np.ndarray, min_rows: int) -> np.ndarray:
    """Repeat the last row until there are ``min_rows`` rows (no-op when there are enough)."""
    rows = np.asarray(rows)
    if rows.shape[0] >= min_rows:
        return rows
    return np.concatenate([rows, np.repeat(rows[-1:], min_rows - rows.shape[0], axis=0)], axis=0)


def simplevqa_score(
    spatial: np.ndarray, motion: np.ndarray, head: torch.nn.Module, min_seconds: int = SIMPLEVQA_WINDOW
) -> float:
    """Mean over seconds of ``head(spatial_i, motion_i)`` after padding both to ``min_seconds`` rows.

    ``spatial`` ``[n, 7168]`` and ``motion`` ``[n, 2304]`` must have one row per second each; the head runs
    in its own dtype on CPU.
    """
    if spatial.shape[0] != motion.shape[0]:
        raise ValueError(f"spatial ({spatial.shape[0]}) and motion ({motion.shape[0]}) rows differ")
    s = pad_seconds(spatial, min_seconds)
    m = pad_seconds(motion, min_seconds)
    p = next(head.parameters())
    with torch.inference_mode():
        q = head(torch.from_numpy(s).to(p), torch.from_numpy(m).to(p))
    return float(q.double().mean())


# ------------------------------------------------------------------------------------------------
# extractors
# ------------------------------------------------------------------------------------------------
class _VQAExtractor(Extractor):
    kind = "clip"
    extra: ClassVar[str | None] = "nnvqa"
    known_options: ClassVar[tuple[str, ...] | None] = ("weights",)

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if int(batch_size) < 1:
            raise UsageError(f"{self.name}: batch_size must be >= 1, got {batch_size}")
        super().__init__(device=device, batch_size=batch_size, **options)
        self.weights_path = str(weights) if weights else None


@register_extractor
class SimpleVQASpatialExtractor(_VQAExtractor):
    """Key frame of each second -> SimpleVQA ResNet-50 mean/std features, float32 ``[n_seconds, 7168]``.

    Option ``weights``: path of ``UGC_BVQA_model.pth`` (else the weights registry's ``simplevqa_ugc``).
    """

    name: ClassVar[str] = "simplevqa_spatial"
    input_side: ClassVar[int | None] = SPATIAL_RESIZE  # shorter side resized to 520, then 448 crop
    version: ClassVar[str] = "1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model: SimpleVQANet | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        return load_simplevqa_net(self.weights_path)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {
            "frames": "key frame i*round(fps) of each whole second",
            "resize": f"shorter-side-{SPATIAL_RESIZE}-pil-like-bilinear-2pass-uint8",
            "center_crop": SPATIAL_CROP,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
        }
        return ident

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """One window per second: its key frame."""
        return [[r] for r in key_frame_rows(num_frames, fps)]

    def windows_per_call(self, height: int, width: int) -> int:
        return max(1, self.batch_size // 4)

    def extract_windows(self, frames: DeclaredFrames, fps: float | None, lo: int, hi: int) -> np.ndarray:
        """Seconds ``lo .. hi - 1``: their key frames in one forward pass -> float32 ``[hi - lo, 7168]``."""
        frames = checked_frames(self.name, frames)
        rows = key_frame_rows(len(frames), fps)[lo:hi]
        self.ensure_loaded()
        return self._run(frames[rows])

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` + fps -> float32 ``[n_seconds, 7168]`` (reads the key frames only)."""
        return run_windows(self, checked_frames(self.name, frames), fps)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        assert self.model is not None
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chunk)).to(self.device)
            return self.model.spatial_features(preprocess_spatial(x)).float().cpu().numpy()


@register_extractor
class SlowFastMotionExtractor(_VQAExtractor):
    """32-frame clip of each second -> SlowFast R50 pooled features, float32 ``[n_seconds, 2304]``.

    Option ``weights``: path of pytorchvideo's ``SLOWFAST_8x8_R50.pyth`` (else the registry's
    ``slowfast_r50``); the state dict is read from its ``model_state`` entry when present.
    """

    name: ClassVar[str] = "slowfast_r50"
    input_side: ClassVar[int | None] = MOTION_SIZE  # 224x224
    version: ClassVar[str] = "1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model: SlowFastR50 | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        option = (
            "for SimpleVQA the SlowFast file is passed as --metric-option simplevqa.slowfast_weights=PATH"
        )
        loaded = load_into(
            SlowFastR50,
            SLOWFAST_WEIGHTS,
            self.weights_path,
            key="auto",
            what="a SlowFast 8x8 R50 (SLOWFAST_8x8_R50.pyth) checkpoint",
            fix=f"pass SLOWFAST_8x8_R50.pyth ({option})",
            note=option,
        )
        return loaded.module, loaded.sha256

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {
            "clips": f"{CLIP_FRAMES} frames from i*round(fps) per whole second, tail repeats the last frame",
            "resize": f"{MOTION_SIZE}x{MOTION_SIZE}-pil-like-bilinear-2pass-uint8",
            "mean": KINETICS_MEAN,
            "std": KINETICS_STD,
            "slow": "linspace(0, 31, 8).long()",
        }
        return ident

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """One window per second: its 32 clip rows (the tail repeating the video's last frame)."""
        return list(clip_rows(num_frames, fps))

    def windows_per_call(self, height: int, width: int) -> int:
        return max(1, self.batch_size // CLIP_FRAMES)

    def extract_windows(self, frames: DeclaredFrames, fps: float | None, lo: int, hi: int) -> np.ndarray:
        """Seconds ``lo .. hi - 1``: their clips in one forward pass -> float32 ``[hi - lo, 2304]``."""
        frames = checked_frames(self.name, frames)
        clips = clip_rows(len(frames), fps)[lo:hi]
        self.ensure_loaded()
        return self._run(frames, clips)

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` + fps -> float32 ``[n_seconds, 2304]`` (reads the clips' rows only)."""
        return run_windows(self, checked_frames(self.name, frames), fps)

    def _run(self, frames: Any, clips: list[list[int]]) -> np.ndarray:
        assert self.model is not None
        used = sorted({r for c in clips for r in c})
        pos = {r: i for i, r in enumerate(used)}
        with torch.inference_mode():
            x = preprocess_motion(torch.from_numpy(np.ascontiguousarray(frames[used])).to(self.device))
            idx = torch.tensor([[pos[r] for r in c] for c in clips], device=x.device)
            batch = x[idx].permute(0, 2, 1, 3, 4)  # [B, 3, 32, 224, 224]
            slow, fast = self.model.pooled(*SlowFastR50.pathways(batch))
            return torch.cat([slow, fast], 1).float().cpu().numpy()


@register_extractor
class SimpleVQAHeadScorer(Scorer):
    """SimpleVQA's quality head on a video's per-second spatial and motion features -> ``[1, 1]`` (the mean
    over seconds after padding to ``min_seconds`` rows; LSVQ MOS/20 scale).

    Reads two extractors: ``simplevqa_spatial`` (option ``weights``, the checkpoint that also holds the
    head) and ``slowfast_r50`` (option ``slowfast_weights``). The head's tensors are taken from the spatial
    extractor the engine built (one read of the checkpoint), or read from the checkpoint when used alone.
    """

    name: ClassVar[str] = "simplevqa_head"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("weights", "slowfast_weights", "min_seconds")
    extra: ClassVar[str | None] = "nnvqa"
    input: ClassVar[Literal["frames", "features"]] = "features"
    columns: ClassVar[tuple[str, ...]] = ("quality",)

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        options.setdefault("min_seconds", SIMPLEVQA_WINDOW)
        ms = options["min_seconds"]
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 1:
            raise UsageError(f"simplevqa: min_seconds must be an integer >= 1, got {ms!r}")
        super().__init__(device, batch_size, **options)
        self._head: SimpleVQAHead | None = None
        self._sha: str | None = None

    def upstreams(self) -> dict[str, tuple[str, dict[str, Any]]]:
        sp = {"weights": str(self.options["weights"])} if self.options.get("weights") else {}
        mo = (
            {"weights": str(self.options["slowfast_weights"])} if self.options.get("slowfast_weights") else {}
        )
        return {"spatial": ("simplevqa_spatial", sp), "motion": ("slowfast_r50", mo)}

    def upstream(self) -> tuple[str, dict[str, Any]]:
        return self.upstreams()["spatial"]

    def load(self) -> None:
        if self._head is not None:
            return
        spatial = getattr(self, "upstream_extractors", {}).get("spatial")
        if isinstance(spatial, SimpleVQASpatialExtractor):  # the engine's: one read of the checkpoint
            spatial.ensure_loaded()
            assert spatial.model is not None
            self._head, self._sha = head_from_network(spatial.model), spatial.weights_sha256()
        else:
            self._head, self._sha = load_simplevqa_head(self.options.get("weights"))
        self._loaded = True

    def weights_sha256(self) -> str | None:
        self.ensure_loaded()
        return self._sha

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        pairs = []
        for it in items:
            s = np.asarray(it.features["spatial"], dtype=np.float32)
            m = np.asarray(it.features["motion"], dtype=np.float32)
            if s.ndim != 2 or m.ndim != 2 or s.shape[0] < 1 or s.shape[0] != m.shape[0]:
                raise MetricInputError(
                    f"simplevqa got {s.shape} spatial and {m.shape} motion features; they need one row per "
                    "second each — clear the feature cache (--cache-dir) if it holds stale entries"
                )
            pairs.append((s, m))
        self.ensure_loaded()
        assert self._head is not None
        out = []
        for s, m in pairs:
            q = simplevqa_score(s, m, self._head, int(self.options["min_seconds"]))
            out.append(np.array([[q]], dtype=np.float64))
        return out
