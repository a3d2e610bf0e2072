"""Distributed runs on Ray Data (``--engine ray``): the same run as :class:`aigve.engine.execute.Engine`,
its per-video work spread over a Ray cluster. This is the only module that imports Ray.

The stage graph (docs/distributed.md has the picture and the sizing notes):

1. **Driver, planning.** Metrics and backbones are built as for a local run (the backbones' identities make
   the cache keys); every video is hashed and looked up in the feature cache (``Engine._prepare(probe=True)``
   on a few threads). A video whose work is all cached is finished here: it never reaches the cluster, so a
   resumed run decodes nothing it already has.
2. **Groups.** The units are cut into the groups a local run batches together (``Engine._group_size``,
   consecutive units in dataset order), so a worker's forward passes see the same batches as a local run's
   and the features are the same arrays. One group with work left is one row (and one block) of a
   ``ray.data`` dataset.
3. **Decode tasks** (``_decode_group``, stateless CPU tasks): each video of the group is decoded once with
   the same code as a local run (``decode_video``), and only the rows its samplers read are shipped on
   (:class:`aigve.types.SparseClip`). A long video that a local run would stream is left to the worker,
   which streams it from the file. A video that cannot be decoded becomes its error here.
4. **Model actors** (``_GroupWorker``, one pool; ``num_gpus`` per actor when the workers run on CUDA): each
   holds an ``Engine`` with every backbone of the run, loaded once, and runs the local engine's own steps on a
   group: cache lookups and the video's lease, cross-video batched extraction, scorers. Arrays go to the
   feature cache, which must be on storage every node sees; the group's prepared units (arrays, errors,
   warnings, a scorer's details) come back to the driver.
5. **Driver, finishing.** Groups are put back in dataset order; each unit goes through
   ``Engine._finish_unit`` exactly as in a local run (per-video metrics scored from the arrays, set metrics
   updated in dataset order, journal line, progress), then the same aggregation, CIs, writers and report.

A worker that dies is restarted by Ray and its group retried (Ray Data's actor pools restart actors and retry
their tasks); the driver keeps the first result of each group, so no video is counted twice, and a group that
never comes back is an error on each of its videos (``--resume`` computes them again).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from aigve.backbones.base import Scorer
from aigve.data.dataset import Dataset
from aigve.engine.cache import FeatureCache, feature_key, open_feature_cache
from aigve.engine.execute import Engine, _Prepared, read_error, stream_plan
from aigve.engine.plan import ProgressFn, RunConfig, _Unit
from aigve.errors import AigveError, MissingDependencyError, UsageError
from aigve.results.records import Results
from aigve.types import Clip, SparseClip, VideoRecord
from aigve.video.sampling import Sampler

log = logging.getLogger(__name__)

#: the Ray releases this engine is tested with (the ``distributed`` extra pins the same range)
RAY_RANGE = ">=2.57,<2.61"


def require_ray() -> Any:
    """``ray`` with Ray Data, or the error naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("--engine ray", "distributed", exc.name or "ray") from exc
    return ray


