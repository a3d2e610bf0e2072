"""``aigve run`` (evaluate a dataset) and ``aigve prepare`` (pair a folder, write its annotation, optionally run).

Options come from the command line, a ``--config`` YAML file (flags win) and the original toolkit's
flags (:mod:`aigve.cli.legacy`).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from aigve.cli import legacy
from aigve.cli.common import (
    EXIT_OK,
    JournalStream,
    csv_list,
    load_config_file,
    parse_metric_options,
    stderr_console,
    stdout_console,
)
from aigve.errors import UsageError

log = logging.getLogger("aigve")

RUN_DEFAULTS: dict[str, Any] = {
    "batch_size": 32,
    "device": "cpu",
    "num_workers": 2,
    "precision": "fp32",
    "decode_device": "cpu",
    "bootstrap": 1000,
    "set_bootstrap": 100,
    "seed": 0,
    "engine": "local",
}


def merge_run_options(args: argparse.Namespace) -> dict[str, Any]:
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
        "prefetch",
        "no_batch_videos",
        "precision",
        "decode_device",
        "cache_dir",
        "no_cache",
        "resume",
        "out",
        "real_stats",
        "real_stats_backbone",
        "seed",
        "bootstrap",
        "set_bootstrap",
        "no_report",
        "backbones",
        "judge",
        "engine",
        "ray_address",
        "ray_workers",
        "ray_gpus_per_worker",
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
        conf["metrics"] = csv_list(cm)
    if isinstance(conf.get("categories"), str):
        conf["categories"] = csv_list(conf["categories"])
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
        opts["metrics"] = csv_list(args.metrics)
    if args.categories is not None:
        opts["categories"] = csv_list(args.categories)
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
    _apply_legacy_flags(args, opts, metric_options)
    opts["metric_options"] = metric_options
    opts["backbone_options"] = _backbone_options(args, conf.get("backbones"))
    opts["judge"] = _judge_options(args, conf.get("judge"))
    return opts


#: ``--judge-*`` flag -> JudgeConfig field
_JUDGE_FLAGS = {
    "judge_backend": "backend",
    "judge_model": "model",
    "judge_base_url": "base_url",
    "judge_concurrency": "concurrency",
    "judge_timeout": "timeout",
    "judge_max_retries": "max_retries",
    "judge_frames": "frames",
    "judge_cache": "cache",
    "judge_price": "price",
}


def _judge_options(args: argparse.Namespace, from_file: Any) -> dict[str, Any] | None:
    """The config file's ``judge:`` mapping updated by the ``--judge-*`` flags (None when neither is given).
    The key is never a flag (shell histories keep flags): ``OPENAI_API_KEY``, or the variable named by
    ``--judge-api-key-env``."""
    import os

    if from_file is not None and not isinstance(from_file, dict):
        raise UsageError(
            f"--config {args.config}: 'judge' must be a mapping, e.g. judge: {{backend: endpoint}}"
        )
    out: dict[str, Any] = dict(from_file or {})
    if "api_key" in out:
        raise UsageError(
            f"--config {args.config}: do not write the judge's API key in a config file; set OPENAI_API_KEY "
            "(or name another variable with judge: {api_key_env: NAME})"
        )
    for flag, key in _JUDGE_FLAGS.items():
        val = getattr(args, flag, None)
        if val is not None:
            out[key] = val
    if getattr(args, "judge_api_key_flag", None) is not None:
        raise UsageError(
            "the judge's key is not taken on the command line (shell histories keep it): set OPENAI_API_KEY, or "
            "name the variable that holds it with --judge-api-key-env VAR"
        )
    env_name = getattr(args, "judge_api_key_env", None) or out.pop("api_key_env", None)
    if env_name:
        if not os.environ.get(env_name):
            shown = env_name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env_name) else "(not a variable name)"
            raise UsageError(f"--judge-api-key-env {shown}: no such environment variable is set")
        out["api_key"] = os.environ[env_name]
    return out or None


def _apply_legacy_flags(
    args: argparse.Namespace, opts: dict[str, Any], mo: dict[str, dict[str, Any]]
) -> None:
    """The original toolkit's flags (:mod:`aigve.cli.legacy`): cd-fvd adds its metric and options (notes
    are logged), Light-VQA+ and ``--fvd-model`` are refused with the reason, ``--use-cpu`` is
    ``--device cpu``, checkpoint paths become the ``weights`` option of the metrics in the run."""
    fields = vars(args)
    cd = legacy.cdfvd_from_fields(fields)
    if cd is not None:
        opts["metrics"] = cd.apply(opts.get("metrics") or [], mo)
        for note in cd.notes:
            log.warning("%s", note)
    legacy.refuse_unsupported(fields)
    opts["device"] = legacy.device_from_fields(fields) or opts["device"]
    if any(fields.get(f) for f in legacy.CHECKPOINT_FLAGS):
        from aigve.metrics.catalog import select_metrics

        chosen = select_metrics(
            opts.get("metrics") or None, opts.get("categories") or None, opts.get("suite")
        )
        legacy.apply_checkpoint_flags(fields, chosen, mo)


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
        console=stderr_console(),
        transient=False,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from aigve.api import evaluate
    from aigve.data.dataset import load_dataset
    from aigve.results.summary import print_summary

    o = merge_run_options(args)
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
    _validate_selection(o)  # usage errors before the progress bar starts
    stream = JournalStream(Path(out)) if getattr(args, "jsonl", False) else None
    with _progress_bar("videos") as bar:
        task = bar.add_task("evaluating", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if stream is not None:
                stream.emit_new()

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
            prefetch=None if o.get("prefetch") is None else int(o["prefetch"]),
            batch_videos=not o.get("no_batch_videos", False),
            precision=str(o["precision"]),
            decode_device=str(o["decode_device"]),
            cache_dir=o.get("cache_dir"),
            use_cache=not o.get("no_cache", False),
            out_dir=out,
            resume=bool(o.get("resume", False)),
            real_stats=o.get("real_stats"),
            real_stats_backbone=o.get("real_stats_backbone"),
            bootstrap=int(o["bootstrap"]),
            set_bootstrap=int(o["set_bootstrap"]),
            seed=int(o["seed"]),
            progress=progress,
            report=not o.get("no_report", False),
            judge=o.get("judge"),
            engine=str(o["engine"]),
            ray_address=o.get("ray_address"),
            ray_workers=None if o.get("ray_workers") is None else int(o["ray_workers"]),
            ray_gpus_per_worker=(
                None if o.get("ray_gpus_per_worker") is None else float(o["ray_gpus_per_worker"])
            ),
        )
    if stream is not None:
        stream.emit_new()
    if not args.quiet:
        # with --jsonl stdout carries only the records: the summary goes to stderr
        console = stderr_console() if stream is not None else stdout_console()
        print_summary(results, console=console)
        report = ", report.html" if (Path(out) / "report.html").exists() else ""
        console.print(
            f"results written to [bold]{escape(str(out))}[/bold] (results.json, per_video.csv, "
            f"per_video.parquet{report})"
        )
    return results.exit_code


def _validate_selection(o: dict[str, Any]) -> None:
    """Metric, category, suite and backbone names checked before anything starts (a usage error names the
    closest valid choice)."""
    from aigve.backbones.registry import get_extractor_class
    from aigve.metrics.catalog import get_metric_class, select_metrics

    chosen = select_metrics(o.get("metrics") or None, o.get("categories") or None, o.get("suite"))
    for name, opts in (o.get("metric_options") or {}).items():
        if name in chosen and opts:
            get_metric_class(name)(**opts)  # option names and values (constructing loads no model)
    for name in o.get("backbone_options") or {}:
        get_extractor_class(name)


def add_run_options(p: argparse.ArgumentParser) -> None:
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
    g.add_argument(
        "--batch-size",
        dest="batch_size",
        type=int,
        help=f"frames (or clips) per forward pass of a network (default {RUN_DEFAULTS['batch_size']}); "
        "lower it when GPU memory runs out — results do not depend on it",
    )
    g.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    g.add_argument(
        "--num-workers",
        dest="num_workers",
        type=int,
        help=f"decoding threads (default {RUN_DEFAULTS['num_workers']}; 0 = in the main thread, no overlap "
        "with the model)",
    )
    g.add_argument(
        "--prefetch",
        type=int,
        help="videos decoded ahead of the model (default: one group of up to 8); each holds its decoded "
        "window in memory",
    )
    g.add_argument(
        "--no-batch-videos",
        dest="no_batch_videos",
        action="store_true",
        help="frame extractors take one video per forward pass instead of filling --batch-size with frames "
        "of consecutive videos (same values, slower)",
    )
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        help="the neural backbones' forward passes (default fp32); bf16/fp16 numbers are labelled and cached "
        "apart, and differ from fp32 within the tolerances of docs/precision.md",
    )
    g.add_argument(
        "--decode-device",
        dest="decode_device",
        help="cpu (default) or cuda[:N]: decode on the GPU with torchcodec (the `gpudecode` extra); a video "
        "the GPU cannot decode falls back to the CPU with a warning",
    )
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        help="local (default: this process) or ray: the videos go to a Ray cluster, decoded in CPU tasks and "
        "scored by model actors, for the same results (the `distributed` extra; docs/distributed.md)",
    )
    g.add_argument(
        "--ray-address",
        dest="ray_address",
        help="with --engine ray: the cluster (auto, HOST:PORT, ray://HOST:PORT); default: a local Ray started "
        "for the run with this machine's cores and GPUs",
    )
    g.add_argument(
        "--ray-workers",
        dest="ray_workers",
        type=int,
        help="with --engine ray: model actors, each holding every backbone of the run (default: one per GPU, "
        "or one per two CPUs without GPUs)",
    )
    g.add_argument(
        "--ray-gpus-per-worker",
        dest="ray_gpus_per_worker",
        type=float,
        help="with --engine ray: GPUs each model actor reserves (default 1 when the workers run on CUDA, else 0; "
        "0.5 puts two actors on one GPU)",
    )
    g.add_argument(
        "--cache-dir",
        dest="cache_dir",
        help="feature cache: a directory or a URL (s3://bucket/prefix, gs://...; needs fsspec and s3fs/gcsfs) "
        "(default ~/.cache/aigve or $AIGVE_CACHE_DIR)",
    )
    g.add_argument(
        "--no-cache", dest="no_cache", action="store_true", help="do not read or keep a shared cache"
    )
    g.add_argument("--resume", action="store_true", help="continue a killed run in the same --out directory")
    g.add_argument(
        "--real-stats",
        dest="real_stats",
        help="reference statistics: `aigve stats compute` output, or pytorch-fid / clean-fid .npz, cd-fvd pickle",
    )
    g.add_argument(
        "--real-stats-backbone",
        dest="real_stats_backbone",
        metavar="NAME",
        help="the backbone a --real-stats file of another tool was made with (your claim; recorded as such)",
    )
    g.add_argument(
        "--seed",
        type=int,
        help=f"seed of the bootstrap resampling behind the confidence intervals (default {RUN_DEFAULTS['seed']})",
    )
    g.add_argument("--bootstrap", type=int, help="bootstrap resamples for per-video metrics' CIs (0 = off)")
    g.add_argument(
        "--set-bootstrap",
        dest="set_bootstrap",
        type=int,
        help="bootstrap resamples for set metrics' CIs (FID/KID/FVD; from cached features; 0 = off)",
    )
    g = p.add_argument_group(
        "judge (vl_understanding metrics: vqascore, ...)",
        "the vision-language model that reads frames and prompts; config key `judge:`",
    )
    g.add_argument(
        "--judge",
        dest="judge_backend",
        choices=("endpoint", "local"),
        help="an OpenAI-compatible endpoint, or an "
        "in-process Qwen2-VL/Qwen2.5-VL (default from AIGVE_JUDGE; endpoint when a model or base URL is given)",
    )
    g.add_argument(
        "--judge-model",
        dest="judge_model",
        help="model name (endpoint), or registry name / directory (local); default $AIGVE_JUDGE_MODEL",
    )
    g.add_argument(
        "--judge-base-url",
        dest="judge_base_url",
        help="endpoint URL, e.g. http://localhost:8000/v1 (default $OPENAI_BASE_URL, else OpenAI's)",
    )
    g.add_argument(
        "--judge-api-key-env",
        dest="judge_api_key_env",
        metavar="VAR",
        help="environment variable holding the endpoint's key (default OPENAI_API_KEY)",
    )
    g.add_argument("--judge-api-key", dest="judge_api_key_flag", help=argparse.SUPPRESS)  # refused, see above
    g.add_argument(
        "--judge-concurrency", dest="judge_concurrency", type=int, help="requests in flight (default 4)"
    )
    g.add_argument(
        "--judge-timeout", dest="judge_timeout", type=float, help="seconds per request (default 120)"
    )
    g.add_argument(
        "--judge-max-retries",
        dest="judge_max_retries",
        type=int,
        help="retries on timeouts, 429 and 5xx, honouring Retry-After (default 5)",
    )
    g.add_argument(
        "--judge-frames",
        dest="judge_frames",
        type=int,
        help="frames sampled per video for every judge metric (default: each metric's num_frames)",
    )
    g.add_argument(
        "--judge-cache",
        dest="judge_cache",
        metavar="FILE|off",
        help="response cache (default <cache dir>/judges/responses.sqlite; off: none)",
    )
    g.add_argument(
        "--judge-price",
        dest="judge_price",
        metavar="PROMPT,COMPLETION",
        help="USD per million prompt and completion tokens: the cost goes into the provenance",
    )
    legacy.add_run_arguments(p)


def cmd_prepare(args: argparse.Namespace) -> int:
    from aigve.data.staging import prepare

    suffixes = csv_list(args.generated_suffixes) or ["synthetic", "generated"]
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


def add_commands(sub: Any) -> None:
    """Register ``run`` and ``prepare``."""
    r = sub.add_parser("run", help="evaluate a dataset")
    r.add_argument(
        "dataset",
        nargs="?",
        help="demo | toy | aigve_bench_toy | aigve_bench | annotation.json | manifest.csv/jsonl | folder",
    )
    r.add_argument("--out", help="output directory for the result files")
    r.add_argument("--quiet", action="store_true", help="no summary table")
    r.add_argument(
        "--jsonl",
        action="store_true",
        help="stream one JSON object per video to stdout as each finishes (progress and summary go to stderr)",
    )
    r.add_argument("--no-report", dest="no_report", action="store_true", help="do not write report.html")
    add_run_options(r)
    r.set_defaults(func=cmd_run)

    pr = sub.add_parser(
        "prepare", help="pair generated/real videos in a folder and write the annotation JSON"
    )
    pr.add_argument(
        "--input-dir", dest="input_dir", required=True, help="folder of generated and real videos"
    )
    pr.add_argument(
        "--out-json",
        dest="out_json",
        help="write the annotation JSON here (without it and --stage-dataset: a dry run that reports the pairing)",
    )
    pr.add_argument(
        "--stage-dataset", dest="stage_dataset", help="build DST/evaluate + DST/annotations/evaluate.json"
    )
    pr.add_argument("--link", action="store_true", help="symlink instead of copying when staging")
    pr.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out-json file or stage into a non-empty --stage-dataset folder",
    )
    pr.add_argument(
        "--generated-suffixes",
        dest="generated_suffixes",
        default="synthetic,generated",
        help="comma-separated name suffixes marking a generated video (default synthetic,generated): "
        "x_synthetic.mp4 pairs with the real x.mp4",
    )
    pr.add_argument("--compute", action="store_true", help="run the evaluation on the prepared dataset")
    pr.add_argument("--out", help="results directory for --compute")
    pr.add_argument("--quiet", action="store_true", help="no summary table")
    pr.add_argument("--no-report", dest="no_report", action="store_true", help="do not write report.html")
    add_run_options(pr)
    pr.set_defaults(func=cmd_prepare)


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
