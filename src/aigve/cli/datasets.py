"""``aigve datasets list|fetch``: the built-in datasets (:mod:`aigve.data.builtin`).

- ``list [--json]``: each built-in's videos, size, source, licence and whether it is present (and where);
- ``fetch NAME...``: download (or generate) and verify them, e.g. ``aigve datasets fetch aigve_bench``
  (resumable) or ``aigve datasets fetch aigve_bench_toy``.
"""

from __future__ import annotations

import argparse
from typing import Any

from aigve.cli.common import EXIT_FAILED, EXIT_OK, emit_json, print_table
from aigve.errors import AigveError, UsageError


def cmd_datasets(args: argparse.Namespace) -> int:
    from aigve.data.builtin import BUILTIN_NAMES, builtin_status, fetch_builtin

    if args.action == "list":
        rows = builtin_status(args.cache_dir)
        if args.names:
            for n in args.names:
                if n not in BUILTIN_NAMES:
                    from aigve.data.builtin import builtin_info

                    builtin_info(n)  # the usage error with the closest name
            rows = [r for r in rows if r["name"] in args.names]
        if args.json:
            emit_json(rows)
            return EXIT_OK
        print_table(
            "built-in datasets",
            ("name", "videos", "size", "license", "present", "source", "description"),
            [
                (
                    r["name"],
                    r["videos"] or "—",
                    r["size"],
                    r["license"],
                    f"yes — {r['path']}" if r["present"] else f"no — {r['how']}; goes to {r['path']}",
                    r["source"],
                    r["description"],
                )
                for r in rows
            ],
        )
        return EXIT_OK
    if not args.names:
        raise UsageError(f"aigve datasets fetch needs one or more names: {', '.join(BUILTIN_NAMES)}")
    out: list[dict[str, Any]] = []
    for n in args.names:
        from aigve.data.builtin import builtin_info

        builtin_info(n)  # unknown names are usage errors before anything is downloaded
    for n in args.names:
        try:
            out.append({"name": n, "ok": True, "path": str(fetch_builtin(n, args.cache_dir))})
        except AigveError as exc:
            out.append({"name": n, "ok": False, "error": str(exc)})
    if args.json:
        emit_json(out)
    else:
        for r in out:
            print(f"{r['name']}: ok {r['path']}" if r["ok"] else f"{r['name']}: FAILED — {r['error']}")
    return EXIT_OK if all(r["ok"] for r in out) else EXIT_FAILED


def add_commands(sub: Any) -> None:
    """Register ``datasets``."""
    d = sub.add_parser(
        "datasets",
        help="the built-in datasets: list them (size, source, licence, present) or fetch them",
        description="Built-in datasets are usable by name in `aigve run NAME`. `fetch` downloads and verifies "
        "them (aigve_bench: the CSV and the 2,430 videos from the Hugging Face hub, resumable).",
    )
    d.add_argument("action", choices=["list", "fetch"], help="list the built-ins, or fetch some by name")
    d.add_argument("names", nargs="*", help="built-in dataset names (fetch: required; list: a filter)")
    d.add_argument("--json", action="store_true", help="JSON on stdout instead of the table / lines")
    d.add_argument(
        "--cache-dir", dest="cache_dir", help="cache root (default ~/.cache/aigve or $AIGVE_CACHE_DIR)"
    )
    d.set_defaults(func=cmd_datasets)
