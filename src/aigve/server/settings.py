"""Server settings: one dataclass built from ``aigve serve`` flags and ``AIGVE_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aigve.engine.cache import cache_location, is_url
from aigve.errors import UsageError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

MB = 1024 * 1024


def default_state_dir() -> Path:
    """``$AIGVE_SERVER_DIR`` or ``~/.local/share/aigve/server``: job store, uploads, job folders, cache."""
    env = os.environ.get("AIGVE_SERVER_DIR")
    if env:
        return Path(env)
    return Path.home() / ".local" / "share" / "aigve" / "server"


@dataclass
class ServerSettings:
    """Everything ``create_app`` and the workers need. Paths are absolute once ``finalize`` has run."""

    host: str = "127.0.0.1"
    port: int = 2200
    state_dir: Path = field(default_factory=default_state_dir)
    database_url: str | None = None  # default: sqlite:///<state_dir>/jobs.db
    data_roots: list[Path] = field(default_factory=list)
    token: str | None = None  # from AIGVE_API_TOKEN; never logged
    no_auth: bool = False  # only allowed on a loopback host
    workers: int = 1
    device: str = "auto"
    #: how each job runs: ``local`` (in the worker process) or ``ray`` (on the Ray cluster at ``ray_address``,
    #: or a local Ray started for the job when None; docs/distributed.md)
    engine: str = "local"
    ray_address: str | None = None
    ray_workers: int | None = None
    cache_dir: Path | str | None = (
        None  # shared feature cache (a directory or a URL), default <state_dir>/cache
    )
    max_upload_files: int = 200
    max_file_bytes: int = 2048 * MB
    max_upload_bytes: int = 8192 * MB  # one request
    max_prompts_bytes: int = 4 * MB
    retention_seconds: float = 7 * 24 * 3600.0  # finished jobs and unused uploads are deleted after this
    cleanup_interval: float = 60.0
    lease_seconds: float = 60.0  # a running job without a heartbeat this long is re-queued
    cancel_grace_seconds: float = 15.0  # a cancelled job still running after this gets its worker killed
    max_attempts: int = 3  # a job whose worker died this many times fails
    compat_timeout: float = 4 * 3600.0  # how long /run and /run_upload wait for their job
    bootstrap: int = 1000
    poll_interval: float = 0.2  # workers look for queued jobs this often
    stop_after: float | None = None  # shut down by itself after this many seconds (tests, CI)

    def finalize(self) -> ServerSettings:
        """Fill defaults from the environment, make paths absolute and check the auth rules."""
        if self.token is None:
            self.token = os.environ.get("AIGVE_API_TOKEN") or None
        self.state_dir = Path(self.state_dir).expanduser().absolute()
        if self.cache_dir is None:
            self.cache_dir = self.state_dir / "cache"
        if not is_url(self.cache_dir):  # a URL (s3://...) stays as given
            self.cache_dir = Path(self.cache_dir).expanduser().absolute()
        if not self.database_url:
            self.database_url = (
                os.environ.get("AIGVE_DATABASE_URL") or f"sqlite:///{self.state_dir / 'jobs.db'}"
            )
        roots = []
        for r in self.data_roots:
            p = Path(r).expanduser()
            if not p.is_dir():
                raise UsageError(f"--data-root {r}: not an existing folder — create it or fix the path")
            roots.append(p.resolve())
        self.data_roots = roots
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if self.no_auth and self.host not in LOOPBACK_HOSTS:
            raise UsageError(
                f"--no-auth is only allowed on a loopback host (127.0.0.1, ::1, localhost), not '{self.host}'"
                " — set AIGVE_API_TOKEN instead"
            )
        if not self.no_auth and not self.token:
            raise UsageError(
                "no API token: set AIGVE_API_TOKEN (clients send 'Authorization: Bearer <token>'), "
                "or pass --no-auth on a loopback host"
            )
        if self.token is not None and len(self.token) < 16:
            raise UsageError(
                "AIGVE_API_TOKEN is too short: use at least 16 characters (e.g. `openssl rand -hex 32`)"
            )
        return self

    @property
    def auth_required(self) -> bool:
        return not self.no_auth

    @property
    def uploads_dir(self) -> Path:
        return self.state_dir / "uploads"

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def upload_dir(self, upload_id: str) -> Path:
        return self.uploads_dir / upload_id

    def to_dict(self) -> dict[str, Any]:
        """Picklable form for the worker processes (the token stays out: workers do not need it)."""
        d = asdict(self)
        d["token"] = None
        d["state_dir"] = str(self.state_dir)
        d["cache_dir"] = str(self.cache_dir)
        d["data_roots"] = [str(p) for p in self.data_roots]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServerSettings:
        d = dict(d)
        d["state_dir"] = Path(d["state_dir"])
        d["cache_dir"] = cache_location(d["cache_dir"]) if d.get("cache_dir") else None
        d["data_roots"] = [Path(p) for p in d.get("data_roots", [])]
        return cls(**d)
