"""``aigve weights list|fetch|verify|import``: the model-weights registry (names of weights or of metrics).

- ``list [NAMES] [--json]``: every entry, its download URL(s), whether (and where) it is present, and
  ``planned`` for entries kept for a metric the catalogue does not provide yet;
- ``fetch NAMES`` / ``fetch --metrics clipsim,fid`` / ``fetch --all``: download what those weights or
  metrics need (metrics -> their default backbones' files, from the catalogue), e.g. to prepare an offline
  cache once on a machine with internet and copy it;
- ``verify [NAMES]``: hash-check present files, never downloading;
- ``import DIR [NAMES]``: verify files fetched elsewhere against the registry and install them in the cache.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from aigve.cli.common import EXIT_FAILED, EXIT_OK, csv_list, emit_json, print_table
from aigve.errors import AigveError, UsageError

log = logging.getLogger("aigve")


def _list(args: argparse.Namespace, wanted: list[str] | None) -> int:
    from aigve import weights as W

    rows = W.list_weights(wanted)
    from aigve.weights.places import hub_snapshot_dir

    for r in rows:  # where a missing file goes (a hub snapshot: its folder)
        if not r.get("present"):
            hub = hub_snapshot_dir(W.get_weight_spec(str(r["name"])))
            r["destination"] = str(hub if hub is not None else W.cache_dir() / str(r["filename"]))
    if args.json:
        emit_json(rows)
        return EXIT_OK
    table = []
    for r in rows:
        if r.get("hf_repo"):
            url = f"hf:{r['hf_repo']}@{r.get('revision') or 'main'}"
        else:
            url = " ".join(r.get("urls") or []) or ("manual download" if r.get("manual_download") else "—")
        table.append(
            (
                r.get("name"),
                r.get("filename"),
                r.get("size") or "?",
                r.get("hash_kind"),
                r.get("where") or f"no — put it at {r['destination']}",
                r.get("planned") or "",
                url,
            )
        )
    print_table("weights registry", ("name", "file", "size", "hash", "present", "planned", "url"), table)
    return EXIT_OK


def _fetch(args: argparse.Namespace, names: list[str]) -> int:
    from aigve import weights as W

    hub = [n for n in names if W.get_weight_spec(n).hf_repo]
    ok = True
    out: list[dict[str, Any]] = []
    for n in hub:  # transformers/open_clip models: a pinned snapshot directory, not one file
        from aigve.backbones.clip import fetch_snapshot

        try:
            out.append({"name": n, "ok": True, "path": str(fetch_snapshot(n)), "source": "download"})
        except AigveError as exc:
            ok = False
            out.append({"name": n, "ok": False, "error": str(exc)})
        except Exception as exc:  # network errors from huggingface_hub
            from aigve.backbones.clip import hf_snapshot_dir

            ok = False
            spec = W.get_weight_spec(n)
            out.append(
                {
                    "name": n,
                    "ok": False,
                    "error": f"could not download {spec.hf_repo}@{spec.revision}: {type(exc).__name__}. "
                    f"Download that snapshot elsewhere and put its files in {hf_snapshot_dir(spec)} "
                    f"(or pass --metric-option <metric>.weights=DIR)",
                }
            )
    fetched = W.fetch([n for n in names if n not in hub], strict=args.strict, update_lock=args.update_lock)
    for f in fetched:
        row: dict[str, Any] = {"name": f.name, "ok": f.ok}
        if f.ok:
            row.update(path=str(f.path), source=f.source, sha256=f.sha256, warnings=list(f.warnings))
        else:
            row["error"] = f.error
        out.append(row)
    if args.json:
        emit_json(out)
    else:
        for r in out:
            if r["ok"]:
                print(
                    f"{r['name']}: ok ({r['source']}) {r['path']}"
                    + "".join(f"\n  warning: {w}" for w in r.get("warnings", []))
                )
            else:
                print(f"{r['name']}: FAILED — {r['error']}")
    return EXIT_OK if ok and all(f.ok for f in fetched) else EXIT_FAILED


def _import(args: argparse.Namespace) -> int:
    from aigve import weights as W

    if not args.names:
        raise UsageError("aigve weights import needs the folder holding the files: aigve weights import DIR")
    src, *names = args.names
    results = W.import_dir(src, _expand_weight_names(names) if names else None, update_lock=args.update_lock)
    if args.json:
        emit_json(
            [
                {
                    "name": r.name,
                    "filename": r.filename,
                    "status": r.status,
                    "path": str(r.path) if r.path else None,
                    "message": r.message,
                    "warnings": list(r.warnings),
                }
                for r in results
            ]
        )
    else:
        for r in results:
            label = r.name or r.filename
            print(f"{label}: {r.status} {r.path or ''}" + (f" — {r.message}" if r.message else ""))
            for w in r.warnings:
                print(f"  warning: {w}")
        if not results:
            print(f"no files in {src}")
    bad = [r for r in results if r.status in ("mismatch", "missing", "error")]
    return EXIT_FAILED if bad else EXIT_OK


def cmd_weights(args: argparse.Namespace) -> int:
    from aigve import weights as W

    metrics = csv_list(args.metrics)
    if (metrics is not None or args.all) and args.action not in ("fetch", "verify", "list"):
        raise UsageError(f"--metrics/--all apply to list, fetch and verify, not to {args.action}")
    if metrics is not None or args.all:
        from aigve.weights.usage import weights_for_metrics

        if args.names:
            raise UsageError("give weights names or --metrics/--all, not both")
        names, none = weights_for_metrics(None if args.all else metrics)
        for m in none:
            log.info("%s: needs no weights", m)
        if args.action == "list":
            return _list(args, names)
        if not names:
            return EXIT_OK
        args.names = names
    if args.action == "list":
        return _list(args, _expand_weight_names(args.names) if args.names else None)
    if args.action == "import":
        return _import(args)
    names = args.names or []
    if not names:
        raise UsageError(
            f"aigve weights {args.action} needs one or more names, --metrics NAMES or --all "
            "(see `aigve weights list`)"
        )
    names = _expand_weight_names(names)
    if not names:
        return EXIT_OK  # only metrics that need no weights
    if args.action == "fetch":
        return _fetch(args, names)
    checked = W.verify(names, update_lock=args.update_lock)
    if args.json:
        emit_json(
            [
                {
                    "name": v.name,
                    "filename": v.filename,
                    "status": v.status,
                    "path": str(v.path) if v.path else None,
                    "source": v.source,
                    "sha256": v.sha256,
                    "message": v.message,
                }
                for v in checked
            ]
        )
    else:
        for v in checked:
            print(f"{v.name}: {v.status} {v.path or ''}" + (f" — {v.message}" if v.message else ""))
    return EXIT_OK if all(v.status in ("ok", "locked", "recorded") for v in checked) else EXIT_FAILED


def _expand_weight_names(names: list[str]) -> list[str]:
    """Accept metric names too: `aigve weights fetch clipsim` fetches what clipsim needs (its declared
    weights, else the registry entries used by it, e.g. niqe's parameter file); a metric that needs no
    weights at all (flicker, motion) is skipped with a note. A name that is neither gives a usage error
    naming the closest weights or metric name."""
    from aigve import weights as W
    from aigve.errors import did_you_mean
    from aigve.metrics.catalog import all_specs

    specs = {s.name: s for s in all_specs()}
    known = set(W.weight_names())
    out: list[str] = []
    for n in names:
        if n in known:
            out.append(n)
            continue
        if n not in specs:
            raise UsageError(
                f"unknown weights or metric name '{n}'{did_you_mean(n, [*known, *specs])}; "
                "see `aigve weights list` and `aigve list-metrics`"
            )
        ws = list(specs[n].weights) or [w for w in W.weight_names() if n in W.get_weight_spec(w).used_by]
        if ws:
            out.extend(ws)
        else:
            log.info("%s: needs no weights", n)
    return list(dict.fromkeys(out))


def add_commands(sub: Any) -> None:
    """Register ``weights``."""
    w = sub.add_parser(
        "weights",
        help="list, fetch, verify or import model weights",
        description="list: the registry with URLs and what is present; fetch: download what weights or "
        "metrics need; verify: hash-check present files; import DIR: verify and install files fetched "
        "elsewhere (e.g. `aigve weights fetch --all` on a machine with internet, then copy the folder).",
    )
    w.add_argument("action", choices=["list", "fetch", "verify", "import"], help="what to do")
    w.add_argument(
        "names",
        nargs="*",
        help="weights or metric names (import: the folder first, then optionally the names to import)",
    )
    w.add_argument(
        "--metrics",
        help="comma-separated metric names: the weights their default backbones need, e.g. clipsim,fid",
    )
    w.add_argument("--all", action="store_true", help="the weights every metric of the catalogue needs")
    w.add_argument("--json", action="store_true", help="JSON on stdout instead of the table / lines")
    w.add_argument("--strict", action="store_true", help="refuse checkpoints without a published hash")
    w.add_argument(
        "--update-lock",
        dest="update_lock",
        action="store_true",
        help="accept a changed file for an entry recorded on first use",
    )
    w.set_defaults(func=cmd_weights)
