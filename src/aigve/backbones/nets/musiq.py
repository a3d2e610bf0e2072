"""MUSIQ (Ke et al., ICCV 2021) in plain PyTorch, laid out like pyiqa's port (IQA-PyTorch 0.1.16,
``pyiqa/archs/musiq_arch.py``) so its checkpoints (``musiq_spaq_ckpt-358bb6af.pth`` …) load with strict keys.

Pipeline of one image in [0, 1]:

1. ``2x - 1``; the multi-scale representation (:func:`multiscale_patches`): the image resized (bicubic, aspect kept)
   so its longer side is each of ``longer_side_lengths`` (sorted), plus the image at its own size; each is cut into
   non-overlapping ``patch_size`` patches after TensorFlow "SAME" zero padding. Each patch carries a hashed spatial
   position (its row/column mapped to a ``grid x grid`` table with nearest interpolation), a scale id and a mask
   bit. The resized scales are zero-padded to ``ceil(L / patch)^2`` patches (mask 0); the native scale keeps all.
2. Each patch: a weight-standardised 7x7/2 conv root, GroupNorm, ReLU, SAME max-pool 3/2, one bottleneck block; the
   ``(p/4)^2 x 256`` map is flattened in channel-last order and embedded linearly.
3. Position + scale embeddings, a class token, a pre-norm transformer whose attention ignores masked tokens
   (scores set to -1000), final LayerNorm, a linear head on the class token. With one output (SPAQ, KonIQ) the
   score is that value; with several (AVA) a softmax and the expected class index 1..C.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

RESNET_TOKEN_DIM = 64


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero padding as TensorFlow's ``padding="SAME"`` for a square ``kernel`` and ``stride`` (extra pixel at the
    bottom/right)."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class StdConv(nn.Conv2d):
    """Conv2d with weight standardisation (per output channel: zero mean, unit std + 1e-5) and SAME padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        k, s = self.kernel_size[0], self.stride[0]
        return F.conv2d(same_pad(x, k, s), w, self.bias, s)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = StdConv(cin, cin, 1, 1, bias=False)
        self.gn1 = nn.GroupNorm(32, cin, eps=1e-4)
        self.conv2 = StdConv(cin, cin, 3, 1, bias=False)
        self.gn2 = nn.GroupNorm(32, cin, eps=1e-4)
        self.conv3 = StdConv(cin, cout, 1, 1, bias=False)
        self.gn3 = nn.GroupNorm(32, cout, eps=1e-4)
        self.needs_projection = cin != cout or stride != 1
        if self.needs_projection:
            self.conv_proj = StdConv(cin, cout, 1, stride, bias=False)
            self.gn_proj = nn.GroupNorm(32, cout, eps=1e-4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.gn_proj(self.conv_proj(x)) if self.needs_projection else x
        y = F.relu(self.gn1(self.conv1(x)))
        y = F.relu(self.gn2(self.conv2(y)))
        return F.relu(self.gn3(self.conv3(y)) + skip)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"MUSIQ: hidden size {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        hd = c // self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.num_heads, hd).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = (q @ k.transpose(-2, -1)) * hd**-0.5
        pair = (mask[:, None, :, None] & mask[:, None, None, :]).expand_as(scores)
        scores = scores.masked_fill(~pair, -1e3)
        y = scores.softmax(dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, c))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, mlp_dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attention = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class PositionEmbed(nn.Module):
    """Learned hashed spatial position table (``grid^2`` rows)."""

    def __init__(self, grid: int, dim: int) -> None:
        super().__init__()
        self.position_emb = nn.Parameter(torch.zeros(1, grid * grid, dim))
        nn.init.normal_(self.position_emb, std=0.02)


class ScaleEmbed(nn.Module):
    def __init__(self, num_scales: int, dim: int) -> None:
        super().__init__()
        self.scale_emb = nn.Parameter(torch.zeros(num_scales, dim))
        nn.init.normal_(self.scale_emb, std=0.02)


