"""Inception-v1 I3D (Kinetics-400) as used for FVD by TATS, StyleGAN-V's PyTorch port and cd-fvd.

Written to load ``i3d_pretrained_400.pt`` (registry name ``i3d_tats``; the checkpoint cd-fvd 0.1.1
downloads) with ``strict=True``: module names and shapes follow the piergiaj/pytorch-i3d layout that
checkpoint uses (``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_4b.b1b.bn.running_var``, ...,
``logits.conv3d.bias``). Architecture (Carreira & Zisserman 2017), as that port implements it:

- every convolution is "TF same" padded: total padding ``max(k - s, 0)`` when the input size is a
  multiple of the stride, else ``max(k - size % s, 0)``, split ``floor/2`` before and the rest after,
  zero-filled; the convolution itself has no padding and no bias, followed by batch norm
  (eps 1e-5) and ReLU (the logits layer: bias, no batch norm, no ReLU);
- max pools use the same padding rule with zeros (their inputs are ReLU outputs, so zeros never win
  over a real value: identical to ``-inf`` padding);
- head: ``AvgPool3d((2, 7, 7), stride 1)`` -> dropout (identity in eval) -> 1x1x1 logits conv ->
  mean over the remaining (time) positions -> ``[B, 400]`` logits. These logits are the FVD feature of
  cd-fvd and StyleGAN-V.

Input: float ``[B, 3, T, H, W]`` in ``[-1, 1]``; ``T >= 9`` and ``H, W >= 193`` so that the final
``2x7x7`` average pool fits (224x224 and 16 frames is the protocol). The forward pass averages the
logits over every remaining position (only time at 224 px), which is cd-fvd's result whenever cd-fvd
itself runs.

:meth:`InceptionI3d.fused` returns an inference-only copy (:class:`FusedI3d`) with batch norm folded
into the convolutions and the three 1x1 convolutions that read each Inception block's input merged
into one; it computes the same function up to float32 rounding (checked in tests/backbones/test_i3d.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 400
POOL_DIM = 1024  # channels after Mixed_5c (the "pool" layer)
BN_EPS = 1e-5
MIN_FRAMES = 9  # 16 frames -> 8 -> 4 -> 2 time steps before the 2x7x7 average pool
MIN_SIZE = 193  # ceil(size / 32) must be >= 7

Triple = tuple[int, int, int]

# (name, in_channels, [b0, b1a, b1b, b2a, b2b, b3b] out channels)
_MIXED: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


def same_padding(sizes: Sequence[int], kernel: Triple, stride: Triple) -> tuple[int, ...]:
    """``F.pad`` argument (last dim first) for TF "same" padding of a ``[.., T, H, W]`` input."""
    pads: list[int] = []
    for size, k, s in zip(reversed(sizes), reversed(kernel), reversed(stride), strict=True):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Unit3D(nn.Module):
    """Same-padded Conv3d (no bias) -> BatchNorm3d -> ReLU, or a biased linear conv (logits)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        batch_norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(cin, cout, kernel_size=kernel, stride=stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=BN_EPS, momentum=0.001) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride))
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max pool with TF "same" zero padding (no parameters)."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | 3x3x3 max pool -> 1x1, concatenated on channels."""

    def __init__(self, cin: int, outs: Sequence[int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = outs
        self.b0 = Unit3D(cin, c0)
        self.b1a = Unit3D(cin, c1a)
        self.b1b = Unit3D(c1a, c1b, (3, 3, 3))
        self.b2a = Unit3D(cin, c2a)
        self.b2b = Unit3D(c2a, c2b, (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c3b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            (self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))), dim=1
        )


def check_input(x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[B, 3, T >= 9, H >= 193, W >= 193]``."""
    if x.ndim != 5 or x.shape[1] != 3:
        raise ValueError(f"I3D expects [B, 3, T, H, W] input, got {tuple(x.shape)}")
    t, h, w = x.shape[2:]
    if t < MIN_FRAMES or h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(
            f"I3D needs at least {MIN_FRAMES} frames of at least {MIN_SIZE}x{MIN_SIZE} px "
            f"(its 2x7x7 head pool must fit), got T={t}, {h}x{w}"
        )


class InceptionI3d(nn.Module):
    """Kinetics-400 I3D; ``forward(x) -> logits [B, 400]``, ``features(x, layer)`` for the pool layer."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionBlock(*_MIXED[0][1:])
        self.Mixed_3c = InceptionBlock(*_MIXED[1][1:])
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionBlock(*_MIXED[2][1:])
        self.Mixed_4c = InceptionBlock(*_MIXED[3][1:])
        self.Mixed_4d = InceptionBlock(*_MIXED[4][1:])
        self.Mixed_4e = InceptionBlock(*_MIXED[5][1:])
        self.Mixed_4f = InceptionBlock(*_MIXED[6][1:])
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionBlock(*_MIXED[7][1:])
        self.Mixed_5c = InceptionBlock(*_MIXED[8][1:])
        self.logits = Unit3D(POOL_DIM, num_classes, batch_norm=False, relu=False, bias=True)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Everything up to ``Mixed_5c`` followed by the ``2x7x7`` average pool: ``[B, 1024, t, h, w]``."""
        check_input(x)
        x = self.MaxPool3d_2a_3x3(self.Conv3d_1a_7x7(x))
        x = self.MaxPool3d_3a_3x3(self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x)))
        x = self.MaxPool3d_4a_3x3(self.Mixed_3c(self.Mixed_3b(x)))
        for block in (self.Mixed_4b, self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f):
            x = block(x)
        x = self.Mixed_5c(self.Mixed_5b(self.MaxPool3d_5a_2x2(x)))
        return F.avg_pool3d(x, (2, 7, 7), stride=1)

    def features(self, x: torch.Tensor, layer: str = "logits") -> torch.Tensor:
        """``"logits"``: ``[B, 400]`` (the FVD feature); ``"pool"``: the 1024-d pooled trunk output."""
        pooled = self.trunk(x)
        if layer == "pool":
            return pooled.mean(dim=(2, 3, 4))
        if layer != "logits":
            raise ValueError(f"unknown I3D layer {layer!r}; use 'logits' or 'pool'")
        return self.logits(pooled).mean(dim=(3, 4)).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x, "logits")

    @torch.no_grad()
    def fused(self) -> FusedI3d:
        """An inference-only copy with batch norm folded and 1x1 branch convolutions merged."""
        return FusedI3d(self)


# ------------------------------------------------------------------------------------------------
# inference-only fused network
# ------------------------------------------------------------------------------------------------
def _fold(units: Sequence[Unit3D]) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of conv+BN units (same input, same kernel) as one biased conv, outputs stacked."""
    ws, bs = [], []
    for u in units:
        w = u.conv3d.weight.detach()
        bn = u.bn
        if bn is None:
            ws.append(w)
            bias = u.conv3d.bias
            bs.append(bias.detach() if bias is not None else torch.zeros(w.shape[0], dtype=w.dtype))
            continue
        assert bn.running_mean is not None and bn.running_var is not None
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        ws.append(w * scale.view(-1, 1, 1, 1, 1))
        bs.append(bn.bias.detach() - bn.running_mean * scale)
    return torch.cat(ws).contiguous(), torch.cat(bs).contiguous()


class _FConv(nn.Module):
    """A folded (biased) conv with TF same padding; symmetric padding goes into the conv itself."""

    def __init__(self, units: Sequence[Unit3D], relu: bool = True) -> None:
        super().__init__()
        w, b = _fold(units)
        self.weight = nn.Parameter(w, requires_grad=False)
        self.bias = nn.Parameter(b, requires_grad=False)
        self.kernel: Triple = units[0].kernel
        self.stride: Triple = units[0].stride
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_padding(x.shape[2:], self.kernel, self.stride)
        if all(pads[i] == pads[i + 1] for i in range(0, 6, 2)):
            x = F.conv3d(x, self.weight, self.bias, self.stride, padding=(pads[4], pads[2], pads[0]))
        else:
            x = F.conv3d(F.pad(x, pads), self.weight, self.bias, self.stride)
        return F.relu(x, inplace=True) if self.relu else x


def _maxpool_same(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """Same-padded max pool of non-negative input (zero and -inf padding agree there)."""
    pads = same_padding(x.shape[2:], kernel, stride)
    if all(pads[i] == pads[i + 1] for i in range(0, 6, 2)) and all(
        2 * p <= k for p, k in zip((pads[4], pads[2], pads[0]), kernel, strict=True)
    ):
        return F.max_pool3d(x, kernel, stride, padding=(pads[4], pads[2], pads[0]))
    return F.max_pool3d(F.pad(x, pads), kernel, stride)


class _FBlock(nn.Module):
    def __init__(self, block: InceptionBlock) -> None:
        super().__init__()
        self.split = (
            block.b0.conv3d.out_channels,
            block.b1a.conv3d.out_channels,
            block.b2a.conv3d.out_channels,
        )
        self.head = _FConv((block.b0, block.b1a, block.b2a))
        self.b1b = _FConv((block.b1b,))
        self.b2b = _FConv((block.b2b,))
        self.b3b = _FConv((block.b3b,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y0, y1, y2 = torch.split(self.head(x), list(self.split), dim=1)
        y3 = self.b3b(_maxpool_same(x, (3, 3, 3), (1, 1, 1)))
        return torch.cat((y0, self.b1b(y1), self.b2b(y2), y3), dim=1)


class FusedI3d(nn.Module):
    """Inference-only I3D built from a loaded :class:`InceptionI3d` (same function, fewer passes)."""

    def __init__(self, net: InceptionI3d) -> None:
        super().__init__()
        self.conv1 = _FConv((net.Conv3d_1a_7x7,))
        self.conv2b = _FConv((net.Conv3d_2b_1x1,))
        self.conv2c = _FConv((net.Conv3d_2c_3x3,))
        self.blocks3 = nn.Sequential(_FBlock(net.Mixed_3b), _FBlock(net.Mixed_3c))
        self.blocks4 = nn.Sequential(
            *(_FBlock(b) for b in (net.Mixed_4b, net.Mixed_4c, net.Mixed_4d, net.Mixed_4e, net.Mixed_4f))
        )
        self.blocks5 = nn.Sequential(_FBlock(net.Mixed_5b), _FBlock(net.Mixed_5c))
        self.logits = _FConv((net.logits,), relu=False)
        self.eval()

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x)
        x = _maxpool_same(self.conv1(x), (1, 3, 3), (1, 2, 2))
        x = _maxpool_same(self.conv2c(self.conv2b(x)), (1, 3, 3), (1, 2, 2))
        x = _maxpool_same(self.blocks3(x), (3, 3, 3), (2, 2, 2))
        x = _maxpool_same(self.blocks4(x), (2, 2, 2), (2, 2, 2))
        return F.avg_pool3d(self.blocks5(x), (2, 7, 7), stride=1)

    def features(self, x: torch.Tensor, layer: str = "logits") -> torch.Tensor:
        pooled = self.trunk(x)
        if layer == "pool":
            return pooled.mean(dim=(2, 3, 4))
        if layer != "logits":
            raise ValueError(f"unknown I3D layer {layer!r}; use 'logits' or 'pool'")
        return self.logits(pooled).mean(dim=(3, 4)).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x, "logits")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def fill_missing_bn_counters(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Add the ``num_batches_tracked`` entries old checkpoints lack (they do not affect eval)."""
    out = dict(state)
    for name, buf in model.state_dict().items():
        if name.endswith("num_batches_tracked") and name not in out:
            out[name] = torch.zeros(buf.shape, dtype=buf.dtype)
    return out


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random weights in the checkpoint's layout, scaled so activations stay O(1).

    For tests and benchmarks only (parity checks need identical weights on both sides, not trained
    ones): He-normal convolutions, batch-norm scales/variances in ``[0.5, 1.5]``, small shifts.
    """
    gen = torch.Generator().manual_seed(int(seed))
    with torch.device("meta"):
        template = InceptionI3d().state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, t in template.items():
        shape = tuple(t.shape)
        if name.endswith("num_batches_tracked"):
            out[name] = torch.zeros(shape, dtype=torch.long)
        elif name.endswith("conv3d.weight"):
            fan_in = math.prod(shape[1:])
            out[name] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
        elif name.endswith(("bn.weight", "running_var")):
            out[name] = 0.5 + torch.rand(shape, generator=gen)
        else:  # bn.bias, running_mean, logits bias
            out[name] = 0.1 * torch.randn(shape, generator=gen)
    return out
