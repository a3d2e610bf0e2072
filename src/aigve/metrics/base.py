"""The metric contract and its catalogue row.

A metric says *what it needs* (``requests()``: which extractor, on which frames, of which side) and
*what it does with it*. Two kinds:

- ``VideoMetric``: ``score(entry, feats)`` -> per-video values; its aggregate is the mean over
  videos (computed by the engine from the per-video rows, so resume and merge are trivial).
- ``SetMetric``: torchmetrics' contract, ``update(entry, side, feats)`` accumulates sufficient
  statistics, ``merge(other)`` combines workers, ``compute()`` gives set-level values.

Metrics never decode video and never load models: the engine does that once and hands the
features to every metric that asked for them.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from aigve.errors import UsageError
from aigve.types import Entry, Side
from aigve.video.sampling import Sampler, Window

FAMILIES: tuple[str, ...] = (
    "distribution_based",
    "nn_based_video",
    "vl_similarity",
    "vl_understanding",
    "multi_aspect",
    "classic",
)
Input = Literal["generated", "real", "prompt"]
Level = Literal["video", "set"]


@dataclass(frozen=True)
class OutputSpec:
    """One named number a metric produces. ``higher_is_better`` None = no direction (diagnostic)."""

    name: str
    higher_is_better: bool | None
    range: tuple[float | None, float | None] = (None, None)
    description: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """A catalogue row: drives ``aigve list-metrics``, the README table, the report and the server."""

    name: str
    family: str
    description: str
    inputs: tuple[str, ...]
    backbone: str
    outputs: tuple[OutputSpec, ...]
    level: Level = "video"
    citation: str = ""
    extra: str | None = None  # pip extra needed, e.g. "offline"
    requires: tuple[str, ...] = ()  # importable modules the extra provides
    weights: tuple[str, ...] = ()  # weights-registry names needed by the default backbone
    suites: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)  # defaults; documented per metric

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}")
        if not self.outputs:
            raise ValueError(f"{self.name}: a metric has at least one output")

    @property
    def primary(self) -> OutputSpec:
        return self.outputs[0]

    @property
    def higher_is_better(self) -> bool | None:
        return self.primary.higher_is_better

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "inputs": list(self.inputs),
            "backbone": self.backbone,
            "level": self.level,
            "higher_is_better": self.higher_is_better,
            "range": list(self.primary.range),
            "outputs": [
                {
                    "name": o.name,
                    "higher_is_better": o.higher_is_better,
                    "range": list(o.range),
                    "description": o.description,
                }
                for o in self.outputs
            ],
            "citation": self.citation,
            "extra": self.extra,
            "weights": list(self.weights),
            "suites": list(self.suites),
            "options": dict(self.options),
        }


@dataclass(frozen=True)
class FeatureRequest:
    """Features of one side of an entry from one extractor on one sampler's frames.

    ``role`` is how the metric finds the array in ``feats``; it is not part of the key, so two
    metrics asking for the same extractor, options, sampler and side share one computation.
    """

    role: str
    extractor: str
    sampler: Sampler
    side: Side = "generated"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.extractor, self.options, self.sampler.id, self.side)

    @property
    def extractor_key(self) -> tuple[Any, ...]:
        return (self.extractor, self.options)


def parse_option_value(raw: str) -> Any:
    """Turn a command-line option string into bool/int/float/None/str."""
    low = raw.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


class Metric(ABC):
    """Base of all metrics. Subclasses set ``spec`` and implement ``requests``."""

    spec: ClassVar[MetricSpec]
    #: True for metrics that implement :class:`ReferenceStats` (``--real-stats``)
    real_stats_supported: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        defaults = dict(self.spec.options)
        unknown = set(options) - set(defaults) - {"weights", "batch_size"}
        if unknown:
            known = set(defaults) | ({"weights"} if self.spec.weights else set())
            raise UsageError(
                f"metric '{self.spec.name}' has no option(s) {sorted(unknown)}; "
                + (f"known: {sorted(known)}" if known else "it takes no options")
            )
        defaults.update(options)
        self.options: dict[str, Any] = defaults
        #: the run's decode window (``Window.to_dict()``), set by the engine before ``bind`` (a metric used
        #: on its own sees whole videos); metrics whose reference statistics depend on it record and check it
        self.run_window: dict[str, Any] = Window().to_dict()

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    def requests(self) -> list[FeatureRequest]:
        """The features this metric needs for each entry."""

    def bind(self, identities: Mapping[str, Mapping[str, Any]]) -> None:
        """Called by the engine once the extractors are built: role -> extractor identity (with the
        weights sha256). Metrics that record or check it (e.g. reference statistics) override this."""
        self.identities = {k: dict(v) for k, v in identities.items()}

    def extractor_options(self) -> dict[str, Any]:
        """Options passed to this metric's backbones (e.g. an explicit ``weights`` path)."""
        return {"weights": self.options["weights"]} if self.options.get("weights") else {}

    def effective_requests(self) -> list[FeatureRequest]:
        """``requests()`` with :meth:`extractor_options` merged into each request's options: exactly what the
        engine builds and caches (two requests with equal keys share one computation)."""
        out = []
        for req in self.requests():
            opts = dict(req.options)
            opts.update(self.extractor_options())
            out.append(
                FeatureRequest(req.role, req.extractor, req.sampler, req.side, tuple(sorted(opts.items())))
            )
        return out

    def provenance(self) -> dict[str, Any]:
        """What the score means: options and samplers (the engine adds extractor identities)."""
        return {
            "options": {k: v for k, v in sorted(self.options.items())},
            "sampling": {r.role: r.sampler.to_dict() for r in self.requests()},
        }


