"""``aigve weights list|fetch|verify``: the model-weights registry (names of weights or of metrics)."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from aigve.cli.common import EXIT_FAILED, EXIT_OK
from aigve.errors import AigveError, UsageError

log = logging.getLogger("aigve")


def cmd_weights(args: argparse.Namespace) -> int:
    from aigve import weights as W

    if args.action == "list":
        wanted = _expand_weight_names(args.names) if args.names else None
        rows = W.list_weights(wanted)
        for r in rows:  # where a missing file goes
            if not r.get("present"):
                r["destination"] = str(W.cache_dir() / str(r["filename"]))
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        else:
            from rich.console import Console
            from rich.table import Table

            t = Table(title="weights registry")
            for c in ("name", "file", "size", "hash", "present"):
                t.add_column(c)
            for r in rows:
                t.add_row(
                    str(r.get("name")),
                    str(r.get("filename")),
                    str(r.get("size") or "?"),
                    str(r.get("hash_kind")),
                    str(r.get("where") or f"no — put it at {r['destination']}"),
                )
            Console().print(t)
        return EXIT_OK
    names = args.names or []
    if not names:
        raise UsageError(f"aigve weights {args.action} needs one or more names (see `aigve weights list`)")
    names = _expand_weight_names(names)
    if not names:
        return EXIT_OK  # only metrics that need no weights
    if args.action == "fetch":
        hub = [n for n in names if W.get_weight_spec(n).hf_repo]
        ok = True
        for n in hub:  # transformers/open_clip models: a pinned snapshot directory, not one file
            from aigve.backbones.clip import fetch_snapshot

            try:
                print(f"{n}: ok {fetch_snapshot(n)}")
            except AigveError as exc:
                ok = False
                print(f"{n}: FAILED — {exc}")
            except Exception as exc:  # network errors from huggingface_hub
                from aigve.backbones.clip import hf_snapshot_dir

                ok = False
                spec = W.get_weight_spec(n)
                print(
                    f"{n}: FAILED — could not download {spec.hf_repo}@{spec.revision}: {type(exc).__name__}. "
                    f"Download that snapshot elsewhere and put its files in {hf_snapshot_dir(spec)} "
                    f"(or pass --metric-option <metric>.weights=DIR)"
                )
        fetched = W.fetch(
            [n for n in names if n not in hub], strict=args.strict, update_lock=args.update_lock
        )
        for f in fetched:
            if f.ok:
                print(
                    f"{f.name}: ok ({f.source}) {f.path}" + "".join(f"\n  warning: {w}" for w in f.warnings)
                )
            else:
                print(f"{f.name}: FAILED — {f.error}")
        return EXIT_OK if ok and all(f.ok for f in fetched) else EXIT_FAILED
    checked = W.verify(names, update_lock=args.update_lock)
    for v in checked:
        print(f"{v.name}: {v.status} {v.path or ''}" + (f" — {v.message}" if v.message else ""))
    return EXIT_OK if all(v.status in ("ok", "locked", "recorded") for v in checked) else EXIT_FAILED


def _expand_weight_names(names: list[str]) -> list[str]:
    """Accept metric names too: `aigve weights fetch clipsim` fetches what clipsim needs (its declared
    weights, else the registry entries used by it, e.g. niqe's parameter file); a metric that needs no
    weights at all (flicker, motion) is skipped with a note."""
    from aigve import weights as W
    from aigve.metrics.catalog import all_specs

    specs = {s.name: s for s in all_specs()}
    known = set(W.weight_names())
    out: list[str] = []
    for n in names:
        if n in known or n not in specs:
            out.append(n)  # a weights name, or unknown: the registry says which names exist
            continue
        ws = list(specs[n].weights) or [w for w in W.weight_names() if n in W.get_weight_spec(w).used_by]
        if ws:
            out.extend(ws)
        else:
            log.info("%s: needs no weights", n)
    return list(dict.fromkeys(out))


def add_commands(sub: Any) -> None:
    """Register ``weights``."""
    w = sub.add_parser("weights", help="list, fetch or verify model weights")
    w.add_argument("action", choices=["list", "fetch", "verify"])
    w.add_argument("names", nargs="*", help="weights or metric names")
    w.add_argument("--json", action="store_true")
    w.add_argument("--strict", action="store_true", help="refuse checkpoints without a published hash")
    w.add_argument(
        "--update-lock",
        dest="update_lock",
        action="store_true",
        help="accept a changed file for an entry recorded on first use",
    )
    w.set_defaults(func=cmd_weights)
