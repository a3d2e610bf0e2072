"""What the ``aigve weights`` commands report and do, as plain data: :func:`list_weights` (which files are
present, without hashing), :func:`fetch` (make them available, downloading where needed), :func:`verify`
(hash-check what is present, never downloading) and :func:`import_dir` (verify and install files fetched
on another machine)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aigve.errors import UsageError, WeightsError
from aigve.weights.download import ProgressCallback
from aigve.weights.hashing import TOFU_WARNING, check_hashes, load_json, lock_check, lock_path
from aigve.weights.places import cache_dir, env_dir, hub_snapshot_dir, where_to_put
from aigve.weights.resolve import resolve_weights
from aigve.weights.spec import WeightSpec, get_weight_spec, weight_names


def _present(spec: WeightSpec) -> tuple[Path | None, str | None]:
    env = env_dir()
    if env is not None and (env / spec.filename).exists():
        return env / spec.filename, "env"
    if spec.package is not None:
        located = spec.package.locate()
        if located is not None:
            return located, "package"
    cached = cache_dir() / spec.filename
    if cached.exists():
        return cached, "cache"
    hub = hub_snapshot_dir(spec)
    if hub is not None and spec.urls:
        checkpoint = hub / spec.urls[0].rsplit("/", 1)[-1]  # the registry's file inside the snapshot
        if checkpoint.is_file():
            return checkpoint, "cache"
    return None, None


def list_weights(names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per checkpoint: name, filename, size, hash kind/value, pinned, present, where, source, ...

    Cheap: looks for files but does not hash them (use :func:`verify` for that).
    """
    rows = []
    for name in names if names is not None else weight_names():
        spec = get_weight_spec(name)
        where, source = _present(spec)
        rows.append(
            {
                "name": spec.name,
                "filename": spec.filename,
                "size": spec.size,
                "hash_kind": spec.hash_kind,
                "hash_value": spec.hash_value,
                "pinned": spec.pinned,
                "present": where is not None,
                "where": str(where) if where else None,
                "source": source,
                "manual": spec.manual_download is not None and not spec.urls,
                "license": spec.license,
                "used_by": list(spec.used_by),
                "format": spec.format,
                "urls": list(spec.urls),
                "hf_repo": spec.hf_repo,
                "revision": spec.revision,
                "source_page": spec.source_page,
                "manual_download": spec.manual_download,
                "planned": spec.planned,
            }
        )
    return rows


@dataclass(frozen=True)
class FetchResult:
    """Outcome of fetching one checkpoint."""

    name: str
    ok: bool
    path: Path | None = None
    source: str | None = None
    sha256: str | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None
    skipped: bool = False  # not attempted in a fetch-all (manual download / package not installed)


def fetch(
    names: Iterable[str] | None = None,
    *,
    strict: bool = False,
    update_lock: bool = False,
    force: bool = False,
    urls: Sequence[str] | None = None,
    timeout: float = 60.0,
    progress: ProgressCallback | None = None,
) -> list[FetchResult]:
    """Make each checkpoint available locally (download where needed); one result per name.

    ``names=None`` fetches every registered checkpoint that can be downloaded (manual-download and
    package-only entries are reported, not attempted). Errors are returned, not raised.
    """
    explicit = names is not None
    results = []
    for name in names if names is not None else weight_names():
        try:
            spec = get_weight_spec(name)
            if not explicit and not spec.urls and (spec.package is None or spec.package.locate() is None):
                reason = "manual download" if spec.manual_download else "package not installed"
                results.append(
                    FetchResult(
                        name,
                        False,
                        error=f"skipped ({reason}); fetch it by name for instructions",
                        skipped=True,
                    )
                )
                continue
            r = resolve_weights(
                name,
                strict=strict,
                update_lock=update_lock,
                urls=urls,
                timeout=timeout,
                progress=progress,
                force_download=force and bool(spec.urls),
            )
            results.append(FetchResult(name, True, r.path, r.source, r.sha256, tuple(r.warnings)))
        except (WeightsError, UsageError) as e:
            results.append(FetchResult(name, False, error=str(e)))
    return results