class Encoder(nn.Module):
    def __init__(
        self, dim: int, mlp_dim: int, num_heads: int, num_layers: int, num_scales: int, grid: int
    ) -> None:
        super().__init__()
        self.posembed_input = PositionEmbed(grid, dim)
        self.scaleembed_input = ScaleEmbed(num_scales, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.transformer = nn.ModuleDict(
            {f"encoderblock_{i}": TransformerBlock(dim, mlp_dim, num_heads) for i in range(num_layers)}
        )

    def forward(
        self, x: torch.Tensor, spatial: torch.Tensor, scale: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.posembed_input.position_emb[0][spatial]
        x = x + self.scaleembed_input.scale_emb[scale]
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        for block in self.transformer.values():
            x = block(x, mask)
        return self.encoder_norm(x)


# -- multi-scale patches -------------------------------------------------------------------------------------------
def hashed_positions(grid: int, rows: int, cols: int) -> torch.Tensor:
    """Index into the ``grid x grid`` position table of each of ``rows x cols`` patches (row-major): the row and
    column are mapped to the grid with nearest-neighbour interpolation (``floor(i * grid / n)``, as torch's
    ``interpolate(mode="nearest")``)."""
    g = torch.arange(grid, dtype=torch.float32).view(1, 1, grid)
    r = F.interpolate(g, size=rows, mode="nearest").view(rows, 1)
    c = F.interpolate(g, size=cols, mode="nearest").view(1, cols)
    return (r * grid + c).reshape(-1).long()


def _patches(
    image: torch.Tensor, patch: int, grid: int, scale_id: int, keep: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    n, c, h, w = image.shape
    cols = F.unfold(same_pad(image, patch, patch), patch, stride=patch)  # [n, c*p*p, L]
    rows_n, cols_n = math.ceil(h / patch), math.ceil(w / patch)
    pos = hashed_positions(grid, rows_n, cols_n).to(image.device).expand(n, -1)
    scale = torch.full_like(pos, scale_id)
    mask = torch.ones_like(pos, dtype=torch.bool)
    tokens = cols.transpose(1, 2)  # [n, L, c*p*p]
    if keep is not None:
        count = tokens.shape[1]
        if count >= keep:
            tokens, pos, scale, mask = tokens[:, :keep], pos[:, :keep], scale[:, :keep], mask[:, :keep]
        else:
            extra = keep - count
            tokens = F.pad(tokens, (0, 0, 0, extra))
            pos = F.pad(pos, (0, extra))
            scale = F.pad(scale, (0, extra))
            mask = F.pad(mask, (0, extra))
    return tokens, pos, scale, mask


def multiscale_patches(
    image: torch.Tensor,
    patch: int = 32,
    grid: int = 10,
    longer_side_lengths: tuple[int, ...] = (224, 384),
    native: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[N, 3, H, W]`` -> patch pixels ``[N, L, 3·p·p]`` (channel-major inside a patch, ``F.unfold`` order),
    spatial index, scale id and mask ``[N, L]``. Scale ``k`` is the image resized (bicubic, ``align_corners=False``,
    no antialias) so its longer side is the k-th smallest length (rounded sides), padded/cut to
    ``ceil(length/p)^2`` patches; with ``native`` the unresized image follows with all its patches."""
    n, c, h, w = image.shape
    parts = []
    for scale_id, length in enumerate(sorted(longer_side_lengths)):
        ratio = length / max(h, w)
        size = (round(h * ratio), round(w * ratio))
        resized = F.interpolate(image, size=size, mode="bicubic", align_corners=False)
        parts.append(_patches(resized, patch, grid, scale_id, math.ceil(length / patch) ** 2))
    if native:
        parts.append(_patches(image, patch, grid, len(longer_side_lengths), None))
    tokens, pos, scale, mask = (torch.cat([p[i] for p in parts], dim=1) for i in range(4))
    return tokens, pos, scale, mask


class MUSIQ(nn.Module):
    """MUSIQ on images in [0, 1] (``[N, 3, H, W]``) -> score ``[N]`` (SPAQ: about 0-100)."""

    def __init__(
        self,
        patch_size: int = 32,
        num_class: int = 1,
        hidden_size: int = 384,
        mlp_dim: int = 1152,
        num_heads: int = 6,
        num_layers: int = 14,
        num_scales: int = 3,
        spatial_pos_grid_size: int = 10,
        longer_side_lengths: tuple[int, ...] = (224, 384),
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.grid = spatial_pos_grid_size
        self.longer_side_lengths = tuple(longer_side_lengths)
        self.conv_root = StdConv(3, RESNET_TOKEN_DIM, 7, 2, bias=False)
        self.gn_root = nn.GroupNorm(32, RESNET_TOKEN_DIM, eps=1e-6)
        self.block1 = Bottleneck(RESNET_TOKEN_DIM, RESNET_TOKEN_DIM * 4)
        self.embedding = nn.Linear(RESNET_TOKEN_DIM * 4 * (patch_size // 4) ** 2, hidden_size)
        self.transformer_encoder = Encoder(
            hidden_size, mlp_dim, num_heads, num_layers, num_scales, spatial_pos_grid_size
        )
        self.head: nn.Module
        if num_class > 1:
            self.head = nn.Sequential(nn.Linear(hidden_size, num_class), nn.Softmax(dim=-1))
        else:
            self.head = nn.Linear(hidden_size, num_class)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch pixels ``[N, L, 3·p·p]`` -> embedded tokens ``[N, L, hidden]``."""
        n, length, _ = pixels.shape
        p = self.patch_size
        x = pixels.reshape(n * length, 3, p, p)
        x = F.relu(self.gn_root(self.conv_root(x)))
        x = F.max_pool2d(same_pad(x, 3, 2), 3, 2)
        x = self.block1(x).permute(0, 2, 3, 1)  # channel-last flattening, as the TF original
        return self.embedding(x.reshape(n, length, -1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        pixels, pos, scale, mask = multiscale_patches(
            image * 2 - 1, self.patch_size, self.grid, self.longer_side_lengths
        )
        x = self.transformer_encoder(self.tokens(pixels), pos, scale, mask)
        q = self.head(x[:, 0])
        classes = torch.arange(1, q.shape[-1] + 1, dtype=q.dtype, device=q.device)
        return (q * classes).sum(dim=-1)


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """MUSIQ constructor arguments read from a checkpoint's shapes (pyiqa's key layout)."""
    hidden = int(state["embedding.weight"].shape[0])
    token_px = int(state["embedding.weight"].shape[1]) // (RESNET_TOKEN_DIM * 4)
    layers = len({k.split(".")[2] for k in state if k.startswith("transformer_encoder.transformer.")})
    grid = math.isqrt(int(state["transformer_encoder.posembed_input.position_emb"].shape[1]))
    head_key = "head.weight" if "head.weight" in state else "head.0.weight"
    return {
        "patch_size": math.isqrt(token_px) * 4,
        "num_class": int(state[head_key].shape[0]),
        "hidden_size": hidden,
        "mlp_dim": int(state["transformer_encoder.transformer.encoderblock_0.mlp.fc1.weight"].shape[0]),
        "num_layers": layers,
        "num_scales": int(state["transformer_encoder.scaleembed_input.scale_emb"].shape[0]),
        "spatial_pos_grid_size": grid,
    }
