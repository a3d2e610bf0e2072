"""The judges' response cache: every answer a judge gave, keyed by everything that shapes it.

A judge call is identified by the backend kind, the model, the endpoint host, the full messages (each image
replaced by the sha256 of its pixels and shape, so the key is small and never holds image bytes) and every
generation parameter. The same call again is answered from the cache without a request: a rerun costs
nothing and gives identical numbers, and a changed prompt or model misses only where it changed.

SQLite in WAL mode, one connection per thread, so the judge's worker threads read and write it together.
The API key is never part of a key or a row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from aigve.paths import cache_dir

__all__ = ["ResponseCache", "default_cache_path", "image_digest", "request_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    extra TEXT,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """``<aigve cache>/judges/responses.sqlite`` (``$AIGVE_CACHE_DIR`` or ``~/.cache/aigve``)."""
    return cache_dir() / "judges" / "responses.sqlite"


def image_digest(image: np.ndarray) -> str:
    """sha256 of an image's shape, dtype and pixels: what stands for the image in a cache key."""
    a = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{a.shape}|{a.dtype}|".encode())
    h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def request_key(identity: dict[str, Any], messages: Any, params: dict[str, Any]) -> str:
    """sha256 of (judge identity: backend, model, host; messages with image digests; parameters)."""
    blob = json.dumps(
        {"judge": identity, "messages": messages, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """Thread-safe SQLite store of judge replies (text, token counts and any extra JSON, e.g. log-probs)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._conn().execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def get(self, key: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute(
                "SELECT text, prompt_tokens, completion_tokens, extra FROM replies WHERE key = ?", (key,)
            )
            .fetchone()
        )
        if row is None:
            return None
        return {
            "text": row[0],
            "prompt_tokens": int(row[1]),
            "completion_tokens": int(row[2]),
            "extra": json.loads(row[3]) if row[3] else None,
        }

    def put(
        self,
        key: str,
        kind: str,
        text: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        extra: Any = None,
    ) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO replies (key, kind, text, prompt_tokens, completion_tokens, extra, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                kind,
                text,
                int(prompt_tokens),
                int(completion_tokens),
                None if extra is None else json.dumps(extra, sort_keys=True),
                time.time(),
            ),
        )

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            with contextlib.suppress(sqlite3.Error):  # closing from another thread
                c.close()
        self._local = threading.local()
