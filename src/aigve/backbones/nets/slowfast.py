"""SlowFast R50 (8x8, Kinetics-400) in pytorchvideo's module layout.

Written to load pytorchvideo's ``SLOWFAST_8x8_R50.pyth`` (``checkpoint["model_state"]``, registry name
``slowfast_r50``) with ``strict=True``: module names and shapes follow ``pytorchvideo.models.hub.slowfast_r50``
(``create_slowfast(model_depth=50, slowfast_fusion_conv_kernel_size=(7, 1, 1))``), e.g.
``blocks.0.multipathway_blocks.1.conv.weight``, ``blocks.2.multipathway_blocks.0.res_blocks.0.branch1_norm.
running_var``, ``blocks.1.multipathway_fusion.conv_fast_to_slow.weight``, ``blocks.6.proj.weight``.
Checked against the state dict of pytorchvideo's own model (facebookresearch/pytorchvideo @ f3142bb) and its
outputs (tests/backbones/test_slowfast.py).

Architecture (Feichtenhofer et al., ICCV 2019, as pytorchvideo builds it): two pathways, slow (8 frames, 64
stem channels) and fast (32 frames, 8 stem channels); every convolution has no bias and is followed by batch
norm (eps 1e-5) and ReLU (not after the last convolution of a bottleneck); after the stem and each of the
first three stages a fast->slow fusion (``Conv3d(c, 2c, (7, 1, 1), stride (4, 1, 1), padding (3, 0, 0))``,
BN, ReLU) is concatenated to the slow pathway's channels. Stage depths 3/4/6/3; temporal kernel 3 in the
bottlenecks' first 1x1 convolution for the fast pathway everywhere and for the slow pathway from stage 3
on; spatial stride 2 in the 3x3 convolution of the first block of stages 3-5. Head: per-pathway
``AvgPool3d((8, 7, 7))`` / ``AvgPool3d((32, 7, 7))`` (stride 1), concatenation (2048 + 256 = 2304), then in
the classifier dropout, ``proj`` (Linear 2304 -> 400) and a global average.

:meth:`SlowFastR50.pooled` returns what SimpleVQA (and Light-VQA) use as motion features: the two
pathways' head average pools followed by the head's ``AdaptiveAvgPool3d(1)``, as ``(slow [B, 2048],
fast [B, 256])``.
"""

from __future__ import annotations

import torch
from torch import nn

Triple = tuple[int, int, int]

BN_EPS = 1e-5
SLOW_DIM = 2048
FAST_DIM = 256
NUM_CLASSES = 400
ALPHA = 4  # fast frames per slow frame
BETA_INV = 8  # slow channels / fast channels
FUSION_RATIO = 2
DEPTHS = (3, 4, 6, 3)
# temporal kernel of conv_a per stage (stages res2..res5), per pathway (slow, fast)
CONV_A_T = ((1, 1, 3, 3), (3, 3, 3, 3))
SPATIAL_STRIDES = (1, 2, 2, 2)
HEAD_POOL = ((8, 7, 7), (32, 7, 7))


def slow_indices(num_frames: int) -> torch.Tensor:
    """Frames of a fast-pathway clip that feed the slow pathway: ``linspace(0, T-1, T // 4).long()``
    (float32 linspace truncated, as SimpleVQA's ``pack_pathway_output`` does)."""
    return torch.linspace(0, num_frames - 1, num_frames // ALPHA).long()


class _Stem(nn.Module):
    """conv (k, 7, 7) stride (1, 2, 2) -> BN -> ReLU -> max pool (1, 3, 3) stride (1, 2, 2)."""

    def __init__(self, cin: int, cout: int, kt: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3), bias=False)
        self.norm = nn.BatchNorm3d(cout, eps=BN_EPS)
        self.activation = nn.ReLU()
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.activation(self.norm(self.conv(x))))


class _Fuse(nn.Module):
    """Fast -> slow lateral connection: time-strided conv of the fast features, concatenated to slow."""

    def __init__(self, fast_dim: int) -> None:
        super().__init__()
        self.conv_fast_to_slow = nn.Conv3d(
            fast_dim, fast_dim * FUSION_RATIO, (7, 1, 1), (ALPHA, 1, 1), (3, 0, 0), bias=False
        )
        self.norm = nn.BatchNorm3d(fast_dim * FUSION_RATIO, eps=BN_EPS)
        self.activation = nn.ReLU()

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        fuse = self.activation(self.norm(self.conv_fast_to_slow(x[1])))
        return [torch.cat([x[0], fuse], 1), x[1]]


class _Identity(nn.Module):
    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        return x


