"""The dataset model: a named list of ``Entry`` values plus what set-level metrics and the summary need.

Every loader (AIGVE annotation JSON, folders, manifests, built-in sets) returns a ``Dataset``; the engine
only ever sees this type.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aigve.errors import DatasetError
from aigve.fsutil import text_name
from aigve.types import Entry

# Extensions recognised as videos when scanning folders (compared case-insensitively).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".gif")


def is_video(path: str | Path) -> bool:
    """True when ``path`` has one of ``VIDEO_EXTENSIONS`` (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def extension_rank(path: str | Path) -> int:
    """Priority of a video extension when several files share a stem: .mp4 (0) > .mov > ... > .gif;
    unknown extensions rank last."""
    suffix = Path(path).suffix.lower()
    return VIDEO_EXTENSIONS.index(suffix) if suffix in VIDEO_EXTENSIONS else len(VIDEO_EXTENSIONS)


def list_videos(folder: str | Path) -> list[Path]:
    """Entries directly inside ``folder`` whose names end in a video extension (not recursive, hidden
    names skipped), sorted by name.

    Entries that are not regular files (a directory named ``x.mp4``, a broken or looping symbolic link)
    are kept on purpose: the engine then records a per-video error for them instead of the video
    silently vanishing from the dataset.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder — pass a directory that contains the videos")
    found = [p for p in folder.iterdir() if not p.name.startswith(".") and is_video(p)]
    return sorted(found, key=lambda p: p.name)


def join_path(base: Path | None, rel: str | Path) -> Path:
    """``base / rel`` normalised (``..`` collapsed, symlinks kept); absolute ``rel`` is kept as is."""
    p = Path(rel)
    if not p.is_absolute() and base is not None:
        p = base / p
    return Path(os.path.normpath(p.absolute()))


def check_unique_paths(
    paths: Sequence[Path],
    labels: Sequence[str],
    where: str,
    fix: str,
    explicit: Sequence[str | None] | None = None,
) -> None:
    """``DatasetError`` when one generated video is listed twice (it would be scored and counted twice
    in the aggregates); the message names both entries (``labels``) and the path.

    Two rows that both carry an explicit id (``explicit[i]`` not ``None``; explicit ids are unique) are
    a deliberate listing, e.g. one video scored against two prompts, and are allowed.
    """
    first: dict[Path, int] = {}
    for i, p in enumerate(paths):
        j = first.setdefault(p, i)
        if j == i:
            continue
        if explicit is not None and explicit[i] is not None and explicit[j] is not None:
            continue
        raise DatasetError(
            f"{where}: {labels[j]} and {labels[i]} list the same generated video {p} — {fix}, so it is "
            "scored and counted once (to list it twice on purpose, give both entries distinct 'id's)"
        )


def duplicate_ids(ids: Iterable[str]) -> list[str]:
    """Ids that occur more than once, in first-seen order."""
    items = list(ids)
    counts = Counter(items)
    seen: list[str] = []
    for i in items:
        if counts[i] > 1 and i not in seen:
            seen.append(i)
    return seen


@dataclass
class Dataset:
    """A set of entries to evaluate.

    - ``entries``: generated videos (with optional real counterpart and prompt); ids are unique and
      valid text (an id holding undecodable file-name bytes is escaped with ``text_name``).
    - ``root``: the folder paths were resolved against (``None`` if none applies).
    - ``metainfo``: free-form description carried into the results (the AIGVE JSON's ``metainfo``).
    - ``extra_reals``: real videos not paired to any entry; set-level metrics (FID, FVD, ...) use them
      together with the entries' real videos.
    - ``source``: where the dataset came from, e.g. ``"annotation:/data/x.json"`` or ``"builtin:demo"``.
    - ``hints``: presentation hints for the summary/report, e.g. ``{"group_by": "distortion"}``.
    """

    name: str
    entries: list[Entry]
    root: Path | None = None
    metainfo: dict[str, Any] = field(default_factory=dict)
    extra_reals: list[Path] = field(default_factory=list)
    source: str = ""
    hints: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.entries = [
            e if text_name(e.id) == e.id else replace(e, id=text_name(e.id)) for e in self.entries
        ]
        self.name = text_name(self.name)
        self.extra_reals = [Path(p) for p in self.extra_reals]
        dups = duplicate_ids([e.id for e in self.entries])
        if dups:
            shown = ", ".join(repr(d) for d in dups[:10]) + (" ..." if len(dups) > 10 else "")
            where = f" ({self.source})" if self.source else ""
            raise DatasetError(
                f"dataset '{self.name}'{where}: entry ids must be unique, duplicated: {shown} — "
                "give each entry a distinct id"
            )

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __getitem__(self, key: int | str) -> Entry:
        """An entry by position or by id."""
        if isinstance(key, int):
            return self.entries[key]
        for e in self.entries:
            if e.id == key:
                return e
        raise KeyError(key)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    @property
    def has_prompts(self) -> bool:
        """True when every entry has a prompt."""
        return bool(self.entries) and all(e.prompt for e in self.entries)

    @property
    def has_reals(self) -> bool:
        """True when at least one real video is known (paired or extra)."""
        return bool(self.extra_reals) or any(e.real is not None for e in self.entries)

    def generated_paths(self) -> list[Path]:
        return [e.generated for e in self.entries]

    def real_paths(self) -> list[Path]:
        """All real videos for set-level metrics: the entries' reals (each once, in entry order) then
        ``extra_reals``."""
        out: list[Path] = []
        seen: set[Path] = set()
        for p in [e.real for e in self.entries if e.real is not None] + self.extra_reals:
            if p not in seen:
                seen.add(p)
                out.append(p)
        return out

    def missing_files(self) -> list[Path]:
        """Referenced video files that do not exist (generated, real and extra reals)."""
        paths = self.generated_paths() + self.real_paths()
        return [p for p in paths if not p.is_file()]

    def check_files(self, require_all: bool = False) -> None:
        """Raise ``DatasetError`` when no generated video exists (a wrong ``video_dir`` is the usual
        cause), or with ``require_all`` when any referenced file is missing."""
        missing = self.missing_files()
        if not missing:
            return
        gen_missing = [p for p in self.generated_paths() if not p.is_file()]
        if require_all or (self.entries and len(gen_missing) == len(self.entries)):
            shown = "\n  ".join(str(p) for p in missing[:5]) + ("\n  ..." if len(missing) > 5 else "")
            where = self.source or self.name
            raise DatasetError(
                f"{where}: {len(missing)} referenced video file(s) not found, e.g.\n  {shown}\n"
                "check the paths, or pass the folder they are relative to (--video-dir / video_dir=)"
            )

    def subset(self, ids: Iterable[str]) -> Dataset:
        """A dataset with only the given entry ids (in this dataset's order); unknown ids are an error."""
        wanted = list(ids)
        unknown = [i for i in wanted if i not in set(self.ids)]
        if unknown:
            raise DatasetError(
                f"dataset '{self.name}': unknown entry id(s): {', '.join(unknown[:10])} — use ids from dataset.ids"
            )
        keep = set(wanted)
        return Dataset(
            name=self.name,
            entries=[e for e in self.entries if e.id in keep],
            root=self.root,
            metainfo=dict(self.metainfo),
            extra_reals=list(self.extra_reals),
            source=self.source,
            hints=dict(self.hints),
        )

    def describe(self) -> str:
        """One line: name, size and what is present."""
        n_real = sum(e.real is not None for e in self.entries)
        n_prompt = sum(bool(e.prompt) for e in self.entries)
        return (
            f"{self.name}: {len(self.entries)} generated, {n_real} paired real, "
            f"{len(self.extra_reals)} extra real, {n_prompt} with prompt ({self.source or 'in memory'})"
        )


def assign_ids(explicit: Sequence[str | None], stems: Sequence[str], where: str) -> list[str]:
    """Entry ids from optional explicit ids, falling back to the generated file's stem.

    Explicit ids must be unique (``DatasetError`` naming the duplicates and their entry indices).
    A stem-derived id that is already taken (by an explicit id or an earlier entry) becomes
    ``<stem>__<index>`` (``index`` = the entry's position in the source), so the result is
    deterministic and traceable to the source row. Stems pass through ``text_name`` (valid text).
    """
    given = [e for e in explicit if e is not None]
    dups = duplicate_ids(given)
    if dups:
        detail = "; ".join(
            f"{d!r} at entries {[i for i, e in enumerate(explicit) if e == d]}" for d in dups[:10]
        )
        raise DatasetError(f"{where}: duplicate entry ids: {detail} — make every 'id' unique")
    taken = set(given)
    out: list[str] = []
    for i, (exp, raw_stem) in enumerate(zip(explicit, stems, strict=True)):
        stem = text_name(raw_stem)
        if exp is not None:
            out.append(exp)
            continue
        cand = stem
        k = 1
        while cand in taken:
            cand = f"{stem}__{i}" if k == 1 else f"{stem}__{i}_{k}"
            k += 1
        taken.add(cand)
        out.append(cand)
    return out


def load_dataset(spec: str | Path | None = None, **kwargs: Any) -> Dataset:
    """Alias of ``aigve.data.load.load_dataset`` (kept here so ``aigve.data.dataset`` is one import)."""
    from aigve.data.load import load_dataset as _load

    return _load(spec, **kwargs)
