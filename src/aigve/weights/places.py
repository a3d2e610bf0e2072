"""Where checkpoints are looked for and put: the environment variables, the weights cache folder, the
download switches, and the "where to put it" sentence every missing-file error ends with."""

from __future__ import annotations

import os
import re
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


def where_to_put(spec: WeightSpec) -> str:
    """The fix for a missing file: the cache path, the env folder, the metric option, then verify."""
    env = env_dir()
    alt = f"{env / spec.filename}" if env else f"${ENV_WEIGHTS_DIR}/{spec.filename}"
    return (
        f"put it at {cache_dir() / spec.filename} (or at {alt} with {ENV_WEIGHTS_DIR} set, or pass "
        f"--metric-option {spec.metric_hint}.weights=PATH), then run `aigve weights verify {spec.name}`"
    )
