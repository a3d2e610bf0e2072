"""The local executor: plan -> decode once -> extract once -> score -> results.

A *unit* is one video file on one side: the generated video of an entry, or a real video (each
distinct real file once, however many entries share it, so the real set counts it once). For each
unit the engine looks up every feature it needs in the cache, decodes the video only if something
is missing, runs each extractor once, and hands the arrays to every metric that asked for them.
Per-unit outcomes go to an append-only journal, which is what ``--resume`` reads.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigve import __version__
from aigve.backbones.base import Extractor
from aigve.backbones.registry import build_extractor
from aigve.data.dataset import Dataset
from aigve.device import device_summary, resolve_device
from aigve.engine.journal import Journal, run_fingerprint
from aigve.errors import AigveError, MissingDependencyError, UsageError
from aigve.features.cache import FeatureCache, feature_key, file_sha256
from aigve.metrics.base import FeatureRequest, Metric, SetMetric, VideoMetric
from aigve.metrics.catalog import get_metric_class, missing_modules
from aigve.results.records import MetricAggregate, OutputValue, Results, finite_mean
from aigve.results.writers import json_safe
from aigve.types import Clip, Entry, Side, VideoRecord
from aigve.video.sampling import Window

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
    num_workers: int = 0
    cache_dir: Path | None = None  # None: a run-private cache (in out_dir if given), removed after the run
    out_dir: Path | None = None  # where the journal lives (needed for resume)
    resume: bool = False
    progress: bool = True
    seed: int = 0
    bootstrap: int = 1000  # resamples for the CIs of per-video aggregates (0 = none)
    set_bootstrap: int = 100  # resamples for set-level metrics (FID, KID, FVD) from cached features

    def fingerprint_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "metric_options": self.metric_options,
            "window": self.window.to_dict(),
        }


@dataclass
class _Unit:
    key: str  # "gen:<entry id>" or "real:<path>"
    side: Side
    path: Path
    entry: Entry


@dataclass
class _Prepared:
    """What a worker thread prepares for a unit: hash, cached arrays, and a decoded clip if needed."""

    unit: _Unit
    video_sha: str | None = None
    feats: dict[tuple[Any, ...], np.ndarray] = field(default_factory=dict)
    clip: Clip | None = None
    error: str | None = None
    decode_seconds: float = 0.0
    warnings: tuple[str, ...] = ()  # decoder warnings (e.g. truncated), also kept in the cache

    @property
    def warning(self) -> str | None:
        if not self.warnings:
            return None
        return f"{self.unit.path}: " + "; ".join(self.warnings)


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


class Engine:
    """Runs a set of metrics over a dataset. ``run()`` returns ``Results``."""

    def __init__(self, dataset: Dataset, config: RunConfig, progress: ProgressFn | None = None) -> None:
        self.dataset = dataset
        self.config = config
        self.progress = progress
        self.device = resolve_device(config.device)
        self.timings: dict[str, float] = defaultdict(float)
        self.errors: list[dict[str, Any]] = []
        self.video_warnings: list[dict[str, Any]] = []  # videos scored despite a decoder warning
        self.no_prompt: dict[str, set[str]] = {}  # metric -> entry ids without a prompt
        self.slots: list[_MetricSlot] = []
        self.extractors: dict[tuple[Any, ...], Extractor] = {}
        self.extractor_failures: dict[tuple[Any, ...], str] = {}
        self._sha_memo: dict[str, str] = {}

    # ------------------------------------------------------------------ planning
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

    @staticmethod
    def _effective(metric: Metric, req: FeatureRequest) -> FeatureRequest:
        opts = dict(req.options)
        opts.update(metric.extractor_options())
        return FeatureRequest(req.role, req.extractor, req.sampler, req.side, tuple(sorted(opts.items())))

    def _build_extractors(self) -> None:
        for slot in self.slots:
            for req in slot.requests:
                k = req.extractor_key
                if k in self.extractors or k in self.extractor_failures:
                    continue
                try:
                    ext = build_extractor(
                        req.extractor,
                        device=self.device,
                        batch_size=self.config.batch_size,
                        **dict(req.options),
                    )
                    t0 = time.perf_counter()
                    ext.ensure_loaded()
                    self.timings[f"load:{req.extractor}"] += time.perf_counter() - t0
                    self.extractors[k] = ext
                except UsageError:
                    raise
                except AigveError as exc:
                    self.extractor_failures[k] = str(exc)
                except Exception as exc:  # a backbone that fails to load fails its metrics, not the run
                    log.debug("extractor %s failed to load:\n%s", req.extractor, traceback.format_exc())
                    self.extractor_failures[k] = (
                        f"{req.extractor} failed to load: {type(exc).__name__}: {exc}"
                    )
        for slot in self.slots:
            if slot.failure is None:
                for req in slot.requests:
                    if req.extractor_key in self.extractor_failures:
                        slot.failure = self.extractor_failures[req.extractor_key]
                        break
            if slot.failure is None and slot.metric is not None:
                # UsageError here (e.g. reference statistics made with other settings) stops the run
                slot.metric.bind({r.role: self.extractors[r.extractor_key].identity() for r in slot.requests})

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
    def _video_sha(self, path: Path) -> str:
        st = path.stat()
        memo = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if memo not in self._sha_memo:
            self._sha_memo[memo] = file_sha256(path)
        return self._sha_memo[memo]

    def _cache_key(self, sha: str, req: FeatureRequest) -> str:
        ext = self.extractors[req.extractor_key]
        return feature_key(sha, ext.identity(), req.sampler.id, self.config.window.id)

    def _warnings_key(self, sha: str) -> str:
        """Cache key of a video's decoder warnings under this run's window (a cache hit skips decoding)."""
        return feature_key(sha, {"decoder": "warnings", "version": 1}, "-", self.config.window.id)

    def _prepare(self, unit: _Unit, cache: FeatureCache, force_decode: bool = False) -> _Prepared:
        """Worker-thread part: hash, cache lookups, and one decode if anything is missing."""
        from aigve.video.decode import check_file, decode_video

        prep = _Prepared(unit)
        path = Path(unit.path)
        try:
            check_file(path)  # missing, directory, empty: named before anything opens the file
            prep.video_sha = self._video_sha(path)
            missing = False
            for key, req in self._requests_for(unit.side).items():
                arr = cache.get(self._cache_key(prep.video_sha, req))
                if arr is None:
                    missing = True
                else:
                    prep.feats[key] = arr
            if missing or force_decode:
                t0 = time.perf_counter()
                prep.clip = decode_video(path, self.config.window)
                prep.decode_seconds = time.perf_counter() - t0
                prep.warnings = tuple(prep.clip.info.warnings)
                cache.put(self._warnings_key(prep.video_sha), np.array(prep.warnings, dtype=str))
            else:
                known = cache.get(self._warnings_key(prep.video_sha), count=False)
                prep.warnings = tuple(str(w) for w in known.tolist()) if known is not None else ()
        except AigveError as exc:
            prep.error = str(exc)
        except Exception as exc:
            prep.error = f"{path}: unexpected error while reading the video: {type(exc).__name__}: {exc}"
        return prep

    def _extract(self, prep: _Prepared, cache: FeatureCache) -> dict[tuple[Any, ...], str]:
        """Main-thread part: run each missing extractor once. Returns per-request errors."""
        errs: dict[tuple[Any, ...], str] = {}
        if prep.clip is None:
            return errs
        clip = prep.clip
        for key, req in self._requests_for(prep.unit.side).items():
            if key in prep.feats:
                continue
            rows = req.sampler.select(clip.num_frames, clip.fps)
            if not rows:
                errs[key] = f"{prep.unit.path}: no frames to sample"
                continue
            sub = clip.select(rows)
            ext = self.extractors[req.extractor_key]
            t0 = time.perf_counter()
            try:
                arr = np.asarray(ext.extract(sub.frames, sub.fps))
            except AigveError as exc:  # e.g. frames too small for the network: say which video
                errs[key] = _with_path(str(exc), prep.unit.path)
                continue
            except Exception as exc:
                log.debug(
                    "extractor %s failed on %s:\n%s", req.extractor, prep.unit.path, traceback.format_exc()
                )
                errs[key] = f"{prep.unit.path}: {req.extractor} failed: {type(exc).__name__}: {exc}"
                continue
            finally:
                self.timings[f"extract:{req.extractor}"] += time.perf_counter() - t0
            if arr.ndim != 2:
                errs[key] = f"{req.extractor} returned an array of shape {arr.shape}, expected [K, D]"
                continue
            assert prep.video_sha is not None
            cache.put(self._cache_key(prep.video_sha, req), arr)
            prep.feats[key] = arr
        return errs

    def _extract_group(self, preps: list[_Prepared], cache: FeatureCache) -> None:
        """Run ``kind="clip"`` extractors once for a group of units (one batched forward pass).

        A batch that fails falls back to one video at a time (``_extract``), which records errors."""
        todo: dict[tuple[Any, ...], list[tuple[_Prepared, FeatureRequest, Clip]]] = defaultdict(list)
        for prep in preps:
            if prep.clip is None:
                continue
            for key, req in self._requests_for(prep.unit.side).items():
                ext = self.extractors[req.extractor_key]
                if ext.kind != "clip" or key in prep.feats:
                    continue
                rows = req.sampler.select(prep.clip.num_frames, prep.clip.fps)
                if rows:
                    todo[(req.extractor_key, req.sampler.id)].append((prep, req, prep.clip.select(rows)))
        for items in todo.values():
            if len(items) < 2:
                continue  # nothing to batch: the per-unit path handles it
            ext = self.extractors[items[0][1].extractor_key]
            t0 = time.perf_counter()
            try:
                feats = ext.extract_many([c.frames for _, _, c in items], [c.fps for _, _, c in items])
            except Exception as exc:  # fall back to per-unit extraction, which records per-video errors
                log.debug("batched %s failed (%s); extracting one video at a time", ext.name, exc)
                continue
            finally:
                self.timings[f"extract:{ext.name}"] += time.perf_counter() - t0
            for (prep, req, _), arr in zip(items, feats, strict=True):
                arr = np.asarray(arr)
                assert prep.video_sha is not None
                cache.put(self._cache_key(prep.video_sha, req), arr)
                prep.feats[req.key] = arr

    def _score_unit(
        self, prep: _Prepared, req_errors: dict[tuple[Any, ...], str], replay_only: bool
    ) -> list[VideoRecord]:
        """Feed features to the metrics. ``replay_only``: only update set metrics (resume)."""
        unit = prep.unit
        records: list[VideoRecord] = []
        for slot in self.slots:
            if slot.failure is not None or slot.metric is None:
                continue
            reqs = [r for r in slot.requests if r.side == unit.side]
            if not reqs:
                continue
            metric = slot.metric
            err = prep.error or next((req_errors[r.key] for r in reqs if r.key in req_errors), None)
            feats = {r.role: prep.feats[r.key] for r in reqs if r.key in prep.feats}
            if err is None and len(feats) != len(reqs):
                err = f"{unit.path}: features missing for {slot.name}"
            if isinstance(metric, VideoMetric):
                if replay_only:
                    continue
                if err is None and unit.entry.id in self.no_prompt.get(slot.name, ()):
                    err = f"{unit.path}: {_no_prompt_message(unit.entry.id, slot.name)}"
                if err is None:
                    t0 = time.perf_counter()
                    try:
                        values = metric.score(unit.entry, feats)
                    except AigveError as exc:
                        err = _with_path(str(exc), unit.path)
                    except Exception as exc:
                        log.debug("%s failed on %s:\n%s", slot.name, unit.path, traceback.format_exc())
                        err = f"{slot.name} failed on {unit.path}: {type(exc).__name__}: {exc}"
                    finally:
                        self.timings[f"metric:{slot.name}"] += time.perf_counter() - t0
                for out in metric.spec.outputs:
                    if err is None:
                        v = values.get(out.name)
                        records.append(
                            VideoRecord(
                                unit.entry.id,
                                slot.name,
                                out.name,
                                None if v is None else float(v),
                                warning=prep.warning,
                            )
                        )
                    else:
                        records.append(VideoRecord(unit.entry.id, slot.name, out.name, None, err))
            elif isinstance(metric, SetMetric):
                if err is None:
                    try:
                        metric.update(unit.entry, unit.side, feats)
                    except AigveError as exc:
                        err = _with_path(str(exc), unit.path)
                    except Exception as exc:
                        err = f"{slot.name} failed on {unit.path}: {type(exc).__name__}: {exc}"
                if err is not None and not replay_only:
                    records.append(
                        VideoRecord(
                            unit.entry.id if unit.side == "generated" else unit.key,
                            slot.name,
                            "_input",
                            None,
                            err,
                        )
                    )
        return records

    # ------------------------------------------------------------------ run
    def _iter_prepared(self, units: list[_Unit], cache: FeatureCache, force: set[str]) -> Iterator[_Prepared]:
        """Prepare units in input order, with bounded prefetch on ``num_workers`` threads."""
        nw = max(0, int(self.config.num_workers))
        if nw == 0:
            for u in units:
                yield self._prepare(u, cache, u.key in force)
            return
        with ThreadPoolExecutor(max_workers=nw, thread_name_prefix="aigve-decode") as pool:
            pending: list[Future[_Prepared]] = []
            it = iter(units)
            for u in it:
                pending.append(pool.submit(self._prepare, u, cache, u.key in force))
                if len(pending) >= nw:  # at most nw decoded clips wait in memory besides the current one
                    break
            for u in it:
                yield pending.pop(0).result()
                pending.append(pool.submit(self._prepare, u, cache, u.key in force))
            while pending:
                yield pending.pop(0).result()

    def _still_done(
        self, unit: _Unit, prep: _Prepared, recs: list[VideoRecord], journal: Journal | None
    ) -> bool:
        """Does a journaled unit stand on resume? Not when the file changed since (or is gone), when it
        failed (decode error, or an error in any record: retried, e.g. after weights were installed),
        or when a per-video metric has no record for it (it could not run when the unit was done)."""
        if journal is None:
            return True
        if journal.unit_shas.get(unit.key) != prep.video_sha or prep.error:
            return False
        if journal.unit_errors.get(unit.key) is not None or any(r.error for r in recs):
            return False
        have = {r.metric for r in recs}
        return all(
            slot.name in have
            for slot in self.slots
            if slot.failure is None
            and isinstance(slot.metric, VideoMetric)
            and any(r.side == unit.side for r in slot.requests)
        )

    @staticmethod
    def _warning_row(unit: _Unit, prep: _Prepared, journal: Journal | None) -> dict[str, Any]:
        warning = prep.warning or (journal.unit_warnings.get(unit.key) if journal is not None else None)
        return {
            "video_id": unit.entry.id if unit.side == "generated" else None,
            "side": unit.side,
            "path": str(unit.path),
            "warning": warning,
        }

    def _has_clip_extractor(self) -> bool:
        return any(e.kind == "clip" for e in self.extractors.values())

    def run(self) -> Results:
        t_start = time.perf_counter()
        cfg = self.config
        self._build_metrics()
        self._check_prompts()
        self._build_extractors()
        units = self._units()
        if cfg.cache_dir is not None:
            cache = FeatureCache(cfg.cache_dir)
        elif cfg.out_dir is not None:  # no shared cache: a run-private one that survives a kill
            cache = FeatureCache(Path(cfg.out_dir) / ".run-cache", temporary=True)
        else:
            cache = FeatureCache(None)
        journal: Journal | None = None
        done: dict[str, list[VideoRecord]] = {}
        fp = run_fingerprint(cfg.fingerprint_dict(), self.dataset)
        if cfg.out_dir is not None:
            journal = Journal(Path(cfg.out_dir) / "journal.jsonl", fp)
            done = journal.open(resume=cfg.resume)
        elif cfg.resume:
            raise UsageError("--resume needs --out (the run's journal lives in the output directory)")
        records: list[VideoRecord] = []
        try:
            total = len(units)
            group = max(1, min(8, self.config.batch_size)) if self._has_clip_extractor() else 1
            i = 0
            for chunk in _chunks(self._iter_prepared(units, cache, set()), group):
                if len(chunk) > 1:
                    self._extract_group(chunk, cache)
                for prep in chunk:
                    self.timings["decode"] += prep.decode_seconds
                    unit = prep.unit
                    if unit.key in done and not self._still_done(unit, prep, done[unit.key], journal):
                        del done[unit.key]  # changed file, or it failed before: computed again
                    if unit.key in done:
                        records.extend(done[unit.key])
                        if prep.warnings or (journal is not None and journal.unit_warnings.get(unit.key)):
                            self.video_warnings.append(self._warning_row(unit, prep, journal))
                        needs_set = any(
                            isinstance(s.metric, SetMetric) for s in self.slots if s.failure is None
                        )
                        if needs_set:
                            errs = self._extract(prep, cache)
                            self._score_unit(prep, errs, replay_only=True)
                    else:
                        errs = self._extract(prep, cache)
                        recs = self._score_unit(prep, errs, replay_only=False)
                        if prep.error:
                            self.errors.append(
                                {
                                    "_unit": unit.key,
                                    "video_id": unit.entry.id if unit.side == "generated" else None,
                                    "side": unit.side,
                                    "path": str(unit.path),
                                    "error": prep.error,
                                }
                            )
                        if prep.warnings:
                            self.video_warnings.append(self._warning_row(unit, prep, None))
                        records.extend(recs)
                        if journal is not None:
                            journal.append(
                                unit.key,
                                recs,
                                prep.error,
                                unit.side,
                                str(unit.path),
                                sha=prep.video_sha,
                                warning=prep.warning,
                            )
                    prep.clip = None
                    i += 1
                    if self.progress:
                        self.progress(i, total)
            order = {u.key: i for i, u in enumerate(units)}
            self.errors.sort(key=lambda e: order.get(e.get("_unit", ""), -1))
            for e in self.errors:
                e.pop("_unit", None)
            aggregates = self._aggregate(records, cache)
        except BaseException:
            if journal is not None:
                journal.close()
            raise
        if journal is not None:
            journal.close()
        cache.close()  # a run-private cache is removed only once the run has finished
        self.timings["total"] = time.perf_counter() - t_start
        provenance = self._provenance(cache)
        return Results(
            aggregates=aggregates,
            records=records,
            entries=list(self.dataset.entries),
            provenance=json_safe(provenance),
            errors=self.errors,
            video_warnings=self.video_warnings,
            dataset_name=self.dataset.name,
            hints=dict(self.dataset.hints),
        )

    # ------------------------------------------------------------------ aggregation
    def _aggregate(self, records: list[VideoRecord], cache: FeatureCache) -> dict[str, MetricAggregate]:
        out: dict[str, MetricAggregate] = {}
        by_metric: dict[str, list[VideoRecord]] = defaultdict(list)
        for r in records:
            by_metric[r.metric].append(r)
        n_entries = len(self.dataset.entries)
        for slot in self.slots:
            spec = slot.spec
            prov = self._metric_provenance(slot)
            if slot.failure is not None or slot.metric is None:
                for e in self.dataset.entries:
                    err = slot.failure
                    if e.id in self.no_prompt.get(
                        slot.name, ()
                    ):  # say it now, not after the weights are fixed
                        err = f"{err}; and {_no_prompt_message(e.id, slot.name)}"
                    records.append(VideoRecord(e.id, slot.name, spec.primary.name, None, err))
                out[slot.name] = MetricAggregate(
                    slot.name,
                    spec.family,
                    spec.level,
                    self._backbone(slot),
                    {o.name: OutputValue(None, 0, o.higher_is_better) for o in spec.outputs},
                    n_videos=n_entries,
                    n_errors=n_entries,
                    provenance=prov,
                    error=slot.failure,
                )
                continue
            recs = by_metric.get(slot.name, [])
            failed = {r.video_id for r in recs if r.error is not None}
            if isinstance(slot.metric, VideoMetric):
                outputs = {}
                for o in spec.outputs:
                    vals = [
                        r.value
                        for r in recs
                        if r.output == o.name and r.error is None and r.value is not None
                    ]
                    ov = OutputValue(finite_mean(vals), len(vals), o.higher_is_better)
                    if len(vals) > 1:
                        ov.std = float(np.std(vals, ddof=1))
                    self._add_ci(ov, vals, slot.name, o.name)
                    outputs[o.name] = ov
                out[slot.name] = MetricAggregate(
                    slot.name,
                    spec.family,
                    spec.level,
                    self._backbone(slot),
                    outputs,
                    n_videos=n_entries,
                    n_errors=len(failed),
                    provenance=prov,
                )
            else:
                assert isinstance(slot.metric, SetMetric)
                agg = self._aggregate_set(slot, spec, prov, failed, n_entries, cache)
                if agg.error is None:
                    self._set_ci(slot, agg, cache)
                out[slot.name] = agg
                records.extend(self._set_diagnostics(slot, cache))
        return out

    @staticmethod
    def _backbone(slot: _MetricSlot) -> str:
        """The backbone this run used: a metric's ``backbone`` option (e.g. fid on efficientnet_lite0)
        wins over the catalogue's default."""
        chosen = slot.metric.options.get("backbone") if slot.metric is not None else None
        return chosen if isinstance(chosen, str) and chosen else str(slot.spec.backbone)

    def _add_ci(self, ov: OutputValue, vals: list[float], metric: str, output: str) -> None:
        if self.config.bootstrap <= 0 or len(vals) < 2:
            return
        try:
            from aigve.results.stats import mean_ci
        except ImportError:
            return
        # the same helper and seed derivation as `aigve compare`'s leaderboard: one CI per aggregate
        ci = mean_ci(vals, self.config.bootstrap, self.config.seed, metric, output)
        ov.ci_low, ov.ci_high, ov.ci_method = ci.low, ci.high, f"bootstrap-{ci.method} over videos"

    def _aggregate_set(
        self,
        slot: _MetricSlot,
        spec: Any,
        prov: dict[str, Any],
        failed: set[str],
        n_entries: int,
        cache: FeatureCache,
    ) -> MetricAggregate:
        assert isinstance(slot.metric, SetMetric)
        t0 = time.perf_counter()
        warnings: list[str] = []
        error = None
        try:
            values = slot.metric.compute()
        except AigveError as exc:
            values, error = {}, str(exc)
        except Exception as exc:
            log.debug("%s compute failed:\n%s", slot.name, traceback.format_exc())
            values, error = {}, f"{slot.name} failed: {type(exc).__name__}: {exc}"
        self.timings[f"metric:{slot.name}"] += time.perf_counter() - t0
        if error is not None and failed:
            n_real = sum(1 for v in failed if v.startswith("real:"))
            n_gen = len(failed) - n_real
            lost = ", ".join(
                f"{n} {side} video(s)" for n, side in ((n_gen, "generated"), (n_real, "real")) if n
            )
            error += f" ({lost} could not be used: see their errors in per_video.csv)"
        warnings.extend(values.pop("warnings", []) if values else [])
        extra: dict[str, Any] = {
            k: values.pop(k) for k in ("n_real", "n_generated") if values and k in values
        }
        prov.update(values.pop("protocol", {}) if values else {})
        outputs = {}
        for o in spec.outputs:
            v = values.get(o.name) if values else None
            ov = OutputValue(None if v is None else float(v), extra.get("n_generated", 0), o.higher_is_better)
            if values and f"{o.name}_std" in values:
                ov.std = float(values[f"{o.name}_std"])
            outputs[o.name] = ov
        return MetricAggregate(
            slot.name,
            spec.family,
            spec.level,
            self._backbone(slot),
            outputs,
            n_videos=n_entries,
            n_errors=len(failed),
            provenance=prov,
            warnings=warnings,
            error=error,
            extra=extra,
        )

    def _cached_side(self, slot: _MetricSlot, side: Side, cache: FeatureCache) -> list[np.ndarray]:
        """Per-video feature arrays of one side of a set metric, from the cache (no re-extraction)."""
        reqs = [r for r in slot.requests if r.side == side]
        if len(reqs) != 1:
            return []
        req = reqs[0]
        if side == "generated":
            paths = [Path(e.generated) for e in self.dataset.entries]
        else:
            seen: dict[str, Path] = {}
            for p in [e.real for e in self.dataset.entries if e.real is not None] + list(
                self.dataset.extra_reals
            ):
                seen.setdefault(str(Path(p).resolve()), Path(p))
            paths = list(seen.values())
        out = []
        for p in paths:
            try:
                arr = cache.get(self._cache_key(self._video_sha(p), req))
            except OSError:
                arr = None
            if arr is not None and len(arr):
                out.append(arr)
        return out

    def _set_ci(self, slot: _MetricSlot, agg: MetricAggregate, cache: FeatureCache) -> None:
        """Bootstrap CI of a set metric: resample videos on both sides from the cached features."""
        metric = slot.metric
        n = self.config.set_bootstrap
        if (
            n <= 0
            or not isinstance(metric, SetMetric)
            or type(metric).value_from_features is SetMetric.value_from_features
        ):
            return
        real, gen = self._cached_side(slot, "real", cache), self._cached_side(slot, "generated", cache)
        if len(real) < 2 or len(gen) < 2:
            if metric.options.get("real_stats"):
                why = "the real side is reference statistics (--real-stats), whose videos cannot be resampled"
            else:
                why = f"it needs at least 2 videos on each side ({len(real)} real, {len(gen)} generated)"
            agg.warnings.append(f"no confidence interval: {why}")
            return
        try:
            from aigve.results.stats import bootstrap_set_metric
        except ImportError:
            return

        def fn(r: np.ndarray, g: np.ndarray) -> float:
            v = metric.value_from_features(r, g)
            return float("nan") if v is None else float(v)

        t0 = time.perf_counter()
        try:
            ci = bootstrap_set_metric(
                fn, real, gen, n_resamples=n, seed=self.config.seed, method=metric.bootstrap_method
            )
        except Exception as exc:  # a CI must never cost the value itself
            agg.warnings.append(f"no confidence interval: {type(exc).__name__}: {exc}")
            return
        finally:
            self.timings[f"bootstrap:{slot.name}"] += time.perf_counter() - t0
        ov = agg.outputs[agg.primary]
        if ci.low is not None:
            low, high = ci.low, ci.high
            # the centred interval (2 v - q) can leave the metric's range (a distance below 0): clip it
            lo_lim, hi_lim = slot.spec.primary.range
            clipped = (lo_lim is not None and low < lo_lim) or (
                hi_lim is not None and high is not None and high > hi_lim
            )
            if lo_lim is not None:
                low, high = max(low, lo_lim), None if high is None else max(high, lo_lim)
            if hi_lim is not None:
                low, high = min(low, hi_lim), None if high is None else min(high, hi_lim)
            ov.ci_low, ov.ci_high = low, high
            ov.ci_method = f"bootstrap-{ci.method} over videos on both sides ({n} resamples, cached features)"
            if clipped:
                ov.ci_method += f", clipped to the metric's range {list(slot.spec.primary.range)}"

    def _set_diagnostics(self, slot: _MetricSlot, cache: FeatureCache) -> list[VideoRecord]:
        """Per-video diagnostics of a set metric, from cached features (no re-decoding)."""
        metric = slot.metric
        assert isinstance(metric, SetMetric)
        if type(metric).per_video is SetMetric.per_video:
            return []
        recs: list[VideoRecord] = []
        reqs = [r for r in slot.requests if r.side == "generated"]
        for e in self.dataset.entries:
            try:
                sha = self._video_sha(Path(e.generated))
            except OSError:
                continue
            feats = {}
            for r in reqs:
                arr = cache.get(self._cache_key(sha, r))
                if arr is not None:
                    feats[r.role] = arr
            if len(feats) != len(reqs):
                continue
            try:
                for name, v in metric.per_video(e, feats).items():
                    recs.append(VideoRecord(e.id, slot.name, name, float(v)))
            except Exception as exc:
                recs.append(VideoRecord(e.id, slot.name, "_diagnostic", None, f"{type(exc).__name__}: {exc}"))
        return recs

    # ------------------------------------------------------------------ provenance
    def _metric_provenance(self, slot: _MetricSlot) -> dict[str, Any]:
        prov: dict[str, Any] = {}
        if slot.metric is not None:
            prov.update(slot.metric.provenance())
        exts = {}
        for r in slot.requests:
            ext = self.extractors.get(r.extractor_key)
            if ext is not None:
                exts[r.role] = {**ext.identity(), "sampler": r.sampler.id, "side": r.side}
        prov["extractors"] = exts
        prov["window"] = self.config.window.to_dict()
        return prov

    def _provenance(self, cache: FeatureCache) -> dict[str, Any]:
        return {
            "aigve_version": __version__,
            "dataset": {
                "name": self.dataset.name,
                "source": self.dataset.source,
                "n_entries": len(self.dataset.entries),
            },
            "metrics": self.config.metrics,
            "metric_options": self.config.metric_options,
            "window": self.config.window.to_dict(),
            "device": str(self.device),
            "batch_size": self.config.batch_size,
            "num_workers": self.config.num_workers,
            "environment": {**device_summary(), "numpy": np.__version__, "pid": os.getpid()},
            "cache": {
                "dir": None if cache._tmp else str(cache.root),
                "hits": cache.hits,
                "misses": cache.misses,
            },
            "resumed": self.config.resume,
            "timings_seconds": {k: round(v, 4) for k, v in sorted(self.timings.items())},
        }


def _with_path(message: str, path: Path) -> str:
    """A per-video error names its video (metric/extractor errors often know only the frames)."""
    return message if str(path) in message else f"{path}: {message}"


def _no_prompt_message(entry_id: str, metric: str) -> str:
    return (
        f"entry '{entry_id}' has no prompt; {metric} needs one — add it to the dataset (prompt_gt in the "
        "annotation JSON, the prompt column of a manifest, or --prompts FILE for folders)"
    )


def _chunks(it: Iterator[_Prepared], n: int) -> Iterator[list[_Prepared]]:
    """Consecutive groups of ``n`` prepared units (the last may be shorter)."""
    buf: list[_Prepared] = []
    for x in it:
        buf.append(x)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf
