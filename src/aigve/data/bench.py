"""``aigve_bench``: AIGVE-Bench (2,430 videos from 5 generators, 500 prompts, human scores on 9 aspects;
Apache-2.0, the dataset repository ``xiaoliux/AIGVE-Bench`` on the Hugging Face hub).

``aigve datasets fetch aigve_bench`` (:func:`fetch_bench`) downloads the hub repository — the CSV
(``AIGVE-Bench1.0.csv``) and the videos — into ``<cache>/datasets/aigve_bench`` with ``huggingface_hub``'s
``snapshot_download`` (resumable: an interrupted fetch continues its partial files), then checks every file
against the hub's listing (size; sha256 for LFS files, git blob SHA-1 for the others). Loading never
downloads: without a copy the error says what to fetch and where to put it.

Where it looks: an explicit ``path``, else ``$AIGVE_BENCH_DIR``, else ``<cache>/datasets/aigve_bench``.
``path`` may be the annotation file itself or a folder holding it (``annotations/*.json|csv`` or
``*.json|csv`` at the top; pick one with ``split="<stem>"`` when there are several).

Annotation: the AIGVE JSON format, each entry with ``id``, ``prompt_gt``, ``video_path_pd``, ``model``,
``category``, ``subject``, ``dynamic_type``, ``detailed_dynamic`` and the 0-5 human scores in
``SCORE_FIELDS`` (0 = not applicable; "presentence" is the shipped spelling); or a CSV with the same columns
(cells holding ``[...]`` are parsed as lists). Everything is kept in ``Entry.extra``, scores as floats. CSV
headers may also name the aspects as the dataset card does ("Technical Quality", "Element Presence",
"Action/Interaction Quality", ...: :func:`aspect_field`) and the video and prompt columns ``video_path``,
``video``, ``file_name`` / ``prompt`` — unverified guesses at the hub CSV's header, which could not be read
when this was written.

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
#: the aspects as the dataset card names them, in SCORE_FIELDS order
ASPECT_TITLES: tuple[str, ...] = (
    "Technical Quality",
    "Dynamic",
    "Consistency",
    "Physics",
    "Element Presence",
    "Element Quality",
    "Action/Interaction Presence",
    "Action/Interaction Quality",
    "Overall",
)
_ALIASES: dict[str, str] = {
    "element_presence": "element_presentence",
    "action_presence": "action_presentence",
    "action_interaction_presence": "action_presentence",
    "action_interaction_presentence": "action_presentence",
    "action_interaction_quality": "action_quality",
    "video_path": "video_path_pd",
    "video": "video_path_pd",
    "video_name": "video_path_pd",
    "file_name": "video_path_pd",
    "filename": "video_path_pd",
    "prompt": "prompt_gt",
}
HUB_REPO = "xiaoliux/AIGVE-Bench"
HUB_URL = f"https://huggingface.co/datasets/{HUB_REPO}"
ENV_ENDPOINT = "AIGVE_BENCH_HUB_ENDPOINT"  # another hub (a mirror) for fetch_bench
LICENSE = "Apache-2.0 (dataset card)"


def _norm(name: str) -> str:
    return "_".join("".join(c.lower() if c.isalnum() else " " for c in name).split())


def aspect_field(name: str) -> str | None:
    """The score field of an aspect named either way — ``technical_quality`` or "Technical Quality",
    "Element Presence" -> ``element_presentence`` — else None."""
    n = _norm(name)
    n = _ALIASES.get(n, n)
    if n in SCORE_FIELDS:
        return n
    for title, f in zip(ASPECT_TITLES, SCORE_FIELDS, strict=True):
        if _norm(title) == n:
            return f
    return None


def _column(name: str) -> str:
    """A CSV header cell as the annotation field it holds (aspect titles and the aliases above)."""
    k = name.strip()
    if k in SCORE_FIELDS:
        return k
    f = aspect_field(k)
    if f is not None:
        return f
    return _ALIASES.get(_norm(k), k)


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
        f"run `aigve datasets fetch aigve_bench` (downloads {HUB_URL}: the CSV and the videos), or download "
        f"that repository elsewhere and put its files in {datasets_cache_dir(cache_dir) / 'aigve_bench'}, or "
        f"set {ENV_DIR} to the folder of your AIGVE-Bench copy (annotations/<split>.json or a CSV with the "
        "same columns, plus the videos)"
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
        cols = [_column(c or "") for c in reader.fieldnames or []]
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
                k = _column(k)
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


def bench_root(cache_dir: str | Path | None = None) -> Path:
    """Where ``aigve datasets fetch aigve_bench`` puts the benchmark (``$AIGVE_BENCH_DIR`` when set)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    from aigve.data.builtin import datasets_cache_dir

    return datasets_cache_dir(cache_dir) / "aigve_bench"


