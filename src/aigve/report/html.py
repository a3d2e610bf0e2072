"""The HTML report: one self-contained file (no network, opens offline) for one or more runs.

Sections: summary cards per metric (value, CI, direction, range, backbone, frame protocol), a
distribution plot per metric, a model comparison (leaderboard, rank heatmap and pairwise tests;
across runs, or across the values of a dataset field such as ``model``), the correlation with
human scores (when the run carries them or ``aigve correlate`` wrote them), the worst and best
videos per metric with their frames, the per-video table (sortable, filterable, a thumbnail strip
of each video and its prompt) and the provenance manifest.

Plots are matplotlib PNGs, thumbnails JPEGs, all embedded as data URIs; the table's sorting and
filtering is a small inline script. Needs the ``report`` extra (matplotlib, jinja2).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aigve import __version__
from aigve.errors import MissingDependencyError, UsageError
from aigve.results.records import Results

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
ARROW = {True: "↑", False: "↓", None: "·"}
DIRECTION = {True: "higher is better", False: "lower is better", None: "no direction"}


@dataclass
class ReportOptions:
    """Knobs of the report. ``by``: dataset field to compare within a single run (default: the
    dataset's ``group_by`` hint, else ``model`` when it has two or more values)."""

    by: str | None = None
    max_rows: int = 2000
    k: int = 5
    thumbnails: bool = True
    thumb_frames: int = 4
    thumb_width: int = 96
    big_thumb_width: int = 128
    bootstrap: int = 1000
    seed: int = 0
    workers: int = 2
    title: str | None = None


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "—"
    if f.is_integer() and abs(f) < 1e6:
        return str(int(f))
    a = abs(f)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{f:.3e}"
    return f"{f:.{digits}g}" if a >= 1 else f"{f:.{digits}f}"


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(df: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as {columns, rows} of display strings (numbers formatted, NaN empty)."""
    cols = [str(c) for c in df.columns]
    rows = []
    for rec in df.itertuples(index=False, name=None):
        cells = []
        for v in rec:
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                cells.append("")
            elif isinstance(v, bool | np.bool_):
                cells.append("yes" if v else "")
            elif isinstance(v, float | np.floating):
                cells.append(_fmt(v))
            else:
                cells.append(str(v))
        rows.append(cells)
    return {"columns": cols, "rows": rows}


def _specs() -> dict[str, Any]:
    try:
        from aigve.metrics.catalog import all_specs

        return {s.name: s for s in all_specs()}
    except Exception:  # a broken optional metric module must not stop the report
        return {}


def _sampler_text(s: Any) -> str:
    """One sampler as ``protocol(n=.., ...)``: from its dict form or its id string (``uniform,n=16,pad=none``)."""
    if isinstance(s, dict):
        proto = str(s.get("protocol", "?"))
        bits = [f"{k}={s[k]}" for k in ("n", "stride", "fps", "seconds") if s.get(k) not in (None, 1) or
                (k == "stride" and proto == "stride")]  # fmt: skip
        if s.get("pad") not in (None, "none"):
            bits.append(f"pad={s['pad']}")
        return proto + (f"({', '.join(bits)})" if bits else "")
    if isinstance(s, str) and s:
        proto, *rest = s.split(",")
        bits = [b for b in rest if b and b != "pad=none"]
        return proto + (f"({', '.join(bits)})" if bits else "")
    return "?" if s is None else str(s)


def _protocol(prov: dict[str, Any]) -> str:
    """Which frames fed the metric, from its provenance: the sampler per role (per-video metrics store
    ``sampling`` as role -> sampler dict; set metrics such as FID/KID/IS overwrite it with the sampler's
    id string, and FVD adds ``sampler``/``resolution``), the decode window and any reference statistics.
    Never raises: an unexpected shape is shown as text rather than losing the report."""
    if not isinstance(prov, dict):
        return "—"
    parts: list[str] = []
    sampling = prov.get("sampling")
    if isinstance(sampling, dict):
        for role, s in sampling.items():
            parts.append(f"{role}: {_sampler_text(s)}")
    elif sampling is not None:
        # one sampler for every role: name the roles from the extractors when they are recorded
        exts = prov.get("extractors")
        roles = list(exts) if isinstance(exts, dict) else []
        parts.append(f"{', '.join(map(str, roles)) or 'frames'}: {_sampler_text(sampling)}")
    elif prov.get("sampler") is not None:
        parts.append(f"frames: {_sampler_text(prov.get('sampler'))}")
    if prov.get("resolution") is not None:
        parts.append(f"resolution {prov['resolution']}")
    ref = prov.get("real_stats_file") or prov.get("real_stats")
    if isinstance(ref, str | Path) and str(ref):
        parts.append(f"real statistics from {ref}")
    win = prov.get("window")
    if isinstance(win, dict):
        lims = [f"{k}={v}" for k, v in win.items() if v is not None]
        if lims:
            parts.append("window " + ", ".join(lims))
    elif win is not None:
        parts.append(f"window {win}")
    return "; ".join(parts) or "—"


def _range_text(r: Sequence[Any]) -> str:
    lo, hi = (list(r) + [None, None])[:2]
    if lo is None and hi is None:
        return "unbounded"
    return f"[{'−∞' if lo is None else _fmt(lo)}, {'∞' if hi is None else _fmt(hi)}]"


def _group_field(results: Results, by: str | None) -> str | None:
    """The dataset field to compare within one run: ``by`` when given, else the dataset's
    ``group_by`` hint or ``model``, but only when the run has successful per-video values to group
    (a run of set-level metrics only, or where every video failed, has none: no comparison, no warning)."""
    df = results.per_video
    if df.empty:
        return None
    if not by:
        from aigve.results.analysis import long_table

        df = long_table(results)
        if df.empty:
            return None
    cands = [by] if by else [results.hints.get("group_by"), "model"]
    for c in cands:
        if c and c in df.columns and df[c].dropna().astype(str).nunique() >= 2:
            return str(c)
    if by:
        raise UsageError(f"--by {by}: the run has no dataset field {by!r} with two or more values")
    return None


# ------------------------------------------------------------------------------------ sections


def _cards(runs: Sequence[tuple[str, Results]], specs: dict[str, Any]) -> list[dict[str, Any]]:
    from aigve.results.summary import ci_caveat, error_counts

    names = list(dict.fromkeys(m for _, r in runs for m in r.aggregates))
    counts = {label: error_counts(r) for label, r in runs}
    cards = []
    for name in names:
        spec = specs.get(name)
        first = next(r.aggregates[name] for _, r in runs if name in r.aggregates)
        hib = first.outputs[first.primary].higher_is_better if first.outputs else None
        if spec is not None:
            hib = spec.higher_is_better
        values = []
        for label, r in runs:
            agg = r.aggregates.get(name)
            if agg is None:
                continue
            ov = agg.outputs.get(agg.primary)
            ci = ""
            if ov is not None and ov.ci_low is not None and ov.ci_high is not None:
                ci = f"[{_fmt(ov.ci_low)}, {_fmt(ov.ci_high)}]"
            caveat = ci_caveat(ov) if ci and not agg.error else None
            values.append(
                dict(
                    run=label,
                    value=_fmt(ov.value if ov else None) if not agg.error else "error",
                    ci=ci if not agg.error else "",
                    ci_caveat=caveat or "",
                    ci_method=(ov.ci_method or "") if ov else "",
                    n=ov.n if ov else 0,
                    errors=counts[label].metric_text(name),
                    error=agg.error or "",
                    warnings=list(dict.fromkeys(agg.warnings)),
                )
            )
        cards.append(
            dict(
                metric=name,
                primary=first.primary,
                family=first.family,
                level=first.level,
                backbone=first.backbone,
                arrow=ARROW.get(hib, "·"),
                direction=DIRECTION.get(hib, ""),
                range=_range_text(spec.primary.range) if spec is not None else "—",
                description=spec.description if spec is not None else "",
                citation=spec.citation if spec is not None else "",
                protocol=_protocol(first.provenance),
                per_run=values,
            )
        )
    return cards


def _distributions(
    runs: Sequence[tuple[str, Results]], field: str | None, specs: dict[str, Any]
) -> list[dict[str, Any]]:
    from aigve.report.plots import distribution_png
    from aigve.results.analysis import directions_for, long_table

    frames = []
    directions: dict[str, bool | None] = {}
    for label, r in runs:
        lt = long_table(r)
        lt["_group"] = label if len(runs) > 1 else (lt[field].astype(str) if field and field in lt else "")
        frames.append(lt)
        for k, v in directions_for(r).items():
            directions.setdefault(k, v)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out: list[dict[str, Any]] = []
    if df.empty:
        return out
    for metric in dict.fromkeys(df["metric"]):
        sub = df[df["metric"] == metric]
        groups = {str(g): s["value"].to_numpy(dtype=np.float64) for g, s in sub.groupby("_group", sort=True)}
        spec = specs.get(str(metric).split(".")[0])
        rng = tuple(spec.primary.range) if spec is not None else (None, None)
        png = distribution_png(groups, str(metric), directions.get(str(metric)), rng)
        out.append(dict(metric=metric, uri=_uri(png), n=int(len(sub))))
    return out


def _comparison(
    runs: Sequence[tuple[str, Results]], field: str | None, opts: ReportOptions
) -> dict[str, Any] | None:
    from aigve.report.plots import leaderboard_heatmap_png
    from aigve.results.analysis import run_comparison

    if len(runs) < 2 and field is None:
        return None
    try:
        tables = run_comparison(
            runs, by=None if len(runs) > 1 else field, n_resamples=opts.bootstrap, seed=opts.seed
        )
    except Exception as exc:  # the comparison is an extra: say why it is missing, keep the report
        log.warning("model comparison left out of the report: %s", exc)
        return dict(error=str(exc), by=field)
    wide = tables.leaderboard_wide()
    return dict(
        by=tables.by,
        key=tables.key,
        groups=tables.groups,
        leaderboard=_table(wide) if len(wide) else None,
        heatmap=_uri(leaderboard_heatmap_png(tables.leaderboard)) if len(tables.leaderboard) else None,
        pairs=_table(tables.comparisons_display()) if len(tables.comparisons) else None,
        notes=tables.notes,
        error=None,
    )


@dataclass
class _Alignment:
    correlations: pd.DataFrame
    baseline: pd.DataFrame
    fusion: pd.DataFrame


def _load_alignment(run_dir: Path | None) -> _Alignment | None:
    """Tables ``aigve correlate`` wrote into a run directory (alignment*.csv), if any."""
    if run_dir is None:
        return None
    c = run_dir / "alignment.csv"
    if not c.is_file():
        return None
    try:
        corr = pd.read_csv(c)
        base = (
            pd.read_csv(run_dir / "alignment_baseline.csv")
            if (run_dir / "alignment_baseline.csv").is_file()
            else pd.DataFrame()
        )
        fus = (
            pd.read_csv(run_dir / "alignment_fusion.csv")
            if (run_dir / "alignment_fusion.csv").is_file()
            else pd.DataFrame()
        )
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        log.warning("could not read %s: %s", c, exc)
        return None
    return _Alignment(corr, base, fus)


def _alignment_section(label: str, al: Any, source: str) -> dict[str, Any]:
    from aigve.report.plots import correlation_heatmap_png

    c = al.correlations
    show = pd.DataFrame(
        {
            "metric": c["metric"],
            "aspect": c["aspect"],
            "n": c["n"],
            **{
                name: [
                    "" if pd.isna(r[0]) else f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]"
                    for r in c[[k, f"{k}_low", f"{k}_high"]].to_numpy(dtype=np.float64)
                ]
                for name, k in (
                    ("SRCC", "srcc"),
                    ("PLCC (logistic)", "plcc_logistic"),
                    ("PLCC", "plcc_raw"),
                    ("KRCC", "krcc"),
                )  # fmt: skip
            },
        }
    )
    fus = al.fusion
    fusion = None
    if len(fus):
        fusion = _table(fus[[c for c in ("aspect", "n", "n_metrics", "srcc_reg", "srcc_reg_low", "srcc_reg_high",
                                         "plcc_reg", "weights") if c in fus.columns]])  # fmt: skip
    base = al.baseline
    baseline = None
    if len(base):
        baseline = _table(
            base[[c for c in ("aspect", "n", "srcc_mean", "srcc_low", "srcc_high") if c in base.columns]]
        )
    return dict(
        run=label,
        source=source,
        heatmap=_uri(correlation_heatmap_png(c, fus if len(fus) else None)) if len(c) else None,
        table=_table(show),
        fusion=fusion,
        baseline=baseline,
    )


def _alignments(
    runs: Sequence[tuple[str, Results]], run_dirs: Sequence[Path | None], opts: ReportOptions, human: Any
) -> list[dict[str, Any]]:
    from aigve.results.analysis import run_alignment

    out = []
    for (label, r), d in zip(runs, run_dirs, strict=True):
        al: Any = None
        source = ""
        if human is not None:
            al = run_alignment(r, human, n_resamples=opts.bootstrap, seed=opts.seed)
            source = (
                f"human scores from {human}" if not isinstance(human, pd.DataFrame) else "human scores given"
            )
        else:
            al = _load_alignment(d)
            source = f"{d}/alignment.csv (aigve correlate)" if al is not None else ""
            if al is None:
                try:
                    al = run_alignment(r, None, n_resamples=opts.bootstrap, seed=opts.seed)
                    source = "human scores in the dataset's fields"
                except Exception as exc:  # no human scores in the dataset: no section
                    log.debug("no alignment for %s: %s", label, exc)
                    al = None
        if al is not None and len(al.correlations):
            out.append(_alignment_section(label, al, source))
    return out


def _per_video_rows(runs: Sequence[tuple[str, Results]], field: str | None) -> tuple[list[str], pd.DataFrame]:
    """All runs' videos as one wide frame: run, group, video_id, prompt, path, one column per output label."""
    from aigve.results.analysis import output_label

    frames = []
    labels: list[str] = []
    for label, r in runs:
        df = r.per_video
        if df.empty:
            continue
        prim = {name: agg.primary for name, agg in r.aggregates.items()}
        df = df[~df["output"].astype(str).str.startswith("_")].copy()
        df["label"] = [
            output_label(m, o, prim.get(m)) for m, o in zip(df["metric"], df["output"], strict=True)
        ]
        labels.extend(r.aggregates)  # column order: primary outputs first, in run order
        labels.extend(df["label"])
        err = df["error"] if "error" in df.columns else pd.Series(None, index=df.index)
        df["cell"] = [(None if pd.isna(v) else float(v), None if (e is None or pd.isna(e)) else str(e))
                      for v, e in zip(df["value"], err, strict=True)]  # fmt: skip
        wide = df.pivot_table(index="video_id", columns="label", values="cell", aggfunc="first", sort=False)
        meta = df.groupby("video_id", sort=False).first()
        wide["_run"] = label
        wide["_group"] = meta[field].astype(str) if field and field in meta.columns else ""
        wide["_prompt"] = meta["prompt"] if "prompt" in meta.columns else None
        wide["_path"] = meta["generated"] if "generated" in meta.columns else None
        frames.append(wide.reset_index())
    cols = list(dict.fromkeys(lab for lab in labels if any(lab in f.columns for f in frames)))
    if not frames:
        return cols, pd.DataFrame()
    return cols, pd.concat(frames, ignore_index=True)


def _extremes(
    rows: pd.DataFrame, runs: Sequence[tuple[str, Results]], opts: ReportOptions, multi: bool
) -> tuple[list[dict[str, Any]], set[str]]:
    from aigve.results.analysis import directions_for

    directions: dict[str, bool | None] = {}
    primaries: list[str] = []
    for _, r in runs:
        for k, v in directions_for(r).items():
            directions.setdefault(k, v)
        primaries.extend(n for n, a in r.aggregates.items() if a.level == "video")
    out = []
    paths: set[str] = set()
    for metric in dict.fromkeys(primaries):
        if metric not in rows.columns:
            continue
        vals = rows[metric].map(lambda c: c[0] if isinstance(c, tuple) else None)
        ok = vals.notna()
        if ok.sum() < 2:
            continue
        sub = rows.loc[ok].assign(_v=vals[ok].astype(float)).sort_values("_v", kind="stable")
        hib = directions.get(metric)
        n_show = min(opts.k, len(sub) // 2) or 1
        low, high = sub.head(n_show), sub.tail(n_show).iloc[::-1]
        worst, best = (low, high) if hib is not False else (high, low)

        def items(frame: pd.DataFrame) -> list[dict[str, Any]]:
            res = []
            for _, r in frame.iterrows():
                p = None if r["_path"] is None or pd.isna(r["_path"]) else str(r["_path"])
                if p:
                    paths.add(p)
                res.append(dict(video_id=r["video_id"], value=_fmt(r["_v"]), prompt=r["_prompt"] if isinstance(
                    r["_prompt"], str) else "", run=r["_run"] if multi else "", group=r["_group"], path=p))  # fmt: skip
            return res

        out.append(
            dict(
                metric=metric,
                arrow=ARROW.get(hib, "·"),
                has_direction=hib is not None,
                worst=items(worst),
                best=items(best),
            )
        )
    return out, paths


def _table_section(rows: pd.DataFrame, cols: list[str], directions: dict[str, bool | None], opts: ReportOptions,
                   multi: bool, field: str | None, thumbs: dict[str, str | None]) -> dict[str, Any]:  # fmt: skip
    total = len(rows)
    shown = rows.head(opts.max_rows)
    body = []
    for _, r in shown.iterrows():
        cells = []
        for c in cols:
            cell = r.get(c)
            if not isinstance(cell, tuple):
                cells.append(dict(text="", v="", title="", error=False))
            elif cell[1] is not None:
                cells.append(dict(text="error", v="", title=cell[1], error=True))
            elif cell[0] is None or not math.isfinite(cell[0]):
                cells.append(dict(text="—", v="", title="", error=False))
            else:
                cells.append(dict(text=_fmt(cell[0]), v=repr(float(cell[0])), title="", error=False))
        path = None if r["_path"] is None or pd.isna(r["_path"]) else str(r["_path"])
        prompt = r["_prompt"] if isinstance(r["_prompt"], str) else ""
        body.append(
            dict(
                run=r["_run"],
                group=r["_group"],
                video_id=str(r["video_id"]),
                prompt=prompt,
                thumb=thumbs.get(path) if path else None,
                cells=cells,
                search=" ".join([str(r["video_id"]), prompt, str(r["_group"]), str(r["_run"])]).lower(),
            )
        )
    return dict(
        columns=[
            dict(label=c, arrow=ARROW.get(directions.get(c), "·") if directions.get(c) is not None else "")
            for c in cols
        ],  # fmt: skip
        rows=body,
        total=total,
        shown=len(body),
        show_run=multi,
        group_field=field,
        thumbnails=opts.thumbnails,
    )


def _run_info(label: str, r: Results) -> dict[str, Any]:
    """A run's line in the header and its notes in the summary. The error counts are
    :func:`aigve.results.summary.error_counts`' (the console's), in the same words everywhere."""
    from aigve.results.summary import error_counts

    counts = error_counts(r)
    failed = set(counts.metrics_failed)
    messages = list(
        dict.fromkeys(
            [str(e.get("error")) for e in r.errors]
            + [str(x.error) for x in r.records if x.error and x.metric not in failed]
        )
    )
    return dict(
        label=label,
        dataset=r.dataset_name,
        n_videos=len(r.entries),
        has_errors=counts.any,
        errors_headline=counts.headline(),
        error_messages=messages[:3],
        source=str((r.provenance.get("dataset") or {}).get("source", "")),
        version=str(r.provenance.get("aigve_version", "")),
        video_warnings=r.video_warnings[:20],
        n_video_warnings=len(r.video_warnings),
    )


# ------------------------------------------------------------------------------------ rendering


def _env() -> Any:
    try:
        import jinja2
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("the HTML report", "report", "jinja2") from exc
    return jinja2.Environment(
        loader=jinja2.PackageLoader("aigve.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def render_report(
    runs: Sequence[tuple[str, Results]],
    run_dirs: Sequence[Path | None] | None = None,
    options: ReportOptions | None = None,
    human: Any = None,
) -> str:
    """The report's HTML for one or more runs (``(label, Results)`` pairs).

    ``run_dirs``: where each run lives, to pick up ``alignment.csv`` from ``aigve correlate``.
    ``human``: a human-score file or table to correlate every run with (else the dataset's own
    score fields, if any, are used).
    """
    import aigve.report.plots  # noqa: F401  (fail early and clearly without matplotlib)

    opts = options or ReportOptions()
    if not runs:
        raise UsageError("the report needs at least one run")
    run_dirs = list(run_dirs) if run_dirs is not None else [None] * len(runs)
    multi = len(runs) > 1
    specs = _specs()
    field = _group_field(runs[0][1], opts.by) if not multi else None
    from aigve.results.analysis import directions_for

    directions: dict[str, bool | None] = {}
    for _, r in runs:
        for k, v in directions_for(r).items():
            directions.setdefault(k, v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cards = _cards(runs, specs)
        dists = _distributions(runs, field, specs)
        comparison = _comparison(runs, field, opts)
        alignments = _alignments(runs, run_dirs, opts, human)
    cols, rows = _per_video_rows(runs, field)
    extremes, big_paths = _extremes(rows, runs, opts, multi) if len(rows) else ([], set())
    thumbs: dict[str, str | None] = {}
    big: dict[str, str | None] = {}
    if opts.thumbnails and len(rows):
        from aigve.report.thumbs import thumbnails

        paths = [p for p in rows["_path"].head(opts.max_rows) if isinstance(p, str)]
        thumbs = thumbnails(paths, n=opts.thumb_frames, width=opts.thumb_width, workers=opts.workers)
        big = thumbnails(
            sorted(big_paths), n=opts.thumb_frames, width=opts.big_thumb_width, workers=opts.workers
        )
    for ex in extremes:
        for item in (*ex["worst"], *ex["best"]):
            item["thumb"] = big.get(item["path"]) if item["path"] else None
    table = _table_section(rows, cols, directions, opts, multi, field, thumbs) if len(rows) else None
    run_info = [_run_info(label, r) for label, r in runs]
    provenance = [
        dict(
            run=label,
            json=json.dumps(
                {"provenance": r.provenance, "metrics": {k: a.provenance for k, a in r.aggregates.items()}},
                indent=2,
                default=str,
                sort_keys=True,
            ),
        )  # fmt: skip
        for label, r in runs
    ]
    title = opts.title or (
        f"aigve report — {runs[0][1].dataset_name or runs[0][0]}"
        if not multi
        else f"aigve report — {len(runs)} runs"
    )
    return (
        _env()
        .get_template("report.html")
        .render(
            title=title,
            version=__version__,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            runs=run_info,
            multi=multi,
            cards=cards,
            distributions=dists,
            comparison=comparison,
            alignments=alignments,
            extremes=extremes,
            table=table,
            provenance=provenance,
            thumbnails=opts.thumbnails,
        )
    )


def build_report(
    runs: Sequence[str | Path | Results | tuple[str, Results]],
    out: str | Path,
    options: ReportOptions | None = None,
    human: Any = None,
) -> Path:
    """Write the report for runs given as run directories, ``Results`` or ``(label, Results)``.

    Returns the written path (``out``; a directory ``out`` gets ``report.html`` inside).
    """
    from aigve.results.load import load_run, run_labels

    pairs: list[tuple[str, Results]] = []
    dirs: list[Path | None] = []
    dir_items = [r for r in runs if isinstance(r, str | Path)]
    labels = iter(run_labels(dir_items)) if dir_items else iter(())
    for i, item in enumerate(runs):
        if isinstance(item, str | Path):
            pairs.append((next(labels), load_run(item)))
            dirs.append(Path(item))
        elif isinstance(item, Results):
            pairs.append((item.dataset_name or f"run{i + 1}", item))
            dirs.append(None)
        else:
            pairs.append((str(item[0]), item[1]))
            dirs.append(None)
    html = render_report(pairs, dirs, options, human)
    path = Path(out)
    if path.is_dir() or (not path.suffix and not path.exists()):
        path = path / REPORT_NAME
    from aigve.results.writers import atomic_write_text

    atomic_write_text(path, html)
    return path


def write_run_report(results: Results, out_dir: str | Path, options: ReportOptions | None = None) -> Path:
    """The hook for ``aigve run``: write ``<out_dir>/report.html`` for a finished run; returns its path."""
    out = Path(out_dir)
    label = out.name or results.dataset_name or "run"
    html = render_report([(label, results)], [out], options)
    from aigve.results.writers import atomic_write_text

    path = out / REPORT_NAME
    atomic_write_text(path, html)
    return path
