"""Metrics on tensors: every catalogue metric as an object with ``update`` / ``compute`` / ``reset`` / ``merge``,
for training loops and notebooks — no files, no command line.

>>> from aigve.metrics import Flicker  # doctest: +SKIP

``update(videos, prompts=None, real=None)`` takes uint8 ``[B, T, H, W, 3]`` numpy arrays or torch tensors (CPU
or CUDA; a list of ``[T, H, W, 3]`` videos of different sizes works too) and extracts their features at once;
only the features are kept, never the frames. ``compute()`` returns the :class:`~aigve.results.records.
MetricAggregate` an ``aigve run`` gives for the metric (value, CI where computable, provenance);
``results()`` the whole :class:`~aigve.results.records.Results` (per-video values included).

One implementation. ``update`` runs the engine's own stages on the batch (:meth:`Engine._prepare`,
``_extract_group``, ``_extract``, ``_run_scorers``: the same samplers, backbones, batching and per-video errors)
and keeps their outputs in an in-memory feature cache keyed exactly as the engine keys its disk cache.
``compute`` is an engine run (:meth:`Engine.run`) over every video seen, whose features all come from that
cache: the per-video scores, set statistics, bootstrap CIs, diagnostics and provenance are the engine's.

State, merge and DDP. The state is the videos' ids, prompts, hashes and per-video features (for set metrics
the bootstrap CI needs them; their memory is ``O(videos x feature size)``). ``merge(other)`` adds another
object's videos; under ``torch.distributed`` ``compute()`` gathers every rank's state with
``all_gather_object`` first (every rank then returns the same result), so ids must be unique across ranks:
the default ids carry the rank. With NCCL, set the rank's CUDA device (``torch.cuda.set_device``) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from aigve.data.memory import MemoryDataset, MemoryVideo, MemoryVideos, memory_dataset
from aigve.engine.cache import FeatureCache
from aigve.engine.execute import Engine, _chunks
from aigve.engine.plan import RunConfig
from aigve.errors import AigveError, UsageError
from aigve.results.records import MetricAggregate, Results
from aigve.types import Entry
from aigve.video.sampling import Window


class MemoryCache(FeatureCache):
    """The engine's feature cache, held in a dict (no files): the state of a tensor metric."""

    def __init__(self, store: dict[str, np.ndarray] | None = None) -> None:
        self._tmp = True
        self.root = Path("<memory>")
        self.dir = self.root / "features"
        self.hits = 0
        self.misses = 0
        self.store: dict[str, np.ndarray] = {} if store is None else store

    def get(self, key: str, count: bool = True) -> np.ndarray | None:
        arr = self.store.get(key)
        if count:
            if arr is None:
                self.misses += 1
            else:
                self.hits += 1
        return arr

    def put(self, key: str, arr: np.ndarray) -> None:
        self.store[key] = np.array(arr, copy=True)

    def close(self) -> None:
        pass


class _MemoryEngine(Engine):
    """The engine with its feature cache in memory (a tensor metric's state)."""

    memory_cache: MemoryCache

    def _open_cache(self) -> FeatureCache:
        return self.memory_cache


@dataclass
class MetricState:
    """What a tensor metric has accumulated: its entries, extra real videos, their hashes (frames dropped)
    and their features by cache key. Picklable: this is what DDP gathers."""

    entries: list[Entry] = field(default_factory=list)
    extra_reals: list[Path] = field(default_factory=list)
    videos: dict[str, MemoryVideo] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def merge(self, other: MetricState) -> None:
        mine = {e.id for e in self.entries}
        dup = [e.id for e in other.entries if e.id in mine]
        if dup:
            raise UsageError(
                f"cannot merge: video id(s) {dup[:5]} are in both states — give each video a distinct id "
                "(update(..., ids=...)); the default ids carry the DDP rank"
            )
        self.entries.extend(other.entries)
        self.extra_reals.extend(other.extra_reals)
        self.videos.update(other.videos)
        self.features.update(other.features)

    @property
    def n_videos(self) -> int:
        return len(self.entries) + len(self.extra_reals)


