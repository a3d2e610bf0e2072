"""The durable job store: one ``jobs`` table and one ``uploads`` table.

SQLite (the default, WAL mode) serves one server instance and its worker processes. A
``postgresql://`` URL runs the same SQL through psycopg (``?`` placeholders rewritten to ``%s``) so
several server instances can share one queue; claiming a job then uses ``FOR UPDATE SKIP LOCKED``.

A job moves ``queued -> running -> succeeded | failed | cancelled``. A running job carries a
heartbeat; a job whose worker died (no heartbeat for ``lease`` seconds, or a server restart) goes
back to ``queued`` and its next run resumes from the journal in its folder and the feature cache.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


class JobStore:
    """Thread-safe access to the store (one connection per thread and process)."""

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
        with self._tx() as cur:
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
        return psycopg.connect(self.url, autocommit=True)

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _sql(self, sql: str) -> str:
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite so claims never race)."""
        conn = self._conn()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE" if self.kind == "sqlite" else "BEGIN")
        try:
            yield _Cursor(cur, self._sql)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn().cursor()
        cur.execute(self._sql(sql), args)
        return list(cur.fetchall())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

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
        """Atomically take the oldest queued job (not cancel-requested) for ``worker``."""
        now = time.time()
        with self._tx() as cur:
            lock = "" if self.kind == "sqlite" else " FOR UPDATE SKIP LOCKED"
            cur.execute(
                "SELECT id FROM jobs WHERE status = 'queued' AND cancel_requested IS NULL "
                f"ORDER BY created, id LIMIT 1{lock}"
            )
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(
                "UPDATE jobs SET status = 'running', worker = ?, started = COALESCE(started, ?), heartbeat = ?, "
                "updated = ?, attempts = attempts + 1 WHERE id = ? AND status = 'queued'",
                (worker, now, now, now, row[0]),
            )
        return self.get_job(row[0])

    def progress(self, job_id: str, done: int, total: int) -> bool:
        """Record progress and beat the heart; returns True when the job was asked to stop."""
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                "UPDATE jobs SET progress_done = ?, progress_total = ?, heartbeat = ?, updated = ? "
                "WHERE id = ? AND status = 'running'",
                (done, total, now, now, job_id),
            )
            cur.execute("SELECT cancel_requested, status FROM jobs WHERE id = ?", (job_id,))
            row = cur.fetchone()
        return row is None or row[0] is not None or row[1] != "running"

    def heartbeat(self, job_id: str) -> None:
        now = time.time()
        with self._tx() as cur:
            cur.execute("UPDATE jobs SET heartbeat = ? WHERE id = ? AND status = 'running'", (now, job_id))

    def finish(
        self, job_id: str, status: str, summary: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        assert status in FINISHED
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                "UPDATE jobs SET status = ?, summary = ?, error = ?, finished = ?, updated = ?, heartbeat = NULL "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (status, json.dumps(summary) if summary is not None else None, error, now, now, job_id),
            )

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
        """A running job whose worker went away: back to the queue, or failed after ``max_attempts``."""
        now = time.time()
        with self._tx() as cur:
            cur.execute(
                "SELECT attempts, cancel_requested FROM jobs WHERE id = ? AND status = 'running'", (job_id,)
            )
            row = cur.fetchone()
            if row is None:
                return
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

    def running_jobs(self) -> list[Job]:
        return [
            Job.from_row(r) for r in self._query(f"SELECT {_JOB_COLS} FROM jobs WHERE status = 'running'")
        ]

    def stale_running(self, lease: float) -> list[Job]:
        cutoff = time.time() - lease
        rows = self._query(
            f"SELECT {_JOB_COLS} FROM jobs WHERE status = 'running' AND (heartbeat IS NULL OR heartbeat < ?)",
            (cutoff,),
        )
        return [Job.from_row(r) for r in rows]

    def delete_job(self, job_id: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

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
