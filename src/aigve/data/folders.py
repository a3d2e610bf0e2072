"""Datasets from plain folders of videos, and prompts files.

``from_folders(generated_dir, real_dir)``: every video in ``generated_dir`` (extensions in
``VIDEO_EXTENSIONS``, case-insensitive, not recursive) is an entry whose id is its stem (the file name when
two generated files share a stem; undecodable file-name bytes are escaped, see ``text_name``). Entries
that are not regular files (directories, broken symbolic links) are kept so the run reports them. A real video in ``real_dir`` pairs with it when its stem equals the
generated stem, or the generated stem without its suffix token (``4056_synthetic`` -> ``4056``, see
``aigve.data.pairing``), case-insensitively. Real videos that pair with nothing become ``extra_reals``.
When ``real_dir`` is the same folder as ``generated_dir``, the folder is split by the pairing rule.

Prompts files (``read_prompts``):

- JSON: ``{"<id or video file name>": "prompt", ...}`` or ``[{"id" | "video": ..., "prompt" | "text": ...}, ...]``;
- CSV: a header with ``id`` or ``video`` and ``prompt`` or ``text`` columns;
- TXT: one prompt per line, assigned to the generated videos in sorted-file-name order (the number of
  lines must equal the number of videos).

Keys match an entry's id, its generated file name, its stem, or (for paired folders) the pairing key;
exactly first, then case-insensitively.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from aigve.data.annotation import load_json
from aigve.data.dataset import VIDEO_EXTENSIONS, Dataset, extension_rank, list_videos, text_name
from aigve.data.pairing import DEFAULT_SUFFIXES, scan_and_pair, split_generated
from aigve.errors import DatasetError
from aigve.types import Entry

PromptTable = dict[str, str] | list[str]

log = logging.getLogger(__name__)


def read_prompts(path: str | Path) -> PromptTable:
    """Read a prompts file: a key -> prompt dict (JSON, CSV) or an ordered list (TXT)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: prompts file not found — check the path")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _prompts_json(path)
    if suffix == ".csv":
        return _prompts_csv(path)
    if suffix in (".txt", ""):
        return _prompts_txt(path)
    raise DatasetError(f"{path}: unknown prompts file type '{suffix}' — use .json, .csv or .txt")


def _prompts_json(path: Path) -> dict[str, str]:
    obj = load_json(path, "prompts file")
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(v, str):
                raise DatasetError(
                    f"{path}: prompt for key '{k}' must be a string, got {type(v).__name__} — quote it"
                )
            out[str(k)] = v
        return out
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            if not isinstance(item, dict):
                raise DatasetError(
                    f"{path}: item [{i}] must be an object — write {{'id': ..., 'prompt': ...}}"
                )
            key = item.get("id", item.get("video"))
            text = item.get("prompt", item.get("text"))
            if key is None or isinstance(key, bool) or not isinstance(key, str | int):
                raise DatasetError(f"{path}: item [{i}] field 'id'/'video': missing or not a string — add it")
            if not isinstance(text, str):
                raise DatasetError(f"{path}: item [{i}] field 'prompt': missing or not a string — add it")
            _put(out, str(key), text, path, f"item [{i}]")
        return out
    raise DatasetError(
        f"{path}: expected a JSON object (id -> prompt) or a list of {{id, prompt}} objects — reshape the file"
    )


def _put(out: dict[str, str], key: str, text: str, path: Path, where: str) -> None:
    if key in out:
        raise DatasetError(f"{path}: {where}: key '{key}' appears twice — keep one prompt per video")
    out[key] = text


