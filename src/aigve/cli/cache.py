"""``aigve cache info|prune|clear``: feature-cache housekeeping (:class:`aigve.engine.cache.FeatureCache`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from aigve.cli.common import EXIT_OK
from aigve.errors import UsageError


def cmd_cache(args: argparse.Namespace) -> int:
    """Feature cache housekeeping: ``info`` (entries, bytes, leftovers of killed writes), ``prune
    --older-than DAYS`` (entries unused that long, plus leftovers), ``clear`` (everything). Model weights
    live under ``<cache>/weights`` and are never touched here."""
    from aigve import paths
    from aigve.engine.cache import cache_location, open_feature_cache

    root = cache_location(args.cache_dir) if args.cache_dir else paths.cache_dir()
    cache = open_feature_cache(root)
    if args.action == "prune" and args.older_than is None:
        raise UsageError("aigve cache prune needs --older-than DAYS (or use `aigve cache clear`)")
    if args.action in ("prune", "clear"):
        removed, freed = cache.prune(args.older_than if args.action == "prune" else None)
        out: dict[str, Any] = {"removed_files": removed, "freed_bytes": freed, **cache.stats()}
    else:
        out = cache.stats()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"feature cache {out['root']}: {out['entries']} entries, {out['bytes'] / 2**20:.1f} MiB"
            + (f"; {out['stale_tmp_files']} leftover temporary file(s)" if out["stale_tmp_files"] else "")
            + (
                f"; removed {out['removed_files']} file(s), {out['freed_bytes'] / 2**20:.1f} MiB"
                if "removed_files" in out
                else ""
            )
        )
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Register ``cache``."""
    ca = sub.add_parser("cache", help="size of the feature cache; prune or clear it")
    ca.add_argument(
        "action",
        choices=["info", "prune", "clear"],
        help="info: entries and size; prune: drop entries unused for --older-than days; clear: drop all",
    )
    ca.add_argument(
        "--cache-dir",
        dest="cache_dir",
        help="a directory or a URL (s3://bucket/prefix, ...); default ~/.cache/aigve or $AIGVE_CACHE_DIR",
    )
    ca.add_argument(
        "--older-than",
        dest="older_than",
        type=float,
        metavar="DAYS",
        help="prune: remove entries not used for DAYS days (required for prune)",
    )
    ca.add_argument("--json", action="store_true", help="the figures as one JSON object")
    ca.set_defaults(func=cmd_cache)
