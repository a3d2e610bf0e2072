"""Score a metric on one video the way the engine does, from the input of its single backbone request.

For a request naming a scorer, ``data`` is what the scorer reads (its upstream extractor's features, or the
frames) and the scorer runs on it with the entry's texts before the metric reduces its output; for an
extractor request, ``data`` is that extractor's output. The engine itself is tested end to end elsewhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aigve.backbones.base import Scorer, ScorerInput
from aigve.backbones.registry import get_backbone_class
from aigve.metrics.base import Metric
from aigve.types import Entry


def entry_texts(scorer: Scorer, entry: Entry) -> dict[str, str]:
    return {t: str(entry.prompt if t == "prompt" else entry.extra[t]) for t in scorer.texts}


def build_scorer(metric: Metric, **kwargs: Any) -> Scorer:
    """The scorer of the metric's single request, built with the options the engine would give it."""
    (req,) = metric.effective_requests()
    cls = get_backbone_class(req.extractor)
    assert issubclass(cls, Scorer), f"{metric.name} asks for {req.extractor}, which is not a scorer"
    return cls(**{**dict(req.options), **kwargs})


def staged_score(metric: Metric, entry: Entry, data: Any, scorer: Scorer | None = None, **inputs: Any):
    """``metric.score`` on ``entry`` from ``data`` (plus named ``inputs`` for multi-upstream scorers)."""
    (req,) = metric.effective_requests()
    cls = get_backbone_class(req.extractor)
    if not issubclass(cls, Scorer):
        return metric.score(entry, {req.role: np.asarray(data)})
    sc = scorer or cls(**dict(req.options))
    features = {k: np.asarray(v) for k, v in inputs.items()}
    item = ScorerInput(
        entry.id, np.asarray(data) if data is not None else None, None, entry_texts(sc, entry), features
    )
    out = sc.score([item])[0]
    return metric.score(entry, {req.role: out})
