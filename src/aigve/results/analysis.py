"""Analysis of finished runs: comparison tables across runs (or models) and agreement with human scores.

- :func:`run_comparison`: per metric, the difference between runs (or between the groups of a dataset
  field, e.g. ``by="model"``), its bootstrap CI and a paired permutation test on the shared keys
  (``video_id`` for two runs of the same videos, ``prompt`` for two generators on the same prompts), with
  the direction from the metric catalogue; plus a leaderboard across all runs/groups
  (:class:`ComparisonTables`: markdown, csv or json).
- :func:`run_alignment`: SRCC/PLCC/KRCC with CIs per metric x human aspect, the random baseline and the
  cross-validated fusion (see :mod:`aigve.results.alignment`).

Used by ``aigve compare`` / ``aigve correlate`` (:mod:`aigve.cli.compare`) and by the HTML report
(:func:`long_table`, :func:`directions_for`, :func:`run_comparison`, :func:`run_alignment`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aigve.errors import DatasetError, UsageError
from aigve.results.records import Results

KEY_AUTO = "auto"


# ------------------------------------------------------------------------------ tables from runs


def output_label(metric: str, output: str, primary: str | None) -> str:
    """Column name of a metric output: the metric's name for its primary output, else ``metric.output``."""
    return metric if output == (primary or metric) else f"{metric}.{output}"


def directions_for(results: Results) -> dict[str, bool | None]:
    """higher_is_better per output label: the catalogue's, else what the run recorded."""
    try:
        from aigve.metrics.catalog import all_specs

        specs = {s.name: s for s in all_specs()}
    except Exception:  # a broken optional metric module must not stop a comparison
        specs = {}
    out: dict[str, bool | None] = {}
    for name, agg in results.aggregates.items():
        spec = specs.get(name)
        cat = {o.name: o.higher_is_better for o in spec.outputs} if spec is not None else {}
        for oname, ov in agg.outputs.items():
            out[output_label(name, oname, agg.primary)] = cat.get(oname, ov.higher_is_better)
    return out


def long_table(results: Results, all_outputs: bool = False) -> pd.DataFrame:
    """Per-video values, one row per video x metric output, ``metric`` = output label.

    Keeps successful finite values of video-level outputs (diagnostic outputs whose name starts
    with ``_`` are left out); ``all_outputs=False`` keeps only each metric's primary output. The
    dataset's fields (prompt, model, ...) stay as columns.
    """
    df = results.per_video
    if df.empty:
        return pd.DataFrame(columns=["video_id", "metric", "value"])
    prim = {name: agg.primary for name, agg in results.aggregates.items()}
    out_names = df["output"].astype(str)
    keep = ~out_names.str.startswith("_") & df["value"].notna()
    if "error" in df.columns:
        keep &= df["error"].isna()
    if not all_outputs:
        keep &= np.array([prim.get(m) == o for m, o in zip(df["metric"], out_names, strict=True)], dtype=bool)
    df = df.loc[keep].copy()
    df["metric"] = [output_label(m, o, prim.get(m)) for m, o in zip(df["metric"], df["output"], strict=True)]
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df[np.isfinite(df["value"].to_numpy(dtype=np.float64))]
    return df.reset_index(drop=True)


def set_level_values(results: Results) -> dict[str, tuple[float | None, float | None, float | None]]:
    """``label -> (value, ci_low, ci_high)`` of set-level metrics (FID, FVD, ...), which have no
    per-video values to test."""
    out = {}
    for name, agg in results.aggregates.items():
        if agg.level != "set" or agg.error:
            continue
        ov = agg.outputs[agg.primary]
        out[output_label(name, agg.primary, agg.primary)] = (ov.value, ov.ci_low, ov.ci_high)
    return out


