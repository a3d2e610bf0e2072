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
    """Per-video values, one row per video x metric output, ``metric`` = output label
    (``source_metric`` and ``output`` keep the metric's and the output's own names).

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
    df["source_metric"] = df["metric"].astype(str)
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


# provenance keys that do not change a number: where things ran or were stored
_IGNORED_SETTINGS = {"device", "batch_size", "num_workers", "path", "dir", "cache_dir"}


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: d}


def metric_settings(results: Results, metric: str) -> dict[str, Any]:
    """What shaped a metric's numbers in a run: its recorded provenance (options, sampling,
    extractors with their weights hash, window), else the run's window and the metric's options."""
    agg = results.aggregates.get(metric)
    if agg is not None and agg.provenance:
        return dict(agg.provenance)
    prov = results.provenance or {}
    return {"window": prov.get("window"), "options": (prov.get("metric_options") or {}).get(metric) or {}}


def settings_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The settings (dotted provenance keys) whose values differ, as ``key: A-value vs B-value``.

    Locations (paths, device, batch size) are ignored, and so is a ``weights`` path when both sides
    record the same weights hashes: equal hashes mean the same weights wherever they were read.
    """
    fa, fb = _flatten(a), _flatten(b)

    def shas(f: dict[str, Any]) -> set[str]:
        return {str(v) for k, v in f.items() if k.rsplit(".", 1)[-1] == "weights_sha256" and v}

    same_weights = bool(shas(fa)) and shas(fa) == shas(fb)
    out = []
    for k in sorted(set(fa) | set(fb)):
        last = k.rsplit(".", 1)[-1]
        if last in _IGNORED_SETTINGS or last.endswith("_path") or (same_weights and last == "weights"):
            continue
        va, vb = fa.get(k, "(absent)"), fb.get(k, "(absent)")
        if va != vb:
            out.append(f"{k}: {_short(va)} vs {_short(vb)}")
    return out


def _short(v: Any, width: int = 40) -> str:
    t = json.dumps(v, default=str) if not isinstance(v, str) else v
    return t if len(t) <= width else t[: width - 1] + "…"


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
    alpha: float = 0.05
    # runs whose settings differ for a metric: {metric, a, b, differences}; compared only on request
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def untestable(self) -> bool:
        """True when no tested row of the table could reach Holm significance at these sample sizes."""
        c = self.comparisons
        if c.empty or "testable" not in c:
            return False
        tested = c["p_value"].notna()
        return bool(tested.any()) and not bool(c.loc[tested, "testable"].astype(bool).any())

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

        def warning(r: pd.Series) -> str:
            parts = []
            if r.get("settings_differ"):
                parts.append(f"settings differ: {r['settings_differ']}")
            if pd.notna(r.get("p_value")) and not bool(r.get("testable", True)):
                parts.append(f"n too small: min p (Holm) {r['min_p_holm']:.3g} ≥ α")
            return "; ".join(parts)

        out = pd.DataFrame(
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
                "p (raw)": c["p_value"],
                "p (Holm)": c["p_holm"],
                f"significant (Holm, α={self.alpha:g})": [
                    ("yes" if s else "no") if pd.notna(p) else ""
                    for s, p in zip(c["significant_holm"], c["p_holm"], strict=True)
                ],
                "better (Holm)": [
                    (r["a"] if r["better"] == "a" else r["b"] if r["better"] == "b" else "")
                    for _, r in c.iterrows()
                ],
                "pairs": c["n_pairs"],
                "test": c["test"],
            }
        )
        if (
            self.untestable
        ):  # p-values and verdicts that cannot be significant are no evidence: leave them out
            out = out.drop(columns=[k for k in out.columns if k.startswith(("p (", "significant", "better"))])
        warn = [warning(r) for _, r in c.iterrows()]
        if any(warn):
            out["warning"] = warn
        return out

    def to_markdown(self) -> str:
        from aigve.results.compare import to_markdown

        what = f"groups of '{self.by}'" if self.by else "runs"
        parts = [f"# Comparison of {len(self.groups)} {what}: {', '.join(self.groups)}\n"]
        parts.append(
            f"Paired on `{self.key}` where keys are shared (sign-flip permutation test, bootstrap CI of the "
            "mean difference), unpaired otherwise. `diff` is B − A in the metric's direction: positive "
            f"means B is better. The verdict (`better`) is taken at α = {self.alpha:g} on the Holm-adjusted "
            "p-value across the whole table; the raw p-value is shown next to it.\n"
        )
        if self.mismatches:
            parts.append(
                "**WARNING: the runs were made with different settings for "
                f"{', '.join(sorted({m['metric'] for m in self.mismatches}))}; those differences are partly or "
                "wholly due to the settings, not the models (see the warning column and the notes).**\n"
            )
        wide = self.leaderboard_wide()
        if len(wide):
            parts.append("## Leaderboard (mean [95% CI], rank by direction)\n\n" + to_markdown(wide))
        if len(self.comparisons) and self.untestable:
            parts.append(
                "## Pairwise differences (descriptive only)\n\n"
                f"**No test in this table can reach significance at α = {self.alpha:g}**: with these sample "
                "sizes the smallest attainable p-value (after the Holm correction) is "
                f"{float(self.comparisons['min_p_holm'].min()):.3g}, whatever the data. The differences and "
                "CIs below are descriptions, not evidence for or against a difference; compare on more "
                "videos or prompts.\n\n" + to_markdown(self.comparisons_display())
            )
        elif len(self.comparisons):
            parts.append("## Pairwise comparisons\n\n" + to_markdown(self.comparisons_display()))
        if self.notes:
            parts.append("## Notes\n\n" + "".join(f"- {n}\n" for n in self.notes))
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The tables as one JSON-serialisable object (``--out FILE.json``, ``aigve compare --json``)."""
        from aigve.results.compare import to_json_records

        return {
            "groups": self.groups,
            "by": self.by,
            "key": self.key,
            "leaderboard": json.loads(to_json_records(self.leaderboard)),
            "comparisons": json.loads(to_json_records(self.comparisons)) if len(self.comparisons) else [],
            "alpha": self.alpha,
            "untestable": self.untestable,
            "settings_mismatches": self.mismatches,
            "notes": self.notes,
        }

    def write(self, path: str | Path) -> list[Path]:
        """``.md``: one document; ``.json``: one object; ``.csv``: the leaderboard in ``path`` and the
        comparisons in ``<stem>_pairs.csv``."""
        from aigve.results.compare import write_table

        path = Path(path)
        suffix = path.suffix.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".md":
            path.write_text(self.to_markdown(), encoding="utf-8")
            return [path]
        if suffix == ".json":
            obj = self.to_dict()
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


def _mismatches(runs: Sequence[tuple[str, Results]]) -> list[dict[str, Any]]:
    """Per metric in several runs: each run whose settings for it differ from the first run's."""
    out = []
    metrics = list(dict.fromkeys(m for _, res in runs for m in res.aggregates))
    for m in metrics:
        having = [(label, res) for label, res in runs if m in res.aggregates]
        if len(having) < 2:
            continue
        ref_label, ref = having[0]
        for label, res in having[1:]:
            diffs = settings_differences(metric_settings(ref, m), metric_settings(res, m))
            if diffs:
                out.append(dict(metric=m, a=ref_label, b=label, differences=diffs))
    return out


