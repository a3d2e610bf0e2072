"""DOVER's two views of a video, sampled deterministically, and the ``dover`` extractor.

The views follow the authors' inference pipeline (VQAssessment/DOVER at f1ddc96: ``dover.yml`` ->
``UnifiedFrameSampler`` + ``spatial_temporal_view_decomposition`` + ``evaluate_one_video.py``):

**Technical view** (fragments; option names in brackets, defaults = the released configuration):

1. frames: ``num_clips`` (3) temporal segments of the video (segment ``i`` starts at ``T // num_clips * i``);
   in each, ``clip_len`` (32) frames ``frame_interval`` (2) apart, starting at a random offset in
   ``[0, T // num_clips - clip_len * frame_interval)`` (0 when the segment is not longer than that);
2. if the frame is smaller than the fragment grid (``fragments * fragment_size`` = 224) on either side, it is
   upscaled (bilinear on ``x / 255``, then ``* 255`` truncated to uint8) by ``1 / min(H / 224, W / 224)``;
   as in the authors' code the grid below is still computed from the size *before* upscaling;
3. a ``fragments x fragments`` (7 x 7) grid of cells of side ``H // 7`` by ``W // 7``; from each cell one
   ``fragment_size`` (32) square patch at a random offset inside the cell (offset 0 when the cell is not
   larger than the patch), drawn anew for every clip of ``clip_len`` frames; the patches are spliced into a
   224 x 224 frame.

**Aesthetic view**: ``clip_len`` (32) temporal segments, one frame from each (random offset in
``[0, T // 32 - 2)``), every frame resized (aspect ratio not kept) to ``resize x resize`` (224) with
bilinear interpolation, rounded back to uint8 (torchvision ``Resize`` on uint8 tensors). ``antialias``
(default False): torchvision < 0.17, which DOVER was trained and evaluated with (``torch~=1.13``), did not
antialias tensors; the authors' code run today with torchvision >= 0.17 does (pass ``antialias=True``).

Both views are normalised with the ImageNet mean/std on the 0-255 scale and cut into clips
``[num_clips, 3, clip_len, 224, 224]`` (aesthetic: one clip).

**Short videos** (fewer frames than a clip spans): the frame indices wrap around modulo the number of
frames, i.e. the video is looped, exactly as the authors' sampler does; nothing is zero-padded. Frames
smaller than a fragment (32 px) cannot be fragmented and are an error.

**Determinism.** The authors draw the offsets from the global numpy and torch random generators (unseeded),
so the same video scores differently on every run. Here every draw comes from
``numpy.random.default_rng(seed)`` created afresh for each video, in a fixed order (technical temporal
offsets, aesthetic temporal offsets, then the technical fragments' row and column offsets): a video's
score depends only on the video, the options and the seed, not on the other videos or their order.
``sampling="center"`` removes the randomness altogether: every offset is the middle of its range. DOVER
has no deterministic test-time sampler of its own (FAST-VQA's ``SampleFrames`` test mode in the same
repository centres its *temporal* clips but still draws the fragments at random); ``"center"`` is ours.

The ``dover`` extractor (kind ``"clip"``) turns a video's frames into one row ``[technical, aesthetic]`` of
raw branch scores (means of the heads' score maps over clips and positions); the ``dover`` metric rescales
them.

**Declared frames** (:meth:`~aigve.backbones.base.Backbone.frame_windows`): one window, the technical and
aesthetic rows the sampler draws (``num_clips * clip_len + clip_len`` entries, 128 by default, whatever the
video's length; a row drawn twice is held once). The temporal draws come first from the video's fresh
generator and depend only on the number of frames, the options and the seed, so :func:`sample_rows` gives
them before any pixel is read; the views are built from those frames alone (a streamed video holds only
them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from aigve.backbones.base import Extractor
from aigve.backbones.nets.dover import DOVERNet
from aigve.backbones.registry import register_extractor
from aigve.errors import MetricInputError, UsageError
from aigve.types import DeclaredFrames
from aigve.weights import load_into

WEIGHTS_NAME = "dover"
WEIGHTS_FILE = "DOVER.pth"
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
Sampling = Literal["random", "center"]
SAMPLINGS: tuple[str, ...] = ("random", "center")


@dataclass(frozen=True)
class ViewConfig:
    """The view geometry; defaults are the released ``dover.yml`` (technical: 3 clips x 32 frames, interval
    2, 7x7 fragments of 32 px; aesthetic: 32 frames, interval 2, 224 x 224)."""

    num_clips: int = 3
    clip_len: int = 32
    frame_interval: int = 2
    fragments: int = 7
    fragment_size: int = 32
    resize: int = 224
    antialias: bool = False

    def __post_init__(self) -> None:
        for name in ("num_clips", "clip_len", "frame_interval", "fragments", "fragment_size", "resize"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"dover: {name} must be an integer >= 1, got {value!r}")
        if self.clip_len % 2:
            raise UsageError(
                f"dover: clip_len must be even (the networks take frame pairs), got {self.clip_len}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Views:
    """Both views of one video, normalised, plus the sampling choices (for provenance and tests)."""

    technical: torch.Tensor  # [num_clips, 3, clip_len, F*S, F*S] float32
    aesthetic: torch.Tensor  # [1, 3, clip_len, R, R] float32
    technical_frames: np.ndarray  # [num_clips * clip_len] source rows
    aesthetic_frames: np.ndarray  # [clip_len] source rows
    offsets_h: np.ndarray  # [F, F, num_clips] fragment row offsets inside their cells
    offsets_w: np.ndarray


def _draw(rng: np.random.Generator | None, high: int, size: int | tuple[int, ...]) -> np.ndarray:
    """Uniform integers in ``[0, high)`` (``rng``), or the middle of that range (``rng=None``)."""
    if rng is None:
        return np.full(size, (high - 1) // 2, dtype=np.int64)
    return rng.integers(0, high, size=size, dtype=np.int64)


def temporal_indices(
    num_frames: int,
    frames_per_segment: int,
    segments: int,
    frame_interval: int,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Rows of a ``num_frames`` video: ``segments`` equal segments, in each ``frames_per_segment`` rows
    ``frame_interval`` apart from an offset drawn in ``[0, seg_len - frames_per_segment * frame_interval)``
    (0 when the segment is too short); indices wrap modulo ``num_frames`` (DOVER's ``UnifiedFrameSampler``)."""
    if num_frames < 1:
        raise ValueError("no frames to sample")
    seg_len = num_frames // segments
    span = frames_per_segment * frame_interval
    starts = np.arange(segments, dtype=np.int64) * seg_len
    offsets = _draw(rng, seg_len - span, segments) if seg_len > span else np.zeros(segments, dtype=np.int64)
    rows = (
        np.arange(frames_per_segment, dtype=np.int64)[None, :] * frame_interval + (starts + offsets)[:, None]
    )
    return np.mod(rows.reshape(-1), num_frames)


