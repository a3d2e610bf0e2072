"""Planning a run: which metrics, which backbones, which units, which requests, under which cache keys.

A *unit* is one video file on one side: the generated video of an entry, or a real video (each
distinct real file once, however many entries share it, so the real set counts it once). Every
metric states what it needs as ``FeatureRequest``s; requests with the same key are one computation
however many metrics share them. Each distinct backbone (name, options) is built and loaded once per
run; one that fails to load fails the metrics that need it, not the run.

A metric asks for a scorer's output exactly as for an extractor's (``FeatureRequest(role, "<scorer>",
sampler, side)``); the built class tells them apart. A scorer that reads features (``input="features"``)
adds an implicit request for its upstream extractor on the same sampler and side, keyed like any other,
so a metric asking for those features directly shares the one extraction. A scorer's output is cached
under its identity, its upstream's identity and a hash of the texts it read (the entry's prompt, ...).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigve.backbones.base import Backbone, Extractor, Scorer
from aigve.backbones.registry import build_extractor, get_extractor_class
from aigve.data.dataset import Dataset
from aigve.device import check_decode_device, check_precision, resolve_device
from aigve.engine.cache import feature_key
from aigve.errors import AigveError, MissingDependencyError, UsageError
from aigve.judges.base import CachedJudge, JudgeConfig, build_judge, no_judge_message
from aigve.metrics.base import FeatureRequest, Metric
from aigve.metrics.catalog import get_metric_class, missing_modules
from aigve.paths import file_sha256
from aigve.types import Entry, Side
from aigve.video.sampling import Window
from aigve.weights.places import weights_option_hint

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


@dataclass
class RunConfig:
    """Everything that shapes a run besides the dataset."""

    metrics: list[str]
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    window: Window = field(default_factory=Window)
    batch_size: int = 32
    device: str = "cpu"
    num_workers: int = 2  # decoding threads (0: decode in the main thread, no overlap with the model)
    #: videos decoded ahead of the model by the ``num_workers`` threads (None: one group of videos, see
    #: ``batch_videos``); each holds its decoded window, so this bounds the memory of prefetching
    prefetch: int | None = None
    #: frame extractors batch the frames of consecutive videos (up to 8) into full ``batch_size`` forward
    #: passes; False: one video per call (the rows are the same either way)
    batch_videos: bool = True
    #: a video whose decoded window the container says is larger than this (MiB) is streamed through the
    #: extractors in chunks instead of decoded whole (None: never); the values are the same either way
    stream_above_mib: float | None = 256.0
    stream_chunk_mib: float = 48.0  # decoded frames per streamed chunk: this many MiB (at least one frame)
    stream_prefetch: int = 2  # chunks decoded ahead of the extractors on a thread (0: none)
    #: the shared feature cache: a directory, or a URL string fsspec opens (``s3://bucket/prefix``; kept a
    #: string: ``Path`` folds its ``//``); None: a run-private cache (in out_dir if given), removed after the run
    cache_dir: Path | str | None = None
    out_dir: Path | None = None  # where the journal lives (needed for resume)
    resume: bool = False
    progress: bool = True
    seed: int = 0
    bootstrap: int = 1000  # resamples for the CIs of per-video aggregates (0 = none)
    set_bootstrap: int = 100  # resamples for set-level metrics (FID, KID, FVD) from cached features
    #: backbone name -> options applied to every request for that backbone, whichever metric makes it (e.g.
    #: ``{"fid_inception": {"weights": PATH}}`` for fid, kid and is); a metric's own option for a key wins
    backbone_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``fp32`` | ``bf16`` | ``fp16``: the neural backbones' forward passes (aigve.device.autocast)
    precision: str = "fp32"
    #: ``cpu`` | ``cuda`` | ``cuda:N``: where videos are decoded (aigve.video.gpu_decode; CPU fallback per video)
    decode_device: str = "cpu"
    #: the judge (a vision-language model) of the vl_understanding metrics; None: from the environment
    #: (``AIGVE_JUDGE``, ``AIGVE_JUDGE_MODEL``, ``OPENAI_BASE_URL``), else those metrics fail with the fix
    judge: JudgeConfig | None = None
    #: ``local`` (this process, ``aigve.engine.execute``) or ``ray`` (Ray Data, ``aigve.engine.ray_engine``);
    #: the results are the same, so neither this nor the ``ray_*`` settings enter the run's fingerprint
    engine: str = "local"
    #: ``--engine ray``: the cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); None starts a local Ray
    #: for the run (all cores and GPUs of this machine) and stops it afterwards
    ray_address: str | None = None
    #: model actors (each loads every backbone of the run once); None: one per GPU of the cluster when the
    #: workers run on CUDA, else one per two CPUs
    ray_workers: int | None = None
    #: GPUs each model actor reserves (None: 1 when the workers run on CUDA, else 0); a fraction packs several
    #: actors onto one GPU
    ray_gpus_per_worker: float | None = None
    ray_cpus_per_worker: float = 1.0  # CPUs (and torch threads) of each model actor
    ray_decode_cpus: float = 1.0  # CPUs of each decode task

    def fingerprint_dict(self) -> dict[str, Any]:
        fp: dict[str, Any] = {
            "metrics": self.metrics,
            "metric_options": self.metric_options,
            "window": self.window.to_dict(),
        }
        if self.backbone_options:  # only when given: journals written before the option still resume
            fp["backbone_options"] = self.backbone_options
        if self.precision != "fp32":  # likewise: an fp32 run resumes journals written before --precision
            fp["precision"] = self.precision
        if self.judge is not None:  # the judge's settings, never its key
            fp["judge"] = {k: v for k, v in self.judge.public().items() if k not in ("concurrency", "cache")}
        return fp


@dataclass
class _Unit:
    key: str  # "gen:<entry id>" or "real:<path>"
    side: Side
    path: Path
    entry: Entry


class _MetricSlot:
    """A metric instance plus everything the engine tracks about it during a run."""

    def __init__(self, metric: Metric | None, name: str, failure: str | None) -> None:
        self.metric = metric
        self.name = name
        self.failure = failure  # metric-level: the metric could not run at all
        self.requests: list[FeatureRequest] = []

    @property
    def spec(self):  # noqa: ANN201 - MetricSpec
        return get_metric_class(self.name).spec


class Planner:
    """The state of one run and its planning steps (``Engine`` adds aggregation and execution)."""

    def __init__(self, dataset: Dataset, config: RunConfig, progress: ProgressFn | None = None) -> None:
        self.dataset = dataset
        self.config = config
        self.progress = progress
        self.device = resolve_device(config.device)
        config.precision = check_precision(config.precision)
        config.decode_device = check_decode_device(config.decode_device)
        self.decode_fallbacks: list[str] = []  # videos --decode-device could not decode (CPU decoded them)
        self.timings: dict[str, float] = defaultdict(float)
        self.errors: list[dict[str, Any]] = []
        self.video_warnings: list[dict[str, Any]] = []  # videos scored despite a decoder warning
        self.no_prompt: dict[str, set[str]] = {}  # metric -> entry ids without a prompt
        self.slots: list[_MetricSlot] = []
        # every backbone built for this run (extractors and scorers), by (name, options)
        self.extractors: dict[tuple[Any, ...], Backbone] = {}
        self.extractor_failures: dict[tuple[Any, ...], str] = {}
        # scorer -> its upstream extractors by input name (one, "features", for most scorers)
        self.upstream_of: dict[tuple[Any, ...], dict[str, tuple[Any, ...]]] = {}
        # scorer request key -> the upstream requests (same sampler and side) by input name
        self.upstream: dict[tuple[Any, ...], dict[str, FeatureRequest]] = {}
        self._sha_memo: dict[str, str] = {}
        self.judge: CachedJudge | None = None  # the run's judge, built for the first judge scorer
        self._judge_failure: AigveError | None = None

    # ------------------------------------------------------------------ planning
    def _run_judge(self) -> CachedJudge:
        """The run's one judge (all judge metrics share it: a local VLM is loaded once); a missing or broken
        configuration raises ``AigveError`` naming the fix, which fails the judge metrics, not the run."""
        if self.judge is not None:
            return self.judge
        if self._judge_failure is not None:
            raise self._judge_failure
        cfg = (self.config.judge or JudgeConfig()).resolved()
        if cfg.backend is None or not cfg.model:
            self._judge_failure = AigveError(no_judge_message("the vl_understanding metrics"))
            raise self._judge_failure
        try:
            self.judge = build_judge(
                cfg,
                device=self.device,
                batch_size=self.config.batch_size,
                run_cache_dir=self.config.cache_dir,
                in_run=True,
            )
        except AigveError as exc:
            self._judge_failure = exc
            raise
        return self.judge

    def _build_metrics(self) -> None:
        for name in self.config.metrics:
            cls = get_metric_class(name)
            missing = missing_modules(cls.spec)
            if missing:
                err = MissingDependencyError(f"metric '{name}'", cls.spec.extra or "all", missing[0])
                self.slots.append(_MetricSlot(None, name, str(err)))
                continue
            opts = dict(self.config.metric_options.get(name, {}))
            metric = cls(**opts)  # UsageError for bad options propagates: exit code 2
            metric.run_window = self.config.window.to_dict()
            slot = _MetricSlot(metric, name, None)
            slot.requests = [self._effective(metric, r) for r in metric.requests()]
            self.slots.append(slot)

    def _effective(self, metric: Metric, req: FeatureRequest) -> FeatureRequest:
        """The request as the engine builds it: the run's backbone options for ``req.extractor``, then the
        request's own options and the metric's backbone options (an explicit metric option wins)."""
        opts = dict(self.config.backbone_options.get(req.extractor, {}))
        opts.update(req.options)
        opts.update(metric.extractor_options())
        return FeatureRequest(req.role, req.extractor, req.sampler, req.side, tuple(sorted(opts.items())))

    def _build_extractors(self) -> None:
        """Build and load every backbone the metrics ask for, each (name, options) once; a scorer reading
        features also gets its upstream extractor (built once too, and bound to it before it loads)."""
        for slot in self.slots:
            for req in slot.requests:
                self._build_backbone(req.extractor, req.options)
                ups = self.upstream_of.get(req.extractor_key)
                if ups:
                    self.upstream[req.key] = {
                        name: FeatureRequest(
                            f"upstream:{req.extractor}:{name}", uk[0], req.sampler, req.side, uk[1]
                        )
                        for name, uk in ups.items()
                    }
        for slot in self.slots:
            if slot.failure is None:
                for req in slot.requests:
                    if req.extractor_key in self.extractor_failures:
                        slot.failure = self.extractor_failures[req.extractor_key]
                        break
            if slot.failure is None and slot.metric is not None:
                # UsageError here (e.g. reference statistics made with other settings) stops the run
                slot.metric.bind({r.role: self._identity(r.extractor_key) for r in slot.requests})

    def _build_backbone(self, name: str, options: tuple[tuple[str, Any], ...]) -> Backbone | None:
        """The loaded backbone ``(name, options)`` of this run, or None when it failed (the reason is in
        ``extractor_failures``). An unknown name or bad options (``UsageError``) stop the run."""
        k = (name, options)
        if k in self.extractors or k in self.extractor_failures:
            return self.extractors.get(k)
        with weights_option_hint(_backbone_weights_hint(name)):
            return self._build_backbone_now(k)

    def _build_backbone_now(self, k: tuple[str, tuple[tuple[str, Any], ...]]) -> Backbone | None:
        name, options = k
        try:
            ext = build_extractor(
                name, device=self.device, batch_size=self.config.batch_size, **dict(options)
            )
            ext.set_precision(self.config.precision)  # also on a server worker's reused instance
            if getattr(ext, "needs_judge", False):
                ext.use_judge(self._run_judge())  # type: ignore[attr-defined]
            if isinstance(ext, Scorer) and ext.input == "features":
                ups = ext.upstreams()
                if not ups:
                    raise AigveError(f"scorer {name} reads features but names no upstream extractor")
                bound: dict[str, tuple[Any, ...]] = {}
                for input_name, (up_name, up_opts) in ups.items():
                    up_opts = {**self.config.backbone_options.get(up_name, {}), **up_opts}
                    up_key = (up_name, tuple(sorted(up_opts.items())))
                    upstream = self._build_backbone(*up_key)
                    if upstream is None:  # the scorer cannot run without it: same reason
                        self.extractor_failures[k] = self.extractor_failures[up_key]
                        return None
                    if not isinstance(upstream, Extractor):
                        raise AigveError(
                            f"scorer {name} reads the features of {up_name}, which is not an extractor"
                        )
                    ext.bind_upstream(upstream, input_name)
                    bound[input_name] = up_key
                self.upstream_of[k] = bound
            t0 = time.perf_counter()
            ext.ensure_loaded()
            self.timings[f"load:{name}"] += time.perf_counter() - t0
            self.extractors[k] = ext
            return ext
        except UsageError:
            raise
        except AigveError as exc:
            self.extractor_failures[k] = str(exc)
        except Exception as exc:  # a backbone that fails to load fails its metrics, not the run
            log.debug("extractor %s failed to load:\n%s", name, traceback.format_exc())
            self.extractor_failures[k] = f"{name} failed to load: {type(exc).__name__}: {exc}"
        return None

    def _identity(self, extractor_key: tuple[Any, ...]) -> dict[str, Any]:
        """A built backbone's identity; a scorer's carries its upstream extractor's identity too."""
        ext = self.extractors[extractor_key]
        if not isinstance(ext, Scorer):
            return ext.identity()
        ups = self.upstream_of.get(extractor_key) or {}
        idents = {name: self.extractors[uk].identity() for name, uk in ups.items()}
        upstream = idents.get("features") if list(idents) == ["features"] else (idents or None)
        return {**ext.identity(), "upstream": upstream}

    def _check_prompts(self) -> None:
        """Entries without a prompt, per metric that needs one: warned about before any work, whether or
        not the metric can run (a missing prompt should not surface only after the weights are fixed)."""
        lacking = [e.id for e in self.dataset.entries if not (e.prompt or "").strip()]
        if not lacking:
            return
        for slot in self.slots:
            if "prompt" in slot.spec.inputs:
                self.no_prompt[slot.name] = set(lacking)
                shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
                log.warning(
                    "%s needs a prompt for every video; %d of %d have none (%s): add them to the dataset "
                    "(prompt_gt in the annotation JSON, a prompt column in a manifest, or --prompts FILE)",
                    slot.name,
                    len(lacking),
                    len(self.dataset.entries),
                    shown,
                )

    def _units(self) -> list[_Unit]:
        needs_gen = any(r.side == "generated" for s in self.slots if s.failure is None for r in s.requests)
        needs_real = any(r.side == "real" for s in self.slots if s.failure is None for r in s.requests)
        units: list[_Unit] = []
        seen_real: set[str] = set()
        for e in self.dataset.entries:
            if needs_gen:
                units.append(_Unit(f"gen:{e.id}", "generated", e.generated, e))
            if needs_real and e.real is not None:
                rk = str(Path(e.real).resolve())
                if rk not in seen_real:
                    seen_real.add(rk)
                    units.append(_Unit(f"real:{rk}", "real", e.real, e))
        if needs_real:
            for p in self.dataset.extra_reals:
                rk = str(Path(p).resolve())
                if rk not in seen_real:
                    seen_real.add(rk)
                    units.append(
                        _Unit(f"real:{rk}", "real", p, Entry(id=f"real:{Path(p).name}", generated=p, real=p))
                    )
        return units

    def _requests_for(self, side: Side) -> dict[tuple[Any, ...], FeatureRequest]:
        out: dict[tuple[Any, ...], FeatureRequest] = {}
        for s in self.slots:
            if s.failure is None:
                for r in s.requests:
                    if r.side == side:
                        out.setdefault(r.key, r)
        return out

    # ------------------------------------------------------------------ per unit
    def _memory_video(self, path: Path) -> Any:
        """The in-memory video at ``path`` (:class:`aigve.data.memory.MemoryVideo`) when the dataset holds its
        videos in memory, else None (a file)."""
        store = getattr(self.dataset, "memory_videos", None)
        return store.get(path) if store is not None else None

    def _video_sha(self, path: Path) -> str:
        mem = self._memory_video(path)
        if mem is not None:
            return str(mem.sha)
        st = path.stat()
        memo = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if memo not in self._sha_memo:
            self._sha_memo[memo] = file_sha256(path)
        return self._sha_memo[memo]

    def _cache_key(self, sha: str, req: FeatureRequest, entry: Entry | None = None) -> str:
        """Where ``req``'s array of a video lives in the cache. A scorer's key also holds its upstream's
        identity and a hash of the texts of ``entry`` it reads, so a changed prompt misses only there."""
        ext = self.extractors[req.extractor_key]
        if not isinstance(ext, Scorer):
            return feature_key(sha, ext.identity(), req.sampler.id, self.config.window.id)
        texts, _ = scorer_texts(ext, entry)
        digest = hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()
        ident = {**self._identity(req.extractor_key), "texts": digest}
        return feature_key(sha, ident, req.sampler.id, self.config.window.id)

    def _warnings_key(self, sha: str) -> str:
        """Cache key of a video's decoder warnings under this run's window (a cache hit skips decoding)."""
        return feature_key(sha, {"decoder": "warnings", "version": 1}, "-", self.config.window.id)

    def _details_key(self, sha: str, req: FeatureRequest, entry: Entry | None) -> str:
        """Cache key of a scorer's per-video details (JSON text), beside its output's key."""
        return self._cache_key(sha, req, entry) + "-details"

    def _frame_size_key(self, sha: str) -> str:
        """Cache key of a video's decoded frame size ``[H, W]``: a cache hit still warns about small frames."""
        return feature_key(sha, {"decoder": "frame_size", "version": 1}, "-", self.config.window.id)


