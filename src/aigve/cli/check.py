"""``aigve check``: integrity report of a video, a folder or a dataset (:mod:`aigve.video.check`); frames
smaller than a backbone of the catalogue accepts (``Backbone.min_side``) are reported as ``small_frames``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aigve.cli.common import EXIT_FAILED, EXIT_OK, print_table


def cmd_check(args: argparse.Namespace) -> int:
    from aigve.data.dataset import load_dataset
    from aigve.metrics.catalog import frame_size_limits
    from aigve.video.check import check_many

    target = Path(args.target)
    paths: list[Path]
    if target.is_file() and target.suffix.lower() not in (".json", ".csv", ".jsonl"):
        paths = [target]
    else:
        ds = load_dataset(args.target)
        seen: dict[str, Path] = {}
        for e in ds.entries:
            for p in (e.generated, e.real):
                if p is not None:
                    seen.setdefault(str(p), Path(p))
        for p in ds.extra_reals:
            seen.setdefault(str(p), Path(p))
        paths = list(seen.values())
    reports = check_many(paths, num_workers=args.num_workers, size_limits=frame_size_limits())
    bad = [r for r in reports if not r.ok]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        rows = [
            (
                Path(r.path).name,
                "yes" if r.ok else "NO",
                "—" if r.frames is None else str(r.frames),
                "—" if not r.fps else f"{r.fps:.3g}",
                "—" if r.width is None or r.height is None else f"{r.width}x{r.height}",
                r.codec or "—",
                "—" if r.duration is None else f"{r.duration:.2f}s",
                "; ".join(r.problems),
            )
            for r in reports
        ]
        print_table(
            f"integrity of {len(reports)} file(s)",
            ("file", "ok", "frames", "fps", "size", "codec", "duration", "problems"),
            rows,
        )
    return EXIT_FAILED if bad else EXIT_OK


def add_commands(sub: Any) -> None:
    """Register ``check``."""
    c = sub.add_parser("check", help="integrity report for a video, a folder or a dataset")
    c.add_argument(
        "target", help="a video file, a folder of videos, or a dataset (name, annotation, manifest)"
    )
    c.add_argument("--json", action="store_true", help="one JSON object per file instead of the table")
    c.add_argument(
        "--num-workers", dest="num_workers", type=int, default=2, help="files checked in parallel (default 2)"
    )
    c.set_defaults(func=cmd_check)
