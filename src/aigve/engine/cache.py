"""On-disk feature cache.

Key = sha256 of (video content hash, extractor identity incl. weights sha256, sampler id, decode
window). A rerun, or a new metric on the same backbone and frames, reuses the arrays. Writes are
atomic (temp file + rename), so a killed run never leaves a half-written entry behind.

Several workers (two CLI runs, two server workers) may share one cache. So that they never compute the same
video's features twice, a worker first takes the video's *lease* (:meth:`FeatureCache.lease`): a small file
``leases/<key>.lease`` created atomically (``O_CREAT | O_EXCL``) holding the owner's id and an expiry time.
The holder renews it from a heartbeat thread while it works and removes it when its arrays are stored; the
other worker waits until the lease is gone, then finds the arrays in the cache. A lease whose expiry has
passed (its holder crashed or hangs) is taken over, and so is, at once, a lease whose holder was a process on
this host (same host name and PID namespace) that no longer exists (a worker killed mid-run). Correctness never
rests on the lease: entries are written atomically and are equal whoever computes them, so a lost race costs
duplicated work, not results.

The cache may also live at a URL (``s3://bucket/prefix``, ``gs://...``, ``file://...``: any fsspec file system):
:func:`open_feature_cache` returns a :class:`FsspecFeatureCache` there, with the same layout, whole-object writes
on object stores and no leases (an object store has no exclusive create; concurrent runs may then compute a video
twice, with equal results). ``docs/feature-cache.md`` says what is supported.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aigve.errors import MissingDependencyError, UsageError
from aigve.fsutil import as_if_opened

log = logging.getLogger(__name__)

TMP_PREFIX = ".put-"  # temporary files of unfinished writes (a killed run can leave one behind)
#: seconds a lease lives without renewal; the holder renews it every ``ttl / 4`` s while it works
LEASE_TTL = 60.0


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

    # lease counters, also for subclasses that hold entries elsewhere and skip __init__ (tensor metrics' cache)
    leases_busy = 0  # lease requests that found the lease held by another worker
    lease_takeovers = 0  # expired leases taken over

    def __init__(
        self, root: str | Path | None, temporary: bool = False, lease_ttl: float | None = None
    ) -> None:
        self._tmp = root is None or temporary
        root_path = Path(tempfile.mkdtemp(prefix="aigve-cache-")) if root is None else Path(root)
        #: the cache's location: a directory here, the URL (credentials left out) for a URL cache
        self.root: Path | str = root_path
        self.dir = root_path / "features"
        self._lease_dir = root_path / "leases"
        self._start_counts(lease_ttl)

    def _start_counts(self, lease_ttl: float | None) -> None:
        """Hit and lease counters, this object's lease owner id and its (idle) lease heartbeat."""
        self.hits = 0
        self.misses = 0
        self.lease_ttl = float(LEASE_TTL if lease_ttl is None else lease_ttl)
        #: this cache object's owner id in lease files (host, pid, random part: unique per run)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.leases_busy = 0
        self.lease_takeovers = 0
        self._held: dict[str, Lease] = {}
        self._held_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    @property
    def location(self) -> str:
        """What another process (a distributed run's worker) opens with :func:`open_feature_cache` to reach this
        cache: the directory, or the URL as given (``root`` is the URL shown, without credentials)."""
        return str(self.root)

    def discard(self, key: str) -> None:
        """Remove one entry, if present."""
        self._path(key).unlink(missing_ok=True)

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
        return {
            "root": str(self.root),
            **_tally((size, kind) for _, size, _, kind in self._files(stale_after)),
        }

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

    # ------------------------------------------------------------------ leases
    @property
    def shared(self) -> bool:
        """A cache other workers may use at the same time (not a run-private one): leases apply."""
        return not self._tmp

    def _lease_path(self, key: str) -> Path:
        return self._lease_dir / f"{key}.lease"

    def try_lease(self, key: str) -> Lease | None:
        """Take the lease on ``key`` (a video's work) for this worker, or None while another worker holds
        it. An expired lease (its holder crashed or stopped renewing it) is taken over, and so, at once, is
        a lease whose holder was a process of this host that no longer exists (a killed worker)."""
        p = self._lease_path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if _create_exclusive(p, self._lease_body()):
                return self._hold(key, p)
            held = _read_lease(p)
            if held is None:  # vanished (released) or half-written: look again
                if p.exists() and time.time() - _mtime(p) > self.lease_ttl:
                    p.unlink(missing_ok=True)  # an unreadable leftover older than a lease lives
                continue
            if held.get("owner") == self.owner:
                return self._held.get(key) or self._hold(key, p)
            gone = _holder_gone(held)
            if not gone and float(held.get("expires", 0.0)) > time.time():
                self.leases_busy += 1
                return None
            # expired or orphaned: move it aside (only one worker's rename succeeds), then check it was the
            # stale one
            aside = p.with_name(f"{p.name}.{uuid.uuid4().hex[:8]}.stale")
            try:
                os.rename(p, aside)
            except FileNotFoundError:
                continue
            moved = _read_lease(aside)
            if (
                moved is not None
                and moved != held
                and float(moved.get("expires", 0.0)) > time.time()
                and not _holder_gone(moved)
            ):
                # a fresh lease of a worker that took over just before us: put it back unless one exists
                with contextlib.suppress(FileExistsError):
                    os.link(aside, p)
                aside.unlink(missing_ok=True)
                return None
            aside.unlink(missing_ok=True)
            log.warning(
                "feature cache: the lease on %s held by %s %s; taking over its work",
                key[:12],
                held.get("owner"),
                "lost its holder (that process is gone)" if gone else "expired",
            )
            self.lease_takeovers += 1
        return None

    def wait_lease(self, key: str, poll: float = 0.2, timeout: float | None = None) -> Lease | None:
        """Wait while another worker holds ``key``'s lease. Returns this worker's lease once taken (the
        holder crashed, or released it without storing everything), or None when the holder released it
        (callers then look in the cache again). ``timeout``: give up waiting after that many seconds (None)."""
        t0 = time.monotonic()
        while True:
            got = self.try_lease(key)
            if got is not None:
                return got
            if timeout is not None and time.monotonic() - t0 > timeout:
                return None
            time.sleep(poll)
            if not self._lease_path(key).exists():
                return None

    def lease_held(self, key: str) -> bool:
        """Does some worker hold an unexpired lease on ``key``?"""
        held = _read_lease(self._lease_path(key))
        return held is not None and float(held.get("expires", 0.0)) > time.time()

    def _lease_body(self) -> bytes:
        body = {
            "owner": self.owner,
            "pid": os.getpid(),
            "pidns": _pid_namespace(),  # the pid means this process only within this PID namespace
            "expires": time.time() + self.lease_ttl,
        }
        return json.dumps(body).encode()

    def _hold(self, key: str, path: Path) -> Lease:
        lease = Lease(self, key, path)
        with self._held_lock:
            self._held[key] = lease
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._stop.clear()
                self._heartbeat = threading.Thread(
                    target=self._renew_loop, name="aigve-lease-heartbeat", daemon=True
                )
                self._heartbeat.start()
        return lease

    def _renew_loop(self) -> None:
        while not self._stop.wait(max(self.lease_ttl / 4.0, 0.05)):
            with self._held_lock:
                held = list(self._held.values())
            for lease in held:
                lease.renew()

    def _release(self, lease: Lease) -> None:
        with self._held_lock:
            self._held.pop(lease.key, None)
        cur = _read_lease(lease.path)
        if cur is not None and cur.get("owner") == self.owner:
            lease.path.unlink(missing_ok=True)

    def release_all(self) -> None:
        """Release every lease this cache object holds and stop its heartbeat."""
        if not hasattr(self, "_held_lock"):  # a subclass without files (no leases)
            return
        with self._held_lock:
            held = list(self._held.values())
        for lease in held:
            lease.release()
        self._stop.set()

    def close(self) -> None:
        self.release_all()
        if self._tmp:
            shutil.rmtree(self.root, ignore_errors=True)