def _backbone_weights_hint(name: str) -> str | None:
    """``--backbone-option NAME.weights=PATH`` (and the API/server spelling) for a backbone that takes a
    ``weights`` option, None otherwise: the option that gives the file to every metric using the backbone."""
    try:
        cls = get_extractor_class(name)
    except Exception:  # an unknown name fails on build, with its own message
        return None
    takes = cls.weights_option == "weights" or "weights" in inspect.signature(cls.__init__).parameters
    if not takes:
        return None
    return (
        f"--backbone-option {name}.weights=PATH, for every metric on {name}; "
        f"Python and server: backbone_options={{'{name}': {{'weights': PATH}}}}"
    )


def _with_path(message: str, path: Path) -> str:
    """A per-video error names its video (metric/extractor errors often know only the frames)."""
    return message if str(path) in message else f"{path}: {message}"


def _no_prompt_message(entry_id: str, metric: str) -> str:
    return (
        f"entry '{entry_id}' has no prompt; {metric} needs one — add it to the dataset (prompt_gt in the "
        "annotation JSON, the prompt column of a manifest, or --prompts FILE for folders)"
    )


def _no_text_message(entry_id: str, metric: str, text: str) -> str:
    """A scorer's text is missing for an entry: the prompt, or another field of the dataset."""
    if text == "prompt":
        return _no_prompt_message(entry_id, metric)
    return (
        f"entry '{entry_id}' has no {text}; {metric} needs one — add a '{text}' field to the dataset "
        "(a key of the annotation JSON entries, or a column of the manifest)"
    )


def scorer_texts(scorer: Scorer, entry: Entry | None) -> tuple[dict[str, str], str | None]:
    """The texts ``scorer`` reads from ``entry`` (``"prompt"``: its prompt; any other name: that field of
    ``entry.extra``), and the name of the first one that is missing or empty (None when all are there)."""
    texts: dict[str, str] = {}
    for name in scorer.texts:
        if entry is None:
            return texts, name
        value = entry.prompt if name == "prompt" else entry.extra.get(name)
        if value is None or not str(value).strip():
            return texts, name
        texts[name] = str(value)
    return texts, None
