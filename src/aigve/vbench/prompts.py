"""VBench's two modes as datasets.

**Standard** (:func:`load_standard`, or ``aigve run vbench:VIDEOS_DIR``): VBench's prompt suite
``VBench_full_info.json`` (each prompt, the dimensions it is for and their auxiliary info) is downloaded on first
use from Vchitect/VBench at a pinned commit and sha256-checked (like the toy dataset; never shipped with aigve).
Videos are paired to prompts by VBench's naming, ``{prompt}-{index}.mp4`` with index 0-4 (``build_full_info_json``
in ``vbench/__init__.py``): each video becomes one entry whose ``vbench_dimensions`` field lists the dimensions its
prompt is for, and whose auxiliary info is flattened into fields (``appearance_style``, ``object``, ``color``,
``scene``, ``spatial_relationship``). The suite's scores (:mod:`aigve.vbench.suite`) count, for each dimension,
only the videos whose prompt lists it — as VBench does — so they are comparable with the leaderboard. Missing
videos are named (VBench warns about each too).

**Custom**: any folder of videos with prompts is an ordinary aigve dataset (``aigve run FOLDER --prompts FILE``);
every dimension that needs only the frames or the prompt runs on it. Dimensions that need auxiliary info read it
from the entry's field of that name (``AUXILIARY`` in :mod:`aigve.vbench.suite`), e.g. ``appearance_style`` from a
manifest column; a video without it gets an error record naming the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aigve.data.dataset import Dataset, is_video
from aigve.errors import DatasetError, UsageError
from aigve.types import Entry
from aigve.vbench.suite import DIMENSIONS, DIMENSIONS_FIELD

VBENCH_REPO = "Vchitect/VBench"
VBENCH_COMMIT = "45e79ec14e69a2187202c675d2dbce1a71843d53"
FULL_INFO_FILE = "VBench_full_info.json"
FULL_INFO_URL = f"https://raw.githubusercontent.com/{VBENCH_REPO}/{VBENCH_COMMIT}/vbench/{FULL_INFO_FILE}"
#: sha256 of vbench/VBench_full_info.json at VBENCH_COMMIT (git blob a3a4f09, 228118 bytes)
FULL_INFO_SHA256 = "5dd2de80ee43cda750b2b72ea7023657c0b90d3702041c7e4608c65dbe50dccd"
FULL_INFO_SIZE = 228118
ENV_FULL_INFO = "AIGVE_VBENCH_FULL_INFO"  # a local copy (checked too)
VIDEOS_PER_PROMPT = 5


def ensure_full_info(cache_dir: str | Path | None = None, *, timeout: float = 30.0) -> Path:
    """The verified ``VBench_full_info.json``: ``$AIGVE_VBENCH_FULL_INFO``, the cache, or a download."""
    from aigve.data.builtin import datasets_cache_dir
    from aigve.data.toy import _download
    from aigve.paths import file_sha256

    local = os.environ.get(ENV_FULL_INFO)
    if local:
        p = Path(local).expanduser()
        if not p.is_file():
            raise DatasetError(f"{p} ({ENV_FULL_INFO}): not a file; point it at VBench's {FULL_INFO_FILE}")
        got = file_sha256(p)
        if got != FULL_INFO_SHA256:
            raise DatasetError(
                f"{p}: sha256 {got} is not that of {FULL_INFO_FILE} at {VBENCH_REPO}@{VBENCH_COMMIT[:7]} "
                f"({FULL_INFO_SHA256}); use that file (vbench/{FULL_INFO_FILE}) or unset {ENV_FULL_INFO}"
            )
        return p
    dest = datasets_cache_dir(cache_dir) / "vbench" / FULL_INFO_FILE
    if dest.is_file() and file_sha256(dest) == FULL_INFO_SHA256:
        return dest
    try:
        _download(FULL_INFO_URL, dest, FULL_INFO_SHA256, timeout)
    except DatasetError as exc:
        raise DatasetError(f"{FULL_INFO_URL}: {exc}") from exc
    except OSError as exc:  # URLError, timeouts
        raise DatasetError(
            f"could not fetch VBench's prompt suite from {FULL_INFO_URL} ({exc}); download it elsewhere and set "
            f"{ENV_FULL_INFO}=PATH (or put it at {dest})"
        ) from exc
    return dest


def read_full_info(path: str | Path) -> list[dict[str, Any]]:
    """The prompt records of a ``VBench_full_info.json``."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, list) or not all(isinstance(d, dict) and "prompt_en" in d for d in data):
        raise DatasetError(f"{path}: not a VBench full-info file (a list of {{prompt_en, dimension, ...}})")
    return data