class Lease:
    """One held lease (see :meth:`FeatureCache.try_lease`); ``release()`` is idempotent."""

    def __init__(self, cache: FeatureCache, key: str, path: Path) -> None:
        self.cache = cache
        self.key = key
        self.path = path
        self.released = False

    def renew(self) -> bool:
        """Push the expiry forward; False when the lease is no longer ours (taken over after a stall)."""
        if self.released:
            return False
        cur = _read_lease(self.path)
        if cur is None or cur.get("owner") != self.cache.owner:
            return False
        _write_atomic(self.path, self.cache._lease_body())
        return True

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.cache._release(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---------------------------------------------------------------------------------------------- URL caches
#: fsspec protocols whose writes put a whole object at once (a reader sees the old object or the new one, never
#: part of one): an entry is written with one call, no temporary name
OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oci", "oss", "memory"})
#: the package that gives fsspec a protocol (named in the error when it is missing)
PROTOCOL_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "adl": "adlfs",
    "oci": "ocifs",
    "oss": "ossfs",
    "sftp": "paramiko",
    "ssh": "paramiko",
    "hdfs": "pyarrow",
}


def is_url(root: object) -> bool:
    """A cache location with a scheme (``s3://bucket/prefix``, ``file:///data/cache``, ...): a string holding
    ``://``. A :class:`~pathlib.Path` is always a local directory."""
    return isinstance(root, str) and "://" in root


