"""The results of a run: per-video records, per-metric aggregates and provenance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aigve.fsutil import text_name
from aigve.types import Entry, VideoRecord


@dataclass
class OutputValue:
    """An aggregate of one metric output. ``std``/``ci`` are filled where the metric has them."""

    value: float | None
    n: int
    higher_is_better: bool | None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None
    #: set when the CI was resampled from too few videos to be read as a 95% interval (see
    #: :func:`aigve.results.summary.ci_caveat`)
    ci_caveat: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"value": self.value, "n": self.n, "higher_is_better": self.higher_is_better}
        if self.std is not None:
            d["std"] = self.std
        if self.ci_low is not None or self.ci_high is not None:
            d["ci95"] = [self.ci_low, self.ci_high]
            d["ci_method"] = self.ci_method
            if self.ci_caveat:
                d["ci_caveat"] = self.ci_caveat
        return d


@dataclass
class MetricAggregate:
    metric: str
    family: str
    level: str
    backbone: str
    outputs: dict[str, OutputValue]
    n_videos: int
    n_errors: int
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # the metric could not run at all (e.g. missing extra or weights)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. n_real / n_generated for set metrics

    @property
    def primary(self) -> str:
        return next(iter(self.outputs))

    @property
    def value(self) -> float | None:
        return self.outputs[self.primary].value if self.outputs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "family": self.family,
            "level": self.level,
            "backbone": self.backbone,
            "value": self.value,
            "higher_is_better": self.outputs[self.primary].higher_is_better if self.outputs else None,
            "n": self.outputs[self.primary].n if self.outputs else 0,
            "n_videos": self.n_videos,
            "n_errors": self.n_errors,
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
            **self.extra,
            "warnings": self.warnings,
            "error": self.error,
            "provenance": self.provenance,
        }


def text_safe(v: Any) -> Any:
    """Strings as valid UTF-8 text (:func:`aigve.fsutil.text_name`, the escape the dataset's ids use);
    other values unchanged."""
    return text_name(v) if isinstance(v, str) else v


def finite_mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(sum(vals) / len(vals)) if vals else None


@dataclass
class Results:
    """What ``evaluate`` returns and the writers serialise."""

    aggregates: dict[str, MetricAggregate]
    records: list[VideoRecord]
    entries: list[Entry]
    provenance: dict[str, Any]
    errors: list[dict[str, Any]]
    video_warnings: list[dict[str, Any]] = field(default_factory=list)
    dataset_name: str = ""
    hints: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_videos(self) -> set[str]:
        """Ids of the videos with an error of their own: dataset entries, and real videos as
        ``real:<path>`` (:func:`aigve.results.summary.error_counts`; a metric that could not run at all
        is the metric's failure, not its videos')."""
        from aigve.results.summary import error_counts

        c = error_counts(self)
        return c.videos | c.real_videos

    @property
    def exit_code(self) -> int:
        """0 when every video and metric succeeded, 3 when anything failed."""
        metric_failed = any(a.error for a in self.aggregates.values())
        return 3 if (self.failed_videos or metric_failed or self.errors) else 0

    def value(self, metric: str, output: str | None = None) -> float | None:
        agg = self.aggregates[metric]
        return agg.outputs[output or agg.primary].value

    @property
    def per_video(self) -> pd.DataFrame:
        """One row per video x metric output, with the dataset's fields joined in."""
        by_id = {e.id: e for e in self.entries}
        rows = []
        for r in self.records:
            row = r.to_dict()
            e = by_id.get(r.video_id)
            if e is not None:
                row["generated"] = str(e.generated)
                row["real"] = str(e.real) if e.real else None
                row["prompt"] = e.prompt
                for k, v in e.extra.items():
                    if k not in row:
                        row[k] = v
            rows.append({k: text_safe(v) for k, v in row.items()})
        cols = ["video_id", "metric", "output", "value", "error", "warning", "generated", "real", "prompt"]
        df = pd.DataFrame(rows)
        if df.empty:
            return pd.DataFrame(columns=cols)
        for c in cols:  # a fixed set of columns, whatever the records are (e.g. only real-side errors)
            if c not in df.columns:
                df[c] = None
        return df[cols + [c for c in df.columns if c not in cols]]

    def wide(self) -> pd.DataFrame:
        """Per-video table with one column per metric output (primary outputs named by metric)."""
        df = self.per_video
        if df.empty:
            return df
        df = df.assign(
            column=[m if o == m else f"{m}.{o}" for m, o in zip(df["metric"], df["output"], strict=True)]
        )
        return df.pivot_table(index="video_id", columns="column", values="value", aggfunc="first")

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset_name,
            "hints": self.hints,
            "metrics": {k: v.to_dict() for k, v in self.aggregates.items()},
            "n_videos": len(self.entries),
            **_error_fields(self),
            "errors": self.errors,
            "video_warnings": self.video_warnings,
            "provenance": self.provenance,
            **_suite_fields(self),
        }


def _suite_fields(results: Results) -> dict[str, Any]:
    """``"vbench"``: the VBench Quality/Semantic/Total over the run's ``vbench_*`` dimensions (when any ran)."""
    from aigve.vbench.suite import results_suite_scores

    scores = results_suite_scores(results)
    return {"vbench": scores.to_dict()} if scores is not None else {}


def _error_fields(results: Results) -> dict[str, Any]:
    """The error counts of ``results.json``, as the summary and the report state them."""
    from aigve.results.summary import error_counts

    c = error_counts(results)
    return {
        "n_failed_videos": len(c.videos),
        "n_failed_real_videos": len(c.real_videos),
        "metrics_failed": list(c.metrics_failed),
    }
