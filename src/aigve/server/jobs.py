"""The durable job store: one ``jobs`` table and one ``uploads`` table.

SQLite (the default, WAL mode) serves one server instance and its worker processes. A
``postgresql://`` URL runs the same SQL through psycopg 3 (``?`` placeholders rewritten to ``%s``) so
several server instances can share one queue.

A job moves ``queued -> running -> succeeded | failed | cancelled``. A claimed job belongs to one
worker, recorded as ``(worker, attempts)``: ``progress``, ``heartbeat`` and ``finish`` from a store
that claimed the job only touch the row while that pair still matches, so a worker that lost its job
(re-queued and claimed by another) cannot overwrite the new owner's row.

Who may re-queue a running job:

- SQLite: the one server that uses the file re-queues all ``running`` jobs when it starts, and the
  job of a worker process it saw die.
- PostgreSQL: the claiming worker takes a session-level advisory lock on the job (namespace
  ``ADVISORY_NAMESPACE``, key from the job id) in the claim's transaction and keeps it until it
  finishes the job. PostgreSQL releases the lock by itself when that worker's database session ends
  (the process exited or was killed; a vanished host is detected by TCP keepalives within about a
  minute). A running job whose lock is free therefore has no live worker, and ``stale_running`` and
  ``requeue`` re-queue exactly those (checked with ``pg_try_advisory_xact_lock`` in the re-queueing
  transaction), so a job another live instance is running is never taken from it, whatever the
  clocks say. Claiming uses ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent claims never return
  the same job.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        params TEXT NOT NULL,
        upload_id TEXT,
        created DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        started DOUBLE PRECISION,
        finished DOUBLE PRECISION,
        heartbeat DOUBLE PRECISION,
        worker TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        cancel_requested DOUBLE PRECISION,
        progress_done INTEGER NOT NULL DEFAULT 0,
        progress_total INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        summary TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created)",
    """CREATE TABLE IF NOT EXISTS uploads (
        id TEXT PRIMARY KEY,
        created DOUBLE PRECISION NOT NULL,
        files TEXT NOT NULL,
        prompts TEXT,
        total_bytes INTEGER NOT NULL
    )""",
]

#: ``classid`` of the advisory locks that mark a running job's owner as alive (ASCII "AIGV").
ADVISORY_NAMESPACE = 0x41494756
_SCHEMA_LOCK = (ADVISORY_NAMESPACE, 0)  # serializes CREATE TABLE IF NOT EXISTS across processes

_JOB_COLS = (
    "id, status, params, upload_id, created, updated, started, finished, heartbeat, worker, attempts, "
    "cancel_requested, progress_done, progress_total, error, summary"
)


@dataclass
class Job:
    """One row of ``jobs``; ``params`` and ``summary`` are decoded JSON."""

    id: str
    status: str
    params: dict[str, Any]
    upload_id: str | None
    created: float
    updated: float
    started: float | None = None
    finished: float | None = None
    heartbeat: float | None = None
    worker: str | None = None
    attempts: int = 0
    cancel_requested: float | None = None
    progress_done: int = 0
    progress_total: int = 0
    error: str | None = None
    summary: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Job:
        (id_, status, params, upload_id, created, updated, started, finished, hb, worker, attempts, cancel,
         done, total, error, summary) = row  # fmt: skip
        return cls(
            id_, status, json.loads(params), upload_id, created, updated, started, finished, hb, worker,
            int(attempts), cancel, int(done), int(total), error, json.loads(summary) if summary else None,
        )  # fmt: skip

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass
class Upload:
    id: str
    created: float
    files: list[dict[str, Any]]
    prompts: str | None
    total_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


class JobLost(Exception):
    """Raised by ``JobStore.progress`` in a worker whose job was re-queued or taken by another worker
    (its database session was lost and another instance recovered the job): the worker must stop
    without touching the job again."""


def advisory_key(job_id: str) -> int:
    """The signed 32-bit ``objid`` of a job's advisory lock (CRC-32 of its id).

    Two running jobs with the same key only delay each other's recovery; they never run twice."""
    v = zlib.crc32(job_id.encode("utf-8"))
    return v - (1 << 32) if v >= (1 << 31) else v