def cache_location(root: str | Path) -> str | Path:
    """A cache location as a user gives it: a URL stays the string it is (``Path()`` would fold its ``//``);
    anything else is a local directory (``~`` expanded)."""
    return root if isinstance(root, str) and is_url(root) else Path(root).expanduser()


def redact_url(url: str) -> str:
    """``url`` without a ``user:password@`` part, for logs and provenance (credentials belong in the
    environment or the fsspec configuration, never in what aigve writes)."""
    scheme, sep, rest = url.partition("://")
    head, slash, tail = rest.partition("/")
    if "@" in head:
        head = "***@" + head.rsplit("@", 1)[1]
    return f"{scheme}{sep}{head}{slash}{tail}"


def _tally(files: Iterable[tuple[int, str]]) -> dict[str, int]:
    """Counts of ``stats`` from (size, kind) rows: entries and their bytes, stale temporary files and theirs
    (files still being written are left out)."""
    counts = {"entries": 0, "bytes": 0, "stale_tmp_files": 0, "stale_tmp_bytes": 0}
    for size, kind in files:
        if kind in ("entry", "stale"):
            n, b = ("entries", "bytes") if kind == "entry" else ("stale_tmp_files", "stale_tmp_bytes")
            counts[n] += 1
            counts[b] += size
    return counts


def open_feature_cache(
    root: str | Path | None, temporary: bool = False, lease_ttl: float | None = None
) -> FeatureCache:
    """The feature cache at ``root``: a :class:`FeatureCache` for a local directory (or a private temporary one
    when None), a :class:`FsspecFeatureCache` for a URL (``s3://``, ``gs://``, ``file://``, ``memory://``...)."""
    if root is not None and is_url(root):
        return FsspecFeatureCache(str(root), temporary=temporary, lease_ttl=lease_ttl)
    return FeatureCache(root, temporary=temporary, lease_ttl=lease_ttl)


def _url_to_fs(url: str) -> tuple[Any, str]:
    """The fsspec file system and the path within it for ``url``; clear errors for what is not installed."""
    scheme = url.split("://", 1)[0].lower()
    package = PROTOCOL_PACKAGES.get(scheme)
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise MissingDependencyError(
            f"a feature cache at {redact_url(url)}",
            "",
            "fsspec",
            install=" ".join(["fsspec", *([package] if package else [])]),
        ) from None
    try:
        return url_to_fs(url)
    except ImportError as exc:  # fsspec knows the protocol; its package is missing
        raise MissingDependencyError(
            f"a feature cache at {redact_url(url)} ({scheme}://)",
            "",
            None,
            install=package or f"the fsspec implementation of {scheme}:// ({exc})",
        ) from None
    except ValueError as exc:  # "Protocol not known"
        raise UsageError(
            f"feature cache {redact_url(url)}: fsspec does not know the protocol '{scheme}' ({exc}) — give a "
            "local directory or a URL fsspec can open (s3://, gs://, file://, ...)"
        ) from None