VerifyStatus = Literal["ok", "locked", "recorded", "missing", "mismatch", "error"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking one checkpoint present on disk.

    ``status``: ``ok`` (matches the published hash), ``locked`` (unpinned, matches the lock),
    ``recorded`` (unpinned, recorded now on first use), ``missing``, ``mismatch`` or ``error``.
    """

    name: str
    filename: str
    status: VerifyStatus
    path: Path | None
    source: str | None
    hash_kind: str
    sha256: str | None
    message: str


def verify(names: Iterable[str] | None = None, *, update_lock: bool = False) -> list[VerifyResult]:
    """Hash-check the checkpoints that are present (never downloads). One result per name."""
    out = []
    for name in names if names is not None else weight_names():
        spec = get_weight_spec(name)
        path, source = _present(spec)
        if path is None:
            how = spec.manual_download + " Then " if spec.manual_download else ""
            out.append(
                VerifyResult(
                    name,
                    spec.filename,
                    "missing",
                    None,
                    None,
                    spec.hash_kind,
                    None,
                    f"not present: {how}{where_to_put(spec)}",
                )
            )
            continue
        try:
            problems, sha = check_hashes(spec, path)
            if problems:
                out.append(
                    VerifyResult(
                        name,
                        spec.filename,
                        "mismatch",
                        path,
                        source,
                        spec.hash_kind,
                        sha,
                        "; ".join(problems),
                    )
                )
                continue
            if spec.pinned:
                out.append(
                    VerifyResult(
                        name,
                        spec.filename,
                        "ok",
                        path,
                        source,
                        spec.hash_kind,
                        sha,
                        f"matches the published {spec.hash_kind}",
                    )
                )
                continue
            had = name in load_json(lock_path())
            problems, warnings = lock_check(spec, path, sha, update_lock=update_lock, record=True)
            if problems:
                out.append(
                    VerifyResult(
                        name,
                        spec.filename,
                        "mismatch",
                        path,
                        source,
                        spec.hash_kind,
                        sha,
                        "; ".join(problems) + " (accept with --update-lock)",
                    )
                )
            elif had and not warnings:
                out.append(
                    VerifyResult(
                        name,
                        spec.filename,
                        "locked",
                        path,
                        source,
                        spec.hash_kind,
                        sha,
                        f"matches the lock ({TOFU_WARNING})",
                    )
                )
            else:
                out.append(
                    VerifyResult(
                        name,
                        spec.filename,
                        "recorded",
                        path,
                        source,
                        spec.hash_kind,
                        sha,
                        "; ".join(warnings),
                    )
                )
        except OSError as e:
            out.append(
                VerifyResult(name, spec.filename, "error", path, source, spec.hash_kind, None, f"{path}: {e}")
            )
    return out


ImportStatus = Literal["installed", "present", "mismatch", "missing", "unknown", "error"]


@dataclass(frozen=True)
class ImportResult:
    """Outcome of importing one file (or of looking for one): ``installed`` (verified and copied into
    the cache), ``present`` (the cache already holds the same file), ``mismatch`` (not the registry's
    file: left where it is), ``missing`` (asked for by name, not in the folder), ``unknown`` (a file no
    registry entry names) or ``error``."""

    name: str | None
    filename: str
    status: ImportStatus
    path: Path | None
    message: str = ""
    warnings: tuple[str, ...] = ()


def _files_in(src: Path) -> dict[str, Path]:
    """File name -> path for the files in ``src`` and its subfolders (the first one of a name wins)."""
    found: dict[str, Path] = {}
    for p in sorted(src.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            found.setdefault(p.name, p)
    return found


def import_dir(
    src: str | Path, names: Iterable[str] | None = None, *, update_lock: bool = False
) -> list[ImportResult]:
    """Verify the registry files found in ``src`` (matched by file name, subfolders included) and
    install them in the weights cache, the layout :func:`fetch` writes: ``<cache>/weights/<filename>``.

    A file with a published digest is installed only when it matches (size and every digest); one
    without is recorded in the lock on first use (as a download would be). Files are copied through a
    temporary file and renamed into place, so a failed copy leaves nothing half-written. ``names`` (weights
    names) limits the import and reports those not found as ``missing``; without it every registry file
    present is imported and other files are reported as ``unknown``. Hub snapshots (entries with
    ``hf_repo``: CLIP, BLIP, PickScore) are directories, not files, and are not imported here: copy the
    snapshot folder to the path ``aigve weights list`` gives for them.
    """
    import os
    import shutil
    import tempfile

    from aigve.fsutil import as_if_opened
    from aigve.weights.hashing import store_digests
    from aigve.weights.spec import all_specs

    src = Path(src).expanduser()
    if not src.is_dir():
        raise UsageError(f"aigve weights import: {src} is not a folder")
    specs = all_specs()
    by_file = {s.filename: s for s in specs.values() if s.format != "hf-directory"}
    wanted = None if names is None else [get_weight_spec(n) for n in names]
    files = _files_in(src)
    out: list[ImportResult] = []
    todo: list[tuple[WeightSpec, Path]] = []
    if wanted is None:
        for fname, p in files.items():
            spec = by_file.get(fname)
            if spec is None:
                out.append(ImportResult(None, fname, "unknown", p, "no registry entry has this file name"))
            else:
                todo.append((spec, p))
    else:
        for spec in wanted:
            found = files.get(spec.filename)
            if found is None:
                out.append(
                    ImportResult(
                        spec.name, spec.filename, "missing", None, f"{spec.filename} is not in {src}"
                    )
                )
            else:
                todo.append((spec, found))
    dest_dir = cache_dir()
    for spec, p in todo:
        dest = dest_dir / spec.filename
        try:
            problems, sha = check_hashes(spec, p, use_cache=False)
            if problems:
                out.append(
                    ImportResult(
                        spec.name,
                        spec.filename,
                        "mismatch",
                        p,
                        f"not the registry's file ({'; '.join(problems)}); not installed",
                    )
                )
                continue
            warnings: list[str] = []
            if not spec.pinned:
                problems, warnings = lock_check(spec, p, sha, update_lock=update_lock, record=True)
                if problems:
                    out.append(
                        ImportResult(
                            spec.name,
                            spec.filename,
                            "mismatch",
                            p,
                            "; ".join(problems) + " (accept it with --update-lock)",
                        )
                    )
                    continue
            if dest.exists() and dest.resolve() == p.resolve():
                out.append(ImportResult(spec.name, spec.filename, "present", dest, "already in the cache"))
                continue
            dest_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=dest_dir)
            as_if_opened(fd)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                shutil.copyfile(p, tmp)
                got_problems, _ = check_hashes(spec, tmp, use_cache=False) if spec.pinned else ([], sha)
                if got_problems:  # changed while copying
                    raise OSError(f"the copy does not verify: {'; '.join(got_problems)}")
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            st = dest.stat()
            store_digests(dest, {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
            msg = f"verified ({spec.hash_kind})" if spec.pinned else TOFU_WARNING
            out.append(ImportResult(spec.name, spec.filename, "installed", dest, msg, tuple(warnings)))
        except OSError as e:
            out.append(ImportResult(spec.name, spec.filename, "error", p, f"{p}: {e}"))
    return out
