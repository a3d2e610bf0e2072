"""The Python API: ``evaluate`` is the one entry point the CLI, the server and users share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aigve import paths
from aigve.data.dataset import Dataset
from aigve.engine import ProgressFn, RunConfig, make_engine
from aigve.engine.cache import cache_location
from aigve.metrics.catalog import select_metrics
from aigve.results.records import Results
from aigve.video.sampling import Window


def evaluate(
    dataset: Dataset | str | Path | Any,
    metrics: list[str] | str | None = None,
    *,
    categories: list[str] | None = None,
    suite: str | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
    backbone_options: dict[str, dict[str, Any]] | None = None,
    max_len: int | None = None,
    max_seconds: float | None = None,
    fps: float | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    num_workers: int = 2,
    prefetch: int | None = None,
    batch_videos: bool = True,
    precision: str = "fp32",
    decode_device: str = "cpu",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    out_dir: str | Path | None = None,
    resume: bool = False,
    real_stats: str | Path | None = None,
    real_stats_backbone: str | None = None,
    bootstrap: int = 1000,
    set_bootstrap: int = 100,
    seed: int = 0,
    progress: ProgressFn | None = None,
    report: bool = True,
    video_dir: str | Path | None = None,
    prompts: str | Path | Sequence[str | None] | None = None,
    judge: Any = None,
    engine: str = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
    ray_gpus_per_worker: float | None = None,
) -> Results:
    """Evaluate a dataset (a ``Dataset``, a built-in name, an annotation JSON, a manifest or a folder), or
    videos in memory: a uint8 ``[B, T, H, W, 3]`` array or tensor, a list of ``[T, H, W, 3]`` ones, or a
    mapping id -> video, with ``prompts`` a list (one per video) and ``fps`` their frame rate (default 8);
    :func:`aigve.data.memory.memory_dataset` adds real videos and ids.

    Returns ``Results``: ``results.aggregates`` (per-metric values with provenance) and
    ``results.per_video`` (a pandas DataFrame, one row per video x metric output). With
    ``out_dir`` the result files are written there too (and the run can be resumed), plus
    ``report.html`` when ``report`` is true and the ``report`` extra is installed. ``video_dir`` and
    ``prompts`` apply when ``dataset`` is a path (as ``--video-dir`` / ``--prompts`` do on the CLI).
    ``backbone_options`` (backbone name -> options) apply to every metric using that backbone, e.g.
    ``{"fid_inception": {"weights": PATH}}`` for fid, kid and is (``--backbone-option`` on the CLI); a
    metric's own option for the same key (``metric_options``) wins for that metric. ``precision`` (``fp32``,
    ``bf16``, ``fp16``) runs the neural backbones under autocast (docs/precision.md); ``decode_device="cuda"``
    decodes on the GPU where torchcodec's CUDA decoder works, else on the CPU with a warning (docs/gpu-decode.md).
    ``judge`` configures the
    vision-language judge of the ``vl_understanding`` metrics (vqascore, ...): a ``JudgeConfig``, a mapping of
    its fields (``backend`` "endpoint" or "local", ``model``, ``base_url``, ``api_key``, ``concurrency``,
    ``timeout``, ``max_retries``, ``seed``, ``frames``, ``cache``, ``price``) or None for the environment
    (``AIGVE_JUDGE``, ``AIGVE_JUDGE_MODEL``, ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``); ``frames`` sets
    ``num_frames`` of every judge metric that has no option of its own (``--judge-frames``). ``engine="ray"``
    runs the videos on a Ray cluster (``ray_address``; None starts a local Ray for the run) with
    ``ray_workers`` model actors of ``ray_gpus_per_worker`` GPUs each (default: 1 when the workers run on
    CUDA), for the same results (docs/distributed.md; the ``distributed`` extra).

    Two small videos in a folder (a still one and one that turns brighter every other frame), scored for
    flicker without touching the feature cache:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from aigve import evaluate
    >>> from aigve.video.encode import write_video
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Path(tmp.name)
    >>> still = np.full((8, 32, 32, 3), 100, dtype=np.uint8)
    >>> blink = still.copy()
    >>> blink[1::2] = 160
    >>> _ = write_video(folder / "still.mp4", still, fps=8)
    >>> _ = write_video(folder / "blink.mp4", blink, fps=8)
    >>> res = evaluate(folder, metrics="flicker", use_cache=False, bootstrap=0)
    >>> res.wide()["flicker"].round(-1).to_dict()  # mean |frame difference| per video, 0-255
    {'blink': 60.0, 'still': 0.0}
    >>> res.aggregates["flicker"].outputs["flicker"].n  # the aggregate is the mean over both videos
    2
    >>> tmp.cleanup()

    ``evaluate("demo", suite="offline")`` runs the offline suite on the built-in demo dataset.
    """
    from aigve.data.dataset import load_dataset
    from aigve.errors import UsageError

    for name, value, least in (
        ("batch_size", batch_size, 1),
        ("num_workers", num_workers, 0),
        ("prefetch", 1 if prefetch is None else prefetch, 0),
        ("bootstrap", bootstrap, 0),
        ("set_bootstrap", set_bootstrap, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise UsageError(f"{name} must be an integer >= {least} (got {value!r})")
    if isinstance(dataset, Dataset):
        if video_dir is not None or prompts is not None:
            raise UsageError("video_dir / prompts apply to a dataset given by path, not to a Dataset object")
        ds = dataset
    elif not isinstance(dataset, str | Path):  # in-memory videos (arrays / tensors): aigve.data.memory
        from aigve.data.memory import memory_dataset

        if isinstance(prompts, str | Path) or video_dir is not None:
            raise UsageError(
                "for in-memory videos give prompts as a list (one per video); video_dir does not apply"
            )
        ds = memory_dataset(dataset, prompts=prompts, fps=fps or 8.0)
    else:
        ds = load_dataset(dataset, video_dir=video_dir, prompts=prompts)
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names = select_metrics(metrics, categories, suite)
    from aigve.judges.base import JudgeConfig

    judge_config = JudgeConfig.from_any(judge)
    metric_options = apply_judge_frames(names, metric_options, judge_config)
    if use_cache:
        cdir: Path | str | None = cache_location(cache_dir) if cache_dir else paths.cache_dir()
    else:
        cdir = None
    config = RunConfig(
        metrics=names,
        metric_options={k: dict(v) for k, v in (metric_options or {}).items()},
        backbone_options=_check_backbone_options(backbone_options),
        window=Window(max_len=max_len, max_seconds=max_seconds, fps_fallback=fps),
        batch_size=batch_size,
        device=device,
        num_workers=num_workers,
        prefetch=prefetch,
        batch_videos=bool(batch_videos),
        precision=precision,
        decode_device=decode_device,
        cache_dir=cdir,
        out_dir=Path(out_dir) if out_dir else None,
        resume=resume,
        bootstrap=bootstrap,
        set_bootstrap=set_bootstrap,
        seed=seed,
        judge=judge_config,
        engine=engine,
        ray_address=ray_address,
        ray_workers=ray_workers,
        ray_gpus_per_worker=ray_gpus_per_worker,
    )
    if real_stats is not None:
        _assign_real_stats(str(real_stats), names, config.metric_options, real_stats_backbone)
    elif real_stats_backbone is not None:
        raise UsageError(
            "real_stats_backbone (--real-stats-backbone) declares the network of --real-stats FILE"
        )
    unknown = set(config.metric_options) - set(names)
    if unknown:
        from aigve.errors import UsageError

        raise UsageError(f"options given for metric(s) not in this run: {sorted(unknown)}")
    results = make_engine(ds, config, progress=progress).run()
    if out_dir is not None:
        from aigve.results.writers import write_results

        write_results(results, out_dir)
        if report:
            _write_report(results, Path(out_dir))
    return results


def apply_judge_frames(
    names: list[str], metric_options: dict[str, dict[str, Any]] | None, judge: Any
) -> dict[str, dict[str, Any]]:
    """``metric_options`` with the judge's ``frames`` as ``num_frames`` of each judge metric in ``names``
    (``vl_understanding`` family) that has no ``num_frames`` of its own."""
    from aigve.metrics.catalog import get_metric_class

    out = {k: dict(v) for k, v in (metric_options or {}).items()}
    frames = getattr(judge, "frames", None)
    if frames is None:
        return out
    for name in names:
        if get_metric_class(name).spec.family == "vl_understanding":
            out.setdefault(name, {}).setdefault("num_frames", int(frames))
    return out


def _write_report(results: Results, out_dir: Path) -> None:
    """The HTML report beside the result files, when the ``report`` extra is installed."""
    import importlib.util
    import logging

    if importlib.util.find_spec("matplotlib") is None or importlib.util.find_spec("jinja2") is None:
        logging.getLogger(__name__).info("no HTML report: pip install 'aigve[report]'")
        return
    from aigve.report.html import write_run_report

    try:
        write_run_report(results, out_dir)
    except Exception as exc:  # the report must never cost the user their results
        logging.getLogger(__name__).warning("could not write the HTML report: %s", exc)


def _check_backbone_options(options: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """A copy of ``backbone_options``; an unknown backbone name or a non-mapping value is a ``UsageError``."""
    from aigve.backbones.registry import get_extractor_class
    from aigve.errors import UsageError

    out: dict[str, dict[str, Any]] = {}
    for name, opts in (options or {}).items():
        if not isinstance(opts, dict):
            raise UsageError(
                f"backbone_options['{name}'] must be a mapping of options, got {type(opts).__name__}"
            )
        get_extractor_class(name)  # UsageError naming the unknown backbone
        out[str(name)] = dict(opts)
    return out


def _assign_real_stats(
    value: str, names: list[str], metric_options: dict[str, dict[str, Any]], backbone: str | None = None
) -> None:
    """``--real-stats [NAME=]PATH``: reference statistics for the one set metric that takes them;
    ``backbone`` (``--real-stats-backbone``): the network a file of another tool was made with, by the
    user's word (checked against the metric's backbone, recorded as a claim)."""
    from aigve.errors import UsageError
    from aigve.metrics.base import supports_reference_stats
    from aigve.metrics.catalog import get_metric_class

    takers = [n for n in names if supports_reference_stats(get_metric_class(n))]
    if "=" in value and not Path(value).exists():
        name, path = value.split("=", 1)
        if name not in takers:
            raise UsageError(
                f"--real-stats {value}: '{name}' is not a metric of this run that takes reference statistics"
            )
    else:
        if len(takers) != 1:
            raise UsageError(
                f"--real-stats {value}: {'no metric' if not takers else 'several metrics'} of this run take reference "
                f"statistics ({', '.join(takers) or 'none'}); write --real-stats NAME=PATH"
            )
        name, path = takers[0], value
    metric_options.setdefault(name, {})["real_stats"] = path
    if backbone is not None:
        metric_options[name]["real_stats_backbone"] = backbone
