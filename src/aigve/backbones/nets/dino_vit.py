"""DINO's Vision Transformer (Caron et al., ICCV 2021), as ``facebookresearch/dino`` builds ``dino_vitb16``.

Written from the architecture of ``vision_transformer.py`` in facebookresearch/dino (commit 7c446df): pre-norm
blocks (LayerNorm eps 1e-6, qkv with bias, GELU MLP of ratio 4), a class token, learned position embeddings and
a final LayerNorm; the output is the class token (the hub model has no head). Parameter names are the
checkpoint's (``dino_vitbase16_pretrain.pth`` loads strictly).

What matters for VBench: frames reach the network non-square (shorter side 224, no crop), so the position
embeddings are resized with DINO's own rule, which this module reproduces: bicubic ``interpolate`` by a *scale
factor* ``((H/p + 0.1)/sqrt(N), (W/p + 0.1)/sqrt(N))`` (the +0.1 avoids a floating-point off-by-one), with no
``align_corners`` and no antialias. timm's ``resample_abs_pos_embed`` resizes to a target *size* instead, which
gives other values.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.patch_size = patch
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


def dino_pos_embed(pos_embed: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    """DINO's position embeddings for an ``height x width`` input: ``[1, 1 + h*w, D]`` (see the module doc)."""
    n = pos_embed.shape[1] - 1
    gh, gw = height // patch, width // patch
    if gh * gw == n and height == width:
        return pos_embed
    side = math.sqrt(n)
    grid = pos_embed[:, 1:].reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2)
    fh, fw = gh + 0.1, gw + 0.1
    grid = nn.functional.interpolate(grid, scale_factor=(fh / side, fw / side), mode="bicubic")
    if grid.shape[-2] != gh or grid.shape[-1] != gw:
        raise ValueError(f"DINO position-embedding resize gave {tuple(grid.shape[-2:])}, expected {(gh, gw)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)
    return torch.cat([pos_embed[:, :1], grid], dim=1)


class DinoViT(nn.Module):
    """``[B, 3, H, W]`` normalised images -> ``[B, D]`` class-token features (DINO's ``forward``)."""

    def __init__(
        self,
        patch: int = 16,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        img_size: int = 224,
    ) -> None:
        super().__init__()
        self.patch_embed = _PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // patch) ** 2 + 1, dim))
        self.blocks = nn.ModuleList([_Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        tok = self.patch_embed(x)
        tok = torch.cat([self.cls_token.expand(tok.shape[0], -1, -1), tok], dim=1)
        tok = tok + dino_pos_embed(self.pos_embed, self.patch_embed.patch_size, h, w)
        for blk in self.blocks:
            tok = blk(tok)
        return self.norm(tok)[:, 0]


def config_from_state(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The constructor arguments of the checkpoint ``state`` (heads: one per 64 channels, as ViT-S/B)."""
    w = state["patch_embed.proj.weight"]
    dim, patch = int(w.shape[0]), int(w.shape[-1])
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    grid = int(round(math.sqrt(state["pos_embed"].shape[1] - 1)))
    hidden = int(state["blocks.0.mlp.fc1.weight"].shape[0])
    return {
        "patch": patch,
        "dim": dim,
        "depth": depth,
        "heads": max(1, dim // 64),
        "img_size": grid * patch,
        "mlp_ratio": hidden / dim,
    }
