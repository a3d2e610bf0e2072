"""``aigve report RUN... --out report.html``: the self-contained HTML report of one or more runs.

Imports of matplotlib/jinja2 happen only when the command runs, so the CLI works without the
``report`` extra (the command then says which extra to install).
"""

from __future__ import annotations

import argparse
from typing import Any

from aigve.cli.common import positive_int


def cmd_report(args: argparse.Namespace) -> int:
    from aigve.report.html import ReportOptions, build_report

    opts = ReportOptions(
        by=args.by,
        max_rows=args.max_rows,
        k=args.k,
        thumbnails=not args.no_thumbnails,
        bootstrap=args.bootstrap,
        seed=args.seed,
        title=args.title,
    )
    path = build_report(args.runs, args.out, opts, human=args.human)
    print(f"wrote {path}")
    return 0


def add_commands(sub: Any) -> None:
    """Register ``report`` on the main parser's subparsers."""
    r = sub.add_parser(
        "report",
        help="self-contained HTML report of one or more runs",
        description="One HTML file that opens offline: metric cards, distributions, comparison across runs "
        "(or models), agreement with human scores, worst/best videos with frames, the per-video table, provenance.",
    )
    r.add_argument("runs", nargs="+", metavar="RUN", help="output directories of `aigve run`")
    r.add_argument("--out", required=True, help="the HTML file to write (a directory gets report.html)")
    r.add_argument("--by", help="dataset field to compare within one run (default: model, when present)")
    r.add_argument(
        "--human", help="human-score file to correlate with (default: alignment.csv or the dataset)"
    )
    r.add_argument(
        "--max-rows", dest="max_rows", type=positive_int, default=2000, help="per-video rows shown"
    )
    r.add_argument("--k", type=positive_int, default=5, help="worst/best videos shown per metric")
    r.add_argument("--no-thumbnails", dest="no_thumbnails", action="store_true", help="do not decode frames")
    r.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    r.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    r.add_argument("--title", help="the report's title (default: from the runs)")
    r.set_defaults(func=cmd_report)
