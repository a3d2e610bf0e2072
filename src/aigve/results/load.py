"""Read a finished run's output directory back into a :class:`~aigve.results.records.Results`.

A run directory holds ``results.json`` (aggregates, provenance, errors) and the per-video table
``per_video.parquet`` (preferred: keeps types) or ``per_video.csv``. :func:`load_run` rebuilds the
aggregates, the per-video records and the dataset entries (with their extra fields, e.g. ``model``
or human scores), so ``compare``, ``correlate`` and ``report`` work the same on a finished run as on
the ``Results`` that :func:`aigve.api.evaluate` returns.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from aigve.errors import DatasetError, UsageError
from aigve.results.records import MetricAggregate, OutputValue, Results
from aigve.types import Entry, VideoRecord

# per-video columns that are not dataset extra fields
BASE_COLUMNS: tuple[str, ...] = (
    "video_id",
    "metric",
    "output",
    "value",
    "error",
    "warning",
    "generated",
    "real",
    "prompt",
    "details",  # a judge's per-video detail (JSON text), on one record per video and metric
)


@dataclass
class LoadedRun:
    """A run read from disk: its ``Results``, where it came from and a display label."""

    results: Results
    path: Path
    label: str


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    try:
        return bool(pd.isna(v)) if not isinstance(v, list | dict | tuple) else False
    except (TypeError, ValueError):
        return False


def _opt_float(v: Any) -> float | None:
    if _missing(v):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _output_value(d: dict[str, Any]) -> OutputValue:
    ci = d.get("ci95") or [None, None]
    return OutputValue(
        value=_opt_float(d.get("value")),
        n=int(d.get("n") or 0),
        higher_is_better=d.get("higher_is_better"),
        std=_opt_float(d.get("std")),
        ci_low=_opt_float(ci[0]),
        ci_high=_opt_float(ci[1]),
        ci_method=d.get("ci_method"),
        ci_caveat=d.get("ci_caveat"),
    )


_AGG_KEYS = {"metric", "family", "level", "backbone", "value", "higher_is_better", "n", "n_videos",
             "n_errors", "outputs", "warnings", "error", "provenance"}  # fmt: skip


def aggregate_from_dict(name: str, d: dict[str, Any]) -> MetricAggregate:
    """Inverse of :meth:`MetricAggregate.to_dict` (keys it does not know go to ``extra``)."""
    outputs = {k: _output_value(v) for k, v in (d.get("outputs") or {}).items()}
    if not outputs:  # a metric that failed before producing any output description
        outputs = {
            name: OutputValue(_opt_float(d.get("value")), int(d.get("n") or 0), d.get("higher_is_better"))
        }
    return MetricAggregate(
        metric=str(d.get("metric") or name),
        family=str(d.get("family") or ""),
        level=str(d.get("level") or "video"),
        backbone=str(d.get("backbone") or ""),
        outputs=outputs,
        n_videos=int(d.get("n_videos") or 0),
        n_errors=int(d.get("n_errors") or 0),
        provenance=dict(d.get("provenance") or {}),
        warnings=list(d.get("warnings") or []),
        error=d.get("error"),
        extra={k: v for k, v in d.items() if k not in _AGG_KEYS},
    )


def _read_per_video(run_dir: Path) -> pd.DataFrame:
    pq = run_dir / "per_video.parquet"
    csv = run_dir / "per_video.csv"
    if pq.is_file():
        try:
            return pd.read_parquet(pq)
        except Exception as exc:  # a damaged parquet: fall back to the csv written beside it
            if not csv.is_file():
                raise DatasetError(f"{pq}: could not read ({exc}); re-run the evaluation") from exc
    if csv.is_file():
        try:
            return pd.read_csv(csv, dtype={"video_id": str, "metric": str, "output": str})
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{csv}: could not parse ({exc}); re-run the evaluation") from exc
    return pd.DataFrame(columns=[c for c in BASE_COLUMNS if c != "details"])


def _resolve(p: Any, run_dir: Path) -> Path | None:
    if _missing(p) or str(p) == "":
        return None
    path = Path(str(p))
    if not path.is_absolute() and not path.exists() and (run_dir / path).exists():
        return run_dir / path
    return path


def _entries(df: pd.DataFrame, run_dir: Path) -> list[Entry]:
    if df.empty:
        return []
    extra_cols = [c for c in df.columns if c not in BASE_COLUMNS]
    entries = []
    for vid, g in df.groupby("video_id", sort=False):
        first = g.iloc[0]
        extra = {c: first[c] for c in extra_cols if not _missing(first[c])}
        gen = _resolve(first.get("generated"), run_dir)
        entries.append(
            Entry(
                id=str(vid),
                generated=gen if gen is not None else Path(str(vid)),
                real=_resolve(first.get("real"), run_dir),
                prompt=None if _missing(first.get("prompt")) else str(first.get("prompt")),
                extra=extra,
            )
        )
    return entries


def _records(df: pd.DataFrame) -> list[VideoRecord]:
    names = (*BASE_COLUMNS[:6], "details")
    cols = [df[c].tolist() if c in df.columns else [None] * len(df) for c in names]
    return [
        VideoRecord(
            str(v),
            str(m),
            str(o),
            _opt_float(val),
            None if _missing(err) else str(err),
            None if _missing(warn) else str(warn),
            None if _missing(det) else str(det),
        )
        for v, m, o, val, err, warn, det in zip(*cols, strict=True)
    ]


def load_run(path: str | Path) -> Results:
    """Rebuild the ``Results`` of a finished run from its output directory (or its results.json).

    Aggregates, provenance, errors and the dataset name come from ``results.json``; per-video
    records and entries (paths, prompt, extra fields) from ``per_video.parquet`` (or
    ``per_video.csv``). Relative video paths are resolved against the run directory when they
    exist there. Raises :class:`DatasetError` if the directory holds no ``results.json``.
    """
    p = Path(path)
    run_dir = p.parent if p.is_file() else p
    rj = run_dir / "results.json"
    if not rj.is_file():
        if not run_dir.exists():
            raise UsageError(f"{run_dir}: no such run directory; pass the --out directory of `aigve run`")
        raise DatasetError(
            f"{run_dir}: no results.json found; pass the --out directory of a finished `aigve run`"
        )
    try:
        data = json.loads(rj.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{rj}: not valid JSON ({exc}); re-run the evaluation") from exc
    if not isinstance(data, dict) or "metrics" not in data:
        raise DatasetError(f"{rj}: not an aigve results.json (no 'metrics'); pass a run's output directory")
    df = _read_per_video(run_dir)
    missing = {"video_id", "metric", "output", "value"} - set(df.columns)
    if missing and not df.empty:
        raise DatasetError(
            f"{run_dir}: per-video table lacks columns {sorted(missing)}; re-run the evaluation"
        )
    if not df.empty:
        df = df.assign(video_id=df["video_id"].astype(str))
    aggregates = {k: aggregate_from_dict(k, v) for k, v in (data.get("metrics") or {}).items()}
    return Results(
        aggregates=aggregates,
        records=_records(df) if not df.empty else [],
        entries=_entries(df, run_dir),
        provenance=dict(data.get("provenance") or {}),
        errors=list(data.get("errors") or []),
        video_warnings=list(data.get("video_warnings") or []),
        dataset_name=str(data.get("dataset") or ""),
        hints=dict(data.get("hints") or {}),
    )


def run_labels(paths: list[str | Path]) -> list[str]:
    """Short distinct labels for run directories: the folder name, with parents added on clashes."""
    parts = [Path(p).resolve().parts for p in paths]
    depth = 1
    while True:
        labels = ["/".join(pp[-depth:]) if pp else str(p) for pp, p in zip(parts, paths, strict=True)]
        if len(set(labels)) == len(labels) or depth > max(len(pp) for pp in parts):
            break
        depth += 1
    if len(set(labels)) != len(labels):
        labels = [f"{lab}#{i + 1}" for i, lab in enumerate(labels)]
    return labels


def load_runs(paths: list[str | Path]) -> list[LoadedRun]:
    """:func:`load_run` for each path, with distinct labels (see :func:`run_labels`)."""
    if not paths:
        raise UsageError("no run directories given")
    labels = run_labels(paths)
    return [LoadedRun(load_run(p), Path(p), lab) for p, lab in zip(paths, labels, strict=True)]
