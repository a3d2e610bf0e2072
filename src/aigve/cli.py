"""Command-line interface: a thin layer over the engine and the other stages.

Exit codes: 0 success, 2 usage or input-description errors, 3 when any video or metric failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from aigve import __version__
from aigve.errors import AigveError, DatasetError, UsageError

log = logging.getLogger("aigve")

EXIT_OK, EXIT_USAGE, EXIT_FAILED = 0, 2, 3


# ---------------------------------------------------------------------------- helpers
def _csv(s: str | None) -> list[str] | None:
    if s is None:
        return None
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_metric_options(
    items: list[str] | None,
    flag: str = "--metric-option",
    example: str = "fid.backbone=efficientnet_lite0",
) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` strings -> {name: {key: value}} (values typed: bool/int/float/str)."""
    from aigve.metrics.base import parse_option_value

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UsageError(f"{flag} '{item}': expected NAME.KEY=VALUE, e.g. {example}")
        lhs, value = item.split("=", 1)
        name, key = lhs.split(".", 1)
        out.setdefault(name.strip(), {})[key.strip()] = parse_option_value(value)
    return out


def _setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(message)s",
        handlers=[RichHandler(show_path=False, console=_stderr_console())],
        force=True,
    )


def _stderr_console():  # noqa: ANN202
    from rich.console import Console

    return Console(stderr=True)


