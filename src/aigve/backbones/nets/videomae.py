"""VideoMAE-v2 video ViT (the fine-tuned classifier cd-fvd 0.1.1 uses for content-debiased FVD).

Written from the architecture description of VideoMAE v2 (Wang et al. 2023) and checked against
cd-fvd 0.1.1's copy of it (``cdfvd.third_party.VideoMAEv2.videomaev2_finetune.VisionTransformer``):
the ``state_dict`` keys and shapes are the same, so ``vit_g_hybrid_pt_1200e_ssv2_ft.pth`` loads with
``strict=True``, and on identical weights the features agree to float32 rounding
(tests/backbones/test_videomae.py).

Layout (``VideoMAEConfig``, ViT-g/14 by default):

- ``patch_embed.proj``: a 3-D convolution cutting the clip ``[B, 3, T, H, W]`` into tubelets of
  ``tubelet_size x patch_size x patch_size`` (2 x 14 x 14) -> ``T/2 * (H/14) * (W/14)`` tokens;
- a fixed sinusoidal position table (not a parameter, not in the checkpoint) for ``num_frames`` (16)
  frames; other clip lengths resample it along time (trilinear, scale ``(t + 0.1) / t_grid``), as cd-fvd;
- ``blocks.{i}``: pre-norm transformer blocks (LayerNorm eps 1e-6; attention with a bias on q and v
  only, ``q_bias``/``v_bias``; MLP ``fc1`` -> exact GELU -> ``fc2`` with hidden ``int(dim * mlp_ratio)``);
  no layer scale (``init_values=0``), stochastic depth only matters in training;
- ``fc_norm`` applied to the *mean* of the last block's tokens -> the feature; ``head`` (174 SSv2
  classes) maps it to logits and is loaded but not used for FVD.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CONFIGS",
    "VideoMAEConfig",
    "VideoMAEv2ViT",
    "random_state_dict",
    "sinusoid_table",
]


@dataclass(frozen=True)
class VideoMAEConfig:
    """Sizes of the video ViT (defaults: ViT-g/14, VideoMAE-v2 hybrid pre-training, SSv2 fine-tune)."""

    img_size: int = 224
    patch_size: int = 14
    tubelet_size: int = 2
    num_frames: int = 16  # clip length the position table is built for
    embed_dim: int = 1408
    depth: int = 40
    num_heads: int = 16
    mlp_ratio: float = 48 / 11
    num_classes: int = 174
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    in_chans: int = 3

    def __post_init__(self) -> None:
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}")

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid ``(t, h, w)`` of a ``num_frames``-frame clip."""
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CONFIGS: dict[str, VideoMAEConfig] = {
    # the checkpoint cd-fvd uses: vit_g_hybrid_pt_1200e_ssv2_ft.pth (about 1.0e9 parameters)
    "vit_g_hybrid": VideoMAEConfig(),
    # same geometry (224 px, 14 px patches, 2-frame tubelets, 16 frames), tiny width/depth: tests only
    "tiny_test": VideoMAEConfig(embed_dim=24, depth=2, num_heads=2, num_classes=10),
}


def sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """Transformer sine-cosine table ``[1, n_position, dim]`` (float64 maths, float32 result).

    Column ``j`` of row ``p`` is ``p / 10000 ** (2 * (j // 2) / dim)``, sine on even, cosine on odd columns.
    """
    pos = np.arange(n_position, dtype=np.float64)[:, None]
    expo = 2 * (np.arange(dim) // 2) / dim
    angles = pos / np.power(10000.0, expo)[None, :]
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.tensor(angles, dtype=torch.float32).unsqueeze(0)


class PatchEmbed(nn.Module):
    """Tubelet embedding: non-overlapping ``tubelet x patch x patch`` 3-D convolution."""

    def __init__(self, cfg: VideoMAEConfig) -> None:
        super().__init__()
        k = (cfg.tubelet_size, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(cfg.in_chans, cfg.embed_dim, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, D, t, h, w] -> [B, N, D]


class Attention(nn.Module):
    """Multi-head self-attention; the qkv projection has a bias on q and v only (k's is zero)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias: nn.Parameter | None = nn.Parameter(torch.zeros(dim))
            self.v_bias: nn.Parameter | None = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = None
        if self.q_bias is not None and self.v_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, N, head_dim]
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (no layer scale)."""

    def __init__(self, cfg: VideoMAEConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoMAEv2ViT(nn.Module):
    """VideoMAE-v2 fine-tuned video ViT; :meth:`features` is cd-fvd's ``forward_features``."""

    def __init__(self, cfg: VideoMAEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or VideoMAEConfig()
        self.patch_embed = PatchEmbed(cfg)
        t, h, w = cfg.grid
        # fixed, not a parameter: absent from the checkpoint, built here (non-persistent buffer)
        with torch.device("cpu"):  # numpy maths even when the module is built on the meta device
            table = sinusoid_table(t * h * w, cfg.embed_dim)
        self.pos_embed: torch.Tensor
        self.register_buffer("pos_embed", table, persistent=False)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()

    @property
    def dim(self) -> int:
        return self.cfg.embed_dim

    def pos_embed_for(self, num_frames: int) -> torch.Tensor:
        """Position table for a clip of ``num_frames`` frames: resampled along time when != ``num_frames``."""
        t_grid, h, w = self.cfg.grid
        t0 = num_frames // self.cfg.tubelet_size
        if t0 == t_grid:
            return self.pos_embed
        dim = self.cfg.embed_dim
        grid = self.pos_embed.permute(0, 2, 1).reshape(1, dim, t_grid, h, w)
        # +0.1 guards the output length against floating-point error (DINO's trick, kept by cd-fvd)
        out = F.interpolate(grid, scale_factor=((t0 + 0.1) / t_grid, 1, 1), mode="trilinear")
        if out.shape[2] != t0:  # pragma: no cover - guarded by the +0.1
            raise RuntimeError(f"position table resampled to {out.shape[2]} steps, expected {t0}")
        return out.reshape(1, dim, -1).permute(0, 2, 1)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` (H = W = ``img_size``) -> last block's tokens ``[B, N, D]``."""
        if x.ndim != 5 or x.shape[-2:] != (self.cfg.img_size, self.cfg.img_size):
            raise ValueError(
                f"VideoMAE-v2 input must be [B, 3, T, {self.cfg.img_size}, {self.cfg.img_size}], "
                f"got {tuple(x.shape)}"
            )
        pos = self.pos_embed_for(x.shape[2])
        x = self.patch_embed(x)
        x = x + pos.to(device=x.device, dtype=x.dtype)
        for blk in self.blocks:
            x = blk(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The FVD feature ``[B, D]``: ``fc_norm`` of the mean token (pre-head)."""
        return self.fc_norm(self.tokens(x).mean(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, num_classes]``."""
        return self.head(self.features(x))


def random_state_dict(cfg: VideoMAEConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random weights in the checkpoint's layout, scaled so activations stay O(1).

    For tests only (parity needs identical weights on both sides, not trained ones): linear and
    convolution weights normal with variance ``1/fan_in``, LayerNorm scales ``1 + 0.1 N(0,1)``, all
    biases (including ``q_bias``/``v_bias``) ``0.1 N(0,1)``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    with torch.device("meta"):
        template = VideoMAEv2ViT(cfg).state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, t in template.items():
        shape = tuple(t.shape)
        is_norm = name.rsplit(".", 2)[-2].startswith(("norm", "fc_norm")) if "." in name else False
        if is_norm and name.endswith(".weight"):
            out[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".weight"):
            out[name] = torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))
        else:
            out[name] = 0.1 * torch.randn(shape, generator=gen)
    return out
