"""The one cache-directory rule and the one file hash, shared by every part of aigve.

- :func:`cache_dir`: ``$AIGVE_CACHE_DIR`` if set, else ``~/.cache/aigve``. Feature cache entries, built-in
  datasets (``datasets/``) and checkpoints (``weights/``) live below it.
- :func:`file_sha256`: the sha256 of a file's bytes, read in chunks (video content keys, dataset checks,
  checkpoint hashes).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["ENV_CACHE_DIR", "cache_dir", "file_sha256"]

ENV_CACHE_DIR = "AIGVE_CACHE_DIR"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$AIGVE_CACHE_DIR`` (``~`` expanded) or ``~/.cache/aigve``; not created here."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aigve"


def file_sha256(path: str | os.PathLike[str], chunk: int = _CHUNK) -> str:
    """Hex sha256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