@dataclass
class ComparisonTables:
    """What ``aigve compare`` writes: a leaderboard and pairwise comparisons."""

    leaderboard: (
        pd.DataFrame
    )  # long: model, metric, n, mean, ci_low, ci_high, ci_reason, higher_is_better, rank
    comparisons: pd.DataFrame  # one row per (a, b, metric)
    groups: list[str]
    by: str | None
    key: str
    notes: list[str] = field(default_factory=list)

    def leaderboard_wide(self) -> pd.DataFrame:
        from aigve.results.compare import leaderboard_wide

        return leaderboard_wide(self.leaderboard) if len(self.leaderboard) else pd.DataFrame()

    def comparisons_display(self, digits: int = 4) -> pd.DataFrame:
        """The comparison table as people read it (rounded, CI as text, significance marked)."""
        c = self.comparisons
        if c.empty:
            return c
        arrows = {True: "↑", False: "↓"}

        def ci(r: pd.Series) -> str:
            if r["ci_low"] is None or pd.isna(r["ci_low"]):
                return ""
            return f"[{r['ci_low']:.{digits}g}, {r['ci_high']:.{digits}g}]"

        return pd.DataFrame(
            {
                "metric": [
                    f"{m} {arrows.get(h, '')}".strip()
                    for m, h in zip(c["metric"], c["higher_is_better"], strict=True)
                ],  # fmt: skip
                "A": c["a"],
                "B": c["b"],
                "mean A": c["mean_a"],
                "mean B": c["mean_b"],
                "diff (B better if > 0)": c["diff"],
                "95% CI": [ci(r) for _, r in c.iterrows()],
                "p-value": c["p_value"],
                "p (Holm)": c["p_holm"],
                "better": [
                    (r["a"] if r["better"] == "a" else r["b"] if r["better"] == "b" else "")
                    for _, r in c.iterrows()
                ],
                "pairs": c["n_pairs"],
                "test": c["test"],
            }
        )

    def to_markdown(self) -> str:
        from aigve.results.compare import to_markdown

        what = f"groups of '{self.by}'" if self.by else "runs"
        parts = [f"# Comparison of {len(self.groups)} {what}: {', '.join(self.groups)}\n"]
        parts.append(
            f"Paired on `{self.key}` where keys are shared (sign-flip permutation test, bootstrap CI of the "
            "mean difference), unpaired otherwise. `diff` is B − A in the metric's direction: positive "
            "means B is better. p-values are Holm-adjusted across the table.\n"
        )
        wide = self.leaderboard_wide()
        if len(wide):
            parts.append("## Leaderboard (mean [95% CI], rank by direction)\n\n" + to_markdown(wide))
        if len(self.comparisons):
            parts.append("## Pairwise comparisons\n\n" + to_markdown(self.comparisons_display()))
        if self.notes:
            parts.append("## Notes\n\n" + "".join(f"- {n}\n" for n in self.notes))
        return "\n".join(parts)

    def write(self, path: str | Path) -> list[Path]:
        """``.md``: one document; ``.json``: one object; ``.csv``: the leaderboard in ``path`` and the
        comparisons in ``<stem>_pairs.csv``."""
        from aigve.results.compare import to_json_records, write_table

        path = Path(path)
        suffix = path.suffix.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".md":
            path.write_text(self.to_markdown(), encoding="utf-8")
            return [path]
        if suffix == ".json":
            obj = {
                "groups": self.groups,
                "by": self.by,
                "key": self.key,
                "leaderboard": json.loads(to_json_records(self.leaderboard)),
                "comparisons": json.loads(to_json_records(self.comparisons)) if len(self.comparisons) else [],
                "notes": self.notes,
            }
            path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            return [path]
        if suffix == ".csv":
            pairs = path.with_name(f"{path.stem}_pairs.csv")
            write_table(self.leaderboard, path)
            write_table(self.comparisons, pairs)
            return [path, pairs]
        raise UsageError(f"--out {path}: unknown format {suffix!r}; use a .md, .csv or .json file name")


def _group_frames(
    runs: Sequence[tuple[str, Results]], by: str | None, all_outputs: bool
) -> tuple[dict[str, pd.DataFrame], dict[str, bool | None], list[str]]:
    directions: dict[str, bool | None] = {}
    notes: list[str] = []
    frames = []
    for label, res in runs:
        df = long_table(res, all_outputs)
        df["run"] = label
        frames.append(df)
        for k, v in directions_for(res).items():
            directions.setdefault(k, v)
    if by is None:
        return {label: f for (label, _), f in zip(runs, frames, strict=True)}, directions, notes
    groups: dict[str, list[pd.DataFrame]] = {}
    for (label, res), f in zip(runs, frames, strict=True):
        if by not in f.columns or f[by].isna().all():
            raise DatasetError(_no_group_message(label, res, f, by))
        f = f[f[by].notna()]
        for val, g in f.groupby(by, sort=True):
            name = str(val) if len(runs) == 1 else f"{label}:{val}"
            groups.setdefault(name, []).append(g)
    return {k: pd.concat(v, ignore_index=True) for k, v in groups.items()}, directions, notes


