"""``aigve_bench``: a loader for a local copy of AIGVE-Bench (2,430 videos from 5 generators, 500 prompts,
human scores on 9 aspects). The benchmark is not downloaded; point the loader at your copy.

Where it looks: an explicit ``path``, else ``$AIGVE_BENCH_DIR``, else ``<cache>/datasets/aigve_bench``.
``path`` may be the annotation file itself or a folder holding it (``annotations/*.json|csv`` or
``*.json|csv`` at the top; pick one with ``split="<stem>"`` when there are several).

Annotation: the AIGVE JSON format, each entry with ``id``, ``prompt_gt``, ``video_path_pd``, ``model``,
``category``, ``subject``, ``dynamic_type``, ``detailed_dynamic`` and the 0-5 human scores in
``SCORE_FIELDS`` (0 = not applicable; "presentence" is the shipped spelling); or a CSV with the same columns
(cells holding ``[...]`` are parsed as lists). Everything is kept in ``Entry.extra``, scores as floats.

Ids: the benchmark's ``id`` is the *prompt* id, shared by the videos the generators made for one prompt, so
it is kept as ``extra["prompt_id"]`` and the entry id is the video file's stem (e.g. ``cogvideox_0``).

Videos are looked up in ``video_dir`` if given, else the first of ``<root>/videos``, ``<root>/evaluate``, the
annotation's folder and ``<root>`` that holds the first entry's video.
"""

from __future__ import annotations

import ast
import csv
import json
import os
from pathlib import Path
from typing import Any

from aigve.data.annotation import load_json, parse_annotation
from aigve.data.dataset import Dataset
from aigve.errors import DatasetError

ENV_DIR = "AIGVE_BENCH_DIR"
SCORE_FIELDS: tuple[str, ...] = (
    "technical_quality",
    "dynamic",
    "consistency",
    "physics",
    "element_presentence",
    "element_quality",
    "action_presentence",
    "action_quality",
    "overall",
)
META_FIELDS: tuple[str, ...] = ("model", "category", "subject", "dynamic_type", "detailed_dynamic")
LIST_FIELDS: tuple[str, ...] = ("subject", "dynamic_type", "detailed_dynamic")


def looks_like_bench(data_list: Any) -> bool:
    """True when the entries carry AIGVE-Bench's model + human-score fields."""
    if not isinstance(data_list, list) or not data_list or not isinstance(data_list[0], dict):
        return False
    first = data_list[0]
    return "model" in first and sum(k in first for k in SCORE_FIELDS) >= 3


def _where_to_put(cache_dir: str | Path | None) -> str:
    from aigve.data.builtin import datasets_cache_dir

    return (
        f"set {ENV_DIR} to the folder of your AIGVE-Bench copy (annotations/<split>.json or a CSV with the "
        f"same columns, plus the videos), or put it in {datasets_cache_dir(cache_dir) / 'aigve_bench'}"
    )


def find_bench_annotation(
    path: str | Path | None = None, *, split: str | None = None, cache_dir: str | Path | None = None
) -> Path:
    """The annotation file of the local AIGVE-Bench copy (rules in the module docstring)."""
    if path is None:
        env = os.environ.get(ENV_DIR)
        if env:
            path = Path(env).expanduser()
        else:
            from aigve.data.builtin import datasets_cache_dir

            path = datasets_cache_dir(cache_dir) / "aigve_bench"
            if not path.exists():
                raise DatasetError(
                    f"AIGVE-Bench not found (no {ENV_DIR}, nothing at {path}): {_where_to_put(cache_dir)}"
                )
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DatasetError(f"{path}: AIGVE-Bench not found there — {_where_to_put(cache_dir)}")
    cands: list[Path] = []
    for folder in (path / "annotations", path):
        if folder.is_dir():
            cands += sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".csv")
            )
        if cands:
            break
    if split is not None:
        cands = [p for p in cands if p.stem == split]
    if not cands:
        what = f"split '{split}'" if split else "an annotation file"
        raise DatasetError(
            f"{path}: no {what} (annotations/*.json or *.csv) found — {_where_to_put(cache_dir)}"
        )
    if len(cands) > 1:
        names = ", ".join(p.name for p in cands)
        raise DatasetError(
            f"{path}: several annotation files ({names}) — choose one with split='<name>' "
            f"or point {ENV_DIR} at the file"
        )
    return cands[0]


