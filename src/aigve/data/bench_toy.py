"""The ``aigve_bench_toy`` dataset: the AIGVE-Bench toy set of the original AIGVE toolkit — 10 CogVideoX
clips with human scores on the nine AIGVE-Bench aspects (MIT License, from the public AIGVE_Tool
repository). Not shipped: downloaded on first use and verified.

Where the files come from, in order:

1. ``$AIGVE_BENCH_TOY_DIR`` — a local copy (``annotations/train.json`` + ``videos/cogvideox_<id>.mp4``),
   verified and used in place;
2. the cache, ``<cache>/datasets/aigve_bench_toy`` (``$AIGVE_CACHE_DIR`` or ``~/.cache/aigve``);
3. a download of the missing files into the cache from the upstream repository at a pinned commit
   (``$AIGVE_BENCH_TOY_BASE_URL`` overrides the base URL, e.g. a mirror or a ``file://`` folder), resumed
   where an earlier attempt stopped.

Every file is checked against ``aigve_bench_toy.json`` beside this module: its path, size and git blob
SHA-1 as the upstream git tree records them (see :mod:`aigve.data.remote`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from aigve.data.dataset import Dataset
from aigve.data.remote import ProgressFn, RemoteManifest, ensure_files, problems
from aigve.errors import DatasetError

NAME = "aigve_bench_toy"
ENV_DIR = "AIGVE_BENCH_TOY_DIR"
ENV_BASE_URL = "AIGVE_BENCH_TOY_BASE_URL"
MANIFEST_FILE = Path(__file__).with_name("aigve_bench_toy.json")


@lru_cache(maxsize=1)
def manifest() -> RemoteManifest:
    """The committed manifest of the toy set (paths, sizes, git blob SHA-1s at the pinned commit)."""
    return RemoteManifest.load(MANIFEST_FILE)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    from aigve.data.builtin import datasets_cache_dir

    return datasets_cache_dir(cache_dir) / NAME


def _offline_fix(root: Path, m: RemoteManifest) -> str:
    return (
        f"without network: download the folder {m.extra.get('folder')} of {m.extra.get('repo')} at commit "
        f"{m.extra.get('commit')} ({m.source}) — annotations/train.json and videos/*.mp4 — and put it at "
        f"{root}, or set {ENV_DIR} to it (or {ENV_BASE_URL} to a mirror)"
    )


def is_present(cache_dir: str | Path | None = None) -> bool:
    """Every file there with the recorded size (cheap: no hashing)."""
    local = os.environ.get(ENV_DIR)
    root = Path(local).expanduser() if local else cache_root(cache_dir)
    return not problems(root, manifest().files, check_hash=False)


def ensure_bench_toy(
    cache_dir: str | Path | None = None,
    *,
    timeout: float = 60.0,
    progress: ProgressFn | None = None,
    m: RemoteManifest | None = None,
) -> Path:
    """The folder holding a verified copy (see the module docstring); ``DatasetError`` naming each file
    missing, corrupt or not fetched, and what to download where when offline."""
    m = m or manifest()
    local = os.environ.get(ENV_DIR)
    if local:
        root = Path(local).expanduser()
        bad = problems(root, m.files)
        if bad:
            lines = "\n".join(f"  {root / rel}: {why}" for rel, why in sorted(bad.items()))
            raise DatasetError(
                f"{ENV_DIR}={root}: not the upstream {NAME} copy:\n{lines}\n"
                f"restore those files or unset {ENV_DIR} to download them"
            )
        return root
    root = cache_root(cache_dir)
    return ensure_files(
        m,
        root,
        os.environ.get(ENV_BASE_URL) or None,
        timeout=timeout,
        progress=progress,
        offline_fix=_offline_fix(root, m),
    )


def load_bench_toy(cache_dir: str | Path | None = None, *, timeout: float = 60.0) -> Dataset:
    """The toy set as an AIGVE-Bench dataset (human scores in each entry's fields, ``group_by`` model)."""
    from aigve.data.bench import load_bench

    root = ensure_bench_toy(cache_dir, timeout=timeout)
    ds = load_bench(root / "annotations" / "train.json", root / "videos")
    m = manifest()
    ds.name = NAME
    ds.source = f"builtin:{NAME}:{root}"
    ds.metainfo = {**ds.metainfo, "name": NAME, "upstream": m.source, "license": m.license}
    return ds
