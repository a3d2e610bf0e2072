"""Downloading a checkpoint into the weights cache: streamed to a temporary file with the digests computed
on the way, verified against the registry (or the lock), then atomically renamed into place."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aigve.errors import WeightsError
from aigve.fsutil import as_if_opened
from aigve.weights.hashing import check_hashes, lock_check, store_digests
from aigve.weights.places import ENV_CACHE_DIR, cache_dir, where_to_put
from aigve.weights.spec import WeightSpec

_CHUNK = 1 << 20

ProgressCallback = Callable[[str, int, int | None], None]
"""``progress(filename, bytes_done, bytes_total_or_None)`` called while downloading."""


def _default_progress() -> tuple[ProgressCallback | None, Callable[[], None]]:
    """A rich progress bar on an interactive stderr, else nothing."""
    if not sys.stderr.isatty():
        return None, lambda: None
    try:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
    except ImportError:  # pragma: no cover - rich is a core dependency
        return None, lambda: None
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    bar.start()
    tasks: dict[str, Any] = {}

    def update(filename: str, done: int, total: int | None) -> None:
        if filename not in tasks:
            tasks[filename] = bar.add_task(filename, total=total)
        bar.update(tasks[filename], completed=done, total=total)

    return update, bar.stop


def _download_one(
    spec: WeightSpec,
    url: str,
    dest_dir: Path,
    timeout: float,
    progress: ProgressCallback | None,
    digests: dict[str, str],
) -> Path:
    """Stream ``url`` to a temp file in ``dest_dir``; returns its path (caller verifies and renames).

    Fills ``digests`` with the sha256 (and md5 when needed) computed on the way.
    """
    from aigve import __version__ as version

    # sha256 and md5 are computed while streaming (git-blob-sha1 needs the size first: computed after)
    hashers: dict[str, Any] = {"sha256": hashlib.sha256()}
    if any(kind == "md5-prefix" for kind, _ in spec.expected_hashes()):
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": f"aigve/{version}"})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=dest_dir)
    as_if_opened(fd)
    tmp = Path(tmp_name)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else spec.size
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                done += len(chunk)
                if spec.size is not None and done > spec.size:
                    raise WeightsError(f"server sent more than the expected {spec.size} bytes")
                if progress is not None:
                    progress(spec.filename, done, total)
        digests.update({k: h.hexdigest() for k, h in hashers.items()})
        return tmp
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def download_to_cache(
    spec: WeightSpec,
    url_list: list[str],
    *,
    update_lock: bool,
    timeout: float,
    progress: ProgressCallback | None,
) -> tuple[Path, str, list[str]]:
    """Try each URL in turn; the first verified file lands at ``<weights cache>/<filename>``.

    Returns ``(path, sha256, warnings)``; ``WeightsError`` naming every URL tried and where to put a copy
    fetched by hand when none gives the right file.
    """
    dest_dir = cache_dir()
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(
            f"cannot create the weights cache {dest_dir}: {e}; set {ENV_CACHE_DIR} to a writable folder"
        ) from e
    dest = dest_dir / spec.filename
    stop: Callable[[], None] = lambda: None  # noqa: E731
    if progress is None:
        progress, stop = _default_progress()
    failures: list[str] = []
    mismatch: list[str] = []
    try:
        for url in url_list:
            try:
                digests: dict[str, str] = {}
                tmp = _download_one(spec, url, dest_dir, timeout, progress, digests)
            except (urllib.error.URLError, OSError, ValueError, WeightsError) as e:
                reason = getattr(e, "reason", None) or e
                failures.append(f"{url}: {reason}")
                continue
            problems, sha = check_hashes(spec, tmp, use_cache=False, known=digests)
            if problems:
                tmp.unlink(missing_ok=True)
                mismatch.append(f"{url}: {'; '.join(problems)} (downloaded file removed)")
                continue
            warnings: list[str] = []
            if not spec.pinned:
                problems, warnings = lock_check(spec, tmp, sha, update_lock=update_lock, record=True)
                if problems:
                    tmp.unlink(missing_ok=True)
                    mismatch.append(
                        f"{url}: {'; '.join(problems)} (downloaded file removed; accept the new file with "
                        f"update_lock=True / `aigve weights fetch {spec.name} --update-lock`)"
                    )
                    continue
            os.replace(tmp, dest)
            st = dest.stat()
            store_digests(dest, {**digests, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
            return dest, sha, warnings
    finally:
        stop()
    if mismatch:
        raise WeightsError(
            f"downloaded {spec.filename} for {spec.label} does not match the registry: "
            f"{' | '.join(mismatch + failures)}. The file at the URL may have changed or the transfer was "
            f"corrupted; get a correct copy and {where_to_put(spec)}"
        )
    first_url, _, first_reason = failures[0].partition(": ")
    more = f" (also tried: {' | '.join(failures[1:])})" if len(failures) > 1 else ""
    raise WeightsError(
        f"could not download {spec.filename} for {spec.label} from {first_url}: {first_reason}"
        f"{more}. Download it elsewhere and {where_to_put(spec)}"
    )
