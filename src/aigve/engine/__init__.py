"""The engine: plan (metrics, backbones, units, requests) -> execute (decode once, extract, score) ->
aggregate (CIs, diagnostics, provenance). ``ray_engine`` runs the same steps on a Ray cluster
(``--engine ray``; the only module that imports Ray). ``journal`` keeps per-unit outcomes for ``--resume``; ``cache``
keeps backbone outputs by content.

The public names are imported lazily, so ``aigve.engine.cache`` stays importable without the model stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigve.engine.execute import Engine, make_engine
    from aigve.engine.plan import ProgressFn, RunConfig

__all__ = ["Engine", "ProgressFn", "RunConfig", "make_engine"]

_WHERE = {
    "Engine": "aigve.engine.execute",
    "make_engine": "aigve.engine.execute",
    "ProgressFn": "aigve.engine.plan",
    "RunConfig": "aigve.engine.plan",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'aigve.engine' has no attribute '{name}'")