def _upscale_if_small(video: torch.Tensor, grid: int) -> torch.Tensor:
    """``[C, T, H, W]`` uint8: upscale so that the shorter relative side reaches ``grid`` (authors' rule)."""
    h, w = video.shape[-2:]
    ratio = min(h / grid, w / grid)
    if ratio >= 1:
        return video
    up = F.interpolate(video / 255.0, scale_factor=1 / ratio, mode="bilinear")
    return (up * 255.0).type_as(video)


def technical_view(
    frames: torch.Tensor, cfg: ViewConfig, rng: np.random.Generator | None
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """uint8 ``[C, T, H, W]`` (T = num_clips * clip_len) -> float32 ``[C, T, F*S, F*S]`` (0-255) spliced
    fragments, and the row/column offsets used."""
    c, t, res_h, res_w = frames.shape
    fr, fs = cfg.fragments, cfg.fragment_size
    if res_h < fs or res_w < fs:
        raise MetricInputError(
            f"dover: frames of {res_w}x{res_h} px are smaller than one {fs}x{fs} fragment; DOVER cannot score "
            f"them (use a larger video, or a smaller fragment_size)"
        )
    aligned = 1 if t == 1 else cfg.clip_len
    chunks = t // aligned
    video = _upscale_if_small(frames, fr * fs)
    cell_h, cell_w = res_h // fr, res_w // fr  # from the size before upscaling, as the authors do
    grid_h = [min(cell_h * i, res_h - fs) for i in range(fr)]
    grid_w = [min(cell_w * i, res_w - fs) for i in range(fr)]
    zeros = np.zeros((fr, fr, chunks), dtype=np.int64)
    off_h = _draw(rng, cell_h - fs, (fr, fr, chunks)) if cell_h > fs else zeros
    off_w = _draw(rng, cell_w - fs, (fr, fr, chunks)) if cell_w > fs else zeros.copy()
    out = torch.zeros((c, t, fr * fs, fr * fs), device=frames.device)
    for i, hs in enumerate(grid_h):
        for j, ws in enumerate(grid_w):
            for k in range(chunks):
                h0, w0 = hs + int(off_h[i, j, k]), ws + int(off_w[i, j, k])
                out[:, k * aligned : (k + 1) * aligned, i * fs : (i + 1) * fs, j * fs : (j + 1) * fs] = video[
                    :, k * aligned : (k + 1) * aligned, h0 : h0 + fs, w0 : w0 + fs
                ]
    return out, off_h, off_w


def aesthetic_view(frames: torch.Tensor, cfg: ViewConfig) -> torch.Tensor:
    """uint8 ``[C, T, H, W]`` -> uint8 ``[C, T, R, R]``: bilinear resize (torchvision ``Resize`` on uint8
    tensors: float interpolation, round, clamp), antialiased only if ``cfg.antialias``."""
    x = frames.permute(1, 0, 2, 3).to(torch.float32)
    x = F.interpolate(
        x, size=(cfg.resize, cfg.resize), mode="bilinear", align_corners=False, antialias=cfg.antialias
    )
    x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(1, 0, 2, 3)


def _normalise(video: torch.Tensor, clips: int) -> torch.Tensor:
    """``[C, T, H, W]`` 0-255 -> ``[clips, C, T / clips, H, W]`` normalised with DOVER's mean/std."""
    mean = torch.tensor(MEAN, device=video.device)
    std = torch.tensor(STD, device=video.device)
    v = ((video.permute(1, 2, 3, 0) - mean) / std).permute(3, 0, 1, 2)
    c, t, h, w = v.shape
    return v.reshape(c, clips, t // clips, h, w).transpose(0, 1)


def sample_rows(
    num_frames: int, cfg: ViewConfig | None = None, *, seed: int = 0, sampling: Sampling = "random"
) -> tuple[np.ndarray, np.ndarray, np.random.Generator | None]:
    """The technical rows ``[num_clips * clip_len]`` and aesthetic rows ``[clip_len]`` of a ``num_frames``
    video, and the generator after those draws (it draws the fragment offsets next; None for ``center``).
    They depend only on ``num_frames``, the options and the seed: what :meth:`DoverExtractor.frame_windows`
    declares."""
    cfg = cfg or ViewConfig()
    if sampling not in SAMPLINGS:
        raise UsageError(f"dover: sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if num_frames < 1:
        raise MetricInputError("dover: the video has no frames")
    rng = np.random.default_rng(seed) if sampling == "random" else None
    t_rows = temporal_indices(num_frames, cfg.clip_len, cfg.num_clips, cfg.frame_interval, rng)
    a_rows = temporal_indices(num_frames, 1, cfg.clip_len, cfg.frame_interval, rng)
    return t_rows, a_rows, rng


def sample_views(
    frames: np.ndarray | torch.Tensor | DeclaredFrames,
    cfg: ViewConfig | None = None,
    *,
    seed: int = 0,
    sampling: Sampling = "random",
    device: torch.device | str = "cpu",
) -> Views:
    """uint8 ``[T, H, W, 3]`` RGB frames of one video -> both DOVER views (see the module docstring). Only
    the rows :func:`sample_rows` draws are read (``frames`` may be a :class:`~aigve.types.DeclaredFrames`
    holding just those)."""
    cfg = cfg or ViewConfig()
    if sampling not in SAMPLINGS:
        raise UsageError(f"dover: sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if not isinstance(frames, torch.Tensor | DeclaredFrames):
        frames = np.asarray(frames)
    shape = tuple(frames.shape)
    uint8 = frames.dtype == (torch.uint8 if isinstance(frames, torch.Tensor) else np.uint8)
    if len(shape) != 4 or shape[-1] != 3 or not uint8:
        raise UsageError(f"dover needs uint8 [T,H,W,3] frames, got {frames.dtype} {shape}")
    t_rows, a_rows, rng = sample_rows(int(shape[0]), cfg, seed=seed, sampling=sampling)
    # only the sampled frames are read (a DeclaredFrames holds no others), once each
    used = np.unique(np.concatenate([t_rows, a_rows]))
    if isinstance(frames, torch.Tensor):
        picked = frames[torch.as_tensor(used, device=frames.device)].to(device)
    else:
        picked = torch.from_numpy(np.ascontiguousarray(frames[used])).to(device)
    at = {int(r): i for i, r in enumerate(used)}
    tech_src = picked[torch.as_tensor([at[int(r)] for r in t_rows], device=picked.device)]
    aes_src = picked[torch.as_tensor([at[int(r)] for r in a_rows], device=picked.device)]
    tech_src, aes_src = tech_src.permute(3, 0, 1, 2), aes_src.permute(3, 0, 1, 2)
    tech, off_h, off_w = technical_view(tech_src, cfg, rng)
    aes = aesthetic_view(aes_src, cfg)
    return Views(
        technical=_normalise(tech, cfg.num_clips),
        aesthetic=_normalise(aes.to(torch.float32), 1),
        technical_frames=t_rows,
        aesthetic_frames=a_rows,
        offsets_h=off_h,
        offsets_w=off_w,
    )


def load_dover(explicit_path: str | os.PathLike[str] | None = None) -> tuple[DOVERNet, str]:
    """Resolve (weights registry ``dover``, file ``DOVER.pth``), check and strictly load DOVER.

    Returns ``(model in eval mode on CPU, sha256 of the file)``; ``WeightsError`` naming the file and the
    fix when it is missing, unreadable or not a DOVER checkpoint."""
    loaded = load_into(
        DOVERNet,
        WEIGHTS_NAME,
        explicit_path,
        key="auto",
        meta=True,
        what="a DOVER checkpoint in the layout of the authors' DOVER.pth",
        fix=(
            f"pass {WEIGHTS_FILE} from https://github.com/QualityAssessment/DOVER/releases (DOVER-Mobile is a "
            f"different network and is not supported)"
        ),
    )
    return loaded.module, loaded.sha256


@register_extractor
class DoverExtractor(Extractor):
    """Video -> one row ``[technical, aesthetic]`` of raw DOVER branch scores (see the module docstring).

    Options: the :class:`ViewConfig` fields (``num_clips``, ``clip_len``, ``frame_interval``,
    ``fragments``, ``fragment_size``, ``resize``, ``antialias``), ``seed`` (0), ``sampling``
    (``"random"`` seeded / ``"center"``) and ``weights`` (explicit checkpoint path)."""

    name: ClassVar[str] = "dover"
    #: the technical fragment grid (7 x 32) and the aesthetic resize, both 224 by default; the instance
    #: holds the smaller of its options
    input_side: ClassVar[int | None] = 224
    kind = "clip"
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = "nnvqa"
    known_options: ClassVar[tuple[str, ...] | None] = tuple(
        sorted({*ViewConfig.__dataclass_fields__, "seed", "sampling", "weights"})
    )

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        seed: int = 0,
        sampling: str = "random",
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        self.check_options(options)
        if sampling not in SAMPLINGS:
            raise UsageError(f"dover: sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UsageError(f"dover: seed must be an integer >= 0, got {seed!r}")
        self.config = ViewConfig(**options)
        self.input_side = min(  # type: ignore[misc]
            self.config.fragments * self.config.fragment_size, self.config.resize
        )
        super().__init__(
            device=device, batch_size=batch_size, seed=seed, sampling=sampling, **self.config.to_dict()
        )
        self.seed = int(seed)
        self.sampling: Sampling = sampling  # type: ignore[assignment]
        self.weights_path = str(weights) if weights else None
        self.model: DOVERNet | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        return load_dover(self.weights_path)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {
            "id": "dover-views-f1ddc96",
            "mean": list(MEAN),
            "std": list(STD),
            "short_video": "indices wrap modulo the number of frames (looped)",
        }
        return ident

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """One window: the rows the views read, technical then aesthetic (``num_clips * clip_len + clip_len``
        entries; a row both views read, or a short video's looped rows, appear more than once)."""
        t_rows, a_rows, _ = sample_rows(num_frames, self.config, seed=self.seed, sampling=self.sampling)
        return [[int(r) for r in np.concatenate([t_rows, a_rows])]]

    def views(self, frames: np.ndarray | DeclaredFrames) -> Views:
        """The two views this extractor feeds the network for ``frames``."""
        return sample_views(frames, self.config, seed=self.seed, sampling=self.sampling, device=self.device)

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` -> float64 ``[1, 2]``: raw technical and aesthetic scores."""
        self.ensure_loaded()
        assert self.model is not None
        v = self.views(frames)
        with torch.inference_mode():
            tech = torch.cat(
                [
                    self.model.technical_map(v.technical[i : i + self.batch_size])
                    for i in range(0, len(v.technical), self.batch_size)
                ]
            ).mean()
            aes = self.model.aesthetic_map(v.aesthetic).mean()
        return np.array([[float(tech), float(aes)]], dtype=np.float64)
