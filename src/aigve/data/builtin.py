"""Built-in datasets by name: ``demo`` (generated locally), ``toy`` (downloaded, verified) and
``aigve_bench`` (a local copy you provide).

Cache: ``cache_dir`` argument, else ``$AIGVE_CACHE_DIR``, else ``~/.cache/aigve``; datasets live in its
``datasets/`` subfolder.
"""

from __future__ import annotations

from pathlib import Path

from aigve import paths
from aigve.data.dataset import Dataset
from aigve.errors import UsageError

BUILTIN_NAMES: tuple[str, ...] = ("demo", "toy", "aigve_bench")


def datasets_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The folder built-in datasets are stored in: ``<cache>/datasets``."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else paths.cache_dir()
    return base / "datasets"


def builtin_names() -> tuple[str, ...]:
    """Names ``load_builtin`` accepts."""
    return BUILTIN_NAMES


def load_builtin(name: str, cache_dir: str | Path | None = None) -> Dataset:
    """Load a built-in dataset by name (see the module docstring)."""
    if name == "demo":
        from aigve.data.demo import generate_demo

        return generate_demo(datasets_cache_dir(cache_dir) / "demo")
    if name == "toy":
        from aigve.data.toy import load_toy

        return load_toy(cache_dir)
    if name == "aigve_bench":
        from aigve.data.bench import load_bench

        return load_bench(cache_dir=cache_dir)
    raise UsageError(f"unknown built-in dataset '{name}': choose from {', '.join(BUILTIN_NAMES)}")