def _cell(value: str) -> Any:
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):
        try:
            return json.loads(v)
        except ValueError:
            try:
                return ast.literal_eval(v)
            except (ValueError, SyntaxError):
                return value
    return value


def _read_csv(path: Path) -> dict[str, Any]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = [(c or "").strip() for c in reader.fieldnames or []]
        if "video_path_pd" not in cols:
            raise DatasetError(
                f"{path}: the header needs a 'video_path_pd' column (found {cols}) — use the annotation's field names as columns"
            )
        rows: list[dict[str, Any]] = []
        for row in reader:
            item: dict[str, Any] = {}
            for k, v in row.items():
                if k is None or v is None or not v.strip():
                    continue
                k = k.strip()
                if k == "id" and v.strip().lstrip("-").isdigit():
                    item[k] = int(v)
                elif k in SCORE_FIELDS:
                    item[k] = v.strip()  # converted (and checked) below
                else:
                    item[k] = _cell(v)
            rows.append(item)
    return {"metainfo": {"source_csv": str(path)}, "data_list": rows}


def _scores(path: Path, data_list: list[Any]) -> None:
    """Convert the score fields to float in place, checking 0 <= score <= 5."""
    for i, item in enumerate(data_list):
        if not isinstance(item, dict):
            continue  # parse_annotation reports it
        for k in SCORE_FIELDS:
            if k not in item or item[k] is None:
                continue
            v = item[k]
            try:
                if isinstance(v, bool):
                    raise ValueError
                f = float(v)
            except (TypeError, ValueError):
                raise DatasetError(
                    f"{path}: data_list[{i}] field '{k}': expected a number 0-5, got {v!r} — fix the score"
                ) from None
            if not 0.0 <= f <= 5.0:
                raise DatasetError(f"{path}: data_list[{i}] field '{k}': {f} is outside 0-5 — fix the score")
            item[k] = f
        if "id" in item:
            item["prompt_id"] = item.pop("id")


def _pick_video_dir(ann: Path, first_video: str | None) -> Path | None:
    root = ann.absolute().parent
    if root.name == "annotations":
        root = root.parent
    for cand in (root / "videos", root / "evaluate", ann.absolute().parent, root):
        if first_video and (cand / first_video).is_file():
            return cand
    return None


def load_bench(
    path: str | Path | None = None,
    video_dir: str | Path | None = None,
    *,
    split: str | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load a local AIGVE-Bench copy (see the module docstring)."""
    ann = find_bench_annotation(path, split=split, cache_dir=cache_dir)
    obj = _read_csv(ann) if ann.suffix.lower() == ".csv" else load_json(ann)
    if isinstance(obj, dict) and isinstance(obj.get("data_list"), list):
        _scores(ann, obj["data_list"])
        first = obj["data_list"][0] if obj["data_list"] else None
        first_video = first.get("video_path_pd") if isinstance(first, dict) else None
    else:
        first_video = None
    vdir = (
        video_dir
        if video_dir is not None
        else _pick_video_dir(ann, first_video if isinstance(first_video, str) else None)
    )
    ds = parse_annotation(obj, ann, vdir, id_field=None, name="aigve_bench")
    ds.source = f"aigve_bench:{ann}"
    ds.metainfo = {
        **ds.metainfo,
        "human_scores": list(SCORE_FIELDS),
        "score_range": [0, 5],
        "score_not_applicable": 0,
    }
    ds.hints = {"group_by": "model", "human_scores": list(SCORE_FIELDS)}
    return ds