def _dist_info() -> tuple[int, int]:
    """(rank, world size) of an initialised ``torch.distributed`` group, else (0, 1)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return 0, 1


class _TensorMetricBase:
    """Shared by :class:`TensorMetric` (one metric) and :class:`TensorMetrics` (several sharing backbones)."""

    def __init__(
        self,
        metrics: Sequence[str],
        metric_options: dict[str, dict[str, Any]] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        fps: float = 8.0,
        max_len: int | None = None,
        max_seconds: float | None = None,
        bootstrap: int = 1000,
        set_bootstrap: int = 100,
        seed: int = 0,
        backbone_options: dict[str, dict[str, Any]] | None = None,
        sync_on_compute: bool = True,
        judge: Any = None,
    ) -> None:
        from aigve.api import _check_backbone_options, apply_judge_frames
        from aigve.judges.base import JudgeConfig
        from aigve.metrics.catalog import get_metric_class, select_metrics

        names = select_metrics(list(metrics))
        opts = {k: dict(v) for k, v in (metric_options or {}).items()}
        unknown = set(opts) - set(names)
        if unknown:
            raise UsageError(f"options given for metric(s) not measured here: {sorted(unknown)}")
        for name in names:  # bad options fail here, before any model loads
            get_metric_class(name)(**opts.get(name, {}))
        if not fps or fps <= 0:
            raise UsageError(f"fps must be > 0, got {fps!r}")
        self.fps = float(fps)
        self.sync_on_compute = sync_on_compute
        judge_config = JudgeConfig.from_any(judge)
        opts = apply_judge_frames(names, opts, judge_config)
        self.config = RunConfig(
            metrics=names,
            metric_options=opts,
            judge=judge_config,
            backbone_options=_check_backbone_options(backbone_options),
            window=Window(max_len=max_len, max_seconds=max_seconds),
            batch_size=int(batch_size),
            device=device,
            cache_dir=None,
            progress=False,
            bootstrap=int(bootstrap),
            set_bootstrap=int(set_bootstrap),
            seed=int(seed),
        )
        self._engine: _MemoryEngine | None = None
        self.state = MetricState()

    # -- the engine ------------------------------------------------------------------------------
    def _new_engine(self, dataset: MemoryDataset, cache: MemoryCache) -> _MemoryEngine:
        eng = _MemoryEngine(dataset, self.config)
        eng.memory_cache = cache
        if self._engine is not None:  # backbones are loaded once per object, shared by every run
            eng.extractors = self._engine.extractors
            eng.extractor_failures = self._engine.extractor_failures
            eng.upstream_of = self._engine.upstream_of
        return eng

    def _extraction_engine(self) -> _MemoryEngine:
        """An engine planned once (metrics, backbones loaded) that ``update`` feeds batch after batch."""
        if self._engine is None:
            eng = self._new_engine(MemoryDataset(name="in-memory", entries=[]), MemoryCache())
            eng._build_metrics()
            eng._build_extractors()
            failed = [f"{slot.name}: {slot.failure}" for slot in eng.slots if slot.failure]
            if failed:  # in a training loop, say it at the first batch, not after the epoch
                raise AigveError("cannot run " + "; ".join(failed))
            self._engine = eng
        return self._engine

    # -- the torchmetrics contract -----------------------------------------------------------------
    def update(
        self,
        videos: Any = None,
        prompts: Sequence[str | None] | None = None,
        real: Any = None,
        *,
        ids: Sequence[str] | None = None,
        fps: float | None = None,
    ) -> None:
        """Extract the features of a batch: ``videos`` uint8 ``[B, T, H, W, 3]`` (array or tensor, CPU or CUDA;
        or a list / an id -> video mapping), ``prompts`` one per video for metrics that read them, ``real``
        videos: as many as ``videos`` pairs them, any other number adds them to the real set (FID, FVD, KID)."""
        rank, world = _dist_info()
        prefix = f"rank{rank}_video_" if world > 1 else "video_"
        ds = memory_dataset(
            videos,
            ids=ids,
            prompts=prompts,
            real=real,
            fps=fps or self.fps,
            id_prefix=prefix,
            start=len(self.state.entries),
            name="in-memory",
        )
        known = {e.id for e in self.state.entries}
        dup = [e.id for e in ds.entries if e.id in known]
        if dup:
            raise UsageError(f"video id(s) {dup[:5]} were already added to this metric: ids must be unique")
        eng = self._extraction_engine()
        cache = MemoryCache(self.state.features)
        eng.dataset = ds
        eng.memory_cache = cache
        units = eng._units()
        group = max(1, min(8, self.config.batch_size)) if eng._batches_across_videos() else 1
        for chunk in _chunks(eng._iter_prepared(units, cache, set()), group):  # as Engine.run does
            if len(chunk) > 1:
                eng._extract_group(chunk, cache)
            errs = [eng._extract(p, cache) for p in chunk]
            eng._run_scorers(chunk, errs, cache)
            for prep, err in zip(chunk, errs, strict=True):
                mem = ds.memory_videos.get(prep.unit.path)
                if mem is not None:
                    mem.error = prep.error or next(iter(err.values()), None)
                prep.clip = None
        for mem in ds.memory_videos.videos.values():
            mem.frames = None  # only features are kept
        self.state.entries.extend(ds.entries)
        self.state.extra_reals.extend(ds.extra_reals)
        self.state.videos.update(ds.memory_videos.videos)

    def reset(self) -> None:
        """Forget every video (loaded backbones stay loaded)."""
        self.state = MetricState()

    def _signature(self) -> tuple[Any, ...]:
        c = self.config
        return (c.fingerprint_dict(), c.backbone_options, c.bootstrap, c.set_bootstrap, c.seed)

    def merge(self, other: _TensorMetricBase) -> None:
        """Add the videos of ``other`` (the same metrics and options; e.g. another worker's)."""
        if type(other) is not type(self) or other._signature() != self._signature():
            raise UsageError("merge: the other object measures other metrics or uses other options")
        self.state.merge(other.state)

    def synced_state(self) -> MetricState:
        """This object's state, or every rank's merged in rank order under ``torch.distributed``."""
        rank, world = _dist_info()
        if world == 1 or not self.sync_on_compute:
            return self.state
        import torch.distributed as dist

        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, self.state)
        merged = MetricState()
        for st in gathered:
            merged.merge(st)
        return merged

    def results(self) -> Results:
        """An engine run over every video seen (features from the state): what ``aigve.evaluate`` returns."""
        state = self.synced_state()
        if state.n_videos == 0:
            raise UsageError("compute() before any update(): no videos")
        ds = MemoryDataset(
            name="in-memory",
            entries=list(state.entries),
            extra_reals=list(state.extra_reals),
            source="memory",
            memory_videos=MemoryVideos(videos=dict(state.videos)),
        )
        eng = self._new_engine(ds, MemoryCache(dict(state.features)))
        return eng.run()


