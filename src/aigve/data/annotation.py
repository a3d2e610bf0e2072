"""The AIGVE annotation JSON format (what the original toolkit and AIGVE-Bench ship).

::

    {"metainfo": {...},
     "data_list": [{"prompt_gt": "...", "video_path_pd": "gen.mp4", "video_path_gt": "real.mp4", ...}, ...]}

- ``video_path_pd`` (generated video, required) and ``video_path_gt`` (real video, optional/null) are
  relative to a *video folder*. Default: for ``<root>/annotations/<name>.json`` that is ``<root>/evaluate/``
  when that folder exists (the original layout), otherwise the JSON file's own folder.
- ``prompt_gt`` is optional (null or missing = no prompt).
- Entry id: the entry's ``id`` field (string or integer) when present, else the generated file's stem;
  a stem already used by an earlier entry becomes ``<stem>__<index>`` (index in ``data_list``).
- ``data_list`` must not be empty, and one generated video (same resolved path) is listed once unless
  every entry listing it has its own ``id``.
- The file is UTF-8, with or without a byte-order mark.
- Every other field of an entry goes to ``Entry.extra`` unchanged (model, category, human scores...).
- Extension: ``metainfo["extra_reals"]`` may list real videos (relative to the video folder) not paired to any
  entry; they become ``Dataset.extra_reals`` (used by set-level metrics).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aigve.data.dataset import Dataset, assign_ids, check_unique_paths, join_path
from aigve.errors import DatasetError
from aigve.fsutil import as_if_opened
from aigve.types import Entry

RESERVED_KEYS: tuple[str, ...] = ("id", "prompt_gt", "video_path_pd", "video_path_gt")
EXTRA_REALS_KEY = "extra_reals"


def default_video_dir(json_path: str | Path) -> Path:
    """The folder an annotation's paths are relative to when none is given (see module docstring)."""
    json_path = Path(json_path).absolute()
    parent = json_path.parent
    if parent.name == "annotations" and (parent.parent / "evaluate").is_dir():
        return parent.parent / "evaluate"
    return parent


