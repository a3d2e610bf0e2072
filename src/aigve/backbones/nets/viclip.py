"""ViCLIP (Wang et al., InternVid, ICLR 2024): a CLIP ViT-L/14 whose image tower reads 8 frames jointly, and
the CLIP text tower; VBench's ``temporal_style`` and ``overall_consistency`` compare their embeddings.

Written for aigve from the structure of the copy VBench vendors (``vbench/third_party/ViCLIP/viclip.py``,
``viclip_vision.py``, ``viclip_text.py`` at Vchitect/VBench commit 45e79ec, identical in the ``vbench`` 0.1.5
wheel). Module names follow that copy, so ``ViClip-InternVid-10M-FLT.pth`` (its ``model`` entry) loads
strictly; ``tests/backbones/test_viclip.py`` compares this network with VBench's classes on the same random
weights.

- Video tower: a 3-D patch convolution with a temporal kernel of 1 (per-frame 14 x 14 patches), CLIP's class
  token and spatial position table per frame, a learned temporal position table added to the patch tokens,
  then **one** sequence ``[class, all patches of all frames]`` through the ViT (pre-norm blocks, QuickGELU),
  ``ln_post`` of the class token, projection. One clip of one frame adds the temporal table's mean.
- Text tower: CLIP's causal transformer over a 32-token context; the feature is the projected state at the
  end-of-text token (the largest token id).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    """Pre-norm transformer block on ``[L, N, D]`` sequences (``nn.MultiheadAttention``, QuickGELU MLP)."""

    def __init__(self, width: int, heads: int, attn_mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, width * 4)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(width * 4, width)),
                ]
            )
        )
        self.ln_2 = nn.LayerNorm(width)
        self.attn_mask = attn_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.attn_mask.to(dtype=x.dtype, device=x.device) if self.attn_mask is not None else None
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, attn_mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList([Block(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.resblocks:
            x = blk(x)
        return x


@dataclass(frozen=True)
class ViCLIPConfig:
    """Sizes of both towers. ``vit_l14`` is the released model (VBench's ``ViCLIP`` constructor); ``tiny_test``
    keeps the geometry (224 px, 14 px patches, 8 frames, 32-token context, CLIP's vocabulary) with narrow,
    shallow towers, for tests with random weights."""

    image_size: int = 224
    patch_size: int = 14
    num_frames: int = 8
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    embed_dim: int = 768
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    context_length: int = 32
    vocab_size: int = 49408

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CONFIGS: dict[str, ViCLIPConfig] = {
    "vit_l14": ViCLIPConfig(),
    "tiny_test": ViCLIPConfig(
        vision_width=32,
        vision_layers=2,
        vision_heads=2,
        embed_dim=24,
        text_width=32,
        text_layers=2,
        text_heads=2,
    ),
}


class VideoTower(nn.Module):
    """``[B, 3, T, H, W]`` normalised frames -> ``[B, embed_dim]`` (not normalised)."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        w = cfg.vision_width
        p = cfg.patch_size
        self.conv1 = nn.Conv3d(3, w, (1, p, p), (1, p, p), (0, 0, 0), bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros((cfg.image_size // p) ** 2 + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, w))
        self.transformer = Transformer(w, cfg.vision_layers, cfg.vision_heads)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, cfg.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        b, c, t, h, w = x.shape
        x = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, c)  # per frame: [patches, width]
        cls = self.class_embedding.to(x.dtype) + torch.zeros(b * t, 1, c, dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        cls_tokens = x[:b, :1]  # the class token (+ its position) is the same for every frame
        patches = x[:, 1:].reshape(b, t, h * w, c).transpose(1, 2)  # [B, patches, T, width]
        if t == 1:
            patches = patches + self.temporal_positional_embedding.mean(1)
        else:
            patches = patches + self.temporal_positional_embedding
        patches = patches.reshape(
            b, h * w * t, c
        )  # patch-major, then time (VBench's '(b n) t m -> b (n t) m')
        x = self.ln_pre(torch.cat([cls_tokens, patches], dim=1))
        x = self.transformer(x.permute(1, 0, 2))
        x = self.ln_post(x)
        return x[0] @ self.proj


class TextTower(nn.Module):
    """``[B, context]`` token ids (zero-padded) -> ``[B, embed_dim]`` (not normalised)."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        n = cfg.context_length
        mask = torch.full((n, n), float("-inf")).triu_(1)
        self.transformer = Transformer(cfg.text_width, cfg.text_layers, cfg.text_heads, attn_mask=mask)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.zeros(n, cfg.text_width))
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.zeros(cfg.text_width, cfg.embed_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection


class ViCLIP(nn.Module):
    """Both towers and the (unused at inference) contrastive temperature ``temp``, keyed as the checkpoint."""

    def __init__(self, cfg: ViCLIPConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ViCLIPConfig()
        self.cfg = cfg
        self.vision_encoder = VideoTower(cfg)
        self.text_encoder = TextTower(cfg)
        self.temp = nn.Parameter(torch.ones([]) / 100.0)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` normalised frames -> ``[B, embed_dim]`` float32 (not normalised)."""
        return self.vision_encoder(frames.permute(0, 2, 1, 3, 4).contiguous()).float()

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, context]`` token ids -> ``[B, embed_dim]`` float32 (not normalised)."""
        return self.text_encoder(tokens).float()


def random_state_dict(cfg: ViCLIPConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random weights for ``cfg`` (CLIP-like scales), for tests."""
    g = torch.Generator().manual_seed(seed)
    model = ViCLIP(cfg)
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight", "ln_final.weight")):
            out[k] = 1.0 + 0.1 * torch.randn(v.shape, generator=g)
        elif v.ndim == 0:
            out[k] = torch.tensor(0.01)
        else:
            fan = v.shape[-1] if v.ndim > 1 else v.shape[0]
            out[k] = torch.randn(v.shape, generator=g) * (fan**-0.5 if v.ndim > 1 else 0.02)
    return out