def _info_time(info: dict[str, Any]) -> float | None:
    """The modification (else creation) time in an fsspec ``info`` dict, as a POSIX timestamp; None when the
    file system reports none. Implementations spell it differently (``mtime``, ``LastModified``, ``updated``)."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "modified", "created", "timeCreated"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
                return (t if t.tzinfo else t.replace(tzinfo=datetime.UTC)).timestamp()
    return None


class FsspecFeatureCache(FeatureCache):
    """The feature cache at a URL, through fsspec: an object store (``s3://bucket/prefix``, ``gs://...``) or any
    other file system fsspec opens (``file://``, ``memory://``, ...). Same layout as the local cache
    (``<url>/features/<key[:2]>/<key>.npy``), so a directory and ``file://`` + that directory are one cache.

    - Writes: on an object store, one whole-object write per entry (atomic on S3, GCS and Azure: a reader
      sees all of it or none of it); elsewhere a temporary name, then a move (a rename on ``file://``, with
      the data synced to disk first).
    - No leases (``shared`` is False): an object store has no exclusive create to build them on. Two runs on
      one URL cache may compute the same video at the same time; the entries are equal whoever writes them,
      so this duplicates work, never changes a number.
    - ``prune --older-than`` counts from an entry's last write on object stores (a read does not refresh an
      object's time there; on ``file://`` it does, as for a local cache).
    - Credentials come from the environment or the fsspec configuration (``AWS_PROFILE``,
      ``GOOGLE_APPLICATION_CREDENTIALS``, ``~/.config/fsspec``); aigve stores none, and logs and provenance
      show the URL without a ``user:password@`` part.
    """

    def __init__(self, url: str, temporary: bool = False, lease_ttl: float | None = None) -> None:
        fs, path = _url_to_fs(url)
        self.fs = fs
        self._url = url  # as given, for other processes to open (``location``); never shown: ``root`` is
        self.root = redact_url(url)
        self._base = path.rstrip("/")
        self._features = f"{self._base}/features"
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        self._local = "file" in protocols or "local" in protocols
        self._whole_object = not self._local and any(p in OBJECT_STORE_PROTOCOLS for p in protocols)
        self._tmp = temporary
        self._start_counts(lease_ttl)

    def _object(self, key: str) -> str:
        return f"{self._features}/{key[:2]}/{key}.npy"

    @property
    def location(self) -> str:
        return self._url

    def discard(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.rm_file(self._object(key))

    def get(self, key: str, count: bool = True) -> np.ndarray | None:
        p = self._object(key)
        try:
            data = self.fs.cat_file(p)
        except FileNotFoundError:
            self.misses += count
            return None
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, EOFError):  # empty or cut object: drop it and recompute
            log.warning(
                "feature cache: %s/features/%s/%s.npy is unreadable; dropping it", self.root, key[:2], key
            )
            with contextlib.suppress(OSError):
                self.fs.rm_file(p)
            self.misses += count
            return None
        self.hits += count
        if count and self._local:
            with contextlib.suppress(OSError):  # "last used" for `aigve cache prune --older-than`
                os.utime(p)
        return arr

    def put(self, key: str, arr: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        data = buf.getvalue()
        p = self._object(key)
        if self._whole_object:
            self.fs.pipe_file(p, data)
            return
        parent = p.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/{TMP_PREFIX}{uuid.uuid4().hex[:16]}.tmp"
        try:
            if self._local:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, p)
            else:
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, p)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise

    def _objects(self, stale_after: float) -> list[tuple[str, int, float | None, str]]:
        """Every object under ``features/``: (path, size, age in seconds or None when unknown, kind) as in
        :meth:`FeatureCache._files`."""
        try:
            found = self.fs.find(self._features, detail=True)
        except FileNotFoundError:
            return []
        now = time.time()
        out = []
        for path, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            t = _info_time(info)
            age = None if t is None else now - t
            if not path.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
                kind = "entry"
            else:
                kind = "stale" if age is not None and age > stale_after else "writing"
            out.append((path, int(info.get("size") or 0), age, kind))
        return out

    def stats(self, stale_after: float = 3600.0) -> dict[str, Any]:
        return {
            "root": str(self.root),
            **_tally((size, kind) for _, size, _, kind in self._objects(stale_after)),
        }

    def prune(self, older_than_days: float | None = None, stale_after: float = 3600.0) -> tuple[int, int]:
        objects = self._objects(stale_after)
        if older_than_days is not None and any(age is None for _, _, age, kind in objects if kind == "entry"):
            raise UsageError(
                f"feature cache {self.root}: this file system reports no modification times, so entries "
                "cannot be pruned by age — use `aigve cache clear` (removes every entry) instead"
            )
        doomed: list[str] = []
        freed = 0
        for p, size, age, kind in objects:
            old = older_than_days is None or (age is not None and age > older_than_days * 86400.0)
            if kind == "stale" or (kind == "entry" and old):
                doomed.append(p)
                freed += size
        for i in range(0, len(doomed), 1000):  # object stores delete in batches (S3: 1000 keys a request)
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(doomed[i : i + 1000])
        return len(doomed), freed

    @property
    def shared(self) -> bool:
        """False: a URL cache has no leases (see the class docstring)."""
        return False

    def try_lease(self, key: str) -> Lease | None:
        raise UsageError(
            f"feature cache {self.root}: a URL cache has no leases (its `shared` is False: check it first)"
        )

    def lease_held(self, key: str) -> bool:
        return False

    def close(self) -> None:
        self.release_all()
        if self._tmp:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self._base, recursive=True)


def _create_exclusive(path: Path, body: bytes) -> bool:
    """Create ``path`` holding ``body`` if it does not exist, atomically (False when it exists). The body is
    written to a temporary file first and hard-linked into place, so a reader never sees it half-written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lease-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: O_EXCL create, then write
            try:
                fd2 = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd2, "wb") as f:
                f.write(body)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_atomic(path: Path, body: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lease-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_lease(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _pid_namespace() -> str | None:
    """This process's PID namespace (``pid:[4026531836]`` on Linux), None where the OS does not say."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _holder_gone(held: dict[str, Any]) -> bool:
    """Was the lease's holder a process on this host, in this PID namespace, that no longer exists? Only
    then is its pid meaningful here: a lease of another host (or container) keeps to its expiry time. A
    pid taken again by some other process reads as alive, which only delays the takeover until expiry."""
    if os.name != "posix":  # os.kill(pid, 0) probes a process on POSIX only
        return False
    parts = str(held.get("owner", "")).rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or held.get("pidns") != _pid_namespace():
        return False
    try:
        pid = int(held.get("pid", parts[1]))
    except (TypeError, ValueError):
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, owned by another user
        return False
    return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
