"""SimpleVQA's quality model (Sun et al., ACM MM 2022): ResNet-50 spatial features + linear quality head.

Written to load ``UGC_BVQA_model.pth`` (registry name ``simplevqa_ugc``) with ``strict=True`` once the
``module.`` prefix that ``torch.nn.DataParallel`` added when the authors saved it is removed
(:func:`strip_data_parallel`). Names and shapes follow ``model/UGC_BVQA_model.py`` of sunwei925/SimpleVQA
(@ 017edda): torchvision's ResNet-50 layout (``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``layer4.2.bn3``,
``downsample.0/1``) without ``fc``, plus ``quality.0`` (Linear 9472 -> 128) and ``quality.1``
(Linear 128 -> 1) with no activation between them.

Per key frame, the spatial feature is the global mean and the global standard deviation (unbiased,
``torch.std``) of the outputs of ``layer2``, ``layer3`` and ``layer4``, concatenated in the order
``mean2, std2, mean3, std3, mean4, std4`` (512+512+1024+1024+2048+2048 = 7168). The head reads that
concatenated with the SlowFast motion feature of the same second (2048 slow + 256 fast = 2304), gives one
number per second, and the video score is the mean over seconds.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

SPATIAL_DIM = 2 * (512 + 1024 + 2048)  # 7168
MOTION_DIM = 2048 + 256  # 2304
HEAD_IN = SPATIAL_DIM + MOTION_DIM  # 9472 = 4096+2048+1024+2048+256 in the authors' code
HEAD_HIDDEN = 128
BN_EPS = 1e-5


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck (stride on the 3x3 convolution)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _layer(cin: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(cin, planes, stride)]
    layers += [Bottleneck(planes * 4, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def mean_std_pool(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, C, H, W]`` -> (spatial mean ``[N, C]``, unbiased spatial std ``[N, C]``)."""
    flat = x.flatten(2)
    return flat.mean(2), flat.std(2)


class SimpleVQANet(nn.Module):
    """ResNet-50 trunk with SimpleVQA's multi-stage mean/std pooling and its two-layer linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 3, 1)
        self.layer2 = _layer(256, 128, 4, 2)
        self.layer3 = _layer(512, 256, 6, 2)
        self.layer4 = _layer(1024, 512, 3, 2)
        self.quality = nn.Sequential(nn.Linear(HEAD_IN, HEAD_HIDDEN), nn.Linear(HEAD_HIDDEN, 1))

    def spatial_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised frames ``[N, 3, H, W]`` -> ``[N, 7168]`` (mean/std of layer2, layer3, layer4)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x2 = self.layer2(x)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        parts: list[torch.Tensor] = []
        for t in (x2, x3, x4):
            parts.extend(mean_std_pool(t))
        return torch.cat(parts, 1)

    def frame_scores(self, spatial: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """``[N, 7168]`` spatial and ``[N, 2304]`` motion features -> ``[N]`` per-second quality."""
        return self.quality(torch.cat([spatial, motion], 1)).squeeze(1)

    def forward(self, frames: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """The authors' forward: ``[B, T, 3, H, W]`` key frames and ``[B, T, 2304]`` motion -> ``[B]``."""
        b, t = frames.shape[:2]
        spatial = self.spatial_features(frames.reshape(b * t, *frames.shape[2:]))
        return self.frame_scores(spatial, motion.reshape(b * t, -1)).view(b, t).mean(1)


def strip_data_parallel(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix ``nn.DataParallel`` puts on every key (only if all keys have it)."""
    keys = list(state)
    if keys and all(k.startswith("module.") for k in keys):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def head_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``quality.*`` entries of a (prefix-stripped) SimpleVQA state dict."""
    return {k: v for k, v in state.items() if k.startswith("quality.")}


class SimpleVQAHead(nn.Module):
    """Just the quality head (``quality.0``, ``quality.1``), for scoring from cached features."""

    def __init__(self) -> None:
        super().__init__()
        self.quality = nn.Sequential(nn.Linear(HEAD_IN, HEAD_HIDDEN), nn.Linear(HEAD_HIDDEN, 1))

    def forward(self, spatial: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """``[N, 7168]``, ``[N, 2304]`` -> ``[N]`` per-second quality."""
        return self.quality(torch.cat([spatial, motion], 1)).squeeze(1)
