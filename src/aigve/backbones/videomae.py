"""``videomae_v2``: one VideoMAE-v2 feature per clip, the feature of content-debiased FVD (cd-fvd).

Network: :class:`aigve.backbones.nets.videomae.VideoMAEv2ViT` loaded (``strict=True``) from
``vit_g_hybrid_pt_1200e_ssv2_ft.pth`` (weights registry ``videomae_v2_g_ssv2``: ViT-g/14, VideoMAE-v2
hybrid pre-training, fine-tuned on Something-Something v2 — the checkpoint cd-fvd 0.1.1 loads). The
state dict is taken from the file's ``model``/``module`` entry when it has one (cd-fvd does the same).

Preprocessing, exactly cd-fvd 0.1.1's ``preprocess_videomae``: uint8 frames ``[T, H, W, 3]`` ->
float32 ``/ 255`` (values in ``[0, 1]``; no mean/std normalisation) -> resized to ``resolution x
resolution`` (224) with ``F.interpolate(mode="bilinear", align_corners=False)`` (no antialias, aspect
ratio not kept) -> ``[1, 3, T, r, r]``.

Output: float32 ``[1, D]`` (D = 1408 for ViT-g), cd-fvd's ``forward_features``: ``fc_norm`` of the mean
of the last block's tokens — the pre-head feature, not the SSv2 logits. Kind ``"clip"``: the caller's
sampler decides the frames (the ``fvd_videomae`` metric passes ``frames`` = 16); other clip lengths
(>= 2) use the time-resampled position table, as cd-fvd does.

Options: ``resolution`` (must equal the network's input size, 224: the ViT's position table is fixed;
cd-fvd always feeds 224 x 224 to this model), ``config`` (``"vit_g_hybrid"``; ``"tiny_test"`` is a
narrow 2-block network with the same geometry, for tests with an explicit random ``weights`` file),
``weights`` (explicit checkpoint path; its own sha256 goes into the identity).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from aigve.backbones.base import Extractor, extract_stacked_by_shape
from aigve.backbones.nets.videomae import CONFIGS, VideoMAEv2ViT
from aigve.backbones.registry import register_extractor
from aigve.errors import UsageError
from aigve.weights import fetch_hint, load_into

WEIGHTS_NAME = "videomae_v2_g_ssv2"
WEIGHTS_FILE = "vit_g_hybrid_pt_1200e_ssv2_ft.pth"
DEFAULT_CONFIG = "vit_g_hybrid"
FEATURE = "fc_norm(mean over the last block's tokens), pre-head (cd-fvd forward_features)"
PREPROCESS = (
    "uint8 -> float32 /255 ([0,1], no mean/std) -> bilinear resize to RxR (align_corners=False, "
    "no antialias) -> [B,3,T,R,R] (cd-fvd preprocess_videomae)"
)
MIN_FRAMES = 2  # one tubelet


def load_videomae(
    config: str = DEFAULT_CONFIG, explicit_path: str | os.PathLike[str] | None = None
) -> tuple[VideoMAEv2ViT, str]:
    """Resolve (registry ``videomae_v2_g_ssv2``), verify and strictly load VideoMAE-v2 weights.

    Returns ``(model in eval mode on CPU, sha256 of the file)``. Raises ``WeightsError`` naming the
    file and the fix when it is missing, unreadable or does not fit the network of ``config``.
    """
    cfg = _config(config)
    if config != DEFAULT_CONFIG and explicit_path is None:
        raise UsageError(
            f"videomae_v2: config {config!r} has no published weights (it is for tests); pass an explicit "
            "weights=PATH, or use the default config 'vit_g_hybrid'"
        )
    loaded = load_into(
        lambda: VideoMAEv2ViT(cfg),
        WEIGHTS_NAME,
        explicit_path,
        key="auto",
        # cd-fvd copies the file's tensors into a float32 model; assign=True would keep e.g. fp16 storage
        transform_state=lambda state, _: {
            k: v.float() if v.is_floating_point() else v for k, v in state.items()
        },
        meta=True,  # no random init of ~1e9 parameters that are overwritten right away
        what=f"a VideoMAE-v2 checkpoint for config {config!r}",
        fix=f"pass {WEIGHTS_FILE} (`aigve weights fetch {WEIGHTS_NAME}`), or the config that matches the file",
        missing_hint=fetch_hint(WEIGHTS_NAME, size="a few GB"),
    )
    return loaded.module, loaded.sha256


def _config(name: str) -> Any:
    if name not in CONFIGS:
        raise UsageError(f"videomae_v2: unknown config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[name]


def preprocess(videos: np.ndarray, resolution: int = 224, device: torch.device | None = None) -> torch.Tensor:
    """uint8 ``[B, T, H, W, 3]`` -> float32 ``[B, 3, T, r, r]`` in ``[0, 1]`` (cd-fvd's ``preprocess_videomae``)."""
    b, t, h, w, c = videos.shape
    x = torch.from_numpy(np.ascontiguousarray(videos)).to(device or "cpu").to(torch.float32) / 255
    x = x.flatten(end_dim=1).permute(0, 3, 1, 2)  # [B*T, 3, H, W]
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return x.view(b, t, c, resolution, resolution).transpose(1, 2).contiguous()


@register_extractor
class VideoMAEv2Extractor(Extractor):
    """Clip -> one VideoMAE-v2 feature row; see the module docstring."""

    name: ClassVar[str] = "videomae_v2"
    input_side: ClassVar[int | None] = 224  # the ViT position table fixes 224
    kind = "clip"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("resolution", "config", "weights")
    extra: ClassVar[str | None] = None

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        resolution: int = 224,
        config: str = DEFAULT_CONFIG,
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        cfg = _config(config)
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution != cfg.img_size:
            raise UsageError(
                f"videomae_v2: resolution must be {cfg.img_size} (the input size of the {config} network: its "
                f"position table is fixed; cd-fvd also always resizes to {cfg.img_size}), got {resolution!r}"
            )
        super().__init__(
            device=device, batch_size=batch_size, resolution=resolution, config=config, **options
        )
        self.resolution = int(resolution)
        self.config = config
        self.cfg = cfg
        self.weights_path = str(weights) if weights else None
        self.model: VideoMAEv2ViT | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        return load_videomae(self.config, self.weights_path)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["weights"] = WEIGHTS_NAME
        ident["config"] = self.config
        ident["network"] = self.cfg.to_dict()
        ident["resolution"] = self.resolution
        ident["preprocess"] = PREPROCESS
        ident["feature"] = FEATURE
        return ident

    @property
    def dim(self) -> int:
        """Width of one feature row."""
        return int(self.cfg.embed_dim)

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` RGB (T >= 2) -> float32 ``[1, dim]``."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise UsageError(f"videomae_v2 needs uint8 [T,H,W,3] frames, got {frames.dtype} {frames.shape}")
        return self.extract_videos(frames[None])

    def extract_many(self, clips: list[np.ndarray], fps: list[float | None]) -> list[np.ndarray]:
        """Clips of equal shape go through the network together (``batch_size`` per pass)."""
        return extract_stacked_by_shape(clips, self.extract_videos)

    def extract_videos(self, videos: np.ndarray) -> np.ndarray:
        """uint8 ``[B, T, H, W, 3]`` (clips of equal length) -> float32 ``[B, dim]``, ``batch_size`` clips a pass."""
        videos = np.asarray(videos)
        if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != np.uint8:
            raise UsageError(f"videomae_v2 needs uint8 [B,T,H,W,3] videos, got {videos.dtype} {videos.shape}")
        if videos.shape[1] < MIN_FRAMES:
            raise UsageError(
                f"videomae_v2 needs clips of at least {MIN_FRAMES} frames, got {videos.shape[1]}: "
                "sample more frames (the fvd_videomae metric pads short videos by repeating the last frame)"
            )
        self.ensure_loaded()
        assert self.model is not None
        outs = []
        with torch.inference_mode():
            for i in range(0, len(videos), max(1, self.batch_size)):
                x = preprocess(videos[i : i + self.batch_size], self.resolution, self.device)
                outs.append(self.model.features(x).float().cpu().numpy())
        return np.concatenate(outs, axis=0)