class JobStore:
    """Thread-safe access to the store (one connection per thread and process).

    Jobs claimed through this object are remembered as ``(worker, attempts)`` so that its later
    ``progress``/``heartbeat``/``finish`` calls only apply while the job is still theirs."""

    #: how long ``requeue`` waits for a just-exited worker's session to release its job (PostgreSQL)
    requeue_wait: float = 1.0

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            self.path: Path | None = Path(url[len("sqlite:///") :])
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith(("postgresql://", "postgres://")):
            self.kind = "postgresql"
            self.path = None
        else:
            from aigve.errors import UsageError

            raise UsageError(
                "--database-url must be sqlite:///<file> or postgresql://user@host/db (got another scheme)"
            )
        self._local = threading.local()
        self._mutex = threading.Lock()
        self._owned: dict[str, tuple[str, int]] = {}  # job id -> (worker, attempts) claimed here
        self._held: dict[str, Any] = {}  # PostgreSQL: job id -> connection holding its session lock
        with self._tx() as cur:
            if self.kind == "postgresql":
                # concurrent CREATE ... IF NOT EXISTS can fail on PostgreSQL: one process at a time
                cur.execute("SELECT pg_advisory_xact_lock(?, ?)", _SCHEMA_LOCK)
            for stmt in _SCHEMA:
                cur.execute(stmt)

    # ------------------------------------------------------------------ connections
    def _connect(self) -> Any:
        if self.kind == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        try:
            import psycopg
        except ImportError:
            from aigve.errors import MissingDependencyError

            raise MissingDependencyError("a PostgreSQL job store", "server", "psycopg") from None
        pg_conn = psycopg.connect(self.url, autocommit=True)
        # the server notices a vanished client host (and frees its job locks) within about a minute
        # instead of the OS default of two hours; no effect on Unix-socket connections
        for stmt in (
            "SET tcp_keepalives_idle = 30",
            "SET tcp_keepalives_interval = 10",
            "SET tcp_keepalives_count = 3",
            "SET application_name = 'aigve'",
        ):
            pg_conn.execute(stmt)
        return pg_conn

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.kind == "postgresql" and conn.closed:
            # the session is gone (database restart, network) and its locks with it: reconnect and
            # take back the jobs this connection held that nobody has re-queued meanwhile
            lost = self._forget_conn(conn)
            conn = self._local.conn = self._connect()
            self._relock(conn, lost)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _forget_conn(self, conn: Any) -> list[str]:
        """Drop the locks ``conn`` held from the books; returns their job ids."""
        with self._mutex:
            lost = [j for j, c in self._held.items() if c is conn]
            for job_id in lost:
                del self._held[job_id]
        return lost

    def _relock(self, conn: Any, job_ids: list[str]) -> None:
        for job_id in job_ids:
            with self._mutex:
                owned = self._owned.get(job_id)
            if owned is None:
                continue
            key = (ADVISORY_NAMESPACE, advisory_key(job_id))
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]
            if not got:
                continue
            # holding the lock, nobody can re-queue the job now: is it still ours?
            row = conn.execute(
                "SELECT status, worker, attempts FROM jobs WHERE id = %s", (job_id,)
            ).fetchone()
            if row is not None and row[0] == "running" and (row[1], int(row[2])) == owned:
                with self._mutex:
                    self._held[job_id] = conn
            else:  # lost meanwhile: progress() will raise JobLost
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    def _cursor(self, first: str, args: tuple[Any, ...] = ()) -> Any:
        """A cursor that has run ``first``; on PostgreSQL a session found dead is replaced once
        (nothing had run on it yet, so retrying is safe)."""
        conn = self._conn()
        cur = conn.cursor()
        try:
            cur.execute(first, args)
        except Exception:
            if self.kind != "postgresql" or not conn.closed:
                raise
            cur = self._conn().cursor()
            cur.execute(first, args)
        return cur

    def _sql(self, sql: str) -> str:
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite so claims never race)."""
        cur = self._cursor("BEGIN IMMEDIATE" if self.kind == "sqlite" else "BEGIN")
        try:
            yield _Cursor(cur, self._sql)
        except BaseException:
            with suppress(Exception):  # a broken connection: the server rolled back already
                cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self._cursor(self._sql(sql), args).fetchall())

    def close(self) -> None:
        """Close this thread's connection (on PostgreSQL this frees the jobs it claimed)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._forget_conn(conn)
            conn.close()
            self._local.conn = None

    # ------------------------------------------------------------------ ownership
    def _owner_clause(self, job_id: str) -> tuple[str, tuple[Any, ...]]:
        """``AND worker = ? AND attempts = ?`` for a job claimed through this store, else nothing."""
        with self._mutex:
            owned = self._owned.get(job_id)
        if owned is None:
            return "", ()
        return " AND worker = ? AND attempts = ?", owned

    def _disown(self, job_id: str) -> None:
        """Forget a job claimed here and free its advisory lock (PostgreSQL)."""
        with self._mutex:
            self._owned.pop(job_id, None)
            conn = self._held.pop(job_id, None)
        if conn is not None and not conn.closed:
            with suppress(Exception):  # a broken session: its locks are gone with it
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (ADVISORY_NAMESPACE, advisory_key(job_id)))

    # ------------------------------------------------------------------ jobs
    def create_job(self, params: dict[str, Any], upload_id: str | None = None) -> Job:
        now = time.time()
        job_id = uuid.uuid4().hex
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO jobs (id, status, params, upload_id, created, updated) VALUES (?, 'queued', ?, ?, ?, ?)",
                (job_id, json.dumps(params), upload_id, now, now),
            )
        job = self.get_job(job_id)
        assert job is not None
        return job

    def get_job(self, job_id: str) -> Job | None:
        rows = self._query(f"SELECT {_JOB_COLS} FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def list_jobs(self, limit: int = 50, offset: int = 0, status: str | None = None) -> list[Job]:
        if status:
            rows = self._query(
                f"SELECT {_JOB_COLS} FROM jobs WHERE status = ? ORDER BY created DESC LIMIT ? OFFSET ?",
                (status, limit, offset),
            )
        else:
            rows = self._query(
                f"SELECT {_JOB_COLS} FROM jobs ORDER BY created DESC LIMIT ? OFFSET ?", (limit, offset)
            )
        return [Job.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        return {s: int(n) for s, n in self._query("SELECT status, COUNT(*) FROM jobs GROUP BY status")}

    def claim(self, worker: str) -> Job | None:
        """Atomically take the oldest queued job (not cancel-requested) for ``worker``.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED`` picks a row no concurrent claim holds, and this
        connection takes the job's session advisory lock before the claim commits."""
        now = time.time()
        pg = self.kind == "postgresql"
        job_id: str | None = None
        locked = False
        try:
            with self._tx() as cur:
                skip: list[str] = []
                for _ in range(4):  # another job after a (rare) advisory-key collision
                    not_in = f" AND id NOT IN ({', '.join('?' * len(skip))})" if skip else ""
                    cur.execute(
                        "SELECT id FROM jobs WHERE status = 'queued' AND cancel_requested IS NULL"
                        f"{not_in} ORDER BY created, id LIMIT 1{' FOR UPDATE SKIP LOCKED' if pg else ''}",
                        tuple(skip),
                    )
                    row = cur.fetchone()
                    if row is None:
                        return None
                    if not pg:
                        job_id = row[0]
                        break
                    with self._mutex:
                        already = row[0] in self._held
                    if already:
                        job_id = row[0]
                        break
                    cur.execute(
                        "SELECT pg_try_advisory_lock(?, ?)", (ADVISORY_NAMESPACE, advisory_key(row[0]))
                    )
                    if cur.fetchone()[0]:
                        job_id, locked = row[0], True
                        break
                    skip.append(row[0])
                if job_id is None:
                    return None
                cur.execute(
                    "UPDATE jobs SET status = 'running', worker = ?, started = COALESCE(started, ?), "
                    "heartbeat = ?, updated = ?, attempts = attempts + 1 WHERE id = ? AND status = 'queued'",
                    (worker, now, now, now, job_id),
                )
                cur.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,))
                attempts = int(cur.fetchone()[0])
        except BaseException:
            conn = getattr(self._local, "conn", None)
            if locked and job_id is not None and conn is not None and not conn.closed:
                with suppress(Exception):  # the claim did not commit: give the lock back
                    conn.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", (ADVISORY_NAMESPACE, advisory_key(job_id))
                    )
            raise
        with self._mutex:
            self._owned[job_id] = (worker, attempts)
            if pg:
                self._held[job_id] = self._conn()
        return self.get_job(job_id)

    def progress(self, job_id: str, done: int, total: int) -> bool:
        """Record progress and beat the heart; returns True when the job was asked to stop.

        Raises ``JobLost`` when the job was claimed here but has since been re-queued or claimed
        by another worker (this worker must drop it)."""
        now = time.time()
        owner, owner_args = self._owner_clause(job_id)
        with self._tx() as cur:
            cur.execute(
                "UPDATE jobs SET progress_done = ?, progress_total = ?, heartbeat = ?, updated = ? "
                f"WHERE id = ? AND status = 'running'{owner}",
                (done, total, now, now, job_id, *owner_args),
            )
            cur.execute("SELECT cancel_requested, status, worker, attempts FROM jobs WHERE id = ?", (job_id,))
            row = cur.fetchone()
        if row is None:
            return True
        cancel, status, worker, attempts = row
        if owner_args and status in ACTIVE and (worker, int(attempts)) != owner_args:
            raise JobLost(f"job {job_id} was re-queued and is no longer this worker's ({owner_args[0]})")
        return cancel is not None or status != "running"

    def heartbeat(self, job_id: str) -> None:
        """Mark the job as alive now (informative; liveness on PostgreSQL is the advisory lock)."""
        now = time.time()
        owner, owner_args = self._owner_clause(job_id)
        with self._tx() as cur:
            cur.execute(
                f"UPDATE jobs SET heartbeat = ? WHERE id = ? AND status = 'running'{owner}",
                (now, job_id, *owner_args),
            )

    def finish(
        self, job_id: str, status: str, summary: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        """End an active job (a no-op when a worker that claimed it here has lost it)."""
        assert status in FINISHED
        now = time.time()
        owner, owner_args = self._owner_clause(job_id)
        try:
            with self._tx() as cur:
                cur.execute(
                    "UPDATE jobs SET status = ?, summary = ?, error = ?, finished = ?, updated = ?, "
                    f"heartbeat = NULL WHERE id = ? AND status IN ('queued', 'running'){owner}",
                    (status, json.dumps(summary) if summary is not None else None, error, now, now, job_id,
                     *owner_args),
                )  # fmt: skip
        finally:
            self._disown(job_id)

    def request_cancel(self, job_id: str) -> Job | None:
        """Queued jobs are cancelled at once; running ones are flagged for their worker. Returns the job."""
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                "UPDATE jobs SET status = 'cancelled', cancel_requested = ?, finished = ?, updated = ? "
                "WHERE id = ? AND status = 'queued'",
                (now, now, now, job_id),
            )
            cur.execute(
                "UPDATE jobs SET cancel_requested = COALESCE(cancel_requested, ?), updated = ? "
                "WHERE id = ? AND status = 'running'",
                (now, now, job_id),
            )
        return self.get_job(job_id)

    def requeue(self, job_id: str, reason: str, max_attempts: int) -> None:
        """A running job whose worker went away: back to the queue, or failed after ``max_attempts``
        (cancelled if a cancel was requested).

        PostgreSQL: only while no other live session holds the job's advisory lock; a worker that has
        just exited may take a moment to release it, so this waits up to ``requeue_wait`` seconds and
        otherwise leaves the job alone (a later ``stale_running`` pass picks it up)."""
        deadline = time.monotonic() + self.requeue_wait
        while not self._requeue_once(job_id, reason, max_attempts):
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)
        self._disown(job_id)

    def _requeue_once(self, job_id: str, reason: str, max_attempts: int) -> bool:
        """One attempt; False while a live worker session still holds the job (PostgreSQL)."""
        now = time.time()
        with self._tx() as cur:
            if self.kind == "postgresql":
                # the same session's own lock counts as free: a store may requeue what it claimed
                cur.execute(
                    "SELECT pg_try_advisory_xact_lock(?, ?)", (ADVISORY_NAMESPACE, advisory_key(job_id))
                )
                if not cur.fetchone()[0]:
                    cur.execute("SELECT 1 FROM jobs WHERE id = ? AND status = 'running'", (job_id,))
                    return cur.fetchone() is None  # nothing to wait for unless it is still running
            lock = " FOR UPDATE" if self.kind == "postgresql" else ""
            cur.execute(
                f"SELECT attempts, cancel_requested FROM jobs WHERE id = ? AND status = 'running'{lock}",
                (job_id,),
            )
            row = cur.fetchone()
            if row is None:
                return True
            attempts, cancel = row
            if cancel is not None:
                cur.execute(
                    "UPDATE jobs SET status = 'cancelled', finished = ?, updated = ?, heartbeat = NULL WHERE id = ?",
                    (now, now, job_id),
                )
            elif attempts >= max_attempts:
                cur.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished = ?, updated = ?, heartbeat = NULL "
                    "WHERE id = ?",
                    (f"gave up after {attempts} attempts: {reason}", now, now, job_id),
                )
            else:
                cur.execute(
                    "UPDATE jobs SET status = 'queued', worker = NULL, heartbeat = NULL, updated = ? WHERE id = ?",
                    (now, job_id),
                )
        return True

    def running_jobs(self) -> list[Job]:
        return [
            Job.from_row(r) for r in self._query(f"SELECT {_JOB_COLS} FROM jobs WHERE status = 'running'")
        ]

    def stale_running(self, lease: float) -> list[Job]:
        """Running jobs whose worker is gone.

        SQLite: no heartbeat for ``lease`` seconds. PostgreSQL: nobody holds the job's advisory lock
        (its worker's session has ended); ``lease`` is not used, so clock skew between hosts and long
        videos without progress cannot make a live job look dead."""
        if self.kind == "sqlite":
            cutoff = time.time() - lease
            rows = self._query(
                f"SELECT {_JOB_COLS} FROM jobs WHERE status = 'running' AND (heartbeat IS NULL OR heartbeat < ?)",
                (cutoff,),
            )
            return [Job.from_row(r) for r in rows]
        stale = []
        with self._tx() as cur:  # the probe locks are transaction-level: gone at COMMIT
            for job in self.running_jobs():
                cur.execute(
                    "SELECT pg_try_advisory_xact_lock(?, ?)", (ADVISORY_NAMESPACE, advisory_key(job.id))
                )
                if cur.fetchone()[0]:
                    with self._mutex:
                        mine = job.id in self._held  # reentrant: our own session's lock looks free
                    if not mine:
                        stale.append(job)
        return stale

    def delete_job(self, job_id: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        self._disown(job_id)

    def expired_jobs(self, older_than: float) -> list[Job]:
        rows = self._query(
            f"SELECT {_JOB_COLS} FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished < ?",
            (older_than,),
        )
        return [Job.from_row(r) for r in rows]

    def queue_depth(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")[0][0])

    # ------------------------------------------------------------------ uploads
    def create_upload(
        self, upload_id: str, files: list[dict[str, Any]], prompts: str | None, total: int
    ) -> Upload:
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO uploads (id, created, files, prompts, total_bytes) VALUES (?, ?, ?, ?, ?)",
                (upload_id, now, json.dumps(files), prompts, total),
            )
        return Upload(upload_id, now, files, prompts, total)

    def get_upload(self, upload_id: str) -> Upload | None:
        rows = self._query(
            "SELECT id, created, files, prompts, total_bytes FROM uploads WHERE id = ?", (upload_id,)
        )
        if not rows:
            return None
        id_, created, files, prompts, total = rows[0]
        return Upload(id_, created, json.loads(files), prompts, int(total))

    def upload_in_use(self, upload_id: str) -> bool:
        rows = self._query(
            "SELECT COUNT(*) FROM jobs WHERE upload_id = ? AND status IN ('queued', 'running')", (upload_id,)
        )
        return int(rows[0][0]) > 0

    def delete_upload(self, upload_id: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))

    def expired_uploads(self, older_than: float) -> list[str]:
        rows = self._query(
            "SELECT id FROM uploads WHERE created < ? AND id NOT IN "
            "(SELECT upload_id FROM jobs WHERE upload_id IS NOT NULL AND status IN ('queued', 'running'))",
            (older_than,),
        )
        return [r[0] for r in rows]


class _Cursor:
    """A cursor that rewrites placeholders for the backend."""

    def __init__(self, cur: Any, rewrite: Any) -> None:
        self._cur = cur
        self._rewrite = rewrite

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        self._cur.execute(self._rewrite(sql), args)

    def fetchone(self) -> Any:
        return self._cur.fetchone()