def bench_present(cache_dir: str | Path | None = None) -> bool:
    """An annotation file is there (cheap: videos are not checked)."""
    try:
        find_bench_annotation(None, cache_dir=cache_dir)
    except DatasetError:
        return False
    return True


def _hub_file_problems(root: Path, listing: list[Any]) -> dict[str, str]:
    """Each hub file (``RepoFile``: path, size, blob_id, lfs) missing under ``root`` or not matching."""
    from aigve.data.remote import git_blob_sha1
    from aigve.paths import file_sha256

    bad: dict[str, str] = {}
    for f in listing:
        p = root / f.path
        if not p.is_file():
            bad[f.path] = "missing"
            continue
        size = p.stat().st_size
        if size != f.size:
            bad[f.path] = f"size {size} bytes, the hub lists {f.size}"
            continue
        lfs = getattr(f, "lfs", None)
        if lfs is not None:
            want = lfs["sha256"] if isinstance(lfs, dict) else lfs.sha256
            got = file_sha256(p)
            if got != want:
                bad[f.path] = f"sha256 {got}, the hub lists {want}"
        elif git_blob_sha1(p) != f.blob_id:
            bad[f.path] = f"git blob SHA-1 {git_blob_sha1(p)}, the hub lists {f.blob_id}"
    return bad


def fetch_bench(
    cache_dir: str | Path | None = None,
    *,
    revision: str | None = None,
    endpoint: str | None = None,
    max_workers: int = 4,
) -> Path:
    """Download AIGVE-Bench from the hub into :func:`bench_root` and verify it (module docstring).

    Resumable (``snapshot_download`` continues partial files); files already there and matching are not
    downloaded again. ``DatasetError`` when the hub cannot be reached (saying what to download by hand
    and where to put it) or when a file does not match the hub's listing (naming each one).
    """
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:
        from aigve.errors import MissingDependencyError

        raise MissingDependencyError("aigve datasets fetch aigve_bench", "bench", "huggingface_hub") from None
    root = bench_root(cache_dir)
    endpoint = endpoint or os.environ.get(ENV_ENDPOINT) or None
    manual = (
        f"download the dataset repository {HUB_URL} (AIGVE-Bench1.0.csv and the videos) on a machine with "
        f"internet — e.g. `huggingface-cli download {HUB_REPO} --repo-type dataset --local-dir DIR` — and "
        f"put its files in {root} (or set {ENV_DIR} to that folder)"
    )
    try:
        root.mkdir(parents=True, exist_ok=True)
        api = HfApi(endpoint=endpoint)
        listing = [
            f
            for f in api.list_repo_tree(HUB_REPO, recursive=True, revision=revision, repo_type="dataset")
            if hasattr(f, "blob_id")
        ]
        snapshot_download(
            HUB_REPO,
            repo_type="dataset",
            revision=revision,
            local_dir=root,
            endpoint=endpoint,
            max_workers=max_workers,
        )
    except (DatasetError, KeyboardInterrupt):
        raise
    except Exception as exc:  # network and hub errors of huggingface_hub
        raise DatasetError(
            f"could not download AIGVE-Bench from {endpoint or 'https://huggingface.co'} "
            f"({type(exc).__name__}: {exc}); {manual}"
        ) from None
    bad = _hub_file_problems(root, listing)
    if bad:
        lines = "\n".join(f"  {root / rel}: {why}" for rel, why in sorted(bad.items()))
        raise DatasetError(
            f"AIGVE-Bench files in {root} do not match the hub's listing:\n{lines}\n"
            "delete those files and run `aigve datasets fetch aigve_bench` again"
        )
    return root