class TensorMetrics(_TensorMetricBase):
    """Several catalogue metrics at once, sharing backbones and decoding as a run does:
    ``TensorMetrics(["fid", "kid"], metric_options={"fid": {...}})``; ``compute()`` gives name -> aggregate."""

    def __init__(
        self, metrics: Sequence[str] | str, metric_options: dict[str, dict[str, Any]] | None = None, **kw: Any
    ) -> None:
        names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
        super().__init__(names, metric_options, **kw)

    def compute(self) -> dict[str, MetricAggregate]:
        return self.results().aggregates


class TensorMetric(_TensorMetricBase):
    """One catalogue metric on tensors. Subclasses name it (``FID``, ``CLIPSim``, ...); metric options are
    keyword arguments (``FID(backbone="efficientnet_lite0", frames=4)``), or ``options={...}`` for a name that
    is also an engine argument (``KID(options={"seed": 1})``)."""

    metric: ClassVar[str] = ""

    def __init__(
        self,
        *,
        options: dict[str, Any] | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        fps: float = 8.0,
        max_len: int | None = None,
        max_seconds: float | None = None,
        bootstrap: int = 1000,
        set_bootstrap: int = 100,
        seed: int = 0,
        backbone_options: dict[str, dict[str, Any]] | None = None,
        sync_on_compute: bool = True,
        judge: Any = None,
        **metric_options: Any,
    ) -> None:
        if not self.metric:
            raise UsageError("TensorMetric is abstract: use a metric's class (aigve.metrics.FID, ...)")
        opts = {**(options or {}), **metric_options}
        super().__init__(
            [self.metric],
            {self.metric: opts} if opts else None,
            device=device,
            batch_size=batch_size,
            fps=fps,
            max_len=max_len,
            max_seconds=max_seconds,
            bootstrap=bootstrap,
            set_bootstrap=set_bootstrap,
            seed=seed,
            backbone_options=backbone_options,
            sync_on_compute=sync_on_compute,
            judge=judge,
        )

    def compute(self) -> MetricAggregate:
        """The metric's aggregate over every video seen (value, CI where computable, provenance)."""
        return self.results().aggregates[self.metric]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(videos={self.state.n_videos})"


