"""Datasets: the ``Dataset`` model and every way to get one.

``load_dataset`` is the single entry point the CLI, the server and the Python API use; it dispatches to
``read_annotation`` (AIGVE JSON), ``read_manifest`` (CSV / JSONL), ``from_folders`` (plain folders),
``load_builtin`` (demo, toy, aigve_bench_toy, aigve_bench; ``builtin_status`` / ``fetch_builtin`` list and
download them). ``prepare`` pairs and stages a folder of videos.
"""

from __future__ import annotations

from aigve.data.annotation import default_video_dir, read_annotation, write_annotation
from aigve.data.builtin import builtin_names, builtin_status, fetch_builtin, load_builtin
from aigve.data.dataset import VIDEO_EXTENSIONS, Dataset, is_video
from aigve.data.folders import apply_prompts, from_folders, read_prompts
from aigve.data.load import load_dataset
from aigve.data.manifest import read_manifest
from aigve.data.pairing import DEFAULT_SUFFIXES, Duplicate, Pair, PairReport, scan_and_pair
from aigve.data.staging import PrepareReport, prepare, stage_dataset

__all__ = [
    "DEFAULT_SUFFIXES",
    "VIDEO_EXTENSIONS",
    "Dataset",
    "Duplicate",
    "Pair",
    "PairReport",
    "PrepareReport",
    "apply_prompts",
    "builtin_names",
    "builtin_status",
    "default_video_dir",
    "fetch_builtin",
    "from_folders",
    "is_video",
    "load_builtin",
    "load_dataset",
    "prepare",
    "read_annotation",
    "read_manifest",
    "read_prompts",
    "scan_and_pair",
    "stage_dataset",
    "write_annotation",
]