def load_config_file(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UsageError(f"--config {p}: file not found") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {p}: the top level must be a mapping of option names to values")
    return data


# ---------------------------------------------------------------------------- run
RUN_DEFAULTS: dict[str, Any] = {
    "batch_size": 32,
    "device": "cpu",
    "num_workers": 0,
    "bootstrap": 1000,
    "set_bootstrap": 100,
    "seed": 0,
}


def _merge_run_options(args: argparse.Namespace) -> dict[str, Any]:
    """Config file values, overridden by flags given on the command line."""
    conf = load_config_file(args.config) if args.config else {}
    known = {
        "dataset",
        "generated",
        "real",
        "prompts",
        "video_dir",
        "metrics",
        "categories",
        "suite",
        "max_len",
        "max_seconds",
        "fps",
        "batch_size",
        "device",
        "num_workers",
        "cache_dir",
        "no_cache",
        "resume",
        "out",
        "real_stats",
        "seed",
        "bootstrap",
        "set_bootstrap",
        "no_report",
        "backbones",
    }
    unknown = set(conf) - known
    if unknown:
        raise UsageError(f"--config {args.config}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    opts: dict[str, Any] = dict(RUN_DEFAULTS)
    metric_options: dict[str, dict[str, Any]] = {}
    # metrics: list of names, or mapping name -> options
    cm = conf.get("metrics")
    if isinstance(cm, dict):
        conf["metrics"] = list(cm)
        for k, v in cm.items():
            if v:
                if not isinstance(v, dict):
                    raise UsageError(f"--config {args.config}: options of metric '{k}' must be a mapping")
                metric_options[k] = dict(v)
                try:  # checked here so the message names the file (constructing a metric loads no model)
                    from aigve.metrics.catalog import get_metric_class

                    get_metric_class(k)(**metric_options[k])
                except UsageError as exc:
                    raise UsageError(f"--config {args.config}: {exc}") from None
    elif isinstance(cm, str):
        conf["metrics"] = _csv(cm)
    if isinstance(conf.get("categories"), str):
        conf["categories"] = _csv(conf["categories"])
    opts.update(conf)
    cli_selects = (
        args.metrics is not None or args.categories is not None or bool(getattr(args, "suite", None))
    )
    if cli_selects:  # a selection on the command line replaces the file's whole selection
        for key in ("metrics", "categories", "suite"):
            opts.pop(key, None)
    for key in known:
        val = getattr(args, key, None)
        if val is not None and val is not False:
            opts[key] = val
    if args.metrics is not None:
        opts["metrics"] = _csv(args.metrics)
    if args.categories is not None:
        opts["categories"] = _csv(args.categories)
    if cli_selects and metric_options:  # the file's options for metrics no longer selected do not apply
        from aigve.metrics.catalog import select_metrics

        chosen = set(
            select_metrics(opts.get("metrics") or None, opts.get("categories") or None, opts.get("suite"))
        )
        for name in [n for n in metric_options if n not in chosen]:
            log.info(
                "--config %s: options for %s ignored (not selected on the command line)", args.config, name
            )
            del metric_options[name]
    for name, kv in parse_metric_options(args.metric_option).items():
        metric_options.setdefault(name, {}).update(kv)
    _apply_cdfvd_flags(args, opts, metric_options)
    _apply_checkpoint_flags(args, opts, metric_options)
    opts["metric_options"] = metric_options
    opts["backbone_options"] = _backbone_options(args, conf.get("backbones"))
    return opts


def _backbone_options(args: argparse.Namespace, from_file: Any) -> dict[str, dict[str, Any]]:
    """The config file's ``backbones:`` mapping, updated by ``--backbone-option NAME.KEY=VALUE`` flags."""
    out: dict[str, dict[str, Any]] = {}
    if from_file is not None:
        if not isinstance(from_file, dict) or not all(isinstance(v, dict) for v in from_file.values()):
            raise UsageError(
                f"--config {args.config}: 'backbones' must map backbone names to options, e.g. "
                "backbones: {fid_inception: {weights: PATH}}"
            )
        out = {str(k): dict(v) for k, v in from_file.items()}
    flags = parse_metric_options(
        getattr(args, "backbone_option", None), "--backbone-option", "fid_inception.weights=PATH"
    )
    for name, kv in flags.items():
        out.setdefault(name, {}).update(kv)
    return out


def _apply_cdfvd_flags(args: argparse.Namespace, opts: dict[str, Any], mo: dict[str, dict[str, Any]]) -> None:
    """The original toolkit's cd-fvd flags map onto the fvd metrics' options."""
    if not getattr(args, "use_cdfvd", False):
        return
    from aigve.metrics.video_distribution import cdfvd_options

    name, extra, notes = cdfvd_options(args.cdfvd_model, args.cdfvd_resolution, args.cdfvd_sequence_length)
    opts["metrics"] = list(dict.fromkeys([*(opts.get("metrics") or []), name]))
    mo.setdefault(name, {}).update(extra)
    for note in notes:
        log.warning("%s", note)


# the original toolkit's checkpoint-path flags -> (metric, option)
CHECKPOINT_FLAGS: dict[str, tuple[str, str]] = {
    "gstvqa_model": ("gstvqa", "weights"),
    "simplevqa_model": ("simplevqa", "weights"),
}
FVD_MODEL_REFUSED = (
    "--fvd-model: the original toolkit's FVD loaded hassony2/kinetics_i3d_pytorch's model_rgb.pth, a "
    "different I3D implementation from the one that defines FVD; aigve's `fvd` uses the StyleGAN-V/TATS "
    "I3D that cd-fvd uses (`aigve weights list fvd` says where its file goes), or pass "
    "--metric-option fvd.weights=PATH for a copy of i3d_pretrained_400.pt"
)


def _apply_checkpoint_flags(
    args: argparse.Namespace, opts: dict[str, Any], mo: dict[str, dict[str, Any]]
) -> None:
    """``--gstvqa-model`` / ``--simplevqa-model`` are those metrics' ``weights`` paths; ``--use-cpu`` is
    ``--device cpu``. A flag for a metric that is not in the run is ignored with a warning (as before);
    ``--metric-option NAME.weights=...`` wins over a flag. Light-VQA+ and ``--fvd-model`` are refused
    with the reason."""
    from aigve.metrics.catalog import UNAVAILABLE, select_metrics

    for flag in ("lightvqa_plus_model", "lightvqa_plus_swin"):
        if getattr(args, flag, None):
            raise UsageError(f"--{flag.replace('_', '-')}: {UNAVAILABLE['lightvqa_plus']}")
    if getattr(args, "fvd_model", None):
        raise UsageError(FVD_MODEL_REFUSED)
    if getattr(args, "use_cpu", False):
        opts["device"] = "cpu"
    given = {f: getattr(args, f) for f in CHECKPOINT_FLAGS if getattr(args, f, None)}
    if not given:
        return
    chosen = set(
        select_metrics(opts.get("metrics") or None, opts.get("categories") or None, opts.get("suite"))
    )
    for flag, path in given.items():
        metric, key = CHECKPOINT_FLAGS[flag]
        if metric not in chosen:
            log.warning("--%s ignored: %s is not in this run", flag.replace("_", "-"), metric)
            continue
        mo.setdefault(metric, {}).setdefault(key, str(Path(path).expanduser()))


def _progress_bar(total_label: str):  # noqa: ANN202
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=_stderr_console(),
        transient=False,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from aigve.api import evaluate
    from aigve.data.dataset import load_dataset
    from aigve.results.writers import print_summary

    o = _merge_run_options(args)
    if not o.get("dataset") and not o.get("generated"):
        raise UsageError(
            "aigve run needs a DATASET (name, annotation JSON, manifest or folder) or --generated DIR"
        )
    ds = load_dataset(
        o.get("dataset") or o["generated"],
        generated=o.get("generated"),
        real=o.get("real"),
        prompts=o.get("prompts"),
        video_dir=o.get("video_dir"),
    )
    out = o.get("out")
    if not out:
        raise UsageError("aigve run needs --out DIR (results are never written to the working directory)")
    with _progress_bar("videos") as bar:
        task = bar.add_task("evaluating", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        results = evaluate(
            ds,
            o.get("metrics"),
            categories=o.get("categories"),
            suite=o.get("suite"),
            metric_options=o["metric_options"],
            backbone_options=o.get("backbone_options") or None,
            max_len=o.get("max_len"),
            max_seconds=o.get("max_seconds"),
            fps=o.get("fps"),
            batch_size=int(o["batch_size"]),
            device=str(o["device"]),
            num_workers=int(o["num_workers"]),
            cache_dir=o.get("cache_dir"),
            use_cache=not o.get("no_cache", False),
            out_dir=out,
            resume=bool(o.get("resume", False)),
            real_stats=o.get("real_stats"),
            bootstrap=int(o["bootstrap"]),
            set_bootstrap=int(o["set_bootstrap"]),
            seed=int(o["seed"]),
            progress=progress,
            report=not o.get("no_report", False),
        )
    if not args.quiet:
        print_summary(results)
        from rich.console import Console

        report = ", report.html" if (Path(out) / "report.html").exists() else ""
        Console().print(
            f"results written to [bold]{out}[/bold] (results.json, per_video.csv, per_video.parquet{report})"
        )
    return results.exit_code


def _add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--generated", help="folder of generated videos (instead of DATASET)")
    g.add_argument("--real", help="folder of real videos (paired by name; the rest form the real set)")
    g.add_argument("--prompts", help="prompts file (json, csv or txt)")
    g.add_argument("--video-dir", dest="video_dir", help="folder the annotation JSON's paths are relative to")
    g = p.add_argument_group("metrics")
    g.add_argument("--metrics", help="comma-separated metric names (see `aigve list-metrics`)")
    g.add_argument("--categories", help="comma-separated families, e.g. distribution_based,classic")
    g.add_argument("--suite", help="a named suite, e.g. offline")
    g.add_argument(
        "--metric-option",
        action="append",
        metavar="NAME.KEY=VALUE",
        help="a metric parameter (repeatable), e.g. fid.backbone=efficientnet_lite0",
    )
    g.add_argument(
        "--backbone-option",
        dest="backbone_option",
        action="append",
        metavar="BACKBONE.KEY=VALUE",
        help="a backbone parameter for every metric that uses it (repeatable), e.g. fid_inception.weights=PATH "
        "gives fid, kid and is one checkpoint; config key `backbones:`",
    )
    g.add_argument("--config", help="YAML file with any of these options (flags override it)")
    g = p.add_argument_group("sampling")
    g.add_argument("--max-len", dest="max_len", type=int, help="decode at most the first N frames")
    g.add_argument("--max-seconds", dest="max_seconds", type=float, help="decode at most the first S seconds")
    g.add_argument("--fps", type=float, help="frame rate to assume where the container declares none")
    g = p.add_argument_group("execution")
    g.add_argument("--batch-size", dest="batch_size", type=int)
    g.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    g.add_argument(
        "--num-workers", dest="num_workers", type=int, help="decoding threads (0 = in the main thread)"
    )
    g.add_argument(
        "--cache-dir", dest="cache_dir", help="feature cache (default ~/.cache/aigve or $AIGVE_CACHE_DIR)"
    )
    g.add_argument(
        "--no-cache", dest="no_cache", action="store_true", help="do not read or keep a shared cache"
    )
    g.add_argument("--resume", action="store_true", help="continue a killed run in the same --out directory")
    g.add_argument("--real-stats", dest="real_stats", help="reference statistics from `aigve stats compute`")
    g.add_argument("--seed", type=int)
    g.add_argument("--bootstrap", type=int, help="bootstrap resamples for per-video metrics' CIs (0 = off)")
    g.add_argument(
        "--set-bootstrap",
        dest="set_bootstrap",
        type=int,
        help="bootstrap resamples for set metrics' CIs (FID/KID/FVD; from cached features; 0 = off)",
    )
    g = p.add_argument_group("original AIGVE cd-fvd options")
    g.add_argument("--use-cdfvd", dest="use_cdfvd", action="store_true", help="add the content-debiased FVD")
    g.add_argument("--cdfvd-model", dest="cdfvd_model", choices=["videomae", "i3d"])
    g.add_argument("--cdfvd-resolution", dest="cdfvd_resolution", type=int)
    g.add_argument("--cdfvd-sequence-length", dest="cdfvd_sequence_length", type=int)
    g = p.add_argument_group("original AIGVE checkpoint flags")
    g.add_argument("--gstvqa-model", dest="gstvqa_model", metavar="PATH", help="GSTVQA checkpoint (gstvqa)")
    g.add_argument(
        "--simplevqa-model", dest="simplevqa_model", metavar="PATH", help="UGC_BVQA_model.pth (simplevqa)"
    )
    g.add_argument(
        "--lightvqa-plus-model",
        dest="lightvqa_plus_model",
        metavar="PATH",
        help="refused with the reason: Light-VQA+'s model code is unpublished",
    )
    g.add_argument("--lightvqa-plus-swin", dest="lightvqa_plus_swin", metavar="PATH", help="as above")
    g.add_argument("--fvd-model", dest="fvd_model", metavar="PATH", help="refused with the reason (see docs)")
    g.add_argument("--use-cpu", dest="use_cpu", action="store_true", help="same as --device cpu")


# ---------------------------------------------------------------------------- list-metrics
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
    from rich.console import Console
    from rich.table import Table

    t = Table(title="aigve metrics")
    for c in ("metric", "family", "level", "inputs", "backbone", "better", "range", "available"):
        t.add_column(c)
    for d in rows:
        a = d["availability"]
        avail = "yes" if a["available"] else (a["install"] or "weights missing")
        lo, hi = d["range"]
        t.add_row(
            d["name"],
            d["family"],
            d["level"],
            ",".join(d["inputs"]),
            d["backbone"],
            "↑" if d["higher_is_better"] else ("↓" if d["higher_is_better"] is False else "·"),
            f"[{'' if lo is None else lo}, {'' if hi is None else hi}]",
            avail,
        )
    Console().print(t)
    return EXIT_OK


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
        rng = f"[{'' if lo is None else lo}, {'' if hi is None else hi}]"
        lines.append(
            f"| `{s.name}` | {s.family} | {s.level} | {', '.join(s.inputs)} | {s.backbone} | {better} | {rng} "
            f"| {s.extra or '—'} | {', '.join(s.suites) or '—'} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- prepare
def cmd_prepare(args: argparse.Namespace) -> int:
    from aigve.data.staging import prepare

    suffixes = _csv(args.generated_suffixes) or ["synthetic", "generated"]
    report = prepare(
        args.input_dir,
        out_json=args.out_json,
        stage=args.stage_dataset,
        link=args.link,
        generated_suffixes=suffixes,
        prompts=args.prompts,
        overwrite=args.overwrite,
    )
    print(report.summary())
    if not args.compute:
        return EXIT_OK
    dataset = report.dataset_spec()
    run_args = argparse.Namespace(**{**vars(args), "dataset": str(dataset)})
    if not run_args.out:
        raise UsageError("--compute needs --out DIR for the results")
    return cmd_run(run_args)


# ---------------------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    from aigve.data.dataset import load_dataset
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
    reports = check_many(paths, num_workers=args.num_workers)
    bad = [r for r in reports if not r.ok]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"integrity of {len(reports)} file(s)")
        for c in ("file", "ok", "frames", "fps", "size", "codec", "duration", "problems"):
            t.add_column(c)
        for r in reports:
            t.add_row(
                Path(r.path).name,
                "yes" if r.ok else "NO",
                "—" if r.frames is None else str(r.frames),
                "—" if not r.fps else f"{r.fps:.3g}",
                "—" if r.width is None or r.height is None else f"{r.width}x{r.height}",
                r.codec or "—",
                "—" if r.duration is None else f"{r.duration:.2f}s",
                "; ".join(r.problems),
            )
        Console().print(t)
    return EXIT_FAILED if bad else EXIT_OK


# ---------------------------------------------------------------------------- weights
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


def cmd_cache(args: argparse.Namespace) -> int:
    """Feature cache housekeeping: ``info`` (entries, bytes, leftovers of killed writes), ``prune
    --older-than DAYS`` (entries unused that long, plus leftovers), ``clear`` (everything). Model weights
    live under ``<cache>/weights`` and are never touched here."""
    from aigve import paths
    from aigve.engine.cache import FeatureCache

    root = Path(args.cache_dir).expanduser() if args.cache_dir else paths.cache_dir()
    cache = FeatureCache(root)
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


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aigve", description="Evaluate AI-generated video.")
    p.add_argument("--version", action="version", version=f"aigve {__version__}")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="evaluate a dataset")
    r.add_argument(
        "dataset", nargs="?", help="demo | toy | aigve_bench | annotation.json | manifest.csv/jsonl | folder"
    )
    r.add_argument("--out", help="output directory for the result files")
    r.add_argument("--quiet", action="store_true", help="no summary table")
    r.add_argument("--no-report", dest="no_report", action="store_true", help="do not write report.html")
    _add_run_options(r)
    r.set_defaults(func=cmd_run)

    lm = sub.add_parser("list-metrics", help="the metric catalogue with availability")
    lm.add_argument("--json", action="store_true")
    lm.add_argument("--markdown", action="store_true", help="the README's metric table")
    lm.set_defaults(func=cmd_list_metrics)

    pr = sub.add_parser(
        "prepare", help="pair generated/real videos in a folder and write the annotation JSON"
    )
    pr.add_argument("--input-dir", dest="input_dir", required=True)
    pr.add_argument("--out-json", dest="out_json")
    pr.add_argument(
        "--stage-dataset", dest="stage_dataset", help="build DST/evaluate + DST/annotations/evaluate.json"
    )
    pr.add_argument("--link", action="store_true", help="symlink instead of copying when staging")
    pr.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out-json file or stage into a non-empty --stage-dataset folder",
    )
    pr.add_argument("--generated-suffixes", dest="generated_suffixes", default="synthetic,generated")
    pr.add_argument("--compute", action="store_true", help="run the evaluation on the prepared dataset")
    pr.add_argument("--out", help="results directory for --compute")
    pr.add_argument("--quiet", action="store_true")
    pr.add_argument("--no-report", dest="no_report", action="store_true", help="do not write report.html")
    _add_run_options(pr)
    pr.set_defaults(func=cmd_prepare)

    c = sub.add_parser("check", help="integrity report for a video, a folder or a dataset")
    c.add_argument("target")
    c.add_argument("--json", action="store_true")
    c.add_argument("--num-workers", dest="num_workers", type=int, default=2)
    c.set_defaults(func=cmd_check)

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

    ca = sub.add_parser("cache", help="size of the feature cache; prune or clear it")
    ca.add_argument("action", choices=["info", "prune", "clear"])
    ca.add_argument("--cache-dir", dest="cache_dir", help="default ~/.cache/aigve or $AIGVE_CACHE_DIR")
    ca.add_argument(
        "--older-than",
        dest="older_than",
        type=float,
        metavar="DAYS",
        help="prune: remove entries not used for DAYS days (required for prune)",
    )
    ca.add_argument("--json", action="store_true")
    ca.set_defaults(func=cmd_cache)

    _add_extra_commands(sub)
    return p


def _add_extra_commands(sub: Any) -> None:
    """Commands defined next to the stage they belong to (stats, compare, correlate, report, serve)."""
    import importlib

    for mod in ("aigve.features.cli", "aigve.results.cli", "aigve.report.cli", "aigve.server.cli"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("aigve"):
                continue
            raise
        m.add_commands(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for usage errors, 0 for --help
        return int(exc.code or 0)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except (UsageError, DatasetError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except AigveError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("interrupted; rerun with --resume to continue")
        return 130


if __name__ == "__main__":
    sys.exit(main())
