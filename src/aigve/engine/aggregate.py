"""Aggregation after the run loop: per-metric aggregates, per-video CIs, set-level CIs from cached
features, per-video diagnostics of set metrics, and the provenance of every number."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from aigve import __version__
from aigve.backbones.base import Scorer
from aigve.device import device_summary
from aigve.engine.cache import FeatureCache
from aigve.engine.plan import Planner, _MetricSlot, _no_prompt_message
from aigve.errors import AigveError
from aigve.metrics.base import ReferenceStats, SetMetric, VideoMetric
from aigve.results.records import MetricAggregate, OutputValue, finite_mean
from aigve.results.summary import MIN_CI_N, ci_caveat_text
from aigve.types import Entry, Side, VideoRecord

log = logging.getLogger(__name__)


class Aggregator(Planner):
    """Turns the run's records and cached features into ``MetricAggregate``s and provenance."""

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
                same = self._self_comparison(slot)
                if same:
                    agg.warnings.insert(0, same)
                if agg.error is None:
                    self._set_ci(slot, agg, cache)
                out[slot.name] = agg
                records.extend(self._set_diagnostics(slot, cache))
        for slot in self.slots:
            self._label_precision(slot, out[slot.name])
        return out

    def _slot_precision(self, slot: _MetricSlot) -> str:
        """The precision a metric's numbers were computed in: the run's, when one of its backbones (or a
        scorer's upstream extractors) runs a network; fp32 otherwise."""
        keys = [r.extractor_key for r in slot.requests]
        keys += [k for r in slot.requests for k in (self.upstream_of.get(r.extractor_key) or {}).values()]
        lows = {b.effective_precision for k in keys if (b := self.extractors.get(k)) is not None}
        lows.discard("fp32")
        return next(iter(lows), "fp32")

    def _label_precision(self, slot: _MetricSlot, agg: MetricAggregate) -> None:
        """A number computed in bf16/fp16 says so where it is shown: the backbone cell of the summary and the
        report (``fid_inception (bf16)``), ``precision`` in results.json's metric entry and its provenance."""
        p = self._slot_precision(slot)
        if p != "fp32":
            agg.backbone = f"{agg.backbone} ({p})"
            agg.extra["precision"] = p
            agg.provenance["precision"] = p

    @staticmethod
    def _backbone(slot: _MetricSlot) -> str:
        """The backbone this run used: a metric's ``backbone`` option (e.g. fid on efficientnet_lite0)
        wins over the catalogue's default."""
        chosen = slot.metric.options.get("backbone") if slot.metric is not None else None
        return chosen if isinstance(chosen, str) and chosen else str(slot.spec.backbone)

    def _self_comparison(self, slot: _MetricSlot) -> str | None:
        """A metric comparing the generated set with the real set, where the two share videos (the
        same files, or identical content by sha256): a distance of a set with itself is 0 by
        construction, whatever the videos are. ``None`` when the sets share nothing (or the real side
        is reference statistics)."""
        if not any(r.side == "real" for r in slot.requests):
            return None

        def shas(paths: list[Path]) -> set[str]:
            out = set()
            for p in paths:
                with contextlib.suppress(OSError):  # a missing file is reported as that video's error
                    out.add(self._video_sha(Path(p)))
            return out

        gen = shas([e.generated for e in self.dataset.entries])
        real = shas(
            [e.real for e in self.dataset.entries if e.real is not None] + list(self.dataset.extra_reals)
        )
        both = gen & real
        if not both or not gen:
            return None
        name = slot.name
        if gen == real:
            return (
                f"{name}: the real and generated sets are the same {len(gen)} video(s) (the same files or "
                f"identical content by sha256): {name} of a set with itself is 0 by construction, so this "
                "value says nothing about the generated videos; give real videos that are not the generated ones"
            )
        return (
            f"{name}: {len(both)} of the {len(gen)} generated video(s) are also in the real set (the same "
            f"files or identical content by sha256): {name} is biased toward 0 by the shared videos"
        )

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
        if len(vals) < MIN_CI_N:
            ov.ci_caveat = ci_caveat_text(len(vals))

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
            paths: list[tuple[Path, Entry | None]] = [(Path(e.generated), e) for e in self.dataset.entries]
        else:  # each real file once, with the entry its unit had (a scorer's texts are part of the key)
            seen: dict[str, tuple[Path, Entry | None]] = {}
            for p, e in [(e.real, e) for e in self.dataset.entries if e.real is not None] + [
                (p, None) for p in self.dataset.extra_reals
            ]:
                seen.setdefault(str(Path(p).resolve()), (Path(p), e))
            paths = list(seen.values())
        out = []
        for p, entry in paths:
            try:
                arr = cache.get(self._cache_key(self._video_sha(p), req, entry))
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
        if not real and isinstance(metric, ReferenceStats):  # --real-stats with per-video features
            real = list(metric.reference_features() or [])
        if len(real) < 2 or len(gen) < 2:
            if metric.options.get("real_stats") and not real:
                why = (
                    "the real side is reference statistics (--real-stats) without per-video features, which "
                    "resampling needs: only aigve's format holds them (`aigve stats compute "
                    "--per-video-features`); pytorch-fid, clean-fid and cd-fvd files do not"
                )
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
                fn,
                real,
                gen,
                n_resamples=n,
                seed=self.config.seed,
                method=metric.bootstrap_method,
                resampler=metric.bootstrap_resampler,  # same values, no restacking
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
            if min(len(real), len(gen)) < MIN_CI_N:  # the smaller side bounds what resampling can show
                ov.ci_caveat = ci_caveat_text(min(len(real), len(gen)))

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
                arr = cache.get(self._cache_key(sha, r, e))
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
            if r.extractor_key in self.extractors:  # a scorer's identity includes its upstream's
                exts[r.role] = {**self._identity(r.extractor_key), "sampler": r.sampler.id, "side": r.side}
        prov["extractors"] = exts
        prov["window"] = self.config.window.to_dict()
        for r in slot.requests:  # what a scorer spent in this run (a judge's requests and tokens)
            ext = self.extractors.get(r.extractor_key)
            used = ext.usage() if isinstance(ext, Scorer) else None
            if used is not None:
                prov.setdefault("usage", {})[r.role] = used
                judge = self._identity(r.extractor_key).get("judge")
                if judge is not None:
                    prov["judge"] = judge
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
            "precision": self.config.precision,
            "decode_device": self.config.decode_device,
            "decode_fallbacks": len(self.decode_fallbacks),  # videos decoded on the CPU instead (warned)
            "batch_size": self.config.batch_size,
            "num_workers": self.config.num_workers,
            "environment": {**device_summary(), "numpy": np.__version__, "pid": os.getpid()},
            "cache": {
                "dir": None if cache._tmp else str(cache.root),
                "hits": cache.hits,
                "misses": cache.misses,
                "leases_busy": cache.leases_busy,  # videos another worker was computing (shared cache)
                "lease_takeovers": cache.lease_takeovers,  # expired leases of crashed workers taken over
            },
            "resumed": self.config.resume,
            "timings_seconds": {k: round(v, 4) for k, v in sorted(self.timings.items())},
        }