class VideoMetric(Metric):
    """Per-video metric; the aggregate is the mean over successfully scored videos."""

    @abstractmethod
    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Values for every output of the spec (keys = output names)."""


class SetMetric(Metric):
    """Set-level metric with mergeable sufficient statistics."""

    @abstractmethod
    def update(self, entry: Entry, side: Side, feats: Mapping[str, np.ndarray]) -> None: ...

    @abstractmethod
    def compute(self) -> dict[str, Any]:
        """Aggregate values per output name; may add 'warnings' (list[str]) and 'n_real'/'n_generated'."""

    @abstractmethod
    def merge(self, other: SetMetric) -> None: ...

    def per_video(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Optional per-video diagnostics computed after ``compute`` (clearly named, not the metric)."""
        return {}

    #: resampling method for the set-level bootstrap CI ("centered" for biased statistics like FID)
    bootstrap_method: ClassVar[Literal["percentile", "centered"]] = "percentile"

    def value_from_features(self, real: np.ndarray, generated: np.ndarray) -> float | None:
        """The primary value recomputed from raw feature rows of both sides (for bootstrap CIs).

        ``None`` (the default) means the metric has no set-level CI. Rows are what ``update``
        received, stacked; the engine resamples whole videos on both sides from cached features.
        """
        return None

    def bootstrap_resampler(
        self, real: Sequence[np.ndarray], generated: Sequence[np.ndarray]
    ) -> Callable[[np.ndarray, np.ndarray], float] | None:
        """Optional fast path of the set bootstrap: built once from the per-video feature arrays of both
        sides, it maps (resampled real video indices, resampled generated video indices) to the value
        :meth:`value_from_features` gives on those videos' stacked rows, without restacking them. ``None``
        (the default): the engine calls ``value_from_features`` per resample."""
        return None

    def reset(self) -> None:
        """Drop the accumulated state (fresh instance semantics)."""
        self.__init__(**self.options)  # type: ignore[misc]


class ReferenceStats(ABC):
    """A set metric that can read the real side from reference statistics instead of real videos.

    The metric's ``real_stats`` option names a file written by :meth:`save_real_stats` (``aigve stats
    compute``); :meth:`real_stats_meta` lists every setting that changes those statistics (backbone, weights
    sha256, layer, sampling, decode window, ...): stored in the file and compared on :meth:`load_real_stats`,
    which refuses a file made with other settings (``UsageError`` naming the differing keys).
    """

    real_stats_supported: ClassVar[bool] = True

    @abstractmethod
    def real_stats_meta(self) -> dict[str, Any]:
        """Every setting that changes the real statistics (stored with them, checked on load)."""

    @abstractmethod
    def save_real_stats(self, path: str | os.PathLike[str], features: list[np.ndarray] | None = None) -> Path:
        """Write the accumulated real statistics with :meth:`real_stats_meta` (and, given, the per-video
        feature arrays behind them, for set-level CIs of later runs); returns the path written."""

    @abstractmethod
    def load_real_stats(self, path: str | os.PathLike[str]) -> None:
        """Use the statistics in ``path`` as the real side (refused when made with other settings)."""

    def reference_features(self) -> list[np.ndarray] | None:
        """Per-video feature arrays of the real side read with the statistics (aigve files written with
        ``--per-video-features``), which the set-level bootstrap resamples; ``None`` when the file has none."""
        return None


def supports_reference_stats(metric: type[Metric] | Metric) -> bool:
    """Does this metric take ``--real-stats`` reference statistics?"""
    cls = metric if isinstance(metric, type) else type(metric)
    return issubclass(cls, ReferenceStats)
