"""Write a run's results: results.json, per_video.csv/.parquet, AIGVE-compatible files, summary."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aigve.fsutil import as_if_opened
from aigve.results.records import Results


def json_safe(obj: Any) -> Any:
    """Plain JSON values: string keys, lists for tuples, ``None`` for NaN/inf, str for paths, numpy scalars unwrapped."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    as_if_opened(fd)
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False, default=str) + "\n")


def aigve_compatible(results: Results, metric: str) -> dict[str, Any]:
    """The original toolkit's ``<metric>_results.json``: per-video dicts plus ``<NAME>_Mean_Score``."""
    agg = results.aggregates[metric]
    by_id = {e.id: e for e in results.entries}
    per: dict[str, dict[str, Any]] = {}
    for r in results.records:
        if r.metric != metric or r.output.startswith("_"):
            continue
        e = by_id.get(r.video_id)
        row = per.setdefault(
            r.video_id,
            {
                "video_id": r.video_id,
                "video_path_pd": str(e.generated.name) if e else None,
                "video_path_gt": str(e.real.name) if e and e.real else None,
                "prompt_gt": e.prompt if e else None,
            },
        )
        row[r.output] = r.value
        if r.error:
            row["error"] = r.error
    return {"video_results": list(per.values()), f"{metric.upper()}_Mean_Score": agg.value}


def write_results(results: Results, out_dir: str | Path) -> dict[str, Path]:
    """Write every result file; returns name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["results.json"] = out / "results.json"
    write_json(paths["results.json"], results.to_dict())
    df = results.per_video
    paths["per_video.csv"] = out / "per_video.csv"
    atomic_write_text(paths["per_video.csv"], df.to_csv(index=False))
    paths["per_video.parquet"] = out / "per_video.parquet"
    pq = df.copy()
    for col in pq.columns:  # parquet wants one type per column; extra fields may mix
        if pq[col].dtype == object:
            pq[col] = pq[col].map(
                lambda v: None if v is None else (v if isinstance(v, str) else json.dumps(v, default=str))
            )
    tmp = out / ".per_video.parquet.tmp"
    pq.to_parquet(tmp, index=False)
    os.replace(tmp, paths["per_video.parquet"])
    for metric in results.aggregates:
        p = out / f"{metric}_results.json"
        write_json(p, aigve_compatible(results, metric))
        paths[p.name] = p
    return paths


def group_table(results: Results, by: str) -> pd.DataFrame | None:
    """Mean of each metric's primary output per value of an extra field (e.g. the demo's distortion)."""
    df = results.per_video
    if df.empty or by not in df.columns:
        return None
    prim = {name: agg.primary for name, agg in results.aggregates.items()}
    df = df[df.apply(lambda r: prim.get(r["metric"]) == r["output"] and r["error"] is None, axis=1)]
    if df.empty:
        return None
    return df.pivot_table(index=by, columns="metric", values="value", aggfunc="mean", sort=False)
