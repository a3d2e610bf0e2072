"""``aigve prepare``: pair a folder of generated + real videos by name and stage it in the AIGVE layout.

Staged layout (what the original toolkit expects)::

    <stage>/evaluate/<original file names>        copies, or symlinks with link=True
    <stage>/annotations/evaluate.json             AIGVE format, paths relative to evaluate/

Entry ids are the pairing keys (the generated stem without its suffix token), written as ``id``.
``prompt_gt`` comes from a prompts file when given (keys: the pairing key, the generated file name or
stem; TXT lines follow the sorted generated file names), else null. With ``include_unpaired`` (default)
generated videos without a real one are staged with ``video_path_gt: null`` and real videos without a
generated one are staged and listed in ``metainfo.extra_reals`` (used by set-level metrics).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aigve.data.annotation import read_annotation, write_annotation
from aigve.data.dataset import Dataset, text_name
from aigve.data.folders import match_prompts, read_prompts
from aigve.data.pairing import DEFAULT_SUFFIXES, PairReport, scan_and_pair
from aigve.errors import DatasetError, UsageError
from aigve.types import Entry

STAGE_ANNOTATION = Path("annotations") / "evaluate.json"
STAGE_VIDEOS = Path("evaluate")


def _entries_from_report(
    report: PairReport, prompts: str | Path | None, include_unpaired: bool
) -> tuple[list[Entry], list[Path]]:
    rows = report.generated if include_unpaired else [(p.key, p.generated, p.real) for p in report.pairs]
    if not rows:
        raise DatasetError(
            f"{report.input_dir}: no generated videos found — their file names must end with one of "
            f"{', '.join(report.suffixes)} (e.g. 4056_{report.suffixes[0]}.mp4)"
        )
    found: list[str | None] = [None] * len(rows)
    if prompts is not None:
        table = read_prompts(prompts)
        found = match_prompts(
            table, [[k, g.name, g.stem] for k, g, _ in rows], [g.name for _, g, _ in rows], prompts
        )
    entries = [
        Entry(id=text_name(k), generated=g, real=r, prompt=p)
        for (k, g, r), p in zip(rows, found, strict=True)
    ]
    extra = list(report.no_gen) if include_unpaired else []
    return entries, extra


def _is_nonempty_dir(p: Path) -> bool:
    return p.is_dir() and any(p.iterdir())


def _place(src: Path, dst: Path, link: bool) -> Path:
    if not src.is_file():
        # a directory or a broken/looping link named like a video: link to it as it is, so evaluating
        # the staged set reports the same problem for this video (copying would fail or hide it)
        os.symlink(src.absolute(), dst)
    elif link:
        os.symlink(src.resolve(), dst)
    else:
        shutil.copy2(src, dst)
    return dst


def stage_dataset(
    report: PairReport,
    dst: str | Path,
    link: bool = False,
    *,
    prompts: str | Path | None = None,
    overwrite: bool = False,
    include_unpaired: bool = True,
) -> Dataset:
    """Build ``dst/evaluate/`` and ``dst/annotations/evaluate.json`` from a pairing report.

    Refuses (``UsageError``) when ``dst`` exists and is not empty, unless ``overwrite=True``; then only
    ``dst/evaluate/`` and ``dst/annotations/evaluate.json`` are replaced. Returns the staged dataset as read
    back from the written annotation.
    """
    dst = Path(dst).absolute()
    entries, extra_reals = _entries_from_report(report, prompts, include_unpaired)
    if _is_nonempty_dir(dst):
        if not overwrite:
            raise UsageError(
                f"{dst}: stage folder exists and is not empty — choose a new folder or pass --overwrite (overwrite=True in Python)"
            )
        if (dst / STAGE_VIDEOS).is_symlink() or (dst / STAGE_VIDEOS).is_file():
            (dst / STAGE_VIDEOS).unlink()
        elif (dst / STAGE_VIDEOS).exists():
            shutil.rmtree(dst / STAGE_VIDEOS)
    elif dst.exists() and not dst.is_dir():
        raise UsageError(f"{dst}: exists and is not a folder — choose another stage folder")
    vdir = dst / STAGE_VIDEOS
    vdir.mkdir(parents=True, exist_ok=True)

    placed: dict[Path, Path] = {}

    def put(src: Path) -> Path:
        if src not in placed:
            placed[src] = _place(src, vdir / src.name, link)
        return placed[src]

    staged = [
        Entry(id=e.id, generated=put(e.generated), real=put(e.real) if e.real else None, prompt=e.prompt)
        for e in entries
    ]
    staged_extra = [put(p) for p in extra_reals]
    ds = Dataset(
        name=dst.name,
        entries=staged,
        root=vdir,
        metainfo={
            "source": "aigve prepare",
            "input_dir": str(report.input_dir),
            "generated_suffixes": list(report.suffixes),
            "length": len(staged),
        },
        extra_reals=staged_extra,
        source=f"staged:{dst}",
    )
    ann = write_annotation(ds, dst / STAGE_ANNOTATION, vdir)
    return read_annotation(ann, vdir)


@dataclass
class PrepareReport:
    """What ``prepare`` found and wrote; ``summary()`` is the text the CLI prints."""

    pairing: PairReport
    dataset: Dataset | None = None
    stage_dir: Path | None = None
    annotation_files: list[Path] = field(default_factory=list)
    linked: bool = False

    def dataset_spec(self) -> Path:
        """What to pass to ``load_dataset`` to evaluate the prepared data: the first annotation written
        (the staged one when staging). ``UsageError`` after a dry run."""
        if not self.annotation_files:
            raise UsageError(
                "nothing was written: give an output JSON or a stage folder to evaluate the prepared data"
            )
        return self.annotation_files[0]

    def summary(self) -> str:
        lines = [self.pairing.summary()]
        if self.stage_dir is not None and self.dataset is not None:
            how = "symlinks" if self.linked else "copies"
            lines.append(
                f"staged {len(self.dataset)} entries and {len(self.dataset.extra_reals)} extra real videos "
                f"into {self.stage_dir / STAGE_VIDEOS} ({how})"
            )
        for p in self.annotation_files:
            lines.append(f"wrote annotation: {p}")
        if self.dataset is None:
            lines.append("dry run: nothing written (give an output JSON or a stage folder)")
        return "\n".join(lines)


def prepare(
    input_dir: str | Path,
    out_json: str | Path | None = None,
    stage: str | Path | None = None,
    link: bool = False,
    generated_suffixes: Sequence[str] = DEFAULT_SUFFIXES,
    prompts: str | Path | None = None,
    *,
    overwrite: bool = False,
    include_unpaired: bool = True,
) -> PrepareReport:
    """Pair the videos of ``input_dir`` and write the result.

    - ``stage``: build the AIGVE layout there (see ``stage_dataset``);
    - ``out_json``: also (or, without ``stage``, only) write an annotation at this path whose paths are
      relative to the folder ``read_annotation`` will use for it, pointing at the staged files when staging,
      else at the files in ``input_dir``. An existing ``out_json`` is kept unless ``overwrite``.
    - neither: a dry run that only reports the pairing.
    """
    report = scan_and_pair(input_dir, generated_suffixes)
    out = PrepareReport(pairing=report, linked=link)
    if out_json is not None and Path(out_json).exists() and not overwrite:
        raise UsageError(
            f"{out_json}: already exists — choose another path or pass --overwrite (overwrite=True in Python)"
        )
    if stage is not None:
        out.dataset = stage_dataset(
            report, stage, link, prompts=prompts, overwrite=overwrite, include_unpaired=include_unpaired
        )
        out.stage_dir = Path(stage).absolute()
        out.annotation_files.append(out.stage_dir / STAGE_ANNOTATION)
    elif out_json is not None:
        entries, extra = _entries_from_report(report, prompts, include_unpaired)
        out.dataset = Dataset(
            name=Path(input_dir).absolute().name,
            entries=entries,
            root=Path(input_dir).absolute(),
            metainfo={
                "source": "aigve prepare",
                "input_dir": str(report.input_dir),
                "generated_suffixes": list(report.suffixes),
                "length": len(entries),
            },
            extra_reals=extra,
            source=f"prepared:{input_dir}",
        )
    if out_json is not None and out.dataset is not None:
        out.annotation_files.append(write_annotation(out.dataset, out_json))
    return out
