"""DOVER (Wu et al., ICCV 2023): a technical branch and an aesthetic branch, each with a score head.

Written from the paper and the authors' released code (VQAssessment/DOVER, commit f1ddc96), read for the port;
the module and parameter names reproduce the layout of the released ``DOVER.pth`` so that it loads with
``strict=True`` (``DOVERNet.load_state_dict``):

- ``technical_backbone``: FAST-VQA's Video Swin-T with *gated relative position biases* (GRPB): patch
  ``(2, 4, 4)``, window ``(8, 7, 7)``, depths ``(2, 2, 6, 2)``, heads ``(3, 6, 12, 24)``; stages 1-3 carry a
  second bias table (``fragment_position_bias_table``) used for token pairs that lie in the same fragment.
  Input: fragment views ``[B, 3, 32, 224, 224]``; output ``[B, 768, 16, 7, 7]``.
- ``aesthetic_backbone``: ConvNeXt-T inflated to 3-D (stem ``(2, 4, 4)``, depthwise kernels ``(t, 7, 7)`` with
  ``t`` cycling 1, 3, 1 inside each stage). Input: resized views ``[B, 3, 32, 224, 224]``; output
  ``[B, 768, 16, 7, 7]``.
- ``technical_head`` / ``aesthetic_head``: 1x1x1 convolutions 768 -> 64 -> GELU -> 1, applied at every
  position (no pre-pooling in the released configuration); a branch's score is the mean of its map.

Behaviour the authors' code has and this port keeps, because the checkpoint was trained with it:

- the fragment "gate" is the L1 distance between the fragment coordinates of two tokens (fragments = the
  window's spatial grid spread over the token map with nearest interpolation, rolled with the shift), not a
  0/1 flag: the bias is ``rel * g + frag * (1 - g)`` with ``g`` in {0, 1, 2} in plain windows and up to 12
  in shifted windows that wrap around the map;
- when a window shrinks to the feature map (small inputs), the relative-position index is the top-left
  ``N x N`` block of the full window's index, as in their code.

Dropout and stochastic depth are inactive (inference only); the module has no training path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

EMBED_DIM = 96
DEPTHS: tuple[int, ...] = (2, 2, 6, 2)
HEADS: tuple[int, ...] = (3, 6, 12, 24)
WINDOW: tuple[int, int, int] = (8, 7, 7)
PATCH: tuple[int, int, int] = (2, 4, 4)
FRAG_BIAS: tuple[bool, ...] = (True, True, True, False)
CONV_DIMS: tuple[int, ...] = (96, 192, 384, 768)
CONV_DEPTHS: tuple[int, ...] = (3, 3, 9, 3)
CONV_INFLATE = "131"
FEATURE_DIM = 768
HEAD_HIDDEN = 64

Size3 = tuple[int, int, int]


# ------------------------------------------------------------------------------------------------
# window helpers (Video Swin)
# ------------------------------------------------------------------------------------------------
def _effective_window(x_size: Size3, window: Size3, shift: Size3) -> tuple[Size3, Size3]:
    """A window no larger than the feature map; no shift along an axis the window covers entirely."""
    ws, ss = list(window), list(shift)
    for i in range(3):
        if x_size[i] <= window[i]:
            ws[i] = x_size[i]
            ss[i] = 0
    return (ws[0], ws[1], ws[2]), (ss[0], ss[1], ss[2])


def _partition(x: torch.Tensor, ws: Size3) -> torch.Tensor:
    """``[B, D, H, W, C]`` -> ``[B * nW, wd * wh * ww, C]`` (windows in D, H, W order)."""
    b, d, h, w, c = x.shape
    x = x.view(b, d // ws[0], ws[0], h // ws[1], ws[1], w // ws[2], ws[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, ws[0] * ws[1] * ws[2], c)


def _merge(windows: torch.Tensor, ws: Size3, b: int, d: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`_partition`."""
    x = windows.view(b, d // ws[0], h // ws[1], w // ws[2], ws[0], ws[1], ws[2], -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


@lru_cache(maxsize=64)
def _shift_mask(dp: int, hp: int, wp: int, ws: Size3, ss: Size3, device: torch.device) -> torch.Tensor:
    """Attention mask ``[nW, N, N]`` (0 / -100) for shifted windows: tokens from different regions of the
    rolled map do not attend to each other. Region labels as in Video Swin (an axis with shift 0 is one
    region)."""
    labels = torch.zeros((1, dp, hp, wp, 1), device=device)
    cnt = 0
    for d in (slice(-ws[0]), slice(-ws[0], -ss[0]), slice(-ss[0], None)):
        for h in (slice(-ws[1]), slice(-ws[1], -ss[1]), slice(-ss[1], None)):
            for w in (slice(-ws[2]), slice(-ws[2], -ss[2]), slice(-ss[2], None)):
                labels[:, d, h, w, :] = cnt
                cnt += 1
    lw = _partition(labels, ws).squeeze(-1)
    diff = lw.unsqueeze(1) - lw.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


@lru_cache(maxsize=64)
def _fragment_gate(dp: int, hp: int, wp: int, ws: Size3, ss: Size3, device: torch.device) -> torch.Tensor:
    """``[nW, 1, N, N]`` uint8 (values 0-12; small to cache, exact in float): L1 distance between the
    fragment coordinates of two tokens of a window.

    Fragment coordinates: a ``(1, wh, ww)`` grid of indices spread over the ``(dp, hp, wp)`` token map by
    nearest interpolation, rolled like the features (FAST-VQA's ``global_position_index``)."""
    grid = torch.stack(
        torch.meshgrid(torch.arange(1), torch.arange(ws[1]), torch.arange(ws[2]), indexing="ij")
    ).float()
    coords = F.interpolate(grid[None].to(device), size=(dp, hp, wp)).long().permute(0, 2, 3, 4, 1)
    coords = torch.roll(coords, shifts=(-ss[0], -ss[1], -ss[2]), dims=(1, 2, 3))
    wc = _partition(coords, ws)  # nW, N, 3
    rel = wc[:, None, :] - wc[:, :, None]
    return rel.abs().sum(-1).unsqueeze(1).to(torch.uint8)


def _relative_index(ws: Size3) -> torch.Tensor:
    """``[N, N]`` index into a ``(2wd-1)(2wh-1)(2ww-1)`` bias table for every token pair of a window."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(ws[0]), torch.arange(ws[1]), torch.arange(ws[2]), indexing="ij")
    ).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws[0] - 1
    rel[:, :, 1] += ws[1] - 1
    rel[:, :, 2] += ws[2] - 1
    rel[:, :, 0] *= (2 * ws[1] - 1) * (2 * ws[2] - 1)
    rel[:, :, 1] *= 2 * ws[2] - 1
    return rel.sum(-1)


# ------------------------------------------------------------------------------------------------
# technical branch: Swin-T 3-D with gated relative position biases
# ------------------------------------------------------------------------------------------------
class WindowAttention(nn.Module):
    """Multi-head self-attention inside 3-D windows, with a relative position bias and (optionally) a
    second bias table gated by fragment membership."""

    def __init__(self, dim: int, window: Size3, heads: int, frag_bias: bool) -> None:
        super().__init__()
        self.window = window
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        table = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table, heads))
        self.frag_bias = frag_bias
        if frag_bias:
            self.fragment_position_bias_table = nn.Parameter(torch.zeros(table, heads))
        self.register_buffer("relative_position_index", _relative_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, gate: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B * nW, N, C]``; ``mask``: ``[nW, N, N]`` or None; ``gate``: ``[nW, 1, N, N]``."""
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        idx = self.relative_position_index[:n, :n].reshape(-1)  # type: ignore[index]
        bias = self.relative_position_bias_table[idx].reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if self.frag_bias:
            fbias = self.fragment_position_bias_table[idx].reshape(n, n, -1).permute(2, 0, 1)
            g = gate.to(bias.dtype)
            bias = bias * g + fbias * (1 - g)
        nw = gate.shape[0]
        attn = attn.view(bw // nw, nw, self.heads, n, n) + bias.unsqueeze(0)
        if mask is not None:
            attn = attn + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, self.heads, n, n).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """One (shifted-)window transformer block; input and output ``[B, D, H, W, C]``."""

    def __init__(self, dim: int, heads: int, window: Size3, shift: Size3, frag_bias: bool) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads, frag_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def _attend(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, d, h, w, _ = x.shape
        ws, ss = _effective_window((d, h, w), self.window, self.shift)
        x = self.norm1(x)
        pd, ph, pw = (-d) % ws[0], (-h) % ws[1], (-w) % ws[2]
        x = F.pad(x, (0, 0, 0, pw, 0, ph, 0, pd))
        _, dp, hp, wp, _ = x.shape
        shifted = any(s > 0 for s in ss)
        if shifted:
            x = torch.roll(x, shifts=(-ss[0], -ss[1], -ss[2]), dims=(1, 2, 3))
        gate = _fragment_gate(dp, hp, wp, ws, ss, x.device)
        out = self.attn(_partition(x, ws), mask if shifted else None, gate)
        x = _merge(out.view(-1, *ws, out.shape[-1]), ws, b, dp, hp, wp)
        if shifted:
            x = torch.roll(x, shifts=ss, dims=(1, 2, 3))
        if pd or ph or pw:
            x = x[:, :d, :h, :w, :].contiguous()
        return x

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self._attend(x, mask)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 spatial token merge: ``[B, D, H, W, C]`` -> ``[B, D, H/2, W/2, 2C]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat(
            [x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1
        )
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """``depth`` blocks alternating plain and shifted windows, then an optional patch merge."""

    def __init__(
        self, dim: int, depth: int, heads: int, window: Size3, frag_bias: bool, downsample: bool
    ) -> None:
        super().__init__()
        self.window = window
        self.shift: Size3 = (window[0] // 2, window[1] // 2, window[2] // 2)
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, window, (0, 0, 0) if i % 2 == 0 else self.shift, frag_bias)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, D, H, W]`` -> ``[B, C', D, H', W']``."""
        _, _, d, h, w = x.shape
        ws, ss = _effective_window((d, h, w), self.window, self.shift)
        dp, hp, wp = (math.ceil(n / s) * s for n, s in zip((d, h, w), ws, strict=True))
        mask = _shift_mask(dp, hp, wp, ws, ss, x.device)
        x = x.permute(0, 2, 3, 4, 1)
        for blk in self.blocks:
            x = blk(x, mask)
        if self.downsample is not None:
            x = self.downsample(x)
        return x.permute(0, 4, 1, 2, 3)


class PatchEmbed3D(nn.Module):
    """Non-overlapping ``(2, 4, 4)`` patches -> 96 channels, then LayerNorm (input zero-padded at the end of
    any axis that is not a multiple of the patch)."""

    def __init__(self, patch: Size3 = PATCH, dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, h, w = x.shape[2:]
        pt, ph, pw = self.patch
        if w % pw:
            x = F.pad(x, (0, pw - w % pw))
        if h % ph:
            x = F.pad(x, (0, 0, 0, ph - h % ph))
        if d % pt:
            x = F.pad(x, (0, 0, 0, 0, 0, pt - d % pt))
        x = self.proj(x)
        b, c, d, h, w = x.shape
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).reshape(b, c, d, h, w)


class SwinTransformer3DGRPB(nn.Module):
    """The technical-branch backbone: ``[B, 3, T, H, W]`` normalised frames -> ``[B, 768, T/2, H/32, W/32]``."""

    def __init__(self, window: Size3 = WINDOW, frag_biases: Sequence[bool] = FRAG_BIAS) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed3D()
        self.layers = nn.ModuleList(
            SwinStage(
                EMBED_DIM * 2**i,
                DEPTHS[i],
                HEADS[i],
                window,
                bool(frag_biases[i]),
                downsample=i < len(DEPTHS) - 1,
            )
            for i in range(len(DEPTHS))
        )
        self.norm = nn.LayerNorm(EMBED_DIM * 2 ** (len(DEPTHS) - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x.contiguous())
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


# ------------------------------------------------------------------------------------------------
# aesthetic branch: ConvNeXt-T inflated to 3-D
# ------------------------------------------------------------------------------------------------
class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of ``[B, C, T, H, W]`` (ConvNeXt's channels-first variant, eps 1e-6)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None, None] * x + self.bias[:, None, None, None]


class ConvNeXtBlock3D(nn.Module):
    """Depthwise ``(t, 7, 7)`` conv -> LayerNorm -> Linear 4x -> GELU -> Linear -> layer scale, residual."""

    def __init__(self, dim: int, t: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv3d(dim, dim, kernel_size=(t, 7, 7), padding=(t // 2, 3, 3), groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 4, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 4, 1, 2, 3)


class ConvNeXt3D(nn.Module):
    """The aesthetic-branch backbone: ``[B, 3, T, H, W]`` -> ``[B, 768, T/2, H/32, W/32]`` (final LayerNorm
    applied per position)."""

    def __init__(self, dims: Sequence[int] = CONV_DIMS, depths: Sequence[int] = CONV_DEPTHS) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv3d(3, dims[0], (2, 4, 4), stride=(2, 4, 4)), ChannelsFirstLayerNorm(dims[0])
                )
            ]
        )
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(
                    ChannelsFirstLayerNorm(dims[i]),
                    nn.Conv3d(dims[i], dims[i + 1], (1, 2, 2), stride=(1, 2, 2)),
                )
            )
        self.stages = nn.ModuleList(
            nn.Sequential(
                *[
                    ConvNeXtBlock3D(dims[i], int(CONV_INFLATE[j % len(CONV_INFLATE)]))
                    for j in range(depths[i])
                ]
            )
            for i in range(4)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


# ------------------------------------------------------------------------------------------------
# heads and the two-branch model
# ------------------------------------------------------------------------------------------------
class VQAHead(nn.Module):
    """Per-position regression head: 1x1x1 conv 768 -> 64, GELU, 1x1x1 conv 64 -> 1."""

    def __init__(self, in_channels: int = FEATURE_DIM, hidden: int = HEAD_HIDDEN) -> None:
        super().__init__()
        self.fc_hid = nn.Conv3d(in_channels, hidden, 1)
        self.fc_last = nn.Conv3d(hidden, 1, 1)
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_last(self.gelu(self.fc_hid(x)))


class DOVERNet(nn.Module):
    """Both DOVER branches with their heads; ``state_dict`` keys and shapes equal those of ``DOVER.pth``."""

    def __init__(self) -> None:
        super().__init__()
        self.technical_backbone = SwinTransformer3DGRPB()
        self.aesthetic_backbone = ConvNeXt3D()
        self.technical_head = VQAHead()
        self.aesthetic_head = VQAHead()

    def technical_map(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised fragment clips ``[B, 3, T, H, W]`` -> score map ``[B, 1, T/2, H/32, W/32]``."""
        return self.technical_head(self.technical_backbone(x))

    def aesthetic_map(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised resized clips ``[B, 3, T, H, W]`` -> score map ``[B, 1, T/2, H/32, W/32]``."""
        return self.aesthetic_head(self.aesthetic_backbone(x))

    def forward(self, technical: torch.Tensor, aesthetic: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw branch scores of one video: the means of the two score maps over clips and positions (the
        authors' ``evaluate_one_video.py`` / ``evaluate_a_set_of_videos.py``)."""
        return self.technical_map(technical).mean(), self.aesthetic_map(aesthetic).mean()