def _flatten_aux(aux: dict[str, Any]) -> dict[str, Any]:
    """``{"appearance_style": {"appearance_style": "oil painting"}, "color": {"color": "red"}}`` -> fields."""
    out: dict[str, Any] = {}
    for info in aux.values():
        if isinstance(info, dict):
            out.update(info)
    return out


def standard_entries(
    records: Iterable[dict[str, Any]],
    videos_dir: str | Path,
    dimensions: Iterable[str] | None = None,
) -> tuple[list[Entry], list[str]]:
    """Pair ``{prompt}-{i}.<ext>`` videos (i = 0..4, VBench's rule) with the prompt records whose dimensions meet
    ``dimensions`` (all 16 when None). Returns the entries and the names of the expected videos not found."""
    wanted = set(DIMENSIONS if dimensions is None else dimensions)
    unknown = wanted - set(DIMENSIONS)
    if unknown:
        raise UsageError(f"unknown VBench dimension(s) {sorted(unknown)}; known: {', '.join(DIMENSIONS)}")
    folder = Path(videos_dir)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder of videos named '<prompt>-<index>.mp4'")
    names = {p.name for p in folder.iterdir() if p.is_file() and is_video(p)}
    suffixes = sorted({Path(n).suffix for n in names}) or [".mp4"]
    by_id: dict[str, Entry] = {}
    missing: list[str] = []
    for rec in records:
        dims = [d for d in rec.get("dimension", []) if d in wanted]
        if not dims:
            continue
        prompt = str(rec["prompt_en"])
        aux = _flatten_aux(rec.get("auxiliary_info", {}))
        for i in range(VIDEOS_PER_PROMPT):
            name = next((f"{prompt}-{i}{s}" for s in suffixes if f"{prompt}-{i}{s}" in names), None)
            if name is None:
                missing.append(f"{prompt}-{i}{suffixes[0]}")
                continue
            vid = Path(name).stem
            old = by_id.get(vid)
            if old is not None:  # the same prompt listed for other dimensions: one video, the union
                merged = dict(old.extra)
                merged[DIMENSIONS_FIELD] = sorted(set(old.extra[DIMENSIONS_FIELD]) | set(dims))
                merged.update({k: v for k, v in aux.items() if k not in merged})
                by_id[vid] = Entry(vid, old.generated, prompt=prompt, extra=merged)
            else:
                by_id[vid] = Entry(
                    vid, folder / name, prompt=prompt, extra={DIMENSIONS_FIELD: sorted(dims), **aux}
                )
    return list(by_id.values()), missing


def load_standard(
    videos_dir: str | Path,
    dimensions: Iterable[str] | None = None,
    *,
    cache_dir: str | Path | None = None,
    full_info: str | Path | None = None,
) -> Dataset:
    """VBench's standard mode: the prompt suite paired with ``videos_dir`` (see the module docstring)."""
    path = Path(full_info) if full_info is not None else ensure_full_info(cache_dir)
    entries, missing = standard_entries(read_full_info(path), videos_dir, dimensions)
    if not entries:
        raise DatasetError(
            f"{videos_dir}: no video named as VBench expects ('<prompt>-<index>.mp4', index 0-4, prompts from "
            f"{FULL_INFO_FILE})"
        )
    ds = Dataset(name="vbench", entries=entries)
    ds.source = f"vbench:{videos_dir}"
    ds.metainfo = {
        **ds.metainfo,
        "name": "vbench",
        "prompt_suite": f"{VBENCH_REPO}@{VBENCH_COMMIT} vbench/{FULL_INFO_FILE} (sha256 {FULL_INFO_SHA256})",
        "missing_videos": len(missing),
        "missing_examples": missing[:10],
    }
    return ds
