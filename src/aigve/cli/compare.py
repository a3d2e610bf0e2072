"""``aigve compare`` and ``aigve correlate``: read finished runs and compare or validate them.

- ``aigve compare RUN_A RUN_B [...]``: per metric, the difference between runs (or between the
  groups of a dataset field with ``--by model``), its bootstrap CI and a paired permutation test on
  the shared keys (``--key video_id`` for two runs of the same videos, ``--key prompt`` for two
  generators on the same prompts), with the direction from the metric catalogue; plus a
  leaderboard across all runs/groups. Written as markdown, csv or json by the ``--out`` suffix.
- ``aigve correlate RUN --human FILE``: SRCC/PLCC/KRCC with CIs per metric x human aspect, the
  random baseline and the cross-validated fusion, plus the SRCC heatmap.

The tables themselves are built by :mod:`aigve.results.analysis` (the HTML report uses them too).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aigve.cli.common import alpha_level, emit_json, positive_int
from aigve.results.analysis import KEY_AUTO, run_alignment, run_comparison


def alignment_heatmap(report: Any, path: str | Path) -> Path | None:
    """Save the SRCC heatmap of an alignment report as PNG (``None`` when matplotlib is missing)."""
    try:
        from aigve.report.plots import correlation_heatmap_png
    except ImportError:
        return None
    try:
        png = correlation_heatmap_png(report.correlations, report.fusion)
    except ImportError:
        return None
    p = Path(path)
    p.write_bytes(png)
    return p


def cmd_compare(args: argparse.Namespace) -> int:
    from aigve.results.load import load_runs

    loaded = load_runs(args.runs)
    tables = run_comparison(
        [(r.label, r.results) for r in loaded],
        by=args.by,
        key=args.key,
        all_outputs=args.all_outputs,
        all_pairs=args.all_pairs,
        n_resamples=args.bootstrap,
        seed=args.seed,
        alpha=args.alpha,
        allow_mismatch=args.allow_mismatch,
    )
    if args.out:
        paths = tables.write(args.out)
        if not args.json:
            for p in paths:
                print(f"wrote {p}")
    if args.json:
        emit_json(tables.to_dict())
    elif not args.out:
        print(tables.to_markdown())
    return 0


BENCH_BUILTINS = ("aigve_bench", "aigve_bench_toy")


def _aspects(names: list[str] | None, entries: Any) -> list[str] | None:
    """Score columns for the entries' fields: AIGVE-Bench aspects named by field or by title ("Technical
    Quality") become their fields, other names must be fields of the entries; anything else is a usage
    error naming the closest choice."""
    if names is None:
        return None
    from aigve.data.bench import ASPECT_TITLES, SCORE_FIELDS, aspect_field
    from aigve.errors import UsageError, did_you_mean

    fields = {k for e in entries for k in e.extra}
    out = []
    for n in names:
        f = aspect_field(n) or (n if n in fields else None)
        if f is None:
            choices = [*SCORE_FIELDS, *sorted(fields)]
            raise UsageError(
                f"--score-columns: '{n}' is neither an AIGVE-Bench aspect nor a field of the dataset"
                f"{did_you_mean(n, choices)}; aspects: {', '.join(SCORE_FIELDS)} (or their titles: "
                f"{', '.join(ASPECT_TITLES)})"
            )
        out.append(f)
    return list(dict.fromkeys(out))


def human_table(results: Any, human: str | None, columns: list[str] | None) -> Any:
    """What ``run_alignment`` gets as ``human``: the file path as given; for a built-in AIGVE-Bench name
    (``aigve_bench``, ``aigve_bench_toy``) or no ``--human`` with named aspects, the scores as a table
    (aspects by field or title)."""
    from aigve.results.alignment import human_scores_from_entries

    if human in BENCH_BUILTINS:
        from aigve.data.builtin import load_builtin

        entries = load_builtin(human).entries
        return human_scores_from_entries(entries, _aspects(columns, entries))
    if human is None and columns is not None:
        return human_scores_from_entries(results.entries, _aspects(columns, results.entries))
    return human


def cmd_correlate(args: argparse.Namespace) -> int:
    from aigve.results.load import load_run

    results = load_run(args.run)
    columns = [c.strip() for c in args.score_columns.split(",") if c.strip()] if args.score_columns else None
    human = human_table(results, args.human, columns)
    rep = run_alignment(
        results,
        human,
        args.id_column,
        n_resamples=args.bootstrap,
        seed=args.seed,
        folds=args.folds,
        score_columns=columns if isinstance(human, str) else None,
    )
    out = Path(args.out) if args.out else Path(args.run)
    paths = rep.write(out)
    hm = alignment_heatmap(rep, out / "alignment_srcc.png")
    if hm is not None:
        paths.append(hm)
    if args.json:
        from aigve.results.compare import to_json_records

        emit_json(
            {
                "correlations": json.loads(to_json_records(rep.correlations)),
                "baseline": json.loads(to_json_records(rep.baseline)),
                "fusion": json.loads(to_json_records(rep.fusion)),
                "level": rep.level,
                "notes": rep.notes,
                "written": [str(p) for p in paths],
            }
        )
        return 0
    print(rep.to_markdown())
    for p in paths:
        print(f"wrote {p}")
    return 0


def add_commands(sub: Any) -> None:
    """Register ``compare`` and ``correlate`` on the main parser's subparsers."""
    c = sub.add_parser(
        "compare",
        help="compare runs (or models within runs): differences with CIs, paired tests, leaderboard",
        description="Per metric: the difference between runs (B − A in the metric's direction, positive = B "
        "better), its bootstrap CI and a paired permutation test on shared keys; plus a leaderboard.",
    )
    c.add_argument("runs", nargs="+", metavar="RUN", help="output directories of `aigve run`")
    c.add_argument("--by", help="compare the groups of this dataset field instead of whole runs, e.g. model")
    c.add_argument(
        "--key",
        default=KEY_AUTO,
        help="pair videos on this column: video_id, prompt or a dataset field "
        "(default: prompt with --by, else video_id)",
    )
    c.add_argument(
        "--out", help="FILE.md, FILE.csv (+ FILE_pairs.csv) or FILE.json; default: markdown on stdout"
    )
    c.add_argument(
        "--all-outputs", action="store_true", help="compare every metric output, not only the primary"
    )
    c.add_argument(
        "--all-pairs", action="store_true", help="compare all pairs, not only each against the first"
    )
    c.add_argument(
        "--bootstrap",
        type=positive_int,
        default=1000,
        help="bootstrap resamples (default 1000) of the differences' CIs and of --by groups; a whole run's "
        "leaderboard cell repeats the CI the run recorded",
    )
    c.add_argument(
        "--alpha",
        type=alpha_level,
        default=0.05,
        help="significance level of the verdict, applied to Holm-adjusted p-values (default 0.05)",
    )
    c.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap and permutation tests (default 0)"
    )
    c.add_argument(
        "--allow-mismatch",
        dest="allow_mismatch",
        action="store_true",
        help="compare runs even when their recorded settings for a metric differ (decode window "
        "--max-len/--max-seconds, frame sampling, metric options, backbone or weights hash, judge model); "
        "by default compare refuses, since such differences come from the settings, not the models. "
        "With this flag the affected rows and the notes say which settings differ",
    )
    c.add_argument("--json", action="store_true", help="the tables as one JSON object on stdout")
    c.set_defaults(func=cmd_compare)

    r = sub.add_parser(
        "correlate",
        help="agreement of a run's metrics with human scores (SRCC, PLCC, KRCC with CIs, fusion)",
        description="Human scores: AIGVE-Bench annotations (JSON or CSV; 0 = not applicable) or any CSV with "
        "an id column and score columns; without --human, the scores in the dataset's fields are used.",
    )
    r.add_argument("run", metavar="RUN", help="output directory of `aigve run`")
    r.add_argument(
        "--human",
        help="human-score file, or aigve_bench / aigve_bench_toy for that built-in's scores (default: the "
        "scores carried in the dataset's fields)",
    )
    r.add_argument("--id-column", dest="id_column", help="the human file's column naming each video")
    r.add_argument(
        "--score-columns",
        "--aspects",
        dest="score_columns",
        help="comma-separated human score columns; AIGVE-Bench aspects by field or title, e.g. "
        "technical_quality,'Element Presence' (default: the AIGVE-Bench aspects present, else every "
        "numeric column)",
    )
    r.add_argument("--out", help="directory for alignment.csv/.md and the heatmap (default: RUN)")
    r.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    r.add_argument("--folds", type=positive_int, default=5, help="cross-validation folds of the fusion")
    r.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of the folds (default 0)")
    r.add_argument(
        "--json",
        action="store_true",
        help="the tables as one JSON object on stdout (files are still written)",
    )
    r.set_defaults(func=cmd_correlate)
