"""The FID Inception-v3 network (the TensorFlow ``inception-2015-12-05`` graph) as a plain ``nn.Module``.

This is the network behind FID, KID and IS in pytorch-fid and torch-fidelity, written to load their
released checkpoint ``pt_inception-2015-12-05-6726825d.pth`` with ``strict=True``: module names and
tensor shapes follow torchvision's ``Inception3(num_classes=1008, aux_logits=False)`` layout
(``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch_pool.bn.running_var``, ..., ``fc.weight``).

How it differs from torchvision's ImageNet Inception-v3 (it reproduces the TF graph instead):

- the 3x3 average pools inside the A, C and first E blocks do not count the zero padding
  (TensorFlow's ``avg_pool`` semantics, ``count_include_pad=False``);
- the pooling branch of the last E block (``Mixed_7c``) uses a 3x3 *max* pool (as the TF graph does);
- the classifier has 1008 outputs (the TF graph's label space), batch norm uses eps 1e-3.

``forward`` takes RGB images in ``[0, 1]`` of any size, resizes them to 299x299 with bilinear
interpolation (``align_corners=False``, no antialiasing; skipped when already 299x299, where it is an
exact identity) and scales them to ``[-1, 1]``, exactly as pytorch-fid's ``InceptionV3(resize_input=True,
normalize_input=True)``. It returns the 2048-d pool3 features (global average pool after ``Mixed_7c``)
and the 1008 "unbiased" logits ``pool3 @ fc.weight.T`` in one pass (``fc.bias`` is added by
:meth:`FIDInceptionV3.add_bias` when the biased logits are wanted).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 299
POOL_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3

PoolKind = Literal["avg_no_pad", "max"]
Size = int | tuple[int, int]


class ConvBN(nn.Module):
    """Conv (no bias) -> BatchNorm(eps=1e-3) -> ReLU; child names ``conv`` and ``bn`` as in the checkpoint."""

    def __init__(self, cin: int, cout: int, kernel: Size, stride: Size = 1, padding: Size = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _pool3x3(x: torch.Tensor, kind: PoolKind) -> torch.Tensor:
    """Stride-1, same-size 3x3 pooling of the pooling branches (TF semantics)."""
    if kind == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | avgpool->1x1."""

    def __init__(self, cin: int, pool_out: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_pool3x3(x, "avg_no_pad"))
        return torch.cat((a, b, c, d), dim=1)


class BlockB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a): 3x3/2 | 1x1->3x3->3x3/2 | maxpool/2."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat((a, b, c), dim=1)


class BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..6e)."""

    def __init__(self, cin: int, mid: int) -> None:
        super().__init__()
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) of the 1x7 and 7x1 convs
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, mid, 1)
        self.branch7x7_2 = ConvBN(mid, mid, row[0], padding=row[1])
        self.branch7x7_3 = ConvBN(mid, 192, col[0], padding=col[1])
        self.branch7x7dbl_1 = ConvBN(cin, mid, 1)
        self.branch7x7dbl_2 = ConvBN(mid, mid, col[0], padding=col[1])
        self.branch7x7dbl_3 = ConvBN(mid, mid, row[0], padding=row[1])
        self.branch7x7dbl_4 = ConvBN(mid, mid, col[0], padding=col[1])
        self.branch7x7dbl_5 = ConvBN(mid, 192, row[0], padding=row[1])
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = x
        for conv in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            c = conv(c)
        d = self.branch_pool(_pool3x3(x, "avg_no_pad"))
        return torch.cat((a, b, c, d), dim=1)


class BlockD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a): 1x1->3x3/2 | 1x1->1x7->7x1->3x3/2 | maxpool/2."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat((a, b, c), dim=1)


class BlockE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (Mixed_7b: padding-free avg pool; Mixed_7c: max pool)."""

    def __init__(self, cin: int, pool: PoolKind) -> None:
        super().__init__()
        self.pool: PoolKind = pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        s = self.branch3x3_1(x)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = self.branch_pool(_pool3x3(x, self.pool))
        parts = (
            a,
            self.branch3x3_2a(s),
            self.branch3x3_2b(s),
            self.branch3x3dbl_3a(t),
            self.branch3x3dbl_3b(t),
            d,
        )
        return torch.cat(parts, dim=1)


class FIDInceptionOutput(NamedTuple):
    """One forward pass: ``pool`` [N, 2048] pool3 features, ``logits_unbiased`` [N, 1008] = pool @ W.T."""

    pool: torch.Tensor
    logits_unbiased: torch.Tensor


class FIDInceptionV3(nn.Module):
    """FID Inception-v3 (TF ``inception-2015-12-05``); see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, "avg_no_pad")
        self.Mixed_7c = BlockE(2048, "max")
        self.fc = nn.Linear(POOL_DIM, NUM_CLASSES)

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images ``[N, 3, H, W]`` -> bilinear 299x299 (align_corners=False, no antialias) in [-1, 1]."""
        if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2.0 * x - 1.0

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """Network input already at the network's scale ([-1, 1], normally 299x299) -> [N, 2048]."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def unbiased_logits(self, pool: torch.Tensor) -> torch.Tensor:
        """pool3 @ fc.weight.T: the TF graph's ``softmax/logits/MatMul`` output used by the IS code."""
        return pool @ self.fc.weight.T

    def add_bias(self, logits_unbiased: torch.Tensor) -> torch.Tensor:
        """Unbiased logits -> the full classifier output ``fc(pool3)``."""
        return logits_unbiased + self.fc.bias

    def forward(self, x: torch.Tensor) -> FIDInceptionOutput:
        """RGB ``[N, 3, H, W]`` in [0, 1] -> (pool3 [N, 2048], unbiased logits [N, 1008])."""
        pool = self.pool3(self.prepare(x))
        return FIDInceptionOutput(pool, self.unbiased_logits(pool))


def fill_missing_bn_counters(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Add ``num_batches_tracked`` entries a checkpoint may lack (old PyTorch); they do not affect eval."""
    out = dict(state)
    for name, buf in model.state_dict().items():
        if name.endswith("num_batches_tracked") and name not in out:
            out[name] = torch.zeros(buf.shape, dtype=buf.dtype)  # on CPU even if ``model`` is on meta
    return out
