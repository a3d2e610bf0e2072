"""Manifests: a CSV or JSONL table with one row per generated video.

Columns / keys: ``generated`` (required: path of the generated video), ``real`` (path of its real
counterpart), ``prompt``, ``id``; every other column goes to ``Entry.extra``. Relative paths are relative to
the manifest's folder (or ``video_dir``). Empty CSV cells mean "absent" (CSV values stay strings; JSONL values keep their JSON
types). Ids default to the generated file's stem, made unique as in ``aigve.data.annotation``.

A row with ``generated`` empty but ``real`` set adds an unpaired real video (``Dataset.extra_reals``).
A manifest needs at least one generated video, and lists each generated video (resolved path) once unless
every row listing it has its own ``id``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from aigve.data.dataset import Dataset, assign_ids, check_unique_paths, join_path
from aigve.errors import DatasetError
from aigve.types import Entry

KNOWN_COLUMNS: tuple[str, ...] = ("generated", "real", "prompt", "id")


def _rows_csv(path: Path) -> list[tuple[str, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = [(c or "").strip() for c in reader.fieldnames or []]
        if "generated" not in cols:
            raise DatasetError(
                f"{path}: the header needs a 'generated' column (also allowed: real, prompt, id, anything else), "
                f"found {cols} — add or rename the column"
            )
        out: list[tuple[str, dict[str, Any]]] = []
        for n, row in enumerate(reader, start=2):
            if None in row:
                raise DatasetError(
                    f"{path}: line {n} has more cells than the header — quote cells that contain commas"
                )
            clean = {(k or "").strip(): v for k, v in row.items()}
            out.append(
                (
                    f"line {n}",
                    {k: (v if v is not None and v.strip() != "" else None) for k, v in clean.items()},
                )
            )
        return out


def _rows_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{path}: line {n} column {exc.colno}: invalid JSON ({exc.msg}) — each line must be one JSON object"
            ) from None
        if not isinstance(obj, dict):
            raise DatasetError(
                f"{path}: line {n}: expected a JSON object — write {{'generated': 'path.mp4', ...}}"
            )
        out.append((f"line {n}", obj))
    return out


def read_manifest(path: str | Path, video_dir: str | Path | None = None) -> Dataset:
    """Read a CSV or JSONL manifest (format in the module docstring); relative paths are resolved against
    ``video_dir`` when given, else the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: manifest not found — check the path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _rows_csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _rows_jsonl(path)
    else:
        raise DatasetError(f"{path}: unknown manifest type '{suffix}' — use .csv or .jsonl")
    base = Path(video_dir).absolute() if video_dir is not None else path.absolute().parent
    explicit: list[str | None] = []
    stems: list[str] = []
    wheres: list[str] = []
    built: list[tuple[Path, Path | None, str | None, dict[str, Any]]] = []
    extra_reals: list[Path] = []
    for where, row in rows:
        gen = row.get("generated")
        real = row.get("real")
        for key, val in (("generated", gen), ("real", real), ("prompt", row.get("prompt"))):
            if val is not None and not isinstance(val, str):
                raise DatasetError(
                    f"{path}: {where} field '{key}': expected a string, got {type(val).__name__} — quote the value"
                )
        if gen is None or not gen.strip():
            if real:
                extra_reals.append(join_path(base, real))
                continue
            raise DatasetError(
                f"{path}: {where} field 'generated': missing or empty — give the generated video's path"
            )
        rid = row.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, str | int)):
            raise DatasetError(
                f"{path}: {where} field 'id': expected a string or integer, got {type(rid).__name__} — fix the id"
            )
        explicit.append(str(rid) if rid is not None and str(rid).strip() else None)
        stems.append(Path(gen).stem)
        wheres.append(where)
        extra = {k: v for k, v in row.items() if k not in KNOWN_COLUMNS and k and v is not None}
        built.append(
            (join_path(base, gen), join_path(base, real) if real else None, row.get("prompt"), extra)
        )
    if not built:
        raise DatasetError(f"{path}: the manifest has no rows with a 'generated' video — add at least one")
    check_unique_paths([g for g, _, _, _ in built], wheres, str(path), "remove the repeated row", explicit)
    ids = assign_ids(explicit, stems, str(path))
    entries = [
        Entry(id=i, generated=g, real=r, prompt=p, extra=x)
        for i, (g, r, p, x) in zip(ids, built, strict=True)
    ]
    return Dataset(
        name=path.stem,
        entries=entries,
        root=base,
        metainfo={"manifest": str(path.absolute())},
        extra_reals=extra_reals,
        source=f"manifest:{path}",
    )
