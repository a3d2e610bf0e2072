"""``aigve list-metrics``: the metric catalogue with availability (table, ``--json`` or ``--markdown``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from aigve.cli.common import EXIT_OK, print_table


def cmd_list_metrics(args: argparse.Namespace) -> int:
    from aigve.metrics.catalog import all_specs, availability

    rows = []
    for spec in all_specs():
        d = spec.to_dict()
        d["availability"] = availability(spec)
        rows.append(d)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if args.markdown:
        print(metrics_markdown_table())
        return EXIT_OK
    table = []
    for d in rows:
        a = d["availability"]
        avail = "yes" if a["available"] else (a["install"] or "weights missing")
        lo, hi = d["range"]
        table.append(
            (
                d["name"],
                d["family"],
                d["level"],
                ",".join(d["inputs"]),
                d["backbone"],
                "↑" if d["higher_is_better"] else ("↓" if d["higher_is_better"] is False else "·"),
                range_text(lo, hi),
                avail,
            )
        )
    print_table(
        "aigve metrics",
        ("metric", "family", "level", "inputs", "backbone", "better", "range", "available"),
        table,
    )
    return EXIT_OK


def range_text(lo: float | None, hi: float | None) -> str:
    """A metric's value range as people read it: ``[0, 1]``, ``[0, ∞)``, ``(−∞, ∞)`` when unbounded."""
    left = "(−∞" if lo is None else f"[{lo}"
    right = "∞)" if hi is None else f"{hi}]"
    return f"{left}, {right}"


def metrics_markdown_table() -> str:
    """The catalogue as the markdown table in the README (kept in sync by a test)."""
    from aigve.metrics.catalog import all_specs

    lines = [
        "| metric | family | level | inputs | backbone | better | range | extra | suites |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in all_specs():
        lo, hi = s.primary.range
        better = "higher" if s.higher_is_better else ("lower" if s.higher_is_better is False else "—")
        rng = range_text(lo, hi)
        lines.append(
            f"| `{s.name}` | {s.family} | {s.level} | {', '.join(s.inputs)} | {s.backbone} | {better} | {rng} "
            f"| {s.extra or '—'} | {', '.join(s.suites) or '—'} |"
        )
    return "\n".join(lines)


def add_commands(sub: Any) -> None:
    """Register ``list-metrics``."""
    lm = sub.add_parser("list-metrics", help="the metric catalogue with availability")
    lm.add_argument("--json", action="store_true", help="the catalogue as JSON (one object per metric)")
    lm.add_argument("--markdown", action="store_true", help="the README's metric table")
    lm.set_defaults(func=cmd_list_metrics)
