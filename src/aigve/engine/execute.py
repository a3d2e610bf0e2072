"""Executing a run: per unit, hash -> cache lookups -> one decode if anything is missing -> extract
-> score, with bounded prefetch on worker threads; the run loop and its journal (``--resume``).

For each unit the engine looks up every feature it needs in the cache, decodes the video only if
something is missing, runs each extractor once, and hands the arrays to every metric that asked for
them. Per-unit outcomes go to an append-only journal, which is what ``--resume`` reads.

Scorers run after the extractors, on a group of consecutive units at once (one batched ``score`` call
per scorer; one video at a time if the batch fails, so each video gets its own error). Their outputs are
looked up first: a scorer whose output is cached needs neither its upstream features nor the frames.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from aigve.backbones.base import Backbone, Extractor, Scorer, ScorerInput, declared, run_windows
from aigve.engine.aggregate import Aggregator
from aigve.engine.cache import FeatureCache, Lease, feature_key, open_feature_cache
from aigve.engine.feed import Feed, extract_frames_across, make_feed, prefetched
from aigve.engine.journal import Journal, run_fingerprint
from aigve.engine.plan import (
    ProgressFn,
    RunConfig,
    _no_prompt_message,
    _no_text_message,
    _Unit,
    _with_path,
    scorer_texts,
)
from aigve.errors import AigveError, UsageError
from aigve.metrics.base import FeatureRequest, SetMetric, VideoMetric
from aigve.results.records import Results
from aigve.results.writers import json_safe
from aigve.types import Clip, VideoRecord
from aigve.video.decode import WindowEstimate
from aigve.video.sampling import Sampler

log = logging.getLogger(__name__)

#: decodes a video for ``Engine._prepare`` instead of ``decode_video``: ``(path, samplers) -> Clip`` (the
#: samplers are those whose rows the engine will select from the clip)
Decoder = Callable[[Path, list[Sampler]], Clip]

#: a video whose shorter frame side is below ``1 / SMALL_FRAME_FACTOR`` of a backbone's ``input_side`` gets a
#: per-video warning: each of its pixels is blown up more than 4x per side (16x the area) before the network
#: sees it, far outside what the network was trained on (e.g. a 10000x16 video's 16-px strip upscaled to 224)
SMALL_FRAME_FACTOR = 4


@dataclass
class _Prepared:
    """What a worker thread prepares for a unit: hash, cached arrays, and a decoded clip if needed."""

    unit: _Unit
    video_sha: str | None = None
    feats: dict[tuple[Any, ...], np.ndarray] = field(default_factory=dict)
    clip: Clip | None = None
    error: str | None = None
    decode_seconds: float = 0.0
    # decoder warnings (e.g. truncated), also kept in the cache, then frames too small for a backbone
    warnings: tuple[str, ...] = ()
    # extractor requests to fill for this unit: the metrics' own, plus the upstream of each scorer to run
    needed: dict[tuple[Any, ...], FeatureRequest] = field(default_factory=dict)
    # scorer requests whose output is not cached, with the texts they read
    to_score: dict[tuple[Any, ...], tuple[FeatureRequest, dict[str, str]]] = field(default_factory=dict)
    missing_text: dict[tuple[Any, ...], str] = field(default_factory=dict)  # scorer request -> text
    lease: Lease | None = None  # this worker's lease on the video's work in a shared cache (engine/cache.py)
    deferred: bool = False  # another worker holds the video's lease: come back to it after the others
    # scorer request -> the scorer's per-video details (a judge's answers and raw replies), if it gives any
    details: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    # a long video: not decoded here but streamed through the extractors (``_extract_streamed``)
    stream: WindowEstimate | None = None
    # a streamed video's sampled frames for the scorers that read frames, by request
    sampled: dict[tuple[Any, ...], Clip] = field(default_factory=dict)
    # ``_prepare(probe=True)`` found work to do (a distributed run hands it to a worker), and the samplers
    # whose frames that work reads
    needs_work: bool = False
    frame_samplers: tuple[Sampler, ...] = ()

    @property
    def warning(self) -> str | None:
        if not self.warnings:
            return None
        return f"{self.unit.path}: " + "; ".join(self.warnings)


class Engine(Aggregator):
    """Runs a set of metrics over a dataset. ``run()`` returns ``Results``."""

    #: second pass over the videos another worker held (see ``_lease_or_defer``): wait for their leases
    _lease_wait = False

    def _prepare(
        self,
        unit: _Unit,
        cache: FeatureCache,
        force_decode: bool = False,
        _no_lease: bool = False,
        *,
        sha: str | None = None,
        decoder: Decoder | None = None,
        probe: bool = False,
    ) -> _Prepared:
        """Worker-thread part: hash, cache lookups, the video's lease (shared cache) and one decode if
        anything is missing.

        ``sha``: the video's content hash, already known (not read again). ``decoder``: decodes the video
        instead of ``decode_video`` (a distributed run's worker is handed frames a decode task read).
        ``probe``: when anything is missing, stop after the lookups (no lease, no decode), with
        ``prep.needs_work`` set and ``prep.frame_samplers`` the samplers a decode would serve; a video whose
        work is all in the cache comes back complete, as without ``probe``."""
        from aigve.video.decode import check_file, decode_video

        prep = _Prepared(unit)
        path = Path(unit.path)
        mem = self._memory_video(path)  # an in-memory video (aigve.data.memory): no file to check or decode
        try:
            if mem is None:
                check_file(path)  # missing, directory, empty: named before anything opens the file
            prep.video_sha = sha if sha is not None else self._video_sha(path)
            missing = False
            for key, req in self._requests_for(unit.side).items():
                scorer = self.extractors[req.extractor_key]
                if not isinstance(scorer, Scorer):
                    prep.needed.setdefault(key, req)
                    continue
                texts, lacking = scorer_texts(scorer, unit.entry)
                if lacking is not None:  # that request's error for this unit; the scorer is not called
                    prep.missing_text[key] = lacking
                    continue
                arr = cache.get(self._cache_key(prep.video_sha, req, unit.entry))
                if arr is not None:
                    prep.feats[key] = arr
                    det = cache.get(self._details_key(prep.video_sha, req, unit.entry), count=False)
                    if det is not None and det.size == 1:
                        prep.details[key] = json.loads(str(det.reshape(-1)[0]))
                    continue
                prep.to_score[key] = (req, texts)
                ups = self.upstream.get(key)
                if not ups:
                    missing = True  # a scorer on frames: decode
                for up in (ups or {}).values():
                    prep.needed.setdefault(up.key, up)
            for key, req in prep.needed.items():
                arr = cache.get(self._cache_key(prep.video_sha, req))
                if arr is None:
                    missing = True
                else:
                    prep.feats[key] = arr
            # an in-memory video is never streamed (its frames are in memory already), nor one decoded on a GPU
            samplers = [r.sampler for r in (*prep.needed.values(), *(q for q, _ in prep.to_score.values()))]
            if probe and (missing or prep.to_score or force_decode):
                prep.needs_work = True
                prep.frame_samplers = tuple(samplers)
                return prep
            if (missing or prep.to_score) and not _no_lease:
                other = self._lease_or_defer(prep, cache, force_decode)
                if other is not None:
                    return other
            streamable = (missing or force_decode) and mem is None and self.config.decode_device == "cpu"
            plan = self._stream_plan(path, samplers) if streamable else None
            frame_hw: tuple[int, ...] | None
            if plan is not None:  # decoded later, chunk by chunk, while the extractors run
                prep.stream = plan
                frame_hw = (plan.height, plan.width)
            elif missing or force_decode:
                t0 = time.perf_counter()
                prep.clip = (
                    mem.clip(self.config.window, path)
                    if mem is not None
                    else decoder(path, samplers)
                    if decoder is not None
                    else decode_video(path, self.config.window)
                    if self.config.decode_device == "cpu"
                    else self._decode_on_device(path)
                )
                prep.decode_seconds = time.perf_counter() - t0
                prep.warnings = tuple(prep.clip.info.warnings)
                cache.put(self._warnings_key(prep.video_sha), np.array(prep.warnings, dtype=str))
                frame_hw = tuple(int(n) for n in prep.clip.frames.shape[1:3])
                if frame_hw and len(frame_hw) == 2:
                    cache.put(self._frame_size_key(prep.video_sha), np.array(frame_hw, dtype=np.int64))
            else:
                known = cache.get(self._warnings_key(prep.video_sha), count=False)
                prep.warnings = tuple(str(w) for w in known.tolist()) if known is not None else ()
                size = cache.get(self._frame_size_key(prep.video_sha), count=False)
                # None for a cache written before frame sizes were kept: no size warning then
                frame_hw = (
                    tuple(int(n) for n in size.tolist()) if size is not None and size.size == 2 else None
                )
            if frame_hw is not None and len(frame_hw) == 2:
                prep.warnings += self._small_frame_warnings(unit, min(frame_hw))
        except Exception as exc:
            prep.error = read_error(exc, path)
        return prep

    def _stream_plan(self, path: Path, samplers: list[Sampler]) -> WindowEstimate | None:
        return stream_plan(path, self.config, samplers)

    def _decode_on_device(self, path: Path) -> Clip:
        """``--decode-device cuda``: torchcodec on the GPU, the CPU decoder for a video it cannot decode."""
        from aigve.video.gpu_decode import decode_on

        clip, fallback = decode_on(path, self.config.window, self.config.decode_device)
        if fallback is not None:
            self.decode_fallbacks.append(fallback)
        return clip

    def _lease_or_defer(self, prep: _Prepared, cache: FeatureCache, force_decode: bool) -> _Prepared | None:
        """Work is missing for this video: take its lease in a shared cache (None: go on, ``prep.lease`` set).
        While another worker holds it, the first pass defers the video (``prep.deferred``; ``run`` comes back
        to it after the others), the second waits until it is released (or expires) and looks again; after
        ``2 * lease_ttl`` s of waiting it computes without the lease (two workers waiting on each other's
        leases must not wait for ever; the worst case is work done twice)."""
        if not cache.shared:
            return None
        assert prep.video_sha is not None
        key = feature_key(prep.video_sha, {"lease": "video", "version": 1}, "-", self.config.window.id)
        lease = cache.try_lease(key)
        if lease is not None:
            prep.lease = lease
            return None
        if not self._lease_wait:
            prep.deferred = True
            return prep
        got = cache.wait_lease(key, timeout=2.0 * cache.lease_ttl)
        if got is not None:  # taken over: look again (the last holder may have stored part of the work)
            got.release()
        return self._prepare(prep.unit, cache, force_decode, _no_lease=got is None and cache.lease_held(key))

    def _with_deferred(self, units: list[_Unit], cache: FeatureCache) -> Iterator[_Prepared]:
        """``_iter_prepared`` over ``units``, then again over those deferred because another worker held
        their lease (by then mostly cache hits)."""
        deferred: list[_Unit] = []
        for prep in self._iter_prepared(units, cache, set()):
            if prep.deferred:
                deferred.append(prep.unit)
            else:
                yield prep
        if deferred:
            self._lease_wait = True
            try:
                yield from self._iter_prepared(deferred, cache, set())
            finally:
                self._lease_wait = False

    def _small_frame_warnings(self, unit: _Unit, short_side: int) -> tuple[str, ...]:
        """One warning per backbone of this unit's requests (a scorer's upstream extractors included) whose
        ``input_side`` is more than ``SMALL_FRAME_FACTOR`` times the video's shorter frame side."""
        users: dict[tuple[Any, ...], list[str]] = {}
        for slot in self.slots:
            if slot.failure is not None:
                continue
            for req in slot.requests:
                if req.side != unit.side:
                    continue
                for key in (req.extractor_key, *(self.upstream_of.get(req.extractor_key) or {}).values()):
                    names = users.setdefault(key, [])
                    if slot.name not in names:
                        names.append(slot.name)
        out: list[str] = []
        for key, metrics in users.items():
            backbone = self.extractors.get(key)
            side = backbone.input_side if backbone is not None else None
            if backbone is None or not side or short_side * SMALL_FRAME_FACTOR >= side:
                continue
            out.append(
                f"frames are {short_side} px on the shorter side, below 1/{SMALL_FRAME_FACTOR} of the {side}-px "
                f"input of {backbone.name} ({', '.join(metrics)}): they are upscaled about "
                f"{side / max(short_side, 1):.0f}x, so its scores may not mean much; use a larger video"
            )
        return tuple(out)

    def _extract(self, prep: _Prepared, cache: FeatureCache) -> dict[tuple[Any, ...], str]:
        """Main-thread part: run each missing extractor once. Returns per-request errors."""
        errs: dict[tuple[Any, ...], str] = {}
        if prep.stream is not None:
            return self._extract_streamed(prep, cache)
        if prep.clip is None:
            return errs
        clip = prep.clip
        for key, req in prep.needed.items():
            if key in prep.feats:
                continue
            rows = req.sampler.select(clip.num_frames, clip.fps)
            if not rows:
                errs[key] = f"{prep.unit.path}: no frames to sample"
                continue
            sub = clip.select(rows)
            ext = self.extractors[req.extractor_key]
            assert isinstance(ext, Extractor)
            t0 = time.perf_counter()
            try:
                arr = run_windows(ext, sub.frames, sub.fps)
            except Exception as exc:
                errs[key] = _extract_error(exc, req, prep.unit.path)
                continue
            finally:
                self.timings[f"extract:{req.extractor}"] += time.perf_counter() - t0
            self._keep(prep, req, arr, errs, cache)
        return errs

    def _keep(
        self,
        prep: _Prepared,
        req: FeatureRequest,
        arr: np.ndarray,
        errs: dict[tuple[Any, ...], str],
        cache: FeatureCache,
    ) -> None:
        """An extractor's rows for one unit: checked, cached, handed to the metrics."""
        if arr.ndim != 2:
            errs[req.key] = f"{req.extractor} returned an array of shape {arr.shape}, expected [K, D]"
            return
        assert prep.video_sha is not None
        cache.put(self._cache_key(prep.video_sha, req), arr)
        prep.feats[req.key] = arr

    def _extract_streamed(self, prep: _Prepared, cache: FeatureCache) -> dict[tuple[Any, ...], str]:
        """A long video read chunk by chunk (``aigve.engine.feed``): each missing extractor, and each scorer
        that reads frames, gets a feed that holds only what it still needs. The rows of samplers that depend
        on the clip's length are chosen from the container's estimate; if the decode disagrees the video is
        read again with the true length (rare: cut or mis-declared files), so the rows are the whole-window
        path's. Per-request errors, as ``_extract``; a video that cannot be decoded sets ``prep.error``."""
        from aigve.video.decode import FrameStream

        assert prep.stream is not None
        errs: dict[tuple[Any, ...], str] = {}
        wanted: dict[tuple[Any, ...], tuple[FeatureRequest, Backbone]] = {}
        for key, req in prep.needed.items():
            if key not in prep.feats:
                extractor = self.extractors[req.extractor_key]
                assert isinstance(extractor, Extractor)
                wanted[key] = (req, extractor)
        for key, (req, _texts) in prep.to_score.items():
            if not self.upstream.get(key):  # a scorer reading frames
                wanted[key] = (req, self.extractors[req.extractor_key])
        if not wanted:
            return errs
        length, fps = prep.stream.frames, prep.stream.fps
        assert length is not None and fps is not None
        for _ in range(2):
            feeds: dict[tuple[Any, ...], Feed] = {}
            for key, (req, backbone) in wanted.items():
                rows = req.sampler.select(length, fps)
                if not rows:
                    errs[key] = f"{prep.unit.path}: no frames to sample"
                    continue
                try:
                    feeds[key] = make_feed(backbone, rows, fps)
                except Exception as exc:  # its frame windows refuse this clip (too short, ...)
                    errs[key] = _extract_error(exc, req, prep.unit.path)
            frame_bytes = max(1, prep.stream.height * prep.stream.width * 3)
            chunk_frames = max(1, int(self.config.stream_chunk_mib * 2**20 // frame_bytes))
            stream = FrameStream(prep.unit.path, self.config.window, chunk=chunk_frames)
            failed: dict[tuple[Any, ...], str] = {}
            t0 = time.perf_counter()
            waited = 0.0
            try:
                chunks = prefetched(stream, self.config.stream_prefetch, "aigve-stream")
                while True:
                    t_wait = time.perf_counter()
                    chunk = next(chunks, None)
                    waited += time.perf_counter() - t_wait
                    if chunk is None:
                        break
                    for key, feed in feeds.items():
                        if key in failed:
                            continue
                        t1 = time.perf_counter()
                        try:
                            feed.add(chunk)
                        except Exception as exc:
                            failed[key] = _extract_error(exc, wanted[key][0], prep.unit.path)
                        finally:
                            self.timings[f"extract:{wanted[key][0].extractor}"] += time.perf_counter() - t1
            except Exception as exc:  # the video cannot be decoded: its error, as for a whole decode
                prep.error = read_error(exc, prep.unit.path)
                return {}
            finally:
                prep.decode_seconds += waited
            assert stream.info is not None and stream.num_frames is not None and stream.fps is not None
            if any(  # the rows handed over are not the ones the true length picks
                not feeds[key].fits(req.sampler.select(stream.num_frames, stream.fps))
                for key, (req, _) in wanted.items()
                if key in feeds
            ):
                log.debug("%s: %d frames, %d declared: read again", prep.unit.path, stream.num_frames, length)
                length, fps = stream.num_frames, stream.fps
                errs.clear()
                continue
            break
        log.debug("%s streamed in %.2f s", prep.unit.path, time.perf_counter() - t0)
        info = stream.info
        assert info is not None
        prep.warnings = tuple(info.warnings) + prep.warnings
        assert prep.video_sha is not None
        cache.put(self._warnings_key(prep.video_sha), np.array(info.warnings, dtype=str))
        cache.put(self._frame_size_key(prep.video_sha), np.array([info.height, info.width], dtype=np.int64))
        for key, feed in feeds.items():
            req, backbone = wanted[key]
            if key in failed:
                errs[key] = failed[key]
                continue
            t1 = time.perf_counter()
            try:
                out = feed.finish()  # a scorer's frames may be a DeclaredFrames: not turned into one array
            except Exception as exc:
                errs[key] = _extract_error(exc, req, prep.unit.path)
                continue
            finally:
                self.timings[f"extract:{req.extractor}"] += time.perf_counter() - t1
            if not isinstance(backbone, Extractor):  # frames for a scorer
                prep.sampled[key] = Clip(out, fps, tuple(feed.used_rows), info)
            else:
                self._keep(prep, req, np.asarray(out), errs, cache)
        return errs

    def _extract_group(self, preps: list[_Prepared], cache: FeatureCache) -> None:
        """Run ``kind="clip"`` extractors, and ``kind="frames"`` ones (``batch_videos``), once for a group of
        units: one call on every unit's sampled frames, whose forward passes are full batches.

        A batch that fails falls back to one video at a time (``_extract``), which records errors."""
        todo: dict[tuple[Any, ...], list[tuple[_Prepared, FeatureRequest, Clip]]] = defaultdict(list)
        kinds = ("clip", "frames") if self.config.batch_videos else ("clip",)
        for prep in preps:
            if prep.clip is None:
                continue
            for key, req in prep.needed.items():
                ext = self.extractors[req.extractor_key]
                if ext.kind not in kinds or key in prep.feats:
                    continue
                rows = req.sampler.select(prep.clip.num_frames, prep.clip.fps)
                if rows:
                    todo[(req.extractor_key, req.sampler.id)].append((prep, req, prep.clip.select(rows)))
        for items in todo.values():
            if len(items) < 2:
                continue  # nothing to batch: the per-unit path handles it
            ext = self.extractors[items[0][1].extractor_key]
            assert isinstance(ext, Extractor)
            t0 = time.perf_counter()
            rates: list[float | None] = [c.fps for _, _, c in items]
            try:
                # a backbone that declares its frame windows sees only those rows (as in a stream)
                clips = [declared(ext, c.frames, c.fps) for _, _, c in items]
                if ext.kind == "frames":  # the frames of several videos fill each forward pass
                    feats = extract_frames_across(ext, clips, rates)
                else:
                    feats = ext.extract_many(clips, rates)
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

    def _run_scorers(
        self, preps: list[_Prepared], errs: list[dict[tuple[Any, ...], str]], cache: FeatureCache
    ) -> None:
        """Run each scorer once for a group of units (``errs[i]``: unit ``i``'s per-request errors, which
        this extends): one batched ``score`` call per scorer; if it raises, one unit at a time, so each
        video gets its own error. Outputs go to the cache and to the units' arrays."""
        todo: dict[tuple[Any, ...], list[tuple[_Prepared, FeatureRequest, ScorerInput, dict]]] = defaultdict(
            list
        )
        for prep, perr in zip(preps, errs, strict=True):
            if prep.error is not None:
                continue
            unit = prep.unit
            for key, (req, texts) in prep.to_score.items():
                ups = self.upstream.get(key)
                features: dict[str, np.ndarray] = {}
                if ups:  # the upstream extractors' features of the same frames
                    failed = next((perr[u.key] for u in ups.values() if u.key in perr), None)
                    if failed is not None:
                        perr[key] = failed
                        continue
                    if any(u.key not in prep.feats for u in ups.values()):
                        perr[key] = f"{unit.path}: features missing for {req.extractor}"
                        continue
                    features = {name: prep.feats[u.key] for name, u in ups.items()}
                    # fps None: the frames are not decoded when the features come from the cache
                    data, fps = next(iter(features.values())), None
                elif key in prep.sampled:  # a streamed video: its sampled frames were kept
                    data, fps = prep.sampled[key].frames, prep.sampled[key].fps
                else:
                    if prep.clip is None:
                        perr.setdefault(key, f"{unit.path}: frames missing for {req.extractor}")
                        continue
                    rows = req.sampler.select(prep.clip.num_frames, prep.clip.fps)
                    if not rows:
                        perr[key] = f"{unit.path}: no frames to sample"
                        continue
                    sub = prep.clip.select(rows)
                    try:  # a scorer that declares its frame windows sees only those rows (as in a stream)
                        data, fps = declared(self.extractors[req.extractor_key], sub.frames, sub.fps), sub.fps
                    except Exception as exc:
                        perr[key] = _extract_error(exc, req, unit.path)
                        continue
                vid = unit.entry.id if unit.side == "generated" else unit.key
                todo[req.extractor_key].append(
                    (prep, req, ScorerInput(vid, data, fps, texts, features), perr)
                )
        for ext_key, items in todo.items():
            scorer = self.extractors[ext_key]
            assert isinstance(scorer, Scorer)
            outs: list[Any] | None = None
            if len(items) > 1:
                t0 = time.perf_counter()
                try:
                    outs = list(scorer.score([inp for _, _, inp, _ in items]))
                    if len(outs) != len(items):
                        raise ValueError(f"{len(outs)} outputs for {len(items)} inputs")
                except Exception as exc:  # one at a time below, which records per-video errors
                    log.debug("batched %s failed (%s); scoring one video at a time", scorer.name, exc)
                    outs = None
                finally:
                    self.timings[f"score:{scorer.name}"] += time.perf_counter() - t0
            for i, (prep, req, inp, perr) in enumerate(items):
                path = prep.unit.path
                if outs is not None:
                    out = outs[i]
                else:
                    t0 = time.perf_counter()
                    try:
                        got = list(scorer.score([inp]))
                        if len(got) != 1:
                            raise ValueError(f"{len(got)} outputs for 1 input")
                        out = got[0]
                    except AigveError as exc:
                        perr[req.key] = _with_path(str(exc), path)
                        self._keep_details(prep, req, scorer.details(inp.video_id), None)
                        continue
                    except Exception as exc:
                        log.debug("scorer %s failed on %s:\n%s", scorer.name, path, traceback.format_exc())
                        perr[req.key] = f"{path}: {scorer.name} failed: {type(exc).__name__}: {exc}"
                        self._keep_details(prep, req, scorer.details(inp.video_id), None)
                        continue
                    finally:
                        self.timings[f"score:{scorer.name}"] += time.perf_counter() - t0
                arr = np.asarray(out)
                width = len(scorer.columns)
                if arr.ndim != 2 or (width and arr.shape[1] != width):
                    expected = f"[K, {width}] ({', '.join(scorer.columns)})" if width else "[K, D]"
                    perr[req.key] = (
                        f"{path}: {scorer.name} returned an array of shape {arr.shape}, expected {expected}"
                    )
                    continue
                assert prep.video_sha is not None
                cache.put(self._cache_key(prep.video_sha, req, prep.unit.entry), arr)
                prep.feats[req.key] = arr
                self._keep_details(prep, req, scorer.details(inp.video_id), cache)

    def _keep_details(
        self, prep: _Prepared, req: FeatureRequest, det: dict[str, Any] | None, cache: FeatureCache | None
    ) -> None:
        """A scorer's per-video details for the video's records; cached beside its output when it succeeded
        (a cache hit shows them again), not when it failed (the error is retried on the next run)."""
        if det is None:
            return
        det = json_safe(det)
        prep.details[req.key] = det
        if cache is not None and prep.video_sha is not None:
            blob = np.array([json.dumps(det, sort_keys=True)], dtype=str)
            cache.put(self._details_key(prep.video_sha, req, prep.unit.entry), blob)

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
            lacking = next((prep.missing_text[r.key] for r in reqs if r.key in prep.missing_text), None)
            if err is None and lacking is not None:  # a text a scorer reads (the prompt, ...)
                err = f"{unit.path}: {_no_text_message(unit.entry.id, slot.name, lacking)}"
            feats = {r.role: prep.feats[r.key] for r in reqs if r.key in prep.feats}
            if err is None and len(feats) != len(reqs):
                err = f"{unit.path}: features missing for {slot.name}"
            det = next((prep.details[r.key] for r in reqs if r.key in prep.details), None)
            first = len(records)
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
                if det is not None and len(records) > first:  # once per video: on its first record
                    records[first] = replace(records[first], details=json.dumps(det, sort_keys=True))
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
        depth = max(nw, self._prefetch_depth())
        with ThreadPoolExecutor(max_workers=nw, thread_name_prefix="aigve-decode") as pool:
            pending: list[Future[_Prepared]] = []
            it = iter(units)
            for u in it:
                pending.append(pool.submit(self._prepare, u, cache, u.key in force))
                if len(pending) >= depth:  # at most `depth` decoded clips wait besides those in use
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

    def _batches_across_videos(self) -> bool:
        """Clip extractors and scorers take several videos per call, and frame extractors too with
        ``batch_videos``: the run loop groups units for them."""
        kinds = ("clip", "scorer", "frames") if self.config.batch_videos else ("clip", "scorer")
        return any(e.kind in kinds for e in self.extractors.values())

    def _group_size(self) -> int:
        """Units handled together by the run loop (one batched call per extractor and scorer)."""
        return max(1, min(8, self.config.batch_size)) if self._batches_across_videos() else 1

    def _prefetch_depth(self) -> int:
        """Videos decoded ahead of the model (``RunConfig.prefetch``; default: one group, so the next group
        decodes while this one's forward passes run)."""
        return self.config.prefetch if self.config.prefetch is not None else self._group_size()

    def _open_cache(self) -> FeatureCache:
        """The run's feature cache: the shared one (a directory or a URL), else a run-private one (in
        ``out_dir`` if given)."""
        cfg = self.config
        if cfg.cache_dir is not None:
            return open_feature_cache(cfg.cache_dir)
        if cfg.out_dir is not None:  # no shared cache: a run-private one that survives a kill
            return open_feature_cache(Path(cfg.out_dir) / ".run-cache", temporary=True)
        return open_feature_cache(None)

    def _start(self) -> tuple[list[_Unit], FeatureCache, Journal | None, dict[str, list[VideoRecord]]]:
        """The run's plan: metrics and backbones built, units listed, the cache and journal opened (the
        journal's finished units, when resuming)."""
        cfg = self.config
        self._build_metrics()
        self._check_prompts()
        self._build_extractors()
        units = self._units()
        cache = self._open_cache()
        journal: Journal | None = None
        done: dict[str, list[VideoRecord]] = {}
        fp = run_fingerprint(cfg.fingerprint_dict(), self.dataset)
        if cfg.out_dir is not None:
            journal = Journal(Path(cfg.out_dir) / "journal.jsonl", fp)
            done = journal.open(resume=cfg.resume)
        elif cfg.resume:
            raise UsageError("--resume needs --out (the run's journal lives in the output directory)")
        return units, cache, journal, done

    def _needs_set(self) -> bool:
        """Does any metric that can run accumulate over the set (its updates are replayed on resume)?"""
        return any(isinstance(s.metric, SetMetric) for s in self.slots if s.failure is None)

    def _forget_stale(
        self, prep: _Prepared, done: dict[str, list[VideoRecord]], journal: Journal | None
    ) -> None:
        """A journaled unit that no longer stands (changed file, or it failed before) is computed again."""
        unit = prep.unit
        if unit.key in done and not self._still_done(unit, prep, done[unit.key], journal):
            del done[unit.key]

    def _finish_unit(
        self,
        prep: _Prepared,
        errs: dict[tuple[Any, ...], str],
        done: dict[str, list[VideoRecord]],
        journal: Journal | None,
        records: list[VideoRecord],
    ) -> None:
        """A unit whose arrays are all in ``prep``: its records (or the journal's, on resume; set metrics are
        replayed then), errors, warnings and journal line. Called in dataset order."""
        self.timings["decode"] += prep.decode_seconds
        unit = prep.unit
        if unit.key in done:
            records.extend(done[unit.key])
            if prep.warnings or (journal is not None and journal.unit_warnings.get(unit.key)):
                self.video_warnings.append(self._warning_row(unit, prep, journal))
            if self._needs_set():
                self._score_unit(prep, errs, replay_only=True)
        else:
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
        prep.sampled = {}
        if prep.lease is not None:  # its arrays are stored: the other workers find them
            prep.lease.release()

    def _finish_run(
        self,
        t_start: float,
        units: list[_Unit],
        records: list[VideoRecord],
        cache: FeatureCache,
        journal: Journal | None,
    ) -> Results:
        """Records in input order, the aggregates (set metrics from their accumulated state, CIs from the
        cached features), the cache and journal closed, provenance: the run's ``Results``."""
        try:
            order = {u.key: i for i, u in enumerate(units)}
            if cache.leases_busy:  # videos deferred for another worker's lease come last: input order again
                rank = {(u.entry.id if u.side == "generated" else u.key): i for i, u in enumerate(units)}
                records.sort(key=lambda r: rank.get(r.video_id, -1))
            self.errors.sort(key=lambda e: order.get(e.get("_unit", ""), -1))
            for e in self.errors:
                e.pop("_unit", None)
            aggregates = self._aggregate(records, cache)
        except BaseException:
            self._abandon(cache, journal)
            raise
        if journal is not None:
            journal.close()
        cache.close()  # a run-private cache is removed only once the run has finished
        if self.judge is not None:
            self.judge.close()
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

    def _abandon(self, cache: FeatureCache, journal: Journal | None) -> None:
        """A run that stops on an exception: leases released, journal and judge closed (the cache stays)."""
        cache.release_all()
        if journal is not None:
            journal.close()
        if self.judge is not None:
            self.judge.close()

    def run(self) -> Results:
        t_start = time.perf_counter()
        units, cache, journal, done = self._start()
        records: list[VideoRecord] = []
        try:
            total = len(units)
            i = 0
            needs_set = self._needs_set()
            for chunk in _chunks(self._with_deferred(units, cache), self._group_size()):
                if len(chunk) > 1:
                    self._extract_group(chunk, cache)
                for prep in chunk:
                    self._forget_stale(prep, done, journal)
                # the units whose arrays are used (a journaled one only to replay set metrics): extract
                # each, then run the scorers on all of them at once
                work = [p for p in chunk if p.unit.key not in done or needs_set]
                work_errs = [self._extract(p, cache) for p in work]
                self._run_scorers(work, work_errs, cache)
                errs_of = {id(p): e for p, e in zip(work, work_errs, strict=True)}
                for prep in chunk:
                    self._finish_unit(prep, errs_of.get(id(prep), {}), done, journal, records)
                    i += 1
                    if self.progress:
                        self.progress(i, total)
        except BaseException:
            self._abandon(cache, journal)
            raise
        return self._finish_run(t_start, units, records, cache, journal)


ENGINES = ("local", "ray")


def make_engine(dataset: Any, config: RunConfig, progress: ProgressFn | None = None) -> Engine:
    """The engine ``config.engine`` names: this process (``local``) or a Ray cluster (``ray``)."""
    if config.engine == "ray":
        from aigve.engine.ray_engine import RayEngine

        return RayEngine(dataset, config, progress)
    if config.engine != "local":
        raise UsageError(f"unknown engine '{config.engine}': use {' or '.join(ENGINES)}")
    return Engine(dataset, config, progress)


def read_error(exc: Exception, path: Path) -> str:
    """A video's error when reading it raised ``exc``: an ``AigveError`` says what is wrong and names the
    file; anything else is reported with its type."""
    if isinstance(exc, AigveError):
        return str(exc)
    return f"{path}: unexpected error while reading the video: {type(exc).__name__}: {exc}"


def stream_plan(path: Path, config: RunConfig, samplers: list[Sampler]) -> WindowEstimate | None:
    """The container's estimate of the decoded window when it is above ``stream_above_mib`` (the video
    is then streamed), else None (decoded whole). Unknown lengths or rates are decoded whole, and so are
    videos a sampler reads out of order (no protocol does today; a stream is read forwards)."""
    from aigve.video.decode import estimate_window

    limit = config.stream_above_mib
    if limit is None:
        return None
    est = estimate_window(path, config.window)
    if est.frames is None or est.nbytes is None or est.fps is None or est.nbytes <= limit * 2**20:
        return None
    for sampler in samplers:
        rows = sampler.select(est.frames, est.fps)
        if any(b < a for a, b in zip(rows, rows[1:], strict=False)):
            return None
    return est


def _extract_error(exc: Exception, req: FeatureRequest, path: Path) -> str:
    """The per-video error of an extractor that raised on ``path``."""
    if isinstance(exc, AigveError):  # e.g. frames too small for the network: say which video
        return _with_path(str(exc), path)
    log.debug("extractor %s failed on %s:\n%s", req.extractor, path, traceback.format_exc())
    return f"{path}: {req.extractor} failed: {type(exc).__name__}: {exc}"


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