@contextlib.contextmanager
def local_settings(loopback: bool = True) -> Iterator[None]:
    """Settings for a Ray started from this process: no usage reports to the internet, the driver's C++ log on
    the console at fatal only (unless aigve's debug log is on), and with ``loopback`` every server on
    127.0.0.1, not the machine's address. Ray reads the last from ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` when it
    is imported, so the child processes get the variable and this process's copy of the constant is set too
    (undocumented on Linux: ``tests/distributed`` asserts that the servers listen on loopback only)."""
    from ray._private import ray_constants

    env = {
        "RAY_USAGE_STATS_ENABLED": "0",
        # Ray prints an error-level notice about every actor pool of Ray Data (ray-project/ray#53727);
        # failures reach the run as Python exceptions
        "RAY_BACKEND_LOG_LEVEL": "debug" if log.isEnabledFor(logging.DEBUG) else "fatal",
    }
    if loopback:
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    saved = {k: os.environ.get(k) for k in env}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    for k, v in env.items():
        os.environ.setdefault(k, v)
    if loopback:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[bool]:
    """Ray for one run: the one already initialised in this process (tests, notebooks, the server), else the
    cluster at ``address``, else a local Ray on this machine (all its cores and GPUs), started here and
    stopped afterwards. Ray's messages stay out of the console. Yields whether this call started it."""
    ray = require_ray()
    if ray.is_initialized():
        yield False
        return
    tmp: str | None = None
    try:
        with local_settings(loopback=address is None):
            if address is None:
                tmp = tempfile.mkdtemp(prefix="aigve-ray-", dir="/tmp")  # short: Ray's unix socket paths
                ray.init(
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=_ray_log_level(),
                    _temp_dir=tmp,
                )
            else:
                ray.init(address=address, log_to_driver=False, logging_level=_ray_log_level())
    except Exception as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise AigveError(f"--engine ray: could not start {where}: {type(exc).__name__}: {exc}") from exc
    try:  # SIGTERM too: Ray's own handler in the driver exits through SystemExit, so this runs
        yield True
    finally:
        ray.shutdown()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _ray_log_level() -> int:
    """Ray's messages at run start: errors only, unless aigve's own debug log is on."""
    return logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.ERROR


