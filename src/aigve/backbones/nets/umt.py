"""UMT ViT-L/16 video classifier fine-tuned on Kinetics-400 (Li et al., "Unmasked Teacher", ICCV 2023): the
network VBench's ``human_action`` dimension runs.

Written for aigve from the structure of the copy VBench vendors (``vbench/third_party/umt/models/
modeling_finetune.py``, ``vit_large_patch16_224`` built by ``vbench/human_action.py`` with ``all_frames=16,
tubelet_size=1, use_mean_pooling=True, use_learnable_pos_emb=False``; Vchitect/VBench commit 45e79ec = the
``vbench`` 0.1.5 wheel). Module names follow that copy so the released checkpoint loads; ``tests/backbones/
test_umt.py`` compares this network with VBench's class on the same random weights.

- Tubelets of 1 frame x 16 x 16 pixels (a 3-D convolution), 16 frames -> 16 x 14 x 14 = 3136 tokens, no class
  token;
- fixed sine-cosine position table built for 8 frames x 14 x 14 (1568 positions) and linearly resampled in time
  to 16 frames; because its length then differs from 1568, VBench's code keeps it as a *parameter*
  (``pos_embed``), so a checkpoint may carry its own; the forward pass uses it without gradient;
- pre-norm blocks (LayerNorm eps 1e-6, GELU MLP, q/v biases with a zero k bias), no layer scale;
- mean over tokens, ``fc_norm``, linear head to 400 logits.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import partial
from importlib.resources import files
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def kinetics400_labels() -> list[str]:
    """The 400 class names in the head's order (lower case, as VBench compares them)."""
    text = files("aigve.backbones.nets").joinpath("kinetics400_umt_labels.json").read_text(encoding="utf-8")
    labels = json.loads(text)["labels"]
    assert len(labels) == 400
    return list(labels)


def sinusoid_table(frames: int, grid: int, dim: int, table_frames: int = 8) -> torch.Tensor:
    """UMT's position table ``[1, frames * grid * grid, dim]``: the transformer sine-cosine table for
    ``table_frames * grid * grid`` positions (float64 angles, cast to float32), resampled linearly
    (``align_corners=False``) along time to ``frames`` when they differ."""
    n = table_frames * grid * grid
    pos = np.arange(n, dtype=np.float64)[:, None]
    j = np.arange(dim)
    angles = pos / np.power(10000, 2 * (j // 2) / dim)
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    table = torch.tensor(angles, dtype=torch.float).unsqueeze(0)
    if frames != table_frames:
        t = (
            table.reshape(-1, table_frames, grid, grid, dim)
            .permute(0, 2, 3, 4, 1)
            .reshape(-1, dim, table_frames)
        )
        t = F.interpolate(t, size=frames, mode="linear")
        table = t.reshape(1, grid, grid, dim, frames).permute(0, 4, 1, 2, 3).flatten(1, 3)
    return table


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, -1))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.norm1 = norm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int, tubelet: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


@dataclass(frozen=True)
class UMTConfig:
    """``vit_l16_k400`` is the network VBench builds; ``tiny_test`` keeps the geometry (224 px, 16 px patches,
    16 one-frame tubelets, 400 classes, the position table) with a narrow, shallow transformer."""

    img_size: int = 224
    patch_size: int = 16
    frames: int = 16
    tubelet: int = 1
    embed_dim: int = 1024
    depth: int = 24
    heads: int = 16
    num_classes: int = 400

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CONFIGS: dict[str, UMTConfig] = {
    "vit_l16_k400": UMTConfig(),
    "tiny_test": UMTConfig(embed_dim=32, depth=2, heads=2),
}


class UMTClassifier(nn.Module):
    """``[B, 3, T, 224, 224]`` normalised frames -> ``[B, 400]`` logits."""

    def __init__(self, cfg: UMTConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or UMTConfig()
        self.cfg = cfg
        grid = cfg.img_size // cfg.patch_size
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.embed_dim, cfg.tubelet)
        self.pos_embed = nn.Parameter(sinusoid_table(cfg.frames // cfg.tubelet, grid, cfg.embed_dim))
        self.blocks = nn.ModuleList([Block(cfg.embed_dim, cfg.heads) for _ in range(cfg.depth)])
        self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = x + self.pos_embed.expand(x.shape[0], -1, -1).type_as(x).detach()
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.fc_norm(x.mean(1)))


def random_state_dict(cfg: UMTConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random weights for ``cfg`` (the position table kept as built), for tests."""
    g = torch.Generator().manual_seed(seed)
    model = UMTClassifier(cfg)
    out = {}
    for k, v in model.state_dict().items():
        if k == "pos_embed":
            out[k] = v.clone()
        elif k.endswith(("norm1.weight", "norm2.weight", "fc_norm.weight")):
            out[k] = 1.0 + 0.1 * torch.randn(v.shape, generator=g)
        elif k.startswith("head"):
            out[k] = torch.randn(v.shape, generator=g) * (0.15 if v.ndim > 1 else 0.3)
        else:
            fan = int(np.prod(v.shape[1:])) if v.ndim > 1 else 1
            out[k] = torch.randn(v.shape, generator=g) * (fan**-0.5 if v.ndim > 1 else 0.02)
    return out
