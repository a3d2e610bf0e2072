"""Metrics: the catalogue (:mod:`aigve.metrics.catalog`), the metric contract (:mod:`aigve.metrics.base`) and
every catalogue metric as a class on tensors (:mod:`aigve.metrics.tensor`): ``from aigve.metrics import FID``.

The tensor classes are imported on first use, so ``import aigve.metrics.catalog`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigve.metrics.tensor import *  # noqa: F403

#: names served from :mod:`aigve.metrics.tensor` besides its metric classes (``CLASS_NAMES``)
_TENSOR_API = {"TensorMetric", "TensorMetrics", "MetricState", "tensor_metric_class"}


def __getattr__(name: str) -> Any:
    if not name.startswith("_"):
        tensor = importlib.import_module("aigve.metrics.tensor")
        if name in _TENSOR_API or name in tensor.CLASS_NAMES:
            return getattr(tensor, name)
    raise AttributeError(f"module 'aigve.metrics' has no attribute '{name}'")