class _Branch2(nn.Module):
    """Bottleneck: conv_a (kt, 1, 1) -> BN -> ReLU -> conv_b (1, 3, 3) strided -> BN -> ReLU -> conv_c -> BN."""

    def __init__(self, cin: int, inner: int, cout: int, kt: int, stride: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv3d(cin, inner, (kt, 1, 1), 1, (kt // 2, 0, 0), bias=False)
        self.norm_a = nn.BatchNorm3d(inner, eps=BN_EPS)
        self.act_a = nn.ReLU()
        self.conv_b = nn.Conv3d(inner, inner, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.norm_b = nn.BatchNorm3d(inner, eps=BN_EPS)
        self.act_b = nn.ReLU()
        self.conv_c = nn.Conv3d(inner, cout, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class _ResBlock(nn.Module):
    def __init__(self, cin: int, inner: int, cout: int, kt: int, stride: int) -> None:
        super().__init__()
        self.branch1_conv: nn.Conv3d | None = None
        self.branch1_norm: nn.BatchNorm3d | None = None
        if cin != cout or stride != 1:
            self.branch1_conv = nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False)
            self.branch1_norm = nn.BatchNorm3d(cout, eps=BN_EPS)
        self.branch2 = _Branch2(cin, inner, cout, kt, stride)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            assert self.branch1_norm is not None
            shortcut = self.branch1_norm(self.branch1_conv(x))
        return self.activation(shortcut + self.branch2(x))


class _ResStage(nn.Module):
    def __init__(self, depth: int, cin: int, inner: int, cout: int, kt: int, stride: int) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(
            _ResBlock(cin if i == 0 else cout, inner, cout, kt, stride if i == 0 else 1) for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class _MultiPathway(nn.Module):
    """One block of the network: a module per pathway, then the fast->slow fusion (or nothing)."""

    def __init__(self, blocks: list[nn.Module], fusion: nn.Module) -> None:
        super().__init__()
        self.multipathway_blocks = nn.ModuleList(blocks)
        self.multipathway_fusion = fusion

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        out = [blk(xi) for blk, xi in zip(self.multipathway_blocks, x, strict=True)]
        return self.multipathway_fusion(out)


class _PoolConcat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.ModuleList(nn.AvgPool3d(k, stride=1) for k in HEAD_POOL)

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([p(xi) for p, xi in zip(self.pool, x, strict=True)], 1)


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)
        self.proj = nn.Linear(SLOW_DIM + FAST_DIM, NUM_CLASSES)
        self.output_pool = nn.AdaptiveAvgPool3d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x.permute(0, 2, 3, 4, 1))
        x = self.proj(x).permute(0, 4, 1, 2, 3)
        return self.output_pool(x).flatten(1)


class SlowFastR50(nn.Module):
    """SlowFast 8x8 R50 with pytorchvideo's parameter names (``blocks.0`` ... ``blocks.6``)."""

    def __init__(self) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            _MultiPathway([_Stem(3, 64, 1), _Stem(3, 8, 5)], _Fuse(8)),
        ]
        dim_in, dim_out = 64, 256
        for idx, depth in enumerate(DEPTHS):
            slow_in = dim_in + dim_in * FUSION_RATIO // BETA_INV
            fast_in = dim_in // BETA_INV
            stride = SPATIAL_STRIDES[idx]
            stages: list[nn.Module] = [
                _ResStage(depth, slow_in, dim_out // 4, dim_out, CONV_A_T[0][idx], stride),
                _ResStage(
                    depth, fast_in, dim_out // 4 // BETA_INV, dim_out // BETA_INV, CONV_A_T[1][idx], stride
                ),
            ]
            fusion: nn.Module = _Fuse(dim_out // BETA_INV) if idx < len(DEPTHS) - 1 else _Identity()
            blocks.append(_MultiPathway(stages, fusion))
            dim_in, dim_out = dim_out, dim_out * 2
        blocks.append(_PoolConcat())
        blocks.append(_Head())
        self.blocks = nn.ModuleList(blocks)

    def trunk(self, slow: torch.Tensor, fast: torch.Tensor) -> list[torch.Tensor]:
        """Stem and stages res2..res5: ``[slow [B, 2048, T/4, H/32, W/32], fast [B, 256, T, ...]]``."""
        x = [slow, fast]
        for blk in self.blocks[:5]:
            x = blk(x)
        return x

    def pooled(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Motion features ``(slow [B, 2048], fast [B, 256])``: each pathway's head ``AvgPool3d`` followed by
        the head's ``AdaptiveAvgPool3d(1)`` (SimpleVQA's ``slowfast`` module). Inputs ``[B, 3, T, H, W]``:
        ``slow`` with T/4 frames, ``fast`` with T frames (32 and 224x224 in the protocol)."""
        xs, xf = self.trunk(slow, fast)
        pool_concat, head = self.blocks[5], self.blocks[6]
        assert isinstance(pool_concat, _PoolConcat) and isinstance(head, _Head)
        pools, gap = pool_concat.pool, head.output_pool
        return gap(pools[0](xs)).flatten(1), gap(pools[1](xf)).flatten(1)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        """Kinetics-400 logits ``[B, 400]`` (pytorchvideo's forward; no softmax)."""
        return self.blocks[6](self.blocks[5](self.trunk(slow, fast)))

    @staticmethod
    def pathways(clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, 3, T, H, W]`` fast clip -> ``(slow, fast)`` inputs (slow = :func:`slow_indices` frames)."""
        idx = slow_indices(int(clip.shape[2])).to(clip.device)
        return clip.index_select(2, idx), clip
