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
from pathlib import Path
from typing import Any

import numpy as np

from aigve.fsutil import as_if_opened

TMP_PREFIX = ".put-"  # temporary files of unfinished writes (a killed run can leave one behind)


def default_cache_dir() -> Path:
    env = os.environ.get("AIGVE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aigve"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


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

    def stats(self, stale_after: float = 3600.0) -> dict[str, Any]:
        """Entries and bytes under ``features/``, plus leftover temporary files older than ``stale_after`` s."""
        import time

        entries = size = stale = stale_bytes = 0
        now = time.time()
        for p in self.dir.rglob("*") if self.dir.is_dir() else ():
            if not p.is_file():
                continue
            st = p.stat()
            if p.name.startswith(TMP_PREFIX):
                if now - st.st_mtime > stale_after:
                    stale += 1
                    stale_bytes += st.st_size
            elif p.suffix == ".npy":
                entries += 1
                size += st.st_size
        return {
            "root": str(self.root),
            "entries": entries,
            "bytes": size,
            "stale_tmp_files": stale,
            "stale_tmp_bytes": stale_bytes,
        }

    def prune(self, older_than_days: float | None = None, stale_after: float = 3600.0) -> tuple[int, int]:
        """Remove entries not written or read for ``older_than_days`` (all entries when None) and stale
        temporary files; returns (files removed, bytes freed). Reads refresh an entry's time."""
        import time

        now = time.time()
        removed = freed = 0
        for p in list(self.dir.rglob("*")) if self.dir.is_dir() else []:
            if not p.is_file():
                continue
            st = p.stat()
            age = now - st.st_mtime
            if p.name.startswith(TMP_PREFIX):
                drop = age > stale_after
            else:
                drop = older_than_days is None or age > older_than_days * 86400.0
            if drop:
                p.unlink(missing_ok=True)
                removed += 1
                freed += st.st_size
        return removed, freed

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self.root, ignore_errors=True)
