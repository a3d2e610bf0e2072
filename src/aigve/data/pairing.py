"""Pair generated videos with their real counterparts by file name (the rule of ``aigve prepare``).

A *generated* file's stem ends with a suffix token (default ``synthetic`` or ``generated``), joined to the
rest of the stem by ``_``, ``-`` or nothing, case-insensitively: ``4056_synthetic.mp4``,
``4056-Generated.webm`` and ``4056synthetic.mp4`` are all generated videos for key ``4056``. Every other
video is a *real* one whose key is its stem. Keys match case-insensitively and the extensions may differ.

When several files claim one key on the same side, the one with the preferred extension wins
(.mp4 > .mov > .webm > .mkv > .avi > .m4v > .gif, then the file name in sorted order); the others are
reported as ``duplicates`` and left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aigve.data.dataset import extension_rank, is_video
from aigve.errors import UsageError

DEFAULT_SUFFIXES: tuple[str, ...] = ("synthetic", "generated")


def suffix_pattern(suffixes: Sequence[str]) -> re.Pattern[str]:
    """Regex splitting a generated stem into ``base`` + separator + suffix token."""
    toks = [s.strip() for s in suffixes if s and s.strip()]
    if not toks:
        raise UsageError("generated_suffixes must name at least one suffix token, e.g. synthetic")
    alt = "|".join(re.escape(t) for t in sorted(toks, key=len, reverse=True))
    return re.compile(rf"^(?P<base>.+?)[_-]?(?:{alt})$", re.IGNORECASE)


def split_generated(stem: str, suffixes: Sequence[str] = DEFAULT_SUFFIXES) -> str | None:
    """The key (real file's stem, original case) a generated stem points to, or ``None`` if ``stem``
    carries no suffix token (i.e. it names a real video)."""
    m = suffix_pattern(suffixes).match(stem)
    if not m:
        return None
    base = m.group("base")
    return base if base.strip("_- ") else None


@dataclass(frozen=True)
class Pair:
    """A generated video and its real counterpart; ``key`` is the shared name (generated stem without
    the suffix token, original case)."""

    key: str
    generated: Path
    real: Path


@dataclass(frozen=True)
class Duplicate:
    """Several files on one side claiming one key: ``chosen`` is used, ``others`` are left out."""

    key: str
    side: str  # "generated" or "real"
    chosen: Path
    others: tuple[Path, ...]


@dataclass
class PairReport:
    """Result of scanning one folder: pairs plus everything that could not be paired."""

    input_dir: Path
    suffixes: tuple[str, ...]
    pairs: list[Pair] = field(default_factory=list)
    no_gt: list[Path] = field(default_factory=list)  # generated without a real counterpart
    no_gen: list[Path] = field(default_factory=list)  # real without a generated counterpart
    duplicates: list[Duplicate] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)  # non-video files

    @property
    def not_files(self) -> list[Path]:
        """Kept video-named entries that are not regular files (directories, broken or looping links)."""
        kept = [p.generated for p in self.pairs] + [p.real for p in self.pairs] + self.no_gt + self.no_gen
        return sorted((p for p in kept if not p.is_file()), key=lambda p: p.name)

    @property
    def generated(self) -> list[tuple[str, Path, Path | None]]:
        """Every kept generated video as ``(key, generated, real-or-None)``, sorted by file name."""
        rows: list[tuple[str, Path, Path | None]] = [(p.key, p.generated, p.real) for p in self.pairs]
        for g in self.no_gt:
            key = split_generated(g.stem, self.suffixes) or g.stem
            rows.append((key, g, None))
        return sorted(rows, key=lambda r: r[1].name)

    def summary(self) -> str:
        """Human-readable counts and the problem files (what ``aigve prepare`` prints)."""
        lines = [
            f"scanned {self.input_dir} (generated suffixes: {', '.join(self.suffixes)})",
            f"  pairs:                {len(self.pairs)}",
            f"  generated without real (no_gt): {len(self.no_gt)}",
            f"  real without generated (no_gen): {len(self.no_gen)}",
            f"  duplicate keys:       {len(self.duplicates)}",
        ]
        for p in self.no_gt[:20]:
            lines.append(f"    no_gt:  {p.name}")
        for p in self.no_gen[:20]:
            lines.append(f"    no_gen: {p.name}")
        for d in self.duplicates[:20]:
            lines.append(
                f"    duplicate {d.side} '{d.key}': using {d.chosen.name}, ignoring "
                + ", ".join(o.name for o in d.others)
            )
        if self.ignored:
            lines.append(f"  non-video files ignored: {len(self.ignored)}")
        bad = self.not_files
        if bad:
            lines.append(
                f"  not regular files (kept; an evaluation reports each as an error): {len(bad)}"
                " — replace them with the video files"
            )
            for p in bad[:20]:
                kind = "directory" if p.is_dir() else "broken or looping symbolic link"
                lines.append(f"    {kind}: {p.name}")
        return "\n".join(lines)


def _pick(files: list[Path]) -> tuple[Path, tuple[Path, ...]]:
    ordered = sorted(files, key=lambda p: (extension_rank(p), p.name))
    return ordered[0], tuple(ordered[1:])


def pair_files(
    files: Sequence[Path], suffixes: Sequence[str] = DEFAULT_SUFFIXES, input_dir: Path | None = None
) -> PairReport:
    """Apply the pairing rule to a list of video files (see the module docstring)."""
    suffixes = tuple(suffixes)
    pattern = suffix_pattern(suffixes)
    gen: dict[str, list[tuple[str, Path]]] = {}
    real: dict[str, list[Path]] = {}
    report = PairReport(input_dir=input_dir or Path("."), suffixes=suffixes)
    for f in sorted(files, key=lambda p: p.name):
        if not is_video(f):
            report.ignored.append(f)
            continue
        m = pattern.match(f.stem)
        base = m.group("base") if m else None
        if base is not None and base.strip("_- "):
            gen.setdefault(base.lower(), []).append((base, f))
        else:
            real.setdefault(f.stem.lower(), []).append(f)

    chosen_real: dict[str, Path] = {}
    for key, files_ in real.items():
        best, others = _pick(files_)
        chosen_real[key] = best
        if others:
            report.duplicates.append(Duplicate(best.stem, "real", best, others))
    used_real: set[str] = set()
    for key, items in gen.items():
        by_path = {p: b for b, p in items}
        best, others = _pick([p for _, p in items])
        if others:
            report.duplicates.append(Duplicate(by_path[best], "generated", best, others))
        if key in chosen_real:
            report.pairs.append(Pair(by_path[best], best, chosen_real[key]))
            used_real.add(key)
        else:
            report.no_gt.append(best)
    report.no_gen = sorted((p for k, p in chosen_real.items() if k not in used_real), key=lambda p: p.name)
    report.pairs.sort(key=lambda p: p.generated.name)
    report.no_gt.sort(key=lambda p: p.name)
    report.duplicates.sort(key=lambda d: (d.side, d.chosen.name))
    return report


def scan_and_pair(input_dir: str | Path, generated_suffixes: Sequence[str] = DEFAULT_SUFFIXES) -> PairReport:
    """Scan ``input_dir`` (not recursive, hidden names skipped) and pair its videos by name.

    Entries named like videos that are not regular files (a directory ``x.mp4``, a broken or looping
    symbolic link) are paired like the others, so an evaluation reports them per video instead of
    dropping them; ``PairReport.not_files`` lists them. Other sub-folders are not looked at.
    """
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise UsageError(f"{input_dir}: not a folder — pass the folder holding the generated and real videos")
    files = [p for p in input_dir.iterdir() if not p.name.startswith(".") and (is_video(p) or p.is_file())]
    return pair_files(files, generated_suffixes, input_dir.absolute())