class FID(TensorMetric):
    """``fid`` on tensors: Fréchet Inception Distance between the real and generated frame sets (the catalogue row: ``aigve list-metrics``)."""

    metric = "fid"


class FVD(TensorMetric):
    """``fvd`` on tensors: Fréchet Video Distance on I3D (Kinetics-400) logits (the catalogue row: ``aigve list-metrics``)."""

    metric = "fvd"


class FVDVideoMAE(TensorMetric):
    """``fvd_videomae`` on tensors: content-debiased FVD on VideoMAE-v2 features (the catalogue row: ``aigve list-metrics``)."""

    metric = "fvd_videomae"


class InceptionScore(TensorMetric):
    """``is`` on tensors: Inception Score of the generated frames (the catalogue row: ``aigve list-metrics``)."""

    metric = "is"


class KID(TensorMetric):
    """``kid`` on tensors: Kernel Inception Distance between the real and generated frame sets (the catalogue row: ``aigve list-metrics``)."""

    metric = "kid"


class DOVER(TensorMetric):
    """``dover`` on tensors: DOVER technical and aesthetic video quality (the catalogue row: ``aigve list-metrics``)."""

    metric = "dover"


class GSTVQA(TensorMetric):
    """``gstvqa`` on tensors: GSTVQA no-reference video quality (the catalogue row: ``aigve list-metrics``)."""

    metric = "gstvqa"


class SimpleVQA(TensorMetric):
    """``simplevqa`` on tensors: SimpleVQA no-reference video quality (the catalogue row: ``aigve list-metrics``)."""

    metric = "simplevqa"


class BLIPSim(TensorMetric):
    """``blipsim`` on tensors: BLIP text-video similarity (the catalogue row: ``aigve list-metrics``)."""

    metric = "blipsim"


class CLIPSim(TensorMetric):
    """``clipsim`` on tensors: CLIP text-video similarity (the catalogue row: ``aigve list-metrics``)."""

    metric = "clipsim"


class CLIPTemp(TensorMetric):
    """``cliptemp`` on tensors: CLIP temporal consistency of consecutive frames (the catalogue row: ``aigve list-metrics``)."""

    metric = "cliptemp"


class PickScore(TensorMetric):
    """``pickscore`` on tensors: PickScore text-video preference (the catalogue row: ``aigve list-metrics``)."""

    metric = "pickscore"


class BlurEffect(TensorMetric):
    """``blur_effect`` on tensors: blur effect (no-reference sharpness) (the catalogue row: ``aigve list-metrics``)."""

    metric = "blur_effect"


class Flicker(TensorMetric):
    """``flicker`` on tensors: mean absolute difference of consecutive frames (the catalogue row: ``aigve list-metrics``)."""

    metric = "flicker"


class FrameConsistency(TensorMetric):
    """``frame_consistency`` on tensors: similarity of consecutive frames' features (the catalogue row: ``aigve list-metrics``)."""

    metric = "frame_consistency"


class Freeze(TensorMetric):
    """``freeze`` on tensors: share of frozen (repeated) frames (the catalogue row: ``aigve list-metrics``)."""

    metric = "freeze"


class Motion(TensorMetric):
    """``motion`` on tensors: optical-flow motion magnitude (the catalogue row: ``aigve list-metrics``)."""

    metric = "motion"


class NIQE(TensorMetric):
    """``niqe`` on tensors: NIQE natural image quality (the catalogue row: ``aigve list-metrics``)."""

    metric = "niqe"


class LightVQA(TensorMetric):
    """``lightvqa`` on tensors: Light-VQA no-reference quality (the catalogue row: ``aigve list-metrics``)."""

    metric = "lightvqa"


class VideoScore(TensorMetric):
    """``videoscore`` on tensors: VideoScore-v1.1's five aspects; needs ``prompts`` (``aigve list-metrics``)."""

    metric = "videoscore"


