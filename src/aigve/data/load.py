"""``load_dataset``: one entry point from a user's dataset argument to a ``Dataset``."""

from __future__ import annotations

import csv
from pathlib import Path

from aigve.data.annotation import load_json, parse_annotation
from aigve.data.bench import load_bench, looks_like_bench
from aigve.data.builtin import builtin_names, load_builtin
from aigve.data.dataset import Dataset
from aigve.data.folders import apply_prompts, from_folders
from aigve.data.manifest import read_manifest
from aigve.errors import DatasetError, UsageError, did_you_mean

_WHAT = (
    "a built-in name ({names}), an AIGVE annotation .json, a manifest .csv/.jsonl, a folder of videos "
    "(or one with annotations/*.json), or generated=<folder> [real=<folder>]"
)


def _annotation_in(folder: Path) -> Path | None:
    ann = folder / "annotations"
    if not ann.is_dir():
        return None
    found = sorted(p for p in ann.iterdir() if p.is_file() and p.suffix.lower() == ".json")
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    for p in found:
        if p.name == "evaluate.json":
            return p
    raise UsageError(
        f"{folder}: several annotation files ({', '.join(p.name for p in found)}) — pass the one to use"
    )


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [c.strip() for c in next(csv.reader(fh), [])]
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc}) — check the path and permissions") from None


def _from_file(path: Path, video_dir: str | Path | None) -> Dataset:
    suffix = path.suffix.lower()
    if suffix == ".json":
        obj = load_json(path)
        if isinstance(obj, dict) and looks_like_bench(obj.get("data_list")):
            return load_bench(path, video_dir)
        return parse_annotation(obj, path, video_dir)
    if suffix == ".csv":
        header = _csv_header(path)
        if "generated" in header:
            return read_manifest(path, video_dir)
        if "video_path_pd" in header:
            return load_bench(path, video_dir)
        raise DatasetError(
            f"{path}: a CSV dataset needs a 'generated' column (manifest) or 'video_path_pd' (AIGVE-Bench "
            f"style), found {header}"
        )
    if suffix in (".jsonl", ".ndjson"):
        return read_manifest(path, video_dir)
    raise UsageError(
        f"{path}: unsupported dataset file type '{suffix}' — give {_WHAT.format(names=', '.join(builtin_names()))}"
    )


def load_dataset(
    spec: str | Path | None = None,
    *,
    generated: str | Path | None = None,
    real: str | Path | None = None,
    prompts: str | Path | None = None,
    video_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Resolve a dataset argument.

    ``spec`` is one of: a built-in name (``demo``, ``toy``, ``aigve_bench_toy``, ``aigve_bench``; a name wins over a same-named
    folder, write ``./demo`` for the folder), an AIGVE annotation ``.json`` (AIGVE-Bench files are recognised
    by their fields), a manifest ``.csv``/``.jsonl``, a folder with ``annotations/*.json`` (``evaluate.json``
    when there are several) or a folder of generated videos (``real`` = a folder of real ones). Without
    ``spec``, ``generated`` (and ``real``) name the folders (``spec`` equal to ``generated`` is accepted). ``prompts`` (JSON/CSV/TXT) sets the prompts of
    any source; ``video_dir`` overrides the folder annotation/manifest paths are relative to.

    Raises ``UsageError`` for an argument that is none of these and ``DatasetError`` when no generated
    video referenced by the dataset exists.
    """
    names = builtin_names()
    if spec is None:
        if generated is None:
            raise UsageError(f"no dataset given: pass {_WHAT.format(names=', '.join(names))}")
        ds = from_folders(generated, real, prompts)
        ds.check_files()
        return ds
    if generated is not None:
        if Path(spec).absolute() != Path(generated).absolute():
            raise UsageError("give either a dataset (spec) or generated=<folder>, not both")
        ds = from_folders(generated, real, prompts)
        ds.check_files()
        return ds
    raw = str(spec)
    path = Path(spec)
    if raw.startswith("vbench:") and not path.exists():  # VBench's standard mode: prompt suite + videos
        from aigve.vbench.prompts import load_standard

        ds = load_standard(raw[len("vbench:") :], cache_dir=cache_dir)
        if prompts is not None:
            raise UsageError("vbench:<folder> takes its prompts from VBench's prompt suite, not prompts=")
        ds.check_files()
        return ds
    if raw in names:
        if real is not None or video_dir is not None:
            raise UsageError(f"built-in dataset '{raw}' takes no real= or video_dir=")
        ds = load_builtin(raw, cache_dir)
    elif not path.exists():
        hint = did_you_mean(raw, names) if "/" not in raw and "." not in raw else ""
        raise UsageError(
            f"'{raw}' is not an existing file or folder{hint}; give {_WHAT.format(names=', '.join(names))}"
        )
    elif path.is_dir():
        ann = _annotation_in(path)
        if ann is not None:
            if real is not None:
                raise UsageError(
                    f"{path} has an annotation file ({ann.name}); real= applies to plain folders only"
                )
            ds = _from_file(ann, video_dir)
        else:
            ds = from_folders(path, real)
    else:
        if real is not None:
            raise UsageError(
                "real= applies to folders of videos only; annotation files and manifests name the real videos"
            )
        ds = _from_file(path, video_dir)
    if prompts is not None:
        ds = apply_prompts(ds, prompts)
    ds.check_files()
    return ds
