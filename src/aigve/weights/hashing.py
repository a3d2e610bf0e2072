"""Checking a checkpoint's bytes: digests, the digest cache and the trust-on-first-use lock.

Verification by hash kind: ``sha256`` full compare; ``sha256-prefix`` / ``md5-prefix`` prefix compare;
``git-blob-sha1`` = ``sha1(b"blob <size>\\0" + content)``; ``none`` = trust on first use: sha256 and size
are recorded in ``weights.lock.json`` in the weights cache with a warning that they were "recorded on first
use, not checked against a published value", and checked on every later use (a mismatch is an error unless
``update_lock=True``).

Digests of large files are cached in ``<cache>/weights/hashes.json`` keyed by (absolute path, size,
mtime_ns), so repeated runs do not re-read 100 MB checkpoints; any change of size or mtime re-hashes.
Plain sha256 hashing is :func:`aigve.paths.file_sha256`; :func:`cached_sha256` adds the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aigve import paths
from aigve.errors import WeightsError
from aigve.fsutil import as_if_opened
from aigve.weights.places import cache_dir
from aigve.weights.spec import WeightSpec

TOFU_WARNING = "recorded on first use, not checked against a published value"
_CHUNK = 1 << 20
_DIGEST_KEYS = ("sha256", "md5", "git-blob-sha1")


def lock_path() -> Path:
    """The trust-on-first-use lock file for unpinned checkpoints."""
    return cache_dir() / "weights.lock.json"


def hash_cache_path() -> Path:
    """The digest cache, ``<weights cache>/hashes.json``."""
    return cache_dir() / "hashes.json"


def _compute_digests(path: Path, keys: Iterable[str]) -> dict[str, str]:
    keys = set(keys)
    if keys == {"sha256"}:
        return {"sha256": paths.file_sha256(path, _CHUNK)}
    size = path.stat().st_size
    hashers: dict[str, Any] = {}
    if "sha256" in keys:
        hashers["sha256"] = hashlib.sha256()
    if "md5" in keys:
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    if "git-blob-sha1" in keys:
        h = hashlib.sha1(usedforsecurity=False)
        h.update(b"blob %d\0" % size)
        hashers["git-blob-sha1"] = h
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {k: h.hexdigest() for k, h in hashers.items()}


def tree_sha256(path: Path) -> str:
    """Digest of a directory: sha256 over sorted ``relpath\\0sha256\\n`` lines of its files."""
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        rel = p.relative_to(path).as_posix()
        h.update(f"{rel}\0{cached_sha256(p)}\n".encode())
    return h.hexdigest()


def load_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when the file is absent, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    as_if_opened(fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def file_digests(
    path: str | os.PathLike[str], kinds: Iterable[str] = ("sha256",), *, use_cache: bool = True
) -> dict[str, str]:
    """Digests of a file (``sha256``, ``md5``, ``git-blob-sha1``), read in one pass.

    With ``use_cache`` the results are kept in ``<cache>/weights/hashes.json`` keyed by the absolute
    path, size and mtime_ns, so an unchanged file is not read again.
    """
    p = Path(path)
    wanted = [k for k in kinds if k in _DIGEST_KEYS]
    st = p.stat()
    key = str(p.resolve())
    cache_file = hash_cache_path()
    cache = load_json(cache_file) if use_cache else {}
    entry = cache.get(key)
    if not (
        isinstance(entry, dict)
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
    ):
        entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    missing = [k for k in wanted if k not in entry]
    if missing:
        entry.update(_compute_digests(p, missing))
        if use_cache:
            store_digests(p, entry)
    return {k: entry[k] for k in wanted}


def store_digests(path: Path, entry: Mapping[str, Any]) -> None:
    """Record digests of ``path`` in the digest cache (dropping entries of files that are gone)."""
    cache_file = hash_cache_path()
    cache = load_json(cache_file)  # re-read: another process may have written meanwhile
    cache = {k: v for k, v in cache.items() if os.path.exists(k)}
    cache[str(path.resolve())] = dict(entry)
    with contextlib.suppress(OSError):
        write_json_atomic(cache_file, cache)


def cached_sha256(path: str | os.PathLike[str], *, use_cache: bool = True) -> str:
    """sha256 of a file (or the tree digest of a directory), using the digest cache."""
    p = Path(path)
    if p.is_dir():
        return tree_sha256(p)
    return file_digests(p, ("sha256",), use_cache=use_cache)["sha256"]


def check_hashes(
    spec: WeightSpec, path: Path, *, use_cache: bool = True, known: Mapping[str, str] | None = None
) -> tuple[list[str], str]:
    """Compare ``path`` against every published digest. Returns (problems, sha256).

    ``known`` holds digests already computed (e.g. while downloading) so the file is not read again.
    """
    problems: list[str] = []
    if path.is_dir():
        sha = tree_sha256(path)
        for kind, value in spec.expected_hashes():
            if kind != "sha256" or value != sha:
                problems.append(f"expected {kind} {value}, got tree sha256 {sha}")
        return problems, sha
    actual_size = path.stat().st_size
    if spec.size is not None and actual_size != spec.size:
        problems.append(f"expected size {spec.size} bytes, got {actual_size} bytes")
    needed = {"sha256"}
    for kind, _ in spec.expected_hashes():
        needed.add({"sha256-prefix": "sha256", "md5-prefix": "md5"}.get(kind, kind))
    digests = dict(known or {})
    if not needed <= digests.keys():
        digests.update(file_digests(path, needed - digests.keys(), use_cache=use_cache))
    for kind, value in spec.expected_hashes():
        if kind == "sha256":
            ok, got = digests["sha256"] == value.lower(), digests["sha256"]
        elif kind == "sha256-prefix":
            ok, got = digests["sha256"].startswith(value.lower()), digests["sha256"]
        elif kind == "md5-prefix":
            ok, got = digests["md5"].startswith(value.lower()), digests["md5"]
        elif kind == "git-blob-sha1":
            ok, got = digests["git-blob-sha1"] == value.lower(), digests["git-blob-sha1"]
        else:  # pragma: no cover - schema tests keep kinds valid
            raise WeightsError(f"weights '{spec.name}': unknown hash kind '{kind}' in the registry")
        if not ok:
            problems.append(f"expected {kind} {value}, got {got}")
    return problems, digests["sha256"]


# --------------------------------------------------------------------------------------------
# trust-on-first-use lock
# --------------------------------------------------------------------------------------------
def lock_check(
    spec: WeightSpec, path: Path, sha: str, *, update_lock: bool, record: bool
) -> tuple[list[str], list[str]]:
    """Check an unpinned file against the lock. Returns (problems, warnings); may record."""
    lock_file = lock_path()
    lock = load_json(lock_file)
    size = _size_of(path)
    entry = lock.get(spec.name)
    if isinstance(entry, dict) and entry.get("sha256"):
        if entry["sha256"] == sha and entry.get("size") in (None, size):
            return [], []
        msg = f"expected sha256 {entry['sha256']} (size {entry.get('size')}) from {lock_file}, got sha256 {sha} (size {size})"
        if not update_lock:
            return [msg], []
        if not record:
            return [], [f"{spec.filename}: {msg}; lock not updated for an explicit path"]
        warnings = [f"{spec.filename}: lock entry replaced ({msg}); the new value was {TOFU_WARNING}"]
    else:
        if not record:
            return [], [f"{spec.filename}: unpinned checkpoint with no lock entry; sha256 {sha} not checked"]
        warnings = [f"{spec.filename}: sha256 {sha} and size {size} {TOFU_WARNING} (lock: {lock_file})"]
    lock = load_json(lock_file)
    lock[spec.name] = {
        "filename": spec.filename,
        "sha256": sha,
        "size": size,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "note": TOFU_WARNING,
    }
    try:
        write_json_atomic(lock_file, lock)
    except OSError as e:
        warnings.append(f"could not write the weights lock {lock_file}: {e}")
    return [], warnings


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
