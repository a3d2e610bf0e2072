"""``aigve stats compute``: reference statistics of a real-video set, reused with ``--real-stats``;
``aigve stats export``: those statistics in pytorch-fid's or clean-fid's format."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aigve.errors import AigveError, UsageError


def compute_reference_stats(
    dataset: Any,
    metric: str,
    out: str | Path,
    *,
    metric_options: dict[str, Any] | None = None,
    max_len: int | None = None,
    max_seconds: float | None = None,
    fps: float | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    num_workers: int = 0,
    cache_dir: str | Path | None = None,
    per_video_features: bool = False,
) -> Path:
    """Accumulate the real-side statistics of ``metric`` over the dataset's videos and save them.

    The videos used are the dataset's real videos when it has any, else its generated ones (a folder
    of real videos loads as "generated"). The file records every setting that changes the number. With
    ``per_video_features`` it also keeps each video's features (from the run's cache), so later runs on
    these statistics get a set-level bootstrap CI (the file grows with the number of videos).
    """
    from aigve import paths
    from aigve.data.dataset import Dataset, load_dataset
    from aigve.engine import Engine, RunConfig
    from aigve.engine.cache import cache_location, open_feature_cache
    from aigve.metrics.base import ReferenceStats, SetMetric, supports_reference_stats
    from aigve.metrics.catalog import get_metric_class
    from aigve.video.sampling import Window

    cls = get_metric_class(metric)
    if not supports_reference_stats(cls):
        raise UsageError(f"metric '{metric}' does not use reference statistics")
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    videos = ds.real_paths() if ds.has_reals else ds.generated_paths()
    reals = Dataset(name=f"{ds.name}-reference", entries=[], extra_reals=videos, source=ds.source)
    cfg = RunConfig(
        metrics=[metric],
        metric_options={metric: dict(metric_options or {})},
        window=Window(max_len=max_len, max_seconds=max_seconds, fps_fallback=fps),
        batch_size=batch_size,
        device=device,
        num_workers=num_workers,
        cache_dir=cache_location(cache_dir) if cache_dir else paths.cache_dir(),
        bootstrap=0,
    )
    engine = Engine(reals, cfg)
    engine.run()
    slot = engine.slots[0]
    if slot.failure:  # missing weights or extra: a failure of the run (exit 3), not of the command line
        raise AigveError(f"could not compute {metric} features: {slot.failure}")
    m = slot.metric
    assert isinstance(m, SetMetric)
    if engine.errors:
        bad = "; ".join(e["error"] for e in engine.errors[:3])
        raise AigveError(f"{len(engine.errors)} reference video(s) failed ({bad}); fix or remove them first")
    assert isinstance(m, ReferenceStats)
    feats = None
    if per_video_features:
        assert cfg.cache_dir is not None
        cache = open_feature_cache(cfg.cache_dir)
        try:
            feats = engine._cached_side(slot, "real", cache)
        finally:
            cache.close()
        if len(feats) != len(videos):
            raise AigveError(
                f"features of {len(feats)} of {len(videos)} reference videos are in the cache; run again"
            )
    return m.save_real_stats(out, features=feats)


def cmd_stats(args: argparse.Namespace) -> int:
    from aigve.cli.common import parse_metric_options

    if args.action == "export":
        return _cmd_export(args)
    if not args.metric or not args.out:
        raise UsageError("aigve stats compute needs --metric NAME and --out FILE.npz")

    opts = parse_metric_options(args.metric_option).get(args.metric, {})
    path = compute_reference_stats(
        args.dataset,
        args.metric,
        args.out,
        metric_options=opts,
        max_len=args.max_len,
        max_seconds=args.max_seconds,
        fps=args.fps,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        per_video_features=args.per_video_features,
    )
    if args.json:
        _print_json({"action": "compute", "metric": args.metric, "path": str(path), "dataset": args.dataset})
    else:
        print(f"reference statistics for {args.metric} written to {path}")
    return 0


def _print_json(obj: dict[str, Any]) -> None:
    import json

    print(json.dumps(obj))


def _cmd_export(args: argparse.Namespace) -> int:
    from aigve.metrics.functional.stats_files import export_stats

    if not args.format or not args.out:
        raise UsageError("aigve stats export FILE.npz needs --format pytorch-fid|clean-fid and --out")
    path = export_stats(args.dataset, args.format, args.out, name=args.name, mode=args.clean_fid_mode)
    if args.json:
        _print_json(
            {"action": "export", "format": args.format, "path": str(path), "source": args.dataset, "ddof": 1}
        )
        return 0
    print(
        f"{args.dataset} written as {args.format} statistics to {path} "
        "(mu and the unbiased, ddof=1, covariance sigma; n beside them)"
    )
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "stats",
        help="reference statistics for FID/FVD (`aigve stats compute`, `aigve stats export`)",
        description=(
            "compute: reference statistics of real videos (for --real-stats). export: aigve statistics in "
            "pytorch-fid's .npz (--out FILE.npz) or clean-fid's custom-statistics file (--out DIR --name NAME)."
        ),
    )
    p.add_argument(
        "action",
        choices=["compute", "export"],
        help="compute reference statistics, or export them to another format",
    )
    p.add_argument(
        "dataset",
        help="compute: the real videos (a dataset name, annotation JSON, manifest or folder); "
        "export: the aigve statistics file",
    )
    p.add_argument("--metric", help="compute: fid, fvd or fvd_videomae")
    p.add_argument(
        "--out", help="compute: output .npz; export: output .npz (pytorch-fid) or folder (clean-fid)"
    )
    p.add_argument(
        "--per-video-features",
        dest="per_video_features",
        action="store_true",
        help="compute: keep each video's features too, so runs on these statistics get a set-level CI",
    )
    p.add_argument("--format", choices=["pytorch-fid", "clean-fid"], help="export: the format to write")
    p.add_argument(
        "--name", help="export --format clean-fid: the dataset name clean-fid looks the file up by"
    )
    p.add_argument(
        "--clean-fid-mode",
        dest="clean_fid_mode",
        choices=["clean", "legacy_pytorch", "legacy_tensorflow"],
        help="export --format clean-fid: clean-fid's mode in the file name (default: from the file's resize)",
    )
    p.add_argument(
        "--metric-option",
        action="append",
        metavar="NAME.KEY=VALUE",
        help="compute: a metric parameter (repeatable), e.g. fid.backbone=efficientnet_lite0",
    )
    p.add_argument("--max-len", dest="max_len", type=int, help="compute: decode at most the first N frames")
    p.add_argument(
        "--max-seconds", dest="max_seconds", type=float, help="compute: decode at most the first S seconds"
    )
    p.add_argument(
        "--fps", type=float, help="compute: frame rate to assume where the container declares none"
    )
    p.add_argument(
        "--batch-size",
        dest="batch_size",
        type=int,
        default=32,
        help="compute: frames (or clips) per forward pass of the backbone (default 32)",
    )
    p.add_argument("--device", default="cpu", help="compute: cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument(
        "--num-workers",
        dest="num_workers",
        type=int,
        default=0,
        help="compute: decoding threads (0 = in the main thread)",
    )
    p.add_argument(
        "--cache-dir",
        dest="cache_dir",
        help="compute: feature cache, a directory or a URL (default ~/.cache/aigve or $AIGVE_CACHE_DIR)",
    )
    p.add_argument("--json", action="store_true", help="print what was written as one JSON object")
    p.set_defaults(func=cmd_stats)
