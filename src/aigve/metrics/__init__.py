"""Metrics: the catalogue (:mod:`aigve.metrics.catalog`), the metric contract (:mod:`aigve.metrics.base`) and
every catalogue metric as a class on tensors (:mod:`aigve.metrics.tensor`): ``from aigve.metrics import FID``.

The tensor classes are imported on first use, so ``import aigve.metrics.catalog`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_TENSOR = (
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
)

__all__ = list(_TENSOR)


def __getattr__(name: str) -> Any:
    if name in _TENSOR:
        return getattr(importlib.import_module("aigve.metrics.tensor"), name)
    raise AttributeError(f"module 'aigve.metrics' has no attribute '{name}'")