def _no_group_message(label: str, res: Results, table: pd.DataFrame, by: str) -> str:
    """Why run ``label`` cannot be grouped by ``by``: the field is missing or empty, or it exists but
    no row has a successful per-video value to group (every video failed, or only set-level metrics)."""
    raw = res.per_video
    meta = ("metric", "output", "value", "error")
    fields = [c for c in (raw.columns if not raw.empty else table.columns) if c not in meta]
    has_field = by in raw.columns and raw[by].notna().any()
    if not has_field:
        return (
            f"run '{label}' has no dataset field {by!r} to group by (fields: {fields}); "
            "pass --by with one of them, or compare whole runs without --by"
        )
    set_only = sorted(n for n, a in res.aggregates.items() if a.level == "set")
    video = sorted(n for n, a in res.aggregates.items() if a.level != "set")
    if not video and set_only:
        why = (
            f"its metrics ({', '.join(set_only)}) are set-level, one value for the whole run with no "
            "per-video values to group; compare whole runs without --by"
        )
    elif "error" in raw.columns and raw["error"].notna().any():
        why = (
            "every per-video value failed or is not finite (see the 'error' column of per_video.csv); "
            "fix those errors and re-run (aigve run --resume), or compare whole runs without --by"
        )
    else:
        why = "no finite per-video values to group; compare whole runs without --by"
    return f"run '{label}' has no successful rows for the dataset field {by!r} to group by: {why}"


def _resolve_key(key: str, by: str | None, frames: Sequence[pd.DataFrame]) -> str:
    if key != KEY_AUTO:
        for f in frames:
            if len(f) and key not in f.columns:
                raise UsageError(
                    f"--key {key}: no such column in the per-video results (columns: {list(f.columns)}); "
                    "use video_id, prompt or a dataset field"
                )
        return key
    if by is not None and all(
        len(f) == 0 or ("prompt" in f.columns and f["prompt"].notna().all()) for f in frames
    ):
        return "prompt"
    return "video_id"


def run_comparison(
    runs: Sequence[tuple[str, Results]],
    by: str | None = None,
    key: str = KEY_AUTO,
    all_outputs: bool = False,
    all_pairs: bool = False,
    n_resamples: int = 1000,
    n_permutations: int = 10000,
    seed: int = 0,
    alpha: float = 0.05,
) -> ComparisonTables:
    """Leaderboard and pairwise comparisons of runs (or of the groups of the field ``by``).

    Groups: one per run, or with ``by`` one per value of that dataset field (across all runs;
    prefixed by the run label when several runs are given). Pairs: every group against the first
    one (the reference), or all pairs with ``all_pairs``. Each pair is compared per metric with
    :func:`aigve.results.compare.compare_frames` (paired on ``key`` when keys are shared);
    ``key='auto'`` pairs on ``prompt`` when grouping by a field, else on ``video_id``. Set-level
    metrics (FID, ...) enter the leaderboard with their recorded value and CI, and the comparison
    with the difference only (no per-video test). ``p_holm`` is Holm-adjusted over the whole table.
    """
    from aigve.results.compare import _cell_rng, compare_frames, holm, leaderboard

    if not runs:
        raise UsageError("compare needs at least one run")
    if by is None and len(runs) < 2:
        raise UsageError("compare needs two or more runs, or one run with --by FIELD (e.g. --by model)")
    groups, directions, notes = _group_frames(runs, by, all_outputs)
    names = list(groups)
    if len(names) < 2:
        raise UsageError(f"only one group found ({names}); compare needs at least two runs or field values")
    key = _resolve_key(key, by, list(groups.values()))
    # set-level metrics: one value per run (only meaningful per run, not per field value)
    set_vals: dict[str, dict[str, tuple[float | None, float | None, float | None]]] = {}
    if by is None:
        set_vals = {label: set_level_values(res) for label, res in runs}
    elif any(set_level_values(res) for _, res in runs):
        notes.append(
            f"set-level metrics (FID, FVD, ...) are computed over whole runs and cannot be split by {by!r}"
        )
    lb_rows = [g.assign(model=name)[["model", "metric", "value"]] for name, g in groups.items() if len(g)]
    for name, vals in set_vals.items():
        for metric, (v, lo, hi) in vals.items():
            if v is not None:
                lb_rows.append(
                    pd.DataFrame([dict(model=name, metric=metric, value=v, ci_low=lo, ci_high=hi)])
                )
    lb_in = (
        pd.concat(lb_rows, ignore_index=True)
        if lb_rows
        else pd.DataFrame(columns=["model", "metric", "value"])
    )
    lb = leaderboard(lb_in, directions, n_resamples=n_resamples, seed=seed)
    pairs = list(combinations(names, 2)) if all_pairs else [(names[0], n) for n in names[1:]]
    rows = []
    for a, b in pairs:
        ga, gb = groups[a], groups[b]
        ga, gb = ga[ga[key].notna()], gb[gb[key].notna()]
        ga = ga.assign(**{key: ga[key].astype(str)})
        gb = gb.assign(**{key: gb[key].astype(str)})
        if len(ga) and len(gb):
            c = compare_frames(
                ga, gb, directions, key=key, n_resamples=n_resamples,
                seed=int(_cell_rng(seed, a, b).integers(2**31)), alpha=alpha, n_permutations=n_permutations,
            )  # fmt: skip
            if len(c):
                rows.append(c.assign(a=a, b=b))
        sa, sb = set_vals.get(a, {}), set_vals.get(b, {})
        extra = []
        for metric in [m for m in sa if m in sb]:
            va, vb = sa[metric][0], sb[metric][0]
            if va is None or vb is None:
                continue
            hib = directions.get(metric)
            sign = -1.0 if hib is False else 1.0
            extra.append(
                dict(
                    metric=metric,
                    diff=sign * (vb - va),
                    p_value=None,
                    n_pairs=0,
                    better=None,
                    paired=False,
                    test="set-level value: no per-video test",
                    mean_a=va,
                    mean_b=vb,
                    n_a=1,
                    n_b=1,
                    higher_is_better=hib,
                    alpha=alpha,
                    ci_low=None,
                    ci_high=None,
                    ci_method=None,
                    ci_level=None,
                    significant=False,
                    a=a,
                    b=b,
                )  # fmt: skip
            )
        if extra:
            rows.append(pd.DataFrame(extra))
    comp = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if len(comp):
        comp["p_holm"] = holm([None if v is None or pd.isna(v) else float(v) for v in comp["p_value"]])
        comp["significant_holm"] = [p is not None and not pd.isna(p) and p < alpha for p in comp["p_holm"]]
        front = ["a", "b", "metric"]
        comp = comp[front + [c for c in comp.columns if c not in front]]
        unpaired = comp.loc[~comp["paired"].astype(bool) & (comp["n_pairs"] == 0), "test"]
        if len(unpaired) and (unpaired == "unpaired label permutation").any():
            notes.append(
                f"some pairs share no '{key}' values and were compared unpaired; choose the pairing field with --key"
            )
    return ComparisonTables(lb, comp, names, by, key, notes)


