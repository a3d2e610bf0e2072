"""Metrics: the catalogue (:mod:`aigve.metrics.catalog`), the metric contract (:mod:`aigve.metrics.base`) and
every catalogue metric as a class on tensors (:mod:`aigve.metrics.tensor`): ``from aigve.metrics import FID``.

The tensor classes are imported on first use, so ``import aigve.metrics.catalog`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigve.metrics.tensor import (
        DOVER as DOVER,
    )
    from aigve.metrics.tensor import (
        FID as FID,
    )
    from aigve.metrics.tensor import (
        FVD as FVD,
    )
    from aigve.metrics.tensor import (
        GSTVQA as GSTVQA,
    )
    from aigve.metrics.tensor import (
        KID as KID,
    )
    from aigve.metrics.tensor import (
        NIQE as NIQE,
    )
    from aigve.metrics.tensor import (
        BLIPSim as BLIPSim,
    )
    from aigve.metrics.tensor import (
        BlurEffect as BlurEffect,
    )
    from aigve.metrics.tensor import (
        CLIPSim as CLIPSim,
    )
    from aigve.metrics.tensor import (
        CLIPTemp as CLIPTemp,
    )
    from aigve.metrics.tensor import (
        Flicker as Flicker,
    )
    from aigve.metrics.tensor import (
        FrameConsistency as FrameConsistency,
    )
    from aigve.metrics.tensor import (
        Freeze as Freeze,
    )
    from aigve.metrics.tensor import (
        FVDVideoMAE as FVDVideoMAE,
    )
    from aigve.metrics.tensor import (
        InceptionScore as InceptionScore,
    )
    from aigve.metrics.tensor import (
        MetricState as MetricState,
    )
    from aigve.metrics.tensor import (
        Motion as Motion,
    )
    from aigve.metrics.tensor import (
        PickScore as PickScore,
    )
    from aigve.metrics.tensor import (
        SimpleVQA as SimpleVQA,
    )
    from aigve.metrics.tensor import (
        TensorMetric as TensorMetric,
    )
    from aigve.metrics.tensor import (
        TensorMetrics as TensorMetrics,
    )
    from aigve.metrics.tensor import (
        VideoPhy as VideoPhy,
    )
    from aigve.metrics.tensor import (
        tensor_metric_class as tensor_metric_class,
    )

__all__ = [
    "TensorMetric",
    "TensorMetrics",
    "MetricState",
    "tensor_metric_class",
    "FID",
    "FVD",
    "FVDVideoMAE",
    "InceptionScore",
    "KID",
    "DOVER",
    "GSTVQA",
    "SimpleVQA",
    "BLIPSim",
    "CLIPSim",
    "CLIPTemp",
    "PickScore",
    "BlurEffect",
    "Flicker",
    "FrameConsistency",
    "Freeze",
    "Motion",
    "NIQE",
    "VideoPhy",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("aigve.metrics.tensor"), name)
    raise AttributeError(f"module 'aigve.metrics' has no attribute '{name}'")