def _prompts_csv(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        key_col = next((c for c in ("id", "video") if c in cols), None)
        text_col = next((c for c in ("prompt", "text") if c in cols), None)
        if key_col is None or text_col is None:
            raise DatasetError(
                f"{path}: the header must have an 'id' or 'video' column and a 'prompt' or 'text' column, "
                f"found {cols} — rename the header"
            )
        out: dict[str, str] = {}
        for n, row in enumerate(reader, start=2):
            row = {(k or "").strip(): v for k, v in row.items()}
            key = (row.get(key_col) or "").strip()
            if not key:
                raise DatasetError(
                    f"{path}: line {n} column '{key_col}': empty — give the video id or file name"
                )
            _put(out, key, row.get(text_col) or "", path, f"line {n}")
        return out


def _prompts_txt(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            raise DatasetError(
                f"{path}: line {n} is empty — a TXT prompts file has one prompt per line, in sorted "
                "video-file-name order, without blank lines"
            )
    return [line.strip() for line in lines]


def match_prompts(
    table: PromptTable, aliases: Sequence[Sequence[str]], sort_names: Sequence[str], path: str | Path
) -> list[str | None]:
    """Prompt per entry. ``aliases[i]``: the keys entry ``i`` answers to; ``sort_names[i]``: its file name
    for the TXT (ordered) form. A keyed table must match at least one entry."""
    path = Path(path)
    n = len(aliases)
    if isinstance(table, list):
        if len(table) != n:
            raise DatasetError(
                f"{path}: {len(table)} prompt line(s) for {n} video(s) — a TXT prompts file needs exactly one "
                "line per generated video, in sorted file-name order"
            )
        order = sorted(range(n), key=lambda i: sort_names[i])
        out_list: list[str | None] = [None] * n
        for line_no, i in enumerate(order):
            out_list[i] = table[line_no]
        return out_list
    folded: dict[str, str] = {}
    for k, v in table.items():
        folded.setdefault(k.lower(), v)
    out: list[str | None] = []
    for keys in aliases:
        hit = next((table[k] for k in keys if k in table), None)
        if hit is None:
            hit = next((folded[k.lower()] for k in keys if k.lower() in folded), None)
        out.append(hit)
    if table and n and all(p is None for p in out):
        sample = ", ".join(list(table)[:3])
        raise DatasetError(
            f"{path}: none of its {len(table)} keys (e.g. {sample}) matches a video — keys must be the entry "
            "id, the video file name or its stem"
        )
    return out


def apply_prompts(dataset: Dataset, prompts: str | Path) -> Dataset:
    """A copy of ``dataset`` whose prompts come from a prompts file (entries the file does not name keep
    their prompt). Logs a warning when some entries end up without a prompt (metrics that need one
    then report those videos; the others are unaffected)."""
    table = read_prompts(prompts)
    aliases = [
        [e.id, e.generated.name, e.generated.stem]
        + ([str(e.extra["pair_key"])] if "pair_key" in e.extra else [])
        for e in dataset.entries
    ]
    found = match_prompts(table, aliases, [e.generated.name for e in dataset.entries], prompts)
    entries = [
        dataclasses.replace(e, prompt=p) if p is not None else e
        for e, p in zip(dataset.entries, found, strict=True)
    ]
    unprompted = [e.id for e in entries if not e.prompt]
    if unprompted:
        shown = ", ".join(unprompted[:5]) + (", ..." if len(unprompted) > 5 else "")
        log.warning(
            "%s: %d of %d videos have no prompt in this prompts file (e.g. %s); metrics that need a prompt "
            "will report an error for them — add their ids or file names to the prompts file",
            prompts,
            len(unprompted),
            len(entries),
            shown,
        )
    return dataclasses.replace(
        dataset, entries=entries, metainfo={**dataset.metainfo, "prompts_file": str(prompts)}
    )


def from_folders(
    generated_dir: str | Path,
    real_dir: str | Path | None = None,
    prompts: str | Path | None = None,
    *,
    generated_suffixes: Sequence[str] = DEFAULT_SUFFIXES,
) -> Dataset:
    """A dataset from a folder of generated videos, an optional folder of real ones and an optional prompts
    file (rules in the module docstring)."""
    gdir = Path(generated_dir).absolute()
    if not gdir.is_dir():
        raise DatasetError(f"{generated_dir}: generated-videos folder not found — check the path")
    rdir = Path(real_dir).absolute() if real_dir is not None else None
    if rdir is not None and not rdir.is_dir():
        raise DatasetError(f"{real_dir}: real-videos folder not found — check the path")

    rows: list[tuple[Path, Path | None, str]] = []  # generated, real, pairing key
    extra_reals: list[Path] = []
    if rdir is not None and rdir.resolve() == gdir.resolve():
        report = scan_and_pair(gdir, generated_suffixes)
        rows = [(g, r, key) for key, g, r in report.generated]
        extra_reals = list(report.no_gen)
    else:
        gen = list_videos(gdir)
        reals = list_videos(rdir) if rdir is not None else []
        by_stem: dict[str, Path] = {}
        for r in sorted(reals, key=lambda p: (extension_rank(p), p.name)):
            by_stem.setdefault(r.stem.lower(), r)
        used: set[Path] = set()
        for g in gen:
            key = g.stem
            real = by_stem.get(g.stem.lower())
            if real is None:
                base = split_generated(g.stem, generated_suffixes)
                if base is not None:
                    key = base
                    real = by_stem.get(base.lower())
            if real is not None:
                used.add(real)
            rows.append((g, real, key))
        extra_reals = [r for r in reals if r not in used]
    if not rows:
        raise DatasetError(
            f"{gdir}: no videos found (looked for {' '.join(VIDEO_EXTENSIONS)}) "
            "— point generated_dir at the folder holding the generated videos"
        )
    stems = [g.stem for g, _, _ in rows]
    clash = {s for s in stems if stems.count(s) > 1}
    entries = [
        Entry(
            id=text_name(g.name if g.stem in clash else g.stem),
            generated=g,
            real=r,
            extra={"pair_key": text_name(key)} if key != g.stem else {},
        )
        for g, r, key in rows
    ]
    ds = Dataset(
        name=gdir.name,
        entries=entries,
        root=gdir,
        metainfo={"generated_dir": str(gdir), **({"real_dir": str(rdir)} if rdir else {})},
        extra_reals=extra_reals,
        source=f"folders:{gdir}" + (f",{rdir}" if rdir else ""),
    )
    return apply_prompts(ds, prompts) if prompts is not None else ds