# ------------------------------------------------------------------------------ alignment


def _human_for_run(
    path: str | Path, id_column: str | None, run_ids: pd.Index, score_columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Human scores from a file, keyed so that they match the run's video ids.

    With ``--id-column`` that column is used. Otherwise ``id``, ``video_id`` (aigve's own id column)
    and the stem of ``video_path_pd`` are each tried and the one matching most of the run's videos wins: AIGVE-Bench's ``id`` is a
    prompt id shared by its five generators (duplicated), while the run's entry ids are the video
    file stems.
    """
    from aigve.results.alignment import load_human_scores

    if id_column:
        return load_human_scores(path, id_column, score_columns)
    best: tuple[int, pd.DataFrame] | None = None
    best_col: str | None = None
    first_err: DatasetError | None = None
    for col in (None, "video_id", "video_path_pd"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h = load_human_scores(path, col, score_columns)
        except DatasetError as exc:
            first_err = first_err or exc
            continue
        overlap = len(h.index.map(str).intersection(run_ids))
        if best is None or overlap > best[0]:
            best, best_col = (overlap, h), col
    if best is None:
        assert first_err is not None
        raise first_err
    return load_human_scores(path, best_col, score_columns)  # again, with its warnings shown


def run_alignment(
    results: Results,
    human: str | Path | pd.DataFrame | None = None,
    id_column: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    folds: int = 5,
    all_outputs: bool = True,
    score_columns: Sequence[str] | None = None,
) -> Any:
    """:func:`aigve.results.alignment.alignment_report` of a run against human scores.

    ``human``: a file (AIGVE-Bench JSON/CSV or any CSV with an id column), a ready table indexed by
    video id, or ``None`` to take the scores from the dataset's extra fields.
    """
    from aigve.results.alignment import alignment_report, human_scores_from_entries, metric_table

    long = long_table(results, all_outputs=all_outputs)
    if long.empty:
        raise UsageError("the run has no per-video metric values to correlate with human scores")
    mt = metric_table(long[["video_id", "metric", "value"]])
    if human is None:
        h = human_scores_from_entries(results.entries)
    elif isinstance(human, pd.DataFrame):
        h = human
    else:
        h = _human_for_run(human, id_column, mt.index, score_columns)
    directions = directions_for(results)
    folds = max(2, min(folds, len(mt.index.intersection(h.index.map(str))) // 2 or 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return alignment_report(mt, h, n_resamples=n_resamples, seed=seed, folds=folds, directions=directions)
