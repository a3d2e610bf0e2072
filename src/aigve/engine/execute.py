"""Executing a run: per unit, hash -> cache lookups -> one decode if anything is missing -> extract
-> score, with bounded prefetch on worker threads; the run loop and its journal (``--resume``).

For each unit the engine looks up every feature it needs in the cache, decodes the video only if
something is missing, runs each extractor once, and hands the arrays to every metric that asked for
them. Per-unit outcomes go to an append-only journal, which is what ``--resume`` reads.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigve.engine.aggregate import Aggregator
from aigve.engine.cache import FeatureCache
from aigve.engine.journal import Journal, run_fingerprint
from aigve.engine.plan import _no_prompt_message, _Unit, _with_path
from aigve.errors import AigveError, UsageError
from aigve.metrics.base import FeatureRequest, SetMetric, VideoMetric
from aigve.results.records import Results
from aigve.results.writers import json_safe
from aigve.types import Clip, VideoRecord

log = logging.getLogger(__name__)


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


class Engine(Aggregator):
    """Runs a set of metrics over a dataset. ``run()`` returns ``Results``."""

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
