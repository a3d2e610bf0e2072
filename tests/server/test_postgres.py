"""The job store on PostgreSQL, against a real throwaway cluster.

A module fixture runs ``initdb`` in a temporary folder and starts ``postgres`` on a free port of
127.0.0.1 only (its Unix socket in that folder too); it is stopped and removed at teardown, and dies
with the test process (PR_SET_PDEATHSIG) if that is killed. PostgreSQL refuses to run as root, so as
root the cluster runs as the ``postgres`` (Debian's package user) or ``nobody`` user, in a folder
under the system temp dir that this user owns (pytest's own tmp folders are private to root).

Covered: the store's contract on both backends (lifecycle, cancel, requeue, ownership after a lost
job, uploads, retention), exactly-once claiming with 4 threads x 40 jobs, a live worker's job never
taken by another instance while a dead process's job is, two ``aigve serve`` instances on two ports
sharing one database (10 jobs, each result checked against the flicker formula), and a crash and
restart of one instance with a job running (re-queued, resumed, finished; the other instance's
running job untouched).

Skips without psycopg or the PostgreSQL server binaries (Debian: ``postgresql-15``; found on PATH,
in ``$AIGVE_PG_BINDIR`` or ``/usr/lib/postgresql/*/bin``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aigve.server.jobs import JobLost, JobStore
from tests.server.conftest import REPO, ServerProc, reference_flicker, wait_job, write_clip

ADMIN_USER = "aigve"


# ---------------------------------------------------------------------------- the cluster
def pg_bindir() -> Path | None:
    """A folder with ``initdb`` and ``postgres``, or None."""
    cands: list[Path] = []
    if os.environ.get("AIGVE_PG_BINDIR"):
        cands.append(Path(os.environ["AIGVE_PG_BINDIR"]))
    found = shutil.which("initdb")
    if found:
        cands.append(Path(found).parent)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
        reverse=True,
    )
    cands.extend(versions)
    for c in cands:
        if (c / "initdb").is_file() and (c / "postgres").is_file():
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> dict[str, Any]:
    """``subprocess`` credentials for the PostgreSQL processes: none unless we are root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    pytest.skip("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


def _die_with_parent() -> None:  # runs in the child after the uid change, before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG


class PgCluster:
    """A running throwaway cluster; ``new_database()`` gives each test its own database."""

    def __init__(self, base: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.port = port
        self.proc = proc

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{ADMIN_USER}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self) -> str:
        log = self.base / "postgres.log"
        return log.read_text(errors="replace")[-3000:] if log.is_file() else ""


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """initdb + postgres on 127.0.0.1:<free port>, trust auth for ``aigve``; always stopped."""
    psycopg = pytest.importorskip("psycopg")
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (Debian: apt-get install postgresql-15)")
    creds = _run_as()
    if creds:  # root: a folder the unprivileged user owns (pytest's tmp root is mode 0700)
        base = Path(tempfile.mkdtemp(prefix="aigve-pg-"))
        os.chown(base, creds["user"], creds["group"])
    else:
        base = tmp_path_factory.mktemp("pg")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
    proc: subprocess.Popen[bytes] | None = None
    try:
        r = subprocess.run(
            [str(bindir / "initdb"), "-D", str(base / "data"), "-U", ADMIN_USER, "--auth=trust"]
            + ["-E", "UTF8", "--no-sync", "--no-instructions"],
            cwd=base, env=env, capture_output=True, text=True, timeout=120, **creds,
        )  # fmt: skip
        if r.returncode != 0:
            pytest.fail(f"initdb failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        port = _free_port()
        log = open(base / "postgres.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(base / "data"), "-p", str(port), "-k", str(base)]
            + ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"]
            + ["-c", "full_page_writes=off", "-c", "max_connections=200"],
            cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            **creds,
        )  # fmt: skip
        log.close()
        cluster = PgCluster(base, port, proc)
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"postgres exited ({proc.returncode}):\n{cluster.log_tail()}")
            try:
                with psycopg.connect(cluster.url(), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if time.time() > deadline:
                    pytest.fail(f"postgres did not accept connections in 30 s:\n{cluster.log_tail()}")
                time.sleep(0.1)
        yield cluster
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    cluster: PgCluster = request.getfixturevalue("pg")
    return cluster.new_database()


@pytest.fixture
def pg_url(pg: PgCluster) -> str:
    return pg.new_database()


def _eventually(cond: Any, timeout: float = 5.0) -> bool:
    """Poll ``cond`` until true: PostgreSQL releases a closed session's locks a moment later."""
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            return False
        time.sleep(0.02)
    return True


# ---------------------------------------------------------------------------- the store's contract
def test_claims_each_job_exactly_once_4_threads_x_40_jobs(store_url: str) -> None:
    store = JobStore(store_url)
    ids = [store.create_job({"n": i}).id for i in range(40)]
    claimed: dict[str, list[str]] = {f"w{i}": [] for i in range(4)}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        s = JobStore(store_url)  # its own connection, like a worker process
        try:
            start.wait()
            while (job := s.claim(name)) is not None:
                assert job.status == "running" and job.worker == name and job.attempts == 1
                claimed[name].append(job.id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    got = [j for js in claimed.values() for j in js]
    assert sorted(got) == sorted(ids) and len(set(got)) == 40  # every job, once
    assert store.counts() == {"running": 40} and store.queue_depth() == 0
    rows = {j.id: j for j in store.running_jobs()}
    for name, js in claimed.items():
        assert all(rows[j].worker == name and rows[j].attempts == 1 for j in js)


def test_lifecycle_cancel_and_requeue(store_url: str) -> None:
    store = JobStore(store_url)
    a = store.create_job({"x": 1}, upload_id="u" * 32)
    b = store.create_job({"x": 2})
    assert store.queue_depth() == 2 and store.upload_in_use("u" * 32)
    assert [j.id for j in store.list_jobs()] == [b.id, a.id]  # newest first
    job = store.claim("w")
    assert job is not None and job.id == a.id and job.status == "running" and job.attempts == 1
    assert job.params == {"x": 1}
    assert store.progress(a.id, 1, 3) is False
    got = store.get_job(a.id)
    assert (got.progress_done, got.progress_total) == (1, 3)
    assert store.request_cancel(b.id).status == "cancelled"  # queued: cancelled at once
    assert store.request_cancel(a.id).status == "running"  # running: flagged
    assert store.progress(a.id, 2, 3) is True  # the worker learns it must stop
    store.requeue(a.id, "worker died", max_attempts=3)  # cancel requested: ends cancelled
    assert store.get_job(a.id).status == "cancelled" and not store.upload_in_use("u" * 32)
    c = store.create_job({"x": 3})
    for attempt in (1, 2):
        assert store.claim("w").id == c.id
        store.requeue(c.id, "worker died", max_attempts=2)
        assert store.get_job(c.id).status == ("queued" if attempt == 1 else "failed")
    assert "gave up after 2 attempts" in store.get_job(c.id).error
    assert store.claim("w") is None
    d = store.create_job({"x": 4})
    assert store.claim("w").id == d.id
    store.finish(d.id, "succeeded", summary={"metrics": {"flicker": {"value": 1.5}}})
    done = store.get_job(d.id)
    assert done.status == "succeeded" and done.summary == {"metrics": {"flicker": {"value": 1.5}}}
    store.finish(d.id, "failed", error="late")  # a finished job stays finished
    assert store.get_job(d.id).status == "succeeded"
    assert store.counts() == {"cancelled": 2, "failed": 1, "succeeded": 1}


def test_a_worker_that_lost_its_job_cannot_touch_it(store_url: str) -> None:
    """The job of a worker whose session went away is recovered and claimed by another worker; the
    first worker's progress raises JobLost and its finish changes nothing."""
    old, other = JobStore(store_url), JobStore(store_url)
    job = other.create_job({"x": 1})
    assert old.claim("old").id == job.id
    assert job.id not in {j.id for j in other.stale_running(lease=3600)}  # alive on both backends
    old.close()  # the session ends (PostgreSQL frees the job's lock); SQLite: lease=-1 below
    assert _eventually(lambda: job.id in {j.id for j in other.stale_running(lease=-1)})
    other.requeue(job.id, "worker lost", max_attempts=3)
    new = JobStore(store_url)
    assert new.claim("new").attempts == 2
    with pytest.raises(JobLost):
        old.progress(job.id, 5, 9)
    old.heartbeat(job.id)
    old.finish(job.id, "failed", error="stale worker")  # a no-op
    row = new.get_job(job.id)
    assert (row.status, row.worker, row.attempts, row.progress_done, row.error) == (
        "running",
        "new",
        2,
        0,
        None,
    )
    assert new.progress(job.id, 1, 9) is False
    new.finish(job.id, "succeeded", summary={})
    assert new.get_job(job.id).status == "succeeded"
    for s in (old, other, new):
        s.close()


def test_uploads_and_retention(store_url: str) -> None:
    store = JobStore(store_url)
    files = [{"name": "a.mp4", "size": 10, "container": "mp4"}]
    up = store.create_upload("f" * 32, files, "prompts.json", 10)
    other = store.create_upload("e" * 32, files, None, 10)
    got = store.get_upload(up.id)
    assert (got.files, got.prompts, got.total_bytes) == (files, "prompts.json", 10)
    assert store.get_upload("0" * 32) is None
    job = store.create_job({"x": 1}, upload_id=up.id)
    future = time.time() + 10
    assert store.expired_uploads(future) == [other.id]  # the one a queued job uses is kept
    store.claim("w")
    assert store.expired_uploads(future) == [other.id]  # and while it runs
    assert store.expired_jobs(future) == []  # active jobs never expire
    store.finish(job.id, "succeeded", summary={})
    assert [j.id for j in store.expired_jobs(future)] == [job.id]
    assert store.expired_jobs(time.time() - 3600) == []  # not old enough
    assert sorted(store.expired_uploads(future)) == sorted([up.id, other.id])
    store.delete_job(job.id)
    store.delete_upload(up.id)
    assert store.get_job(job.id) is None and store.get_upload(up.id) is None
    assert store.get_upload(other.id) is not None


# ---------------------------------------------------------------------------- PostgreSQL only
def test_schema_creation_is_safe_concurrently(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            JobStore(pg_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def test_a_live_workers_job_is_never_requeued_a_dead_processs_is(pg_url: str, tmp_path: Path) -> None:
    """Liveness is the claiming session's advisory lock: another instance leaves a job alone while
    its worker lives (however old its heartbeat) and recovers it once the worker process is killed."""
    instance = JobStore(pg_url)
    instance.requeue_wait = 0.2
    live = instance.create_job({"x": "live"})
    held = JobStore(pg_url)
    assert held.claim("live-worker").id == live.id  # this connection is another "process"
    assert instance.stale_running(lease=0) == []
    instance.requeue(live.id, "should not happen", max_attempts=3)
    assert instance.get_job(live.id).status == "running"

    dead = instance.create_job({"x": "dead"})
    code = (
        "import os, sys, time\n"
        "from aigve.server.jobs import JobStore\n"
        "store = JobStore(sys.argv[1])\n"
        "job = store.claim('doomed')\n"
        "print(job.id, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-c", code, pg_url], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == dead.id
        assert instance.stale_running(lease=0) == []  # the claiming process is alive
    finally:
        proc.kill()
        proc.wait(10)
    # the server frees the lock as soon as it sees the session end
    assert _eventually(lambda: [j.id for j in instance.stale_running(lease=3600)] == [dead.id])
    instance.requeue(dead.id, "worker gone", max_attempts=3)
    assert instance.get_job(dead.id).status == "queued"
    assert instance.get_job(live.id).status == "running" and held.progress(live.id, 1, 2) is False
    held.close()


def test_reconnects_and_keeps_its_job_after_the_session_is_terminated(pg_url: str) -> None:
    """A worker whose session is cut (database restart, network) reconnects on its next call and
    takes its job's lock back, unless the job was recovered by someone else meanwhile."""
    import psycopg

    worker, other = JobStore(pg_url), JobStore(pg_url)
    kept, lost = worker.create_job({"x": 1}), worker.create_job({"x": 2})
    assert worker.claim("w").id == kept.id and worker.claim("w").id == lost.id
    pid = worker._conn().info.backend_pid
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # both jobs look dead now; another instance recovers one of them before the worker is back
    assert _eventually(lambda: {j.id for j in other.stale_running(lease=3600)} == {kept.id, lost.id})
    other.requeue(lost.id, "session gone", max_attempts=3)
    assert worker.progress(kept.id, 1, 2) is False  # transparently on a new session
    assert worker._conn().info.backend_pid != pid
    assert other.stale_running(lease=3600) == []  # kept is held again; lost is queued
    with pytest.raises(JobLost):
        worker.progress(lost.id, 1, 2)
    assert other.get_job(lost.id).status == "queued"
    worker.finish(kept.id, "succeeded", summary={})
    assert other.get_job(kept.id).status == "succeeded"
    worker.close()
    other.close()


# ---------------------------------------------------------------------------- two server instances
def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(stat.parent.name))
    return out


def _start_all(*servers: ServerProc) -> None:
    """Start servers side by side (each takes a few seconds to bring its worker up)."""
    errors: list[BaseException] = []

    def start(srv: ServerProc) -> None:
        try:
            srv.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(srv,)) for srv in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class Pair:
    """Two ``aigve serve`` instances (one worker each) sharing a database and a state folder, as
    two hosts would share a database and a file system."""

    def __init__(self, base: Path, url: str) -> None:
        self.url = url
        self.state = base / "state"
        self.data = base / "data"
        self.data.mkdir(parents=True)
        self.a = self.new_instance()
        self.b = self.new_instance()
        self.stopped: list[ServerProc] = []

    def new_instance(self) -> ServerProc:
        return ServerProc(self.state, [self.data], workers=1, extra=["--database-url", self.url])


@pytest.fixture(scope="module")
def pair(pg: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    p = Pair(tmp_path_factory.mktemp("pair"), pg.new_database())
    try:
        _start_all(p.a, p.b)
        yield p
    finally:
        stoppers = [threading.Thread(target=srv.stop) for srv in (p.a, p.b, *p.stopped)]
        for t in stoppers:  # side by side: each waits a few seconds for its worker
            t.start()
        for t in stoppers:
            t.join()


@pytest.mark.slow
def test_two_instances_share_one_database(pair: Pair) -> None:
    clips = [write_clip(pair.data / f"d{i}" / f"v{i}.mp4", 100 + i) for i in range(10)]
    with pair.a.client() as ca, pair.b.client() as cb:
        assert ca.get("/healthz").json()["store"] == cb.get("/healthz").json()["store"] == "postgresql"
        ids = []
        for i in range(10):
            c = ca if i % 2 == 0 else cb
            r = c.post("/v1/jobs", json={"dataset": {"path": f"d{i}"}, "metrics": ["flicker"]})
            assert r.status_code == 202, r.text
            ids.append(r.json()["job_id"])
        for i, job_id in enumerate(ids):
            other = cb if i % 2 == 0 else ca  # each job read through the instance it was not sent to
            j = wait_job(other, job_id, timeout=60)
            assert j["status"] == "succeeded" and j["attempts"] == 1, j
            rows = other.get(f"/v1/jobs/{job_id}/per_video").json()["rows"]
            got = {r["video_id"]: r["value"] for r in rows if r["output"] == "flicker"}
            assert got == pytest.approx({clips[i].stem: reference_flicker(clips[i])}, rel=1e-9)
    store = JobStore(pair.url)
    workers = {store.get_job(j).worker for j in ids}
    store.close()
    assert len(workers) == 2, workers  # both instances' workers took jobs from the shared queue


@pytest.mark.slow
def test_restart_of_one_instance_with_a_running_job(pair: Pair) -> None:
    """Instance A crashes with a job running and comes back: its job is re-queued and finishes
    (resumed from the journal and the feature cache); B's job, running all along, is never touched."""
    from aigve.metrics.catalog import availability, get_metric_class

    # frame_consistency (EfficientNet-Lite0 on every frame) makes a job of 20 small clips outlast an
    # instance restart, so B's job is still running when A comes back and recovers (10 clips did before
    # frame extractors batched across videos, which made the job about twice as fast)
    slow = (
        "frame_consistency"
        if availability(get_metric_class("frame_consistency").spec)["available"]
        else "motion"
    )
    n_videos, frames = (20, 16) if slow == "frame_consistency" else (60, 24)
    folders = {
        name: [
            write_clip(pair.data / name / f"{name}{i:02d}.mp4", seed + i, t=frames, h=64, w=64)
            for i in range(n_videos)
        ]
        for name, seed in (("ja", 700), ("jb", 800))
    }
    store = JobStore(pair.url)
    body = {"metrics": ["flicker", slow], "bootstrap": 0}
    try:
        assert pair.a.proc is not None
        a_pids = {str(pid) for pid in _children(pair.a.proc.pid)}  # names are host:instance-token:pid
        with pair.a.client() as ca:
            ids = [
                ca.post("/v1/jobs", json={"dataset": {"path": p}, **body}).json()["job_id"] for p in folders
            ]
        deadline = time.time() + 60
        while time.time() < deadline:  # both running, one on each instance, some videos done
            jobs = [store.get_job(j) for j in ids]
            if all(j.status == "running" and j.progress_done >= 1 for j in jobs):
                break
            assert all(j.status in ("queued", "running") for j in jobs), jobs
            time.sleep(0.05)
        on_a = [j for j in jobs if (j.worker or "").rsplit(":", 1)[-1] in a_pids]
        on_b = [j for j in jobs if j not in on_a]
        assert len(on_a) == len(on_b) == 1, (a_pids, jobs)
        ja, jb = on_a[0], on_b[0]

        pair.a.stop(signal.SIGKILL)  # a crash; A's worker dies with it (PR_SET_PDEATHSIG)
        pair.stopped.append(pair.a)
        row = store.get_job(ja.id)
        assert row.status == "running" and row.attempts == 1
        done_before = row.progress_done
        pair.a = pair.new_instance()
        pair.a.start()  # recovers A's job at start-up
        row_b = store.get_job(jb.id)
        # B's job was running all along and the restart left it alone
        assert (row_b.status, row_b.attempts, row_b.worker) == ("running", 1, jb.worker), row_b

        with pair.b.client() as cb:
            fa = wait_job(cb, ja.id, timeout=90)
            fb = wait_job(cb, jb.id, timeout=90)
            assert fa["status"] == "succeeded" and fa["attempts"] == 2, fa
            assert fb["status"] == "succeeded" and fb["attempts"] == 1, fb
            res = cb.get(f"/v1/jobs/{ja.id}/results").json()
            assert res["provenance"]["resumed"] is True
            assert res["provenance"]["cache"]["hits"] >= done_before
            for job in (ja, jb):
                paths = folders[job.params["dataset"]["path"]]
                rows = cb.get(f"/v1/jobs/{job.id}/per_video").json()["rows"]
                got = {r["video_id"]: r["value"] for r in rows if r["output"] == "flicker"}
                assert got == pytest.approx({p.stem: reference_flicker(p) for p in paths}, rel=1e-9)
                assert sum(1 for r in rows if r["output"] == slow) == len(paths)  # no duplicates
        assert store.get_job(jb.id).worker == jb.worker  # B's job ran on B's worker only
    finally:
        store.close()
