"""Worker processes: each pulls jobs from the store and runs ``aigve.api.evaluate`` on them.

Workers are separate processes (``multiprocessing`` spawn) so a crash or a hung model cannot take the
server down, and they live across jobs so imports and loaded backbones stay warm: within one worker,
extractors are built once per (backbone, device, batch size, options) and reused by later jobs.

A job runs with ``out_dir=<job folder>/out, resume=True`` and the server's shared feature cache, so a
job that is re-queued (server restart, worker death) continues where its journal stopped. The
``progress`` callback writes progress to the store, beats the heart and raises ``JobCancelled`` when
the job has been cancelled (checked after every video).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import threading
import time
import traceback
from typing import Any

from aigve.server.jobs import JobStore
from aigve.server.settings import ServerSettings

log = logging.getLogger("aigve.server.worker")


class JobCancelled(Exception):
    """Raised from the progress callback to stop a cancelled job between two videos."""


class ParentGone(Exception):
    """The server process died: the worker stops and its job is re-queued by the next server."""


# ---------------------------------------------------------------------------- extractor reuse
_EXTRACTORS: dict[tuple[Any, ...], Any] = {}


def _install_extractor_pool() -> None:
    """Let the engine reuse loaded extractors across the jobs of this worker process.

    The engine calls ``build_extractor(name, device=..., batch_size=..., **options)`` per run; within
    a worker the same arguments give back the same (already loaded) instance. Extractors are stateless
    between ``extract`` calls, so sharing them across sequential jobs changes no result.
    """
    from aigve.engine import plan

    original = plan.build_extractor
    if getattr(original, "_aigve_pooled", False):
        return

    def pooled(name: str, **kwargs: Any) -> Any:
        try:
            key: tuple[Any, ...] = (name, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        except Exception:  # unorderable options: no reuse
            return original(name, **kwargs)
        ext = _EXTRACTORS.get(key)
        if ext is None:
            ext = original(name, **kwargs)
            _EXTRACTORS[key] = ext
        return ext

    pooled._aigve_pooled = True  # type: ignore[attr-defined]
    plan.build_extractor = pooled


# ---------------------------------------------------------------------------- one job
def summarize(results: Any) -> dict[str, Any]:
    """What the job row keeps: exit code, primary values and counts (the files hold the rest)."""
    from aigve.results.summary import error_counts

    metrics = {}
    for name, agg in results.aggregates.items():
        metrics[name] = {
            "value": agg.value,
            "primary": agg.primary,
            "outputs": {k: v.value for k, v in agg.outputs.items()},
            "higher_is_better": agg.outputs[agg.primary].higher_is_better if agg.outputs else None,
            "n_errors": agg.n_errors,
            "error": agg.error,
        }
    return {
        "exit_code": results.exit_code,
        "n_videos": len(results.entries),
        "n_failed_videos": len(error_counts(results).videos),  # as results.json and the report count them
        "metrics": metrics,
        "errors": [e.get("error") for e in results.errors][:50],
    }


def run_job(settings: ServerSettings, store: JobStore, job_id: str, parent_pid: int | None = None) -> str:
    """Run one claimed job to its end; returns the final status."""
    from aigve.api import evaluate
    from aigve.errors import AigveError
    from aigve.server.datasets import build_dataset, redactor
    from aigve.server.security import ApiError

    job = store.get_job(job_id)
    if job is None:
        return "missing"
    p = job.params
    red = redactor(settings)
    job_dir = settings.job_dir(job_id)
    out_dir = job_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)

    stop_beat = threading.Event()

    def beat() -> None:  # keeps the lease while one long video is being processed
        while not stop_beat.wait(max(1.0, settings.lease_seconds / 4)):
            try:
                store.heartbeat(job_id)
            except Exception:  # a busy store must not kill the job
                log.debug("heartbeat failed", exc_info=True)

    def progress(done: int, total: int) -> None:
        if parent_pid is not None and os.getppid() != parent_pid:
            raise ParentGone
        if store.progress(job_id, done, total):
            raise JobCancelled

    beater = threading.Thread(target=beat, daemon=True, name=f"aigve-heartbeat-{job_id[:8]}")
    beater.start()
    try:
        ds = build_dataset(settings, p["dataset"])
        store.progress(job_id, 0, len(ds.entries))
        device = p.get("device") or settings.device
        results = evaluate(
            ds,
            p["metrics"],
            metric_options=p.get("metric_options") or {},
            backbone_options=p.get("backbone_options") or {},
            max_len=p.get("max_len"),
            max_seconds=p.get("max_seconds"),
            fps=p.get("fps"),
            batch_size=int(p.get("batch_size") or 32),
            device=device,
            precision=str(p.get("precision") or "fp32"),
            cache_dir=settings.cache_dir,
            out_dir=out_dir,
            resume=True,
            bootstrap=int(p.get("bootstrap", settings.bootstrap)),
            seed=int(p.get("seed") or 0),
            progress=progress,
            # the full HTML report embeds file paths and prompts: the API serves a redacted one instead
            report=False,
            engine=settings.engine,
            ray_address=settings.ray_address,
            ray_workers=settings.ray_workers,
        )
    except JobCancelled:
        store.finish(job_id, "cancelled", error="cancelled by request")
        shutil.rmtree(job_dir, ignore_errors=True)
        return "cancelled"
    except ParentGone:
        raise
    except ApiError as exc:
        store.finish(job_id, "failed", error=red.text(exc.message))
        return "failed"
    except AigveError as exc:
        store.finish(job_id, "failed", error=red.text(str(exc)))
        return "failed"
    except Exception as exc:
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
        store.finish(job_id, "failed", error=f"internal error ({type(exc).__name__}); see the server log")
        return "failed"
    finally:
        stop_beat.set()
    summary = red.deep(summarize(results))
    current = store.get_job(job_id)
    if current is not None and current.cancel_requested is not None:
        store.finish(job_id, "cancelled", error="cancelled by request")
        shutil.rmtree(job_dir, ignore_errors=True)
        return "cancelled"
    store.finish(job_id, "succeeded", summary=summary)
    return "succeeded"


# ---------------------------------------------------------------------------- process
def _die_with_parent() -> None:
    """Linux: get SIGTERM when the server dies, so no orphan keeps running jobs. The signal follows
    the spawning *thread*: ``WorkerPool`` must start workers from the server's main thread."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def worker_name(instance: str, pid: int) -> str:
    """The name a worker claims jobs under: host, the server instance's random token, pid. The token keeps
    names apart where containers share a fixed hostname and their workers the same pids."""
    return f"{socket.gethostname()}:{instance}:{pid}"


def worker_main(
    settings_dict: dict[str, Any], index: int, stop: Any, parent_pid: int, instance: str = "0"
) -> None:
    """Entry point of a worker process: claim, run, repeat until ``stop`` is set or the server dies."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    logging.basicConfig(level=logging.INFO, format=f"[worker {index}] %(levelname)s %(message)s")
    settings = ServerSettings.from_dict(settings_dict)
    store = JobStore(str(settings.database_url))
    _install_extractor_pool()
    import aigve.api  # noqa: F401  (import the engine before the first job, not during it)

    try:
        _worker_loop(settings, store, stop, parent_pid, worker_name(instance, os.getpid()))
    finally:
        store.close()
        logging.shutdown()
        os._exit(0)  # skip the interpreter teardown of torch & co (seconds); nothing is left to flush


def _worker_loop(settings: ServerSettings, store: JobStore, stop: Any, parent_pid: int, name: str) -> None:
    while not stop.is_set():
        if os.getppid() != parent_pid:
            return
        try:
            job = store.claim(name)
        except Exception:
            log.warning("could not read the job store", exc_info=True)
            time.sleep(1.0)
            continue
        if job is None:
            stop.wait(settings.poll_interval)
            continue
        log.info("job %s: started (attempt %d)", job.id, job.attempts)
        try:
            status = run_job(settings, store, job.id, parent_pid)
        except ParentGone:
            return
        log.info("job %s: %s", job.id, status)


class WorkerPool:
    """The server's worker processes: started, watched (a dead one is replaced and its job re-queued)
    and stopped with the server."""

    def __init__(self, settings: ServerSettings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.ctx = mp.get_context("spawn")
        self.stop_event = self.ctx.Event()
        self.procs: list[Any] = []
        self.instance = secrets.token_hex(4)

    def _spawn(self, index: int) -> Any:
        proc = self.ctx.Process(
            target=worker_main,
            args=(self.settings.to_dict(), index, self.stop_event, os.getpid(), self.instance),
            name=f"aigve-worker-{index}",
            daemon=True,
        )
        proc.start()
        return proc

    def start(self) -> None:
        self.procs = [self._spawn(i) for i in range(self.settings.workers)]

    def alive(self) -> int:
        return sum(1 for p in self.procs if p.is_alive())

    def _names(self, proc: Any) -> str:
        return worker_name(self.instance, proc.pid)

    def supervise(self) -> None:
        """Replace dead workers (re-queueing their job) and kill workers stuck on a cancelled job."""
        now = time.time()
        running = {j.worker: j for j in self.store.running_jobs() if j.worker}
        for i, proc in enumerate(self.procs):
            job = running.get(self._names(proc))
            if not proc.is_alive():
                if self.stop_event.is_set():
                    continue
                if job is not None:
                    self.store.requeue(
                        job.id, f"worker exited with code {proc.exitcode}", self.settings.max_attempts
                    )
                log.warning("worker %d exited (code %s); starting a new one", i, proc.exitcode)
                self.procs[i] = self._spawn(i)
            elif (
                job is not None
                and job.cancel_requested is not None
                and now - job.cancel_requested > self.settings.cancel_grace_seconds
            ):
                log.warning("worker %d still busy with cancelled job %s; restarting it", i, job.id)
                proc.kill()
                proc.join(5)
                self.store.requeue(job.id, "cancelled", self.settings.max_attempts)
                shutil.rmtree(self.settings.job_dir(job.id), ignore_errors=True)
                self.procs[i] = self._spawn(i)

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the workers. Jobs still running stay ``running`` in the store: the next server start
        re-queues them and they resume from their journal."""
        self.stop_event.set()
        deadline = time.time() + timeout
        for p in self.procs:
            p.join(max(0.0, deadline - time.time()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(2)
            if p.is_alive():
                p.kill()
                p.join(2)