def _mismatch_message(mismatches: list[dict[str, Any]]) -> str:
    lines = [f"{m['metric']} ({m['a']} vs {m['b']}): {'; '.join(m['differences'])}" for m in mismatches]
    return (
        "the runs were made with settings that change the numbers, so their differences are not "
        "the models' differences:\n  " + "\n  ".join(lines) + "\nre-run them with the same settings, "
        "or pass --allow-mismatch to compare anyway (affected rows are then marked)"
    )


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
    allow_mismatch: bool = False,
) -> ComparisonTables:
    """Leaderboard and pairwise comparisons of runs (or of the groups of the field ``by``).

    Groups: one per run, or with ``by`` one per value of that dataset field (across all runs;
    prefixed by the run label when several runs are given). Pairs: every group against the first
    one (the reference), or all pairs with ``all_pairs``. Each pair is compared per metric with
    :func:`aigve.results.compare.compare_frames` (paired on ``key`` when keys are shared);
    ``key='auto'`` pairs on ``prompt`` when grouping by a field, else on ``video_id``. Set-level
    metrics (FID, ...) enter the leaderboard with their recorded value and CI, and the comparison
    with the difference only (no per-video test). ``p_holm`` is Holm-adjusted over the whole table
    and ``better`` follows it (:func:`aigve.results.compare.apply_holm`).

    Runs whose recorded settings for a metric differ (window, sampling, options, extractor and
    weights hash, ...: :func:`settings_differences`) raise :class:`UsageError`, unless
    ``allow_mismatch``: then the rows are compared and marked (``settings_differ``), with a note.
    Whole-run leaderboard cells repeat the CI the run recorded for that aggregate.
    """
    from aigve.results.compare import apply_holm, compare_frames, leaderboard, leaderboard_caveat_note
    from aigve.results.stats import cell_rng

    if not runs:
        raise UsageError("compare needs at least one run")
    if by is None and len(runs) < 2:
        raise UsageError("compare needs two or more runs, or one run with --by FIELD (e.g. --by model)")
    mismatches = _mismatches(runs)
    if mismatches and not allow_mismatch:
        raise UsageError(_mismatch_message(mismatches))
    groups, directions, notes = _group_frames(runs, by, all_outputs)
    names = list(groups)
    if len(names) < 2:
        raise UsageError(f"only one group found ({names}); compare needs at least two runs or field values")
    key = _resolve_key(key, by, list(groups.values()))
    by_label = dict(runs)
    # set-level metrics: one value per run (only meaningful per run, not per field value)
    set_vals: dict[str, dict[str, tuple[float | None, float | None, float | None]]] = {}
    if by is None:
        set_vals = {label: set_level_values(res) for label, res in runs}
    elif any(set_level_values(res) for _, res in runs):
        notes.append(
            f"set-level metrics (FID, FVD, ...) are computed over whole runs and cannot be split by {by!r}"
        )
    lb_cols = ["model", "metric", "value", "source_metric", "output"]
    lb_rows = []
    for name, g in groups.items():
        if not len(g):
            continue
        part = g.assign(model=name)[lb_cols]
        if by is None:  # a whole run: the leaderboard repeats the CI the run recorded for each aggregate
            part = part.assign(ci_low=None, ci_high=None)
            res = by_label[name]
            for (m, o), sub in part.groupby(["source_metric", "output"], sort=False):
                ov = res.aggregates[m].outputs.get(o) if m in res.aggregates else None
                if ov is not None and ov.n == len(sub) and ov.ci_low is not None and ov.ci_high is not None:
                    part.loc[sub.index, "ci_low"] = ov.ci_low
                    part.loc[sub.index, "ci_high"] = ov.ci_high
        lb_rows.append(part)
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
                seed=int(cell_rng(seed, a, b).integers(2**31)), alpha=alpha, n_permutations=n_permutations,
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
                    min_p=None,
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
        comp = apply_holm(comp, alpha)
        comp["settings_differ"] = [_row_mismatch(r, groups, by_label) for _, r in comp.iterrows()]
        front = ["a", "b", "metric"]
        comp = comp[front + [c for c in comp.columns if c not in front]]
        unpaired = comp.loc[~comp["paired"].astype(bool) & (comp["n_pairs"] == 0), "test"]
        if len(unpaired) and (unpaired == "unpaired label permutation").any():
            notes.append(
                f"some pairs share no '{key}' values and were compared unpaired; choose the pairing field with --key"
            )
        notes.extend(_power_notes(comp, alpha))
    for m in mismatches:
        notes.append(
            f"WARNING: {m['metric']}: runs {m['a']} and {m['b']} differ in {'; '.join(m['differences'])}; "
            "its differences and ranks mix the settings with the models"
        )
    caveat = leaderboard_caveat_note(lb) if len(lb) else None
    if caveat is not None:  # shown with the tables (markdown, report), where the marked cells are
        notes.append(caveat)
    return ComparisonTables(lb, comp, names, by, key, notes, alpha=alpha, mismatches=mismatches)


