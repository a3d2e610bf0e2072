"""On-disk feature cache.

Key = sha256 of (video content hash, extractor identity incl. weights sha256, sampler id, decode
window). A rerun, or a new metric on the same backbone and frames, reuses the arrays. Writes are
atomic (temp file + rename), so a killed run never leaves a half-written entry behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aigve.fsutil import as_if_opened

TMP_PREFIX = ".put-"  # temporary files of unfinished writes (a killed run can leave one behind)


def feature_key(
    video_sha256: str, extractor_identity: dict[str, Any], sampler_id: str, window_id: str
) -> str:
    payload = json.dumps(
        {"video": video_sha256, "extractor": extractor_identity, "sampler": sampler_id, "window": window_id},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class FeatureCache:
    """``get``/``put`` float arrays by key under ``root/features``.

    ``root=None``: a private temp dir. ``temporary=True``: the directory is removed by ``close()``
    (used for ``--no-cache`` runs, whose cache lives in the output dir so ``--resume`` still works).
    """

    def __init__(self, root: str | Path | None, temporary: bool = False) -> None:
        self._tmp = root is None or temporary
        self.root = Path(tempfile.mkdtemp(prefix="aigve-cache-")) if root is None else Path(root)
        self.dir = self.root / "features"
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str, count: bool = True) -> np.ndarray | None:
        """The stored array, or None. ``count=False``: a side lookup that the hit/miss counts skip."""
        p = self._path(key)
        if not p.exists():
            self.misses += count
            return None
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # EOFError: an empty file (e.g. a write lost in a crash)
            p.unlink(missing_ok=True)  # corrupt entry: drop it and recompute
            self.misses += count
            return None
        self.hits += count
        if count:
            with contextlib.suppress(OSError):  # "last used" for `aigve cache prune --older-than`
                os.utime(p)
        return arr

    def put(self, key: str, arr: np.ndarray) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=TMP_PREFIX, suffix=".tmp")
        as_if_opened(fd)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())  # on disk before the journal (fsynced too) can call the video done
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _files(self, stale_after: float) -> Iterator[tuple[Path, int, float, str]]:
        """Every file under ``features/``: (path, size, age in seconds, kind) with kind ``entry``, ``stale``
        (a temporary file older than ``stale_after`` s, left by a killed write) or ``writing``."""
        now = time.time()
        for p in list(self.dir.rglob("*")) if self.dir.is_dir() else []:
            if not p.is_file():
                continue
            st = p.stat()
            age = now - st.st_mtime
            if not p.name.startswith(TMP_PREFIX):
                yield p, st.st_size, age, "entry"
            else:
                yield p, st.st_size, age, "stale" if age > stale_after else "writing"

    def stats(self, stale_after: float = 3600.0) -> dict[str, Any]:
        """Entries and bytes under ``features/``, plus leftover temporary files older than ``stale_after`` s."""
        counts = {"entries": 0, "bytes": 0, "stale_tmp_files": 0, "stale_tmp_bytes": 0}
        for _, size, _, kind in self._files(stale_after):
            if kind in ("entry", "stale"):
                n, b = ("entries", "bytes") if kind == "entry" else ("stale_tmp_files", "stale_tmp_bytes")
                counts[n] += 1
                counts[b] += size
        return {"root": str(self.root), **counts}

    def prune(self, older_than_days: float | None = None, stale_after: float = 3600.0) -> tuple[int, int]:
        """Remove entries not written or read for ``older_than_days`` (all entries when None) and stale
        temporary files; returns (files removed, bytes freed). Reads refresh an entry's time."""
        removed = freed = 0
        for p, size, age, kind in self._files(stale_after):
            old = older_than_days is None or age > older_than_days * 86400.0
            if kind == "stale" or (kind == "entry" and old):
                p.unlink(missing_ok=True)
                removed += 1
                freed += size
        return removed, freed

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self.root, ignore_errors=True)