class VideoPhy(TensorMetric):
    """``videophy`` on tensors: VideoCon-Physics P(yes) for semantic adherence and physical commonsense; needs
    ``prompts`` (``aigve list-metrics``)."""

    metric = "videophy"


class VQAScore(TensorMetric):
    """``vqascore`` on tensors: a VLM judge's P("Yes") that each sampled frame shows the prompt; give the judge
    with ``judge={"backend": ..., "model": ...}`` (the catalogue row: ``aigve list-metrics``)."""

    metric = "vqascore"


class VIEScore(TensorMetric):
    """``viescore`` on tensors: VIEScore t2v (semantic consistency, perceptual quality, 0-10) by a VLM judge."""

    metric = "viescore"


class TIFA(TensorMetric):
    """``tifa`` on tensors: accuracy of a VLM judge on questions generated from the prompt."""

    metric = "tifa"


class DSG(TensorMetric):
    """``dsg`` on tensors: a VLM judge's yes-rate on the prompt's Davidsonian scene-graph questions."""

    metric = "dsg"


class VBenchAestheticQuality(TensorMetric):
    """``vbench_aesthetic_quality`` on tensors: VBench's aesthetic quality dimension (``aigve list-metrics``)."""

    metric = "vbench_aesthetic_quality"


class VBenchAppearanceStyle(TensorMetric):
    """``vbench_appearance_style`` on tensors: VBench's appearance style dimension (``aigve list-metrics``)."""

    metric = "vbench_appearance_style"


class VBenchBackgroundConsistency(TensorMetric):
    """``vbench_background_consistency`` on tensors: VBench's background consistency dimension (``aigve list-metrics``)."""

    metric = "vbench_background_consistency"


class VBenchDynamicDegree(TensorMetric):
    """``vbench_dynamic_degree`` on tensors: VBench's dynamic degree dimension (``aigve list-metrics``)."""

    metric = "vbench_dynamic_degree"


class VBenchHumanAction(TensorMetric):
    """``vbench_human_action`` on tensors: VBench's human action dimension; needs ``prompts`` (``aigve list-metrics``)."""

    metric = "vbench_human_action"


class VBenchMotionSmoothness(TensorMetric):
    """``vbench_motion_smoothness`` on tensors: VBench's motion smoothness dimension (``aigve list-metrics``)."""

    metric = "vbench_motion_smoothness"


class VBenchOverallConsistency(TensorMetric):
    """``vbench_overall_consistency`` on tensors: VBench's overall consistency dimension; needs ``prompts`` (``aigve list-metrics``)."""

    metric = "vbench_overall_consistency"


class VBenchSubjectConsistency(TensorMetric):
    """``vbench_subject_consistency`` on tensors: VBench's subject consistency dimension (``aigve list-metrics``)."""

    metric = "vbench_subject_consistency"


class VBenchTemporalFlickering(TensorMetric):
    """``vbench_temporal_flickering`` on tensors: VBench's temporal flickering dimension (``aigve list-metrics``)."""

    metric = "vbench_temporal_flickering"


class VBenchTemporalStyle(TensorMetric):
    """``vbench_temporal_style`` on tensors: VBench's temporal style dimension; needs ``prompts`` (``aigve list-metrics``)."""

    metric = "vbench_temporal_style"


#: class name -> catalogue name, one class per built-in metric above (a test keeps it equal to the catalogue);
#: adding a metric's class here is all ``from aigve.metrics import Name`` needs
CLASS_NAMES: dict[str, str] = {
    cls.__name__: cls.metric for cls in TensorMetric.__subclasses__() if cls.__module__ == __name__
}


def _made_class(name: str) -> type[TensorMetric]:
    class_name = "".join(p.capitalize() for p in name.split("_"))
    return type(class_name, (TensorMetric,), {"metric": name, "__module__": __name__})


def tensor_metric_class(name: str) -> type[TensorMetric]:
    """The tensor class of catalogue metric ``name`` (a plugin metric gets one made on the fly)."""
    from aigve.metrics.catalog import get_metric_class

    get_metric_class(name)  # UsageError for an unknown name
    for cls_name, metric in CLASS_NAMES.items():
        if metric == name:
            return globals()[cls_name]
    return _made_class(name)