def _row_mismatch(row: pd.Series, groups: dict[str, pd.DataFrame], runs: dict[str, Results]) -> str | None:
    """The settings that differ between the runs behind a comparison row's two groups, if any."""
    ra, rb = (groups[g]["run"].iloc[0] if len(groups[g]) else g for g in (row["a"], row["b"]))
    if ra == rb or ra not in runs or rb not in runs:
        return None
    label, res_a, res_b = str(row["metric"]), runs[ra], runs[rb]
    for m, agg in res_a.aggregates.items():
        if m in res_b.aggregates and any(output_label(m, o, agg.primary) == label for o in agg.outputs):
            return (
                "; ".join(settings_differences(metric_settings(res_a, m), metric_settings(res_b, m))) or None
            )
    return None


def _power_notes(comp: pd.DataFrame, alpha: float) -> list[str]:
    """Say, per pair of groups, when no row could be significant whatever the data."""
    notes = []
    tested = comp[comp["p_value"].notna() & ~comp["testable"].astype(bool)]
    for (a, b), g in tested.groupby(["a", "b"], sort=False):
        r = g.iloc[0]
        size = (
            f"{int(r['n_pairs'])} pairs"
            if bool(r["paired"])
            else f"{int(r['n_a'])} vs {int(r['n_b'])} values"
        )
        notes.append(
            f"{a} vs {b} ({', '.join(map(str, g['metric']))}): with {size} the smallest p the permutation "
            f"test can give is {float(g['min_p'].min()):.3g} ({float(g['min_p_holm'].min()):.3g} after Holm) "
            f"≥ α = {alpha:g}, so these rows cannot be significant whatever the data; their 'not "
            "significant' is no evidence of no difference"
        )
    return notes


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        rep = alignment_report(mt, h, n_resamples=n_resamples, seed=seed, folds=folds, directions=directions)
    # what was used and left out, and the warnings, go into the printed report (not Python warnings)
    said = [h.attrs["note"]] if h.attrs.get("note") else []
    said += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    rep.notes = list(dict.fromkeys([*said, *rep.notes]))
    return rep
