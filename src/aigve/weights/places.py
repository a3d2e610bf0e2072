"""Where checkpoints are looked for and put: the environment variables, the weights cache folder, the
download switches, and the "where to put it" sentence every missing-file error ends with."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from aigve import paths
from aigve.weights.spec import WeightSpec

ENV_WEIGHTS_DIR = "AIGVE_WEIGHTS_DIR"
ENV_CACHE_DIR = paths.ENV_CACHE_DIR
ENV_MIRROR = "AIGVE_WEIGHTS_MIRROR"  # base URLs (space or comma separated), tried before the registry's
ENV_OFFLINE = "AIGVE_OFFLINE"  # "1"/"true": never download


def cache_dir() -> Path:
    """The weights cache, ``<aigve cache>/weights`` (default ``~/.cache/aigve/weights``); not created here."""
    return paths.cache_dir() / "weights"


def hub_snapshot_dir(spec: WeightSpec) -> Path | None:
    """``<cache>/weights/hf/<repo>@<revision>``: the folder of a pinned hub snapshot (entries with
    ``hf_repo``; the CLIP-family backbones look there), None for single-file entries."""
    if not spec.hf_repo or not spec.revision:
        return None
    return cache_dir() / "hf" / f"{spec.hf_repo}@{spec.revision}"


def env_dir() -> Path | None:
    """``$AIGVE_WEIGHTS_DIR`` (``~`` expanded), or None when unset."""
    value = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(value).expanduser() if value else None


def offline() -> bool:
    """True when ``$AIGVE_OFFLINE`` forbids downloads."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


def mirror_urls(spec: WeightSpec) -> list[str]:
    """``<mirror>/<filename>`` for every base URL in ``$AIGVE_WEIGHTS_MIRROR``."""
    bases = [b for b in re.split(r"[\s,]+", os.environ.get(ENV_MIRROR, "")) if b]
    return [f"{b.rstrip('/')}/{spec.filename}" for b in bases]


# set by the engine while it builds a backbone: the option that gives *that backbone* a file, which works for
# every metric using it (a metric's own ``weights`` option only reaches the backbones of that metric)
_OPTION_HINT: ContextVar[str | None] = ContextVar("aigve_weights_option_hint", default=None)


def option_hint(spec: WeightSpec) -> str:
    """The option to name in an error about ``spec``'s file. A file one metric uses: that metric's
    ``--metric-option <metric>.weights=PATH`` (plus the engine's backbone option while it builds a backbone).
    A file several metrics share (FID's Inception: fid, kid, is): the backbone option, which reaches all of
    them (``fid.weights`` does not help ``kid``); outside the engine, each metric's own option."""
    custom = _OPTION_HINT.get()
    if len(spec.used_by) > 1:
        if custom:
            return custom
        return f"--metric-option METRIC.weights=PATH for the metric that failed ({', '.join(spec.used_by)})"
    own = f"--metric-option {spec.metric_hint}.weights=PATH"
    return f"{own}, or {custom}" if custom else own


@contextmanager
def weights_option_hint(hint: str | None) -> Iterator[None]:
    """Within the block, errors about a missing or wrong weights file name ``hint`` as the option to use."""
    token = _OPTION_HINT.set(hint)
    try:
        yield
    finally:
        _OPTION_HINT.reset(token)


def where_to_put(spec: WeightSpec) -> str:
    """The fix for a missing file: the cache path, the env folder, the metric option, then verify."""
    env = env_dir()
    alt = f"{env / spec.filename}" if env else f"${ENV_WEIGHTS_DIR}/{spec.filename}"
    return (
        f"put it at {cache_dir() / spec.filename} (or at {alt} with {ENV_WEIGHTS_DIR} set, or pass "
        f"{option_hint(spec)}), then run `aigve weights verify {spec.name}`"
    )