@contextlib.contextmanager
def _quiet_ray_data() -> Iterator[None]:
    """The run's own progress bar and summary, not Ray Data's bars, banners and advice: its console handler
    at ERROR (through ``RAY_DATA_LOGGING_CONFIG``, the setting Ray Data reads each time it configures its
    loggers), unless aigve's own debug log is on."""
    import copy

    import yaml
    from ray.data import DataContext
    from ray.data._internal import logging as data_logging
    from ray.util.debug import log_once

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    log_once(
        "ray_data_progress_manager_disabled"
    )  # its one warning that the bars are off: they are, on purpose
    config: dict[str, Any] = copy.deepcopy(data_logging.DEFAULT_CONFIG)
    config["handlers"]["console"]["level"] = "DEBUG" if log.isEnabledFor(logging.DEBUG) else "ERROR"
    var = data_logging.RAY_DATA_LOGGING_CONFIG_ENV_VAR_NAME
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="aigve-ray-data-log-", delete=False) as f:
        yaml.safe_dump(config, f)
    # no usage report either: Ray Data's collector also queries a Prometheus on localhost:9090 after a worker
    # failure, and prints the refused connection
    env = {var: f.name, "RAY_DATA_USAGE_DISABLED": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        data_logging.configure_logging()
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
        Path(f.name).unlink(missing_ok=True)
        data_logging.configure_logging()


class RayEngine(Engine):
    """Runs a set of metrics over a dataset on a Ray cluster; ``run()`` returns the ``Results`` a local
    ``Engine`` would."""

    def __init__(self, dataset: Dataset, config: RunConfig, progress: ProgressFn | None = None) -> None:
        if config.decode_device != "cpu":
            raise UsageError(
                f"--decode-device {config.decode_device} is not supported with --engine ray (videos are decoded "
                "in CPU tasks); leave --decode-device at cpu"
            )
        if config.ray_workers is not None and config.ray_workers < 1:
            raise UsageError(f"--ray-workers must be at least 1 (got {config.ray_workers})")
        if config.ray_gpus_per_worker is not None and config.ray_gpus_per_worker < 0:
            raise UsageError(f"--ray-gpus-per-worker must be 0 or more (got {config.ray_gpus_per_worker})")
        self.worker_config = config
        # the driver builds the backbones only for their identities (cache keys, metric binding): on the CPU
        super().__init__(dataset, replace(config, device="cpu"), progress)
        self.engine_info: dict[str, Any] = {"name": "ray"}

    # ------------------------------------------------------------------ driver
    def run(self) -> Results:
        ray = require_ray()
        t_start = time.perf_counter()
        units, cache, journal, done = self._start()
        records: list[VideoRecord] = []
        try:
            preps = self._probe_all(units, cache)
            for prep in preps:
                self._forget_stale(prep, done, journal)
            self._run_groups(ray, preps, cache, journal, done, records)
        except BaseException:
            self._abandon(cache, journal)
            raise
        return self._finish_run(t_start, units, records, cache, journal)

    def _probe_all(self, units: list[_Unit], cache: FeatureCache) -> list[_Prepared]:
        """Every unit hashed and looked up in the cache, in dataset order (a few threads: hashing reads the
        files). A unit with work left keeps no arrays here: its worker reads them again."""
        threads = max(2, int(self.config.num_workers))
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aigve-probe") as pool:
            preps = list(pool.map(lambda u: self._prepare(u, cache, probe=True), units))
        for prep in preps:
            if prep.needs_work:
                prep.feats = {}
                prep.details = {}
        return preps

    def _run_groups(
        self,
        ray: Any,
        preps: list[_Prepared],
        cache: FeatureCache,
        journal: Any,
        done: dict[str, list[VideoRecord]],
        records: list[VideoRecord],
    ) -> None:
        needs_set = self._needs_set()
        size = self._group_size()
        groups = [preps[i : i + size] for i in range(0, len(preps), size)]
        rows: list[dict[str, Any]] = []
        sent: dict[int, list[int]] = {}  # group -> positions of the units that went to the cluster
        for gid, group in enumerate(groups):
            todo = [
                (
                    pos,
                    p.unit,
                    p.video_sha,
                    None if self._memory_video(Path(p.unit.path)) else p.frame_samplers,
                )
                for pos, p in enumerate(group)
                if p.needs_work and p.error is None and (p.unit.key not in done or needs_set)
            ]
            if todo:
                rows.append({"gid": gid, "payload": pickle.dumps(todo)})
                sent[gid] = [t[0] for t in todo]
        results: dict[int, dict[str, Any]] = {}
        total, finished, next_gid = len(preps), 0, 0

        def finish_ready() -> None:
            nonlocal finished, next_gid
            while next_gid < len(groups) and (next_gid in results or next_gid not in wanted):
                got = results.pop(next_gid, None)
                for pos, prep in enumerate(groups[next_gid]):
                    errs: dict[tuple[Any, ...], str] = {}
                    if got is not None and pos in got["preps"]:
                        prep, errs = got["preps"][pos]
                    elif got is not None and pos in got["lost"]:
                        prep.error = got["lost"][pos]
                    self._finish_unit(prep, errs, done, journal, records)
                    finished += 1
                    if self.progress:
                        self.progress(finished, total)
                groups[next_gid] = []  # drop the arrays of finished units
                next_gid += 1

        wanted = set(sent)
        self.engine_info["groups"] = len(rows)
        finish_ready()  # the groups before the first one with work: all cached
        if not rows:  # everything was in the cache: no cluster needed
            return
        with ray_session(self.config.ray_address), _quiet_ray_data():
            for gid, outcome in self._stream(ray, rows, cache):
                if gid in results or gid < next_gid:
                    continue  # a retried group that came back twice: the first result stands
                results[gid] = outcome
                finish_ready()
        lost = wanted - set(results) - set(range(next_gid))
        for gid in sorted(lost):  # never came back: an error on each of its videos that went out
            results[gid] = {
                "preps": {},
                "lost": {
                    pos: f"{groups[gid][pos].unit.path}: the Ray cluster returned no result for this video (its "
                    "worker failed); run again with --resume to compute it"
                    for pos in sent[gid]
                },
            }
        finish_ready()

    def _stream(self, ray: Any, rows: list[dict[str, Any]], cache: FeatureCache) -> Iterator[tuple[int, Any]]:
        """The groups through decode tasks and the model actor pool; ``(gid, outcome)`` as they finish."""
        cfg = self.worker_config
        resources = ray.cluster_resources()
        gpus = cfg.ray_gpus_per_worker
        if gpus is None:
            wants_cuda = cfg.device.startswith("cuda") or (
                cfg.device == "auto" and resources.get("GPU", 0) > 0
            )
            gpus = 1.0 if wants_cuda else 0.0
        if cfg.device.startswith("cuda") and resources.get("GPU", 0) <= 0:
            raise UsageError(f"--device {cfg.device} with --engine ray, but the Ray cluster has no GPUs")
        workers = cfg.ray_workers
        if workers is None:
            if gpus > 0:
                workers = max(1, int(resources.get("GPU", 0) // gpus))
            else:
                workers = max(1, int(resources.get("CPU", 1) // 2))
        workers = max(1, min(int(workers), len(rows)))
        workers = self._fit_cpus(
            workers, float(resources.get("CPU", 0)), explicit=cfg.ray_workers is not None
        )
        marker = self._visibility_marker(cache)
        try:
            yield from self._run_pipeline(ray, rows, cache, cfg, marker, workers, gpus)
        finally:
            with contextlib.suppress(OSError):
                cache.discard(marker)

    def _run_pipeline(
        self,
        ray: Any,
        rows: list[dict[str, Any]],
        cache: FeatureCache,
        cfg: RunConfig,
        marker: str,
        workers: int,
        gpus: float,
    ) -> Iterator[tuple[int, Any]]:
        from ray.data import ActorPoolStrategy

        worker_cfg = replace(cfg, progress=False, resume=False, out_dir=None)
        from aigve import __version__

        state = pickle.dumps((self.dataset, worker_cfg, cache.location, marker, set(self.extractor_failures)))
        blob = pickle.dumps((__version__, state))
        self.engine_info.update(
            {
                "ray": ray.__version__,
                "address": cfg.ray_address or "local",
                "workers": workers,
                "gpus_per_worker": gpus,
                "cpus_per_worker": cfg.ray_cpus_per_worker,
                "decode_cpus": cfg.ray_decode_cpus,
                "groups": len(rows),
                "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            }
        )
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        # a decode task holds at most one decoded window (larger ones are streamed by the worker): Ray schedules
        # by that memory, and the reservation also keeps the decode tasks a stage of their own (Ray fuses
        # consecutive maps with equal remote arguments: it would decode inside the model actor, serially)
        ds = ds.map(
            _decode_group,
            fn_kwargs={"config": pickle.dumps(worker_cfg)},
            num_cpus=cfg.ray_decode_cpus,
            memory=_decode_memory(cfg),
        )
        # the run's state goes once into the object store; the actors get a reference to it (nested in a
        # list, so Ray does not resolve it ahead of the constructor)
        ds = ds.map(
            _GroupWorker,
            fn_constructor_kwargs={"blob": [ray.put(blob)]},
            compute=ActorPoolStrategy(size=workers),
            num_cpus=cfg.ray_cpus_per_worker,
            num_gpus=gpus,
        )
        seen_nodes: set[str] = set()
        seen_pids: set[tuple[str, int]] = set()
        for row in ds.iter_rows():
            outcome = pickle.loads(row["payload"])
            if outcome["problem"]:
                raise AigveError(
                    f"--engine ray: the worker on node {outcome['node']} cannot run this evaluation: "
                    f"{outcome['problem']} (every node needs the same aigve, extras and weights: a shared "
                    "AIGVE_CACHE_DIR, or `aigve weights fetch` on each node)"
                )
            if not outcome["cache_ok"]:
                raise UsageError(
                    f"--engine ray: the workers on node {outcome['node']} do not see the feature cache "
                    f"{cache.root} that this driver uses; give --cache-dir on storage every node mounts at the "
                    "same path (NFS, Lustre, ...) or an object-store URL (s3://..., gs://...)"
                )
            seen_nodes.add(outcome["node"])
            seen_pids.add((outcome["node"], outcome["pid"]))
            for key, seconds in outcome["timings"].items():
                self.timings[key] += seconds
            for ext_key, spent in outcome["usage"].items():  # a judge's requests and tokens on the workers
                scorer = self.extractors.get(ext_key)
                if isinstance(scorer, Scorer):
                    scorer.absorb_usage(spent)
            yield int(row["gid"]), outcome
        self.engine_info["worker_nodes"] = sorted(seen_nodes)  # Ray node ids the model actors ran on
        self.engine_info["worker_processes"] = len(seen_pids)  # more than ``workers``: actors were restarted

    def _fit_cpus(self, workers: int, cpus: float, explicit: bool) -> int:
        """Actors that leave the CPUs for at least one decode task: every actor holds its CPUs for the whole
        run, so actors that take them all would wait for ever on frames no task can decode. A default number of
        actors is lowered to fit; an explicit ``--ray-workers`` that does not fit is a usage error."""
        cfg = self.worker_config
        fits = (
            int((cpus - cfg.ray_decode_cpus) // cfg.ray_cpus_per_worker)
            if cfg.ray_cpus_per_worker > 0
            else workers
        )
        if fits >= workers:
            return workers
        if explicit or fits < 1:
            raise UsageError(
                f"--engine ray: {workers} model actor(s) of {cfg.ray_cpus_per_worker:g} CPU would leave no CPU for "
                f"the decode tasks ({cfg.ray_decode_cpus:g} CPU each) on a cluster of {cpus:g} CPUs; use "
                f"--ray-workers {max(1, fits)} or fewer"
                + ("" if fits >= 1 else ", or a cluster with more CPUs")
            )
        log.info("--engine ray: %d model actor(s), to leave CPUs for decoding", fits)
        return fits

    def _visibility_marker(self, cache: FeatureCache) -> str:
        """A key the driver writes before the run; a worker that cannot read it does not share the cache."""
        key = feature_key(uuid.uuid4().hex, {"ray": "driver-marker", "version": 1}, "-", "-")
        cache.put(key, np.array([1], dtype=np.int64))
        return key

    def _provenance(self, cache: FeatureCache) -> dict[str, Any]:
        prov = super()._provenance(cache)
        prov["engine"] = dict(self.engine_info)
        prov["device"] = self.worker_config.device  # where the workers ran the models
        return prov


# ---------------------------------------------------------------------- on the cluster
#: a decode task's process besides the frames: Python, numpy, PyAV, and torch (aigve imports it), measured
#: at about 380 MiB resident on Linux with Ray 2.60
DECODE_PROCESS_MIB = 512.0


def _decode_memory(cfg: RunConfig) -> float:
    """Bytes a decode task reserves: the largest window it decodes whole (``stream_above_mib``; 1 GiB when
    nothing is streamed), plus its process."""
    window = cfg.stream_above_mib if cfg.stream_above_mib is not None else 1024.0
    return float((window + DECODE_PROCESS_MIB) * 2**20)


#: the counters of a scorer's ``usage`` that add up across workers
_USAGE_COUNTS = ("requests", "cached", "failed", "prompt_tokens", "completion_tokens", "distinct_prompts")


class _ReadFailed(AigveError):
    """A decode task could not read a video; the message is the video's error."""


def _decode_group(row: dict[str, Any], config: bytes) -> dict[str, Any]:
    """Decode task: each video of a group decoded once, only the rows its samplers read kept."""
    from aigve.video.decode import decode_video

    cfg: RunConfig = pickle.loads(config)
    decoded: list[tuple[Any, ...]] = []
    for _pos, unit, _sha, samplers in pickle.loads(row["payload"]):
        if samplers is None:  # an in-memory video: the worker has its frames
            decoded.append(("none", 0.0))
            continue
        path = Path(unit.path)
        t0 = time.perf_counter()
        try:
            if stream_plan(path, cfg, list(samplers)) is not None:
                decoded.append(("stream", 0.0))  # a long video: the worker streams it from the file
                continue
            clip = decode_video(path, cfg.window)
            rows = {r for s in samplers for r in s.select(clip.num_frames, clip.fps)}
            ids = frozenset(s.id for s in samplers)
            decoded.append(("clip", time.perf_counter() - t0, SparseClip.keep(clip, rows), ids))
        except Exception as exc:
            decoded.append(("error", time.perf_counter() - t0, read_error(exc, path)))
    return {"gid": row["gid"], "payload": row["payload"], "decoded": pickle.dumps(decoded)}


class _GroupWorker:
    """Model actor: every backbone of the run loaded once; one group of videos per call."""

    def __init__(self, blob: list[Any]) -> None:
        import ray
        import torch

        from aigve import __version__

        self._spent: dict[tuple[Any, ...], dict[str, int]] = {}
        self.cache_ok = True
        self.problem: str | None = None  # why this actor cannot run the run's work (the driver stops the run)
        version, state = pickle.loads(ray.get(blob[0]))
        if version != __version__:  # checked before the state, whose classes may differ between versions
            self.problem = f"aigve {version} runs on the driver but aigve {__version__} on this node"
            return
        dataset, config, cache_root, marker, driver_failures = pickle.loads(state)
        torch.set_num_threads(max(1, int(config.ray_cpus_per_worker)))
        self.window = config.window
        self.engine = Engine(dataset, config)
        self.engine._build_metrics()
        self.engine._build_extractors()
        self.engine._lease_wait = True  # a video another worker holds: wait for it, then read its arrays
        self.engine.timings.clear()  # each actor's load time is not the run's
        # a backbone that loaded on the driver but not here (weights missing on this node, another version of
        # a dependency): the run stops with the reason, rather than reporting every video's features as missing
        for key, msg in self.engine.extractor_failures.items():
            if key not in driver_failures:
                self.problem = f"backbone {key[0]} loaded on the driver but not on this node: {msg}"
                break
        self.cache = open_feature_cache(cache_root)
        self.cache_ok = self.cache.get(marker, count=False) is not None

    def _decoder(self, item: tuple[Any, ...]) -> Any:
        def decode(path: Path, samplers: list[Sampler]) -> Clip:
            from aigve.video.decode import decode_video

            if item[0] == "error":
                raise _ReadFailed(item[2])
            if item[0] == "clip" and {s.id for s in samplers} <= item[3]:
                return item[2]
            return decode_video(path, self.window)  # not decoded ahead (or for other samplers): here

        return decode

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:

        if self.problem is not None:
            return {"gid": row["gid"], "payload": pickle.dumps(self._outcome({}, {}, {}))}
        eng, cache = self.engine, self.cache
        items = pickle.loads(row["payload"])
        decoded = pickle.loads(row["decoded"])
        preps: list[tuple[int, _Prepared]] = []
        if self.problem is None and self.cache_ok:
            for (pos, unit, sha, _samplers), item in zip(items, decoded, strict=True):
                prep = eng._prepare(unit, cache, sha=sha, decoder=self._decoder(item))
                prep.decode_seconds += float(item[1])
                preps.append((pos, prep))
        group = [p for _, p in preps]
        if len(group) > 1:
            eng._extract_group(group, cache)
        errs = [eng._extract(p, cache) for p in group]
        eng._run_scorers(group, errs, cache)
        out: dict[int, tuple[_Prepared, dict[tuple[Any, ...], str]]] = {}
        for (pos, prep), perr in zip(preps, errs, strict=True):
            if prep.lease is not None:  # its arrays are stored: other workers find them
                prep.lease.release()
            prep.lease, prep.clip, prep.sampled = None, None, {}
            out[pos] = (prep, perr)
        timings = dict(eng.timings)
        timings.pop("decode", None)  # the driver adds each video's decode time once
        eng.timings.clear()
        spent: dict[tuple[Any, ...], dict[str, int]] = {}  # what each scorer spent on this group (judges)
        for key, ext in eng.extractors.items():
            used = ext.usage() if isinstance(ext, Scorer) else None
            if used is None:
                continue
            now = {k: int(v) for k, v in used.items() if k in _USAGE_COUNTS}
            before = self._spent.get(key, {})
            spent[key] = {k: v - before.get(k, 0) for k, v in now.items()}
            self._spent[key] = now
        return {"gid": row["gid"], "payload": pickle.dumps(self._outcome(out, timings, spent))}

    def _outcome(
        self, preps: dict[int, Any], timings: dict[str, float], spent: dict[Any, Any]
    ) -> dict[str, Any]:
        import ray

        return {
            "preps": preps,
            "lost": {},
            "timings": timings,
            "usage": spent,
            "cache_ok": self.cache_ok,
            "problem": self.problem,
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
        }