def load_json(path: Path, what: str = "annotation file") -> Any:
    """Parse a UTF-8 JSON file (a leading byte-order mark is allowed); ``DatasetError`` with line/column
    on a syntax error."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: {what} not found — check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the {what} ({exc}) — it must be UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg} — fix the syntax there"
        ) from None


def _entry_error(path: Path, index: int, field: str, problem: str, fix: str) -> DatasetError:
    return DatasetError(f"{path}: data_list[{index}] field '{field}': {problem} — {fix}")


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _optional_str(path: Path, i: int, item: Mapping[str, Any], key: str, fix: str) -> str | None:
    v = item.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _entry_error(path, i, key, f"expected a string or null, got {_type_name(v)} {v!r}", fix)
    return v if v.strip() else None


def parse_annotation(
    obj: Any,
    path: str | Path,
    video_dir: str | Path | None = None,
    *,
    id_field: str | None = "id",
    name: str | None = None,
) -> Dataset:
    """Build a ``Dataset`` from an already-parsed AIGVE annotation object.

    ``path`` is used for error messages and the default video folder. ``id_field=None`` ignores any
    ``id`` field for the entry id (it then stays in ``Entry.extra``).
    """
    path = Path(path)
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path}: expected a JSON object with 'metainfo' and 'data_list', got {_type_name(obj)} — "
            'wrap the entries as {"metainfo": {}, "data_list": [...]}'
        )
    if "data_list" not in obj:
        raise DatasetError(
            f"{path}: missing 'data_list' — the file must look like "
            '{"metainfo": {...}, "data_list": [{"prompt_gt": ..., "video_path_pd": ..., "video_path_gt": ...}]}'
        )
    data_list = obj["data_list"]
    if not isinstance(data_list, list):
        raise DatasetError(
            f"{path}: 'data_list' must be a list of entries, got {_type_name(data_list)} — "
            "put the entries in a JSON list [...]"
        )
    metainfo = obj.get("metainfo", {})
    if metainfo is None:
        metainfo = {}
    if not isinstance(metainfo, dict):
        raise DatasetError(
            f"{path}: 'metainfo' must be an object, got {_type_name(metainfo)} — use {{...}} or remove it"
        )
    if not data_list:
        raise DatasetError(
            f"{path}: 'data_list' has no entries, so there is nothing to evaluate — add entries "
            '{"prompt_gt": ..., "video_path_pd": ..., "video_path_gt": ...} to it, or pass the right file'
        )
    metainfo = dict(metainfo)
    base = Path(video_dir).absolute() if video_dir is not None else default_video_dir(path)

    explicit: list[str | None] = []
    stems: list[str] = []
    rows: list[tuple[Path, Path | None, str | None, dict[str, Any]]] = []
    for i, item in enumerate(data_list):
        if not isinstance(item, dict):
            raise DatasetError(
                f"{path}: data_list[{i}]: expected an object with 'video_path_pd', got {_type_name(item)} — "
                "each entry must be a JSON object"
            )
        pd = item.get("video_path_pd")
        if "video_path_pd" not in item or pd is None:
            raise _entry_error(
                path, i, "video_path_pd", "missing", f"give the generated video's path relative to {base}"
            )
        if not isinstance(pd, str):
            raise _entry_error(
                path,
                i,
                "video_path_pd",
                f"expected a string, got {_type_name(pd)} {pd!r}",
                "give the generated video's path as a string",
            )
        if not pd.strip():
            raise _entry_error(
                path, i, "video_path_pd", "empty", f"give the generated video's path relative to {base}"
            )
        gt = _optional_str(path, i, item, "video_path_gt", "give the real video's path as a string, or null")
        prompt = _optional_str(path, i, item, "prompt_gt", "give the prompt as a string, or null")
        exp: str | None = None
        if id_field is not None and item.get(id_field) is not None:
            raw = item[id_field]
            if isinstance(raw, bool) or not isinstance(raw, str | int):
                raise _entry_error(
                    path,
                    i,
                    id_field,
                    f"expected a string or integer, got {_type_name(raw)} {raw!r}",
                    "use a unique string or integer id",
                )
            exp = str(raw)
            if not exp.strip():
                raise _entry_error(path, i, id_field, "empty", "use a non-empty id or remove the field")
        skip = {"prompt_gt", "video_path_pd", "video_path_gt"}
        if id_field is not None:
            skip.add(id_field)
        extra = {k: v for k, v in item.items() if k not in skip}
        explicit.append(exp)
        stems.append(Path(pd).stem)
        rows.append((join_path(base, pd), join_path(base, gt) if gt else None, prompt, extra))

    check_unique_paths(
        [g for g, _, _, _ in rows],
        [f"data_list[{i}]" for i in range(len(rows))],
        str(path),
        "remove the repeated entry",
        explicit if id_field is not None else None,
    )
    ids = assign_ids(explicit, stems, str(path))
    entries = [
        Entry(id=eid, generated=g, real=r, prompt=p, extra=x)
        for eid, (g, r, p, x) in zip(ids, rows, strict=True)
    ]
    extra_reals_raw = metainfo.pop(EXTRA_REALS_KEY, None) or []
    if not isinstance(extra_reals_raw, list) or not all(isinstance(s, str) for s in extra_reals_raw):
        raise DatasetError(
            f"{path}: metainfo.{EXTRA_REALS_KEY} must be a list of path strings — fix or remove it"
        )
    if name is None:
        meta_name = metainfo.get("name")
        if isinstance(meta_name, str) and meta_name:
            name = meta_name
        elif path.absolute().parent.name == "annotations":
            name = path.absolute().parent.parent.name or path.stem
        else:
            name = path.stem
    return Dataset(
        name=name,
        entries=entries,
        root=base,
        metainfo=metainfo,
        extra_reals=[join_path(base, s) for s in extra_reals_raw],
        source=f"annotation:{path}",
    )


def read_annotation(
    json_path: str | Path, video_dir: str | Path | None = None, *, id_field: str | None = "id"
) -> Dataset:
    """Read an AIGVE annotation JSON file (format and defaults in the module docstring).

    Raises ``DatasetError`` naming the file, the entry index and the field for malformed input.
    """
    json_path = Path(json_path)
    return parse_annotation(load_json(json_path), json_path, video_dir, id_field=id_field)


def _rel(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path.absolute(), base.absolute())).as_posix()
    except ValueError:  # different drives on Windows
        return path.absolute().as_posix()


def _json_default(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return v.item()
    if hasattr(v, "tolist") and callable(v.tolist):  # numpy arrays
        return v.tolist()
    if isinstance(v, set | frozenset | tuple):
        return list(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def annotation_object(dataset: Dataset, video_dir: str | Path, *, write_ids: bool = True) -> dict[str, Any]:
    """The AIGVE JSON object for ``dataset`` with paths relative to ``video_dir``."""
    base = Path(video_dir).absolute()
    metainfo = dict(dataset.metainfo)
    if dataset.extra_reals:
        metainfo[EXTRA_REALS_KEY] = [_rel(p, base) for p in dataset.extra_reals]
    else:
        metainfo.pop(EXTRA_REALS_KEY, None)
    data_list: list[dict[str, Any]] = []
    for e in dataset.entries:
        clash = [k for k in e.extra if k in RESERVED_KEYS and (k != "id" or write_ids)]
        if clash:
            raise DatasetError(
                f"entry '{e.id}': extra field(s) {clash} clash with the AIGVE format's own keys — "
                "rename them before writing the annotation"
            )
        row: dict[str, Any] = {}
        if write_ids:
            row["id"] = e.id
        row["prompt_gt"] = e.prompt
        row["video_path_pd"] = _rel(e.generated, base)
        row["video_path_gt"] = _rel(e.real, base) if e.real is not None else None
        row.update(e.extra)
        data_list.append(row)
    return {"metainfo": metainfo, "data_list": data_list}


def write_annotation(
    dataset: Dataset,
    json_path: str | Path,
    video_dir: str | Path | None = None,
    *,
    write_ids: bool = True,
) -> Path:
    """Write ``dataset`` as an AIGVE annotation JSON (atomically) and return its path.

    Paths are written relative to ``video_dir`` (default: the folder ``read_annotation`` would use for
    ``json_path``), so ``read_annotation(json_path, video_dir)`` gives the same entries back. Entry ids are
    written as ``id`` (``write_ids=False`` omits them); extra fields are kept.
    """
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    base = Path(video_dir) if video_dir is not None else default_video_dir(json_path)
    obj = annotation_object(dataset, base, write_ids=write_ids)
    try:
        text = json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default)
    except TypeError as exc:
        raise DatasetError(
            f"{json_path}: cannot write the annotation: {exc} — keep extra fields JSON-like"
        ) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # file names with undecodable bytes (lone surrogates): \u escapes read back to the same path
        text = json.dumps(obj, indent=2, ensure_ascii=True, default=_json_default)
    fd, tmp = tempfile.mkstemp(prefix=f".{json_path.name}.", suffix=".tmp", dir=json_path.parent)
    as_if_opened(fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, json_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return json_path
