"""What a reader sees of a run, defined once: the summary table, the notes under it (every warning that
qualifies a number, why a metric could not run, small-sample CI caveats) and the error counts.

The console summary (``aigve run``, ``prepare --compute``), the HTML report and the server's report
all take their words and numbers from here, so one run reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigve.results.records import OutputValue, Results, text_safe

#: below this many videos a bootstrap CI is shown with a caveat (a resample of 2-4 videos mostly
#: repeats the same few values: the interval is far too narrow)
MIN_CI_N = 5


def ci_caveat_text(n: int) -> str:
    """The caveat of a CI resampled from ``n`` (< :data:`MIN_CI_N`) videos."""
    return (
        f"CI from only n = {n} video(s) (fewer than {MIN_CI_N}): a bootstrap over so few values "
        "understates the uncertainty; do not report it as a 95% interval"
    )


def ci_caveat(ov: OutputValue | None) -> str | None:
    """The caveat of an output's CI: the one the run recorded, else (older results) from its ``n``."""
    if ov is None or ov.ci_low is None:
        return None
    if ov.ci_caveat:
        return ov.ci_caveat
    return ci_caveat_text(ov.n) if ov.n < MIN_CI_N else None


def fmt_value(v: float | None) -> str:
    if v is None:
        return "—"
    a = abs(v)
    if a != 0 and (a >= 1e4 or a < 1e-3):
        return f"{v:.3e}"
    return f"{v:.4f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class ErrorCounts:
    """The run's errors, counted one way.

    ``videos``: generated videos (dataset entries) with at least one error of their own (it could not
    be decoded, or a metric failed on it); ``real_videos``: real videos with an error; ``metrics_failed``:
    metrics that could not run at all (missing weights or extra, a set metric that could not be
    computed): that is the metric's failure, not the videos', so it is not counted in ``videos``;
    ``per_metric``: for each metric that ran, (generated, real) videos with an error in it.
    """

    n_videos: int
    videos: set[str] = field(default_factory=set)
    real_videos: set[str] = field(default_factory=set)
    metrics_failed: dict[str, str] = field(default_factory=dict)
    per_metric: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.videos or self.real_videos or self.metrics_failed)

    def headline(self) -> str:
        """``2 of 6 videos with errors; 1 real video with errors; 1 metric could not run (kid)``."""
        parts = [f"{len(self.videos)} of {_plural(self.n_videos, 'video')} with errors"]
        if self.real_videos:
            parts.append(f"{_plural(len(self.real_videos), 'real video')} with errors")
        if self.metrics_failed:
            names = ", ".join(self.metrics_failed)
            parts.append(f"{_plural(len(self.metrics_failed), 'metric')} could not run ({names})")
        return "; ".join(parts)

    def metric_text(self, metric: str) -> str:
        """One metric's count in the same words: ``could not run``, ``2 videos with errors``, ``""``."""
        if metric in self.metrics_failed:
            return "could not run"
        gen, real = self.per_metric.get(metric, (0, 0))
        parts = []
        if gen:
            parts.append(f"{_plural(gen, 'video')} with errors")
        if real:
            parts.append(f"{_plural(real, 'real video')} with errors")
        return ", ".join(parts)

    def metric_cell(self, metric: str) -> str:
        """The count for a table cell: ``—`` for a metric that could not run, else ``gen`` or ``gen + real``."""
        if metric in self.metrics_failed:
            return "—"
        gen, real = self.per_metric.get(metric, (0, 0))
        return f"{gen} + {real} real" if real else str(gen)


def _real_key(path: Any) -> str:
    """One key per real file, whether it comes as a unit's path or a record's ``real:<path>`` id (also
    when a server has shortened both)."""
    p = str(path)
    return "real:" + str(Path(p[5:] if p.startswith("real:") else p).resolve())


def error_counts(results: Results) -> ErrorCounts:
    """Count ``results``' errors the one way every view uses (see :class:`ErrorCounts`)."""
    return count_errors(
        len(results.entries),
        {name: a.error for name, a in results.aggregates.items()},
        results.errors,
        ((r.video_id, r.metric, r.error) for r in results.records),
    )


def count_errors(
    n_videos: int,
    metric_errors: Mapping[str, str | None],
    unit_errors: Iterable[Mapping[str, Any]],
    records: Iterable[tuple[Any, Any, Any]],
) -> ErrorCounts:
    """:func:`error_counts` from plain parts (what the server has: ``results.json`` and per-video rows):
    the number of videos, metric -> its error (``None`` when it ran), the run's ``errors`` (videos that
    could not be read) and ``(video_id, metric, error)`` of every per-video row."""
    failed = {name: str(err) for name, err in metric_errors.items() if err}
    counts = ErrorCounts(n_videos=n_videos, metrics_failed=failed)
    gen_by: dict[str, set[str]] = {}
    real_by: dict[str, set[str]] = {}
    for e in unit_errors:  # a video that could not be decoded or read
        if e.get("side") == "real" or (not e.get("video_id") and e.get("path")):
            counts.real_videos.add(_real_key(e.get("path")))
        elif e.get("video_id"):
            counts.videos.add(str(e["video_id"]))
    for video_id, metric, error in records:
        if error is None or (isinstance(error, float) and error != error) or error == "":
            continue  # no error (NaN or empty in a table read back)
        why = failed.get(str(metric))
        if why is not None and str(error).startswith(why):
            continue  # the metric's own failure, repeated on every video: not this video's error
        vid = str(video_id)
        if vid.startswith("real:"):
            vid = _real_key(vid)
            counts.real_videos.add(vid)
            real_by.setdefault(str(metric), set()).add(vid)
        else:
            counts.videos.add(vid)
            gen_by.setdefault(str(metric), set()).add(vid)
    for name in metric_errors:
        if name not in failed:
            counts.per_metric[name] = (len(gen_by.get(name, ())), len(real_by.get(name, ())))
    return counts


@dataclass
class Note:
    """A line under the summary table: ``kind`` is ``error`` (the metric could not run), ``warning``
    (qualifies the metric's number) or ``ci`` (the CI is from too few videos)."""

    metric: str
    kind: str
    text: str


def metric_notes(results: Results, metric: str) -> list[Note]:
    """The notes of one metric, in order: why it failed, its warnings, its CI caveats."""
    agg = results.aggregates[metric]
    notes: list[Note] = []
    if agg.error:
        notes.append(Note(metric, "error", text_safe(str(agg.error))))
    for w in dict.fromkeys(agg.warnings):
        notes.append(Note(metric, "warning", text_safe(str(w))))
    if not agg.error:
        ov = agg.outputs.get(agg.primary)
        cav = ci_caveat(ov)
        if cav:
            notes.append(Note(metric, "ci", cav))
    return notes


def summary_notes(results: Results) -> list[Note]:
    """Every metric's notes, in the table's order."""
    return [n for name in results.aggregates for n in metric_notes(results, name)]


def summary_rows(results: Results) -> tuple[list[dict[str, str]], list[Note]]:
    """The console table's rows (primary output of each metric) and the numbered notes under it.

    A row's ``notes`` cell holds the numbers of its notes; a CI with a small-sample caveat says so in
    its own cell; a metric that could not run shows ``error`` and its reason is note 1 of its row."""
    rows: list[dict[str, str]] = []
    notes: list[Note] = []
    counts = error_counts(results)
    for name, agg in results.aggregates.items():
        out = agg.outputs[agg.primary]
        hib = out.higher_is_better
        mine = metric_notes(results, name)
        refs = [str(len(notes) + i + 1) for i in range(len(mine))]
        notes.extend(mine)
        ci = ""
        if out.ci_low is not None and agg.error is None:
            ci = f"[{fmt_value(out.ci_low)}, {fmt_value(out.ci_high)}]"
            if ci_caveat(out):
                ci += f" ⚠ n<{MIN_CI_N}"  # the note says which n (for a set metric: the smaller side)
        rows.append(
            {
                "metric": name,
                "value": fmt_value(out.value) if agg.error is None else "error",
                "95% CI": ci,
                "n": str(out.n),
                "better": "↑" if hib else ("↓" if hib is False else "·"),
                "errors": counts.metric_cell(name),
                "backbone": agg.backbone,
                "notes": _refs(refs),
            }
        )
    return rows, notes


def _refs(refs: list[str]) -> str:
    """``[1]``, ``[1-4]``: a row's notes are consecutive."""
    if not refs:
        return ""
    return f"[{refs[0]}]" if len(refs) == 1 else f"[{refs[0]}-{refs[-1]}]"


def note_line(note: Note) -> str:
    """A note as one line of text: ``kid could not run: ...``, ``fid: ...`` (unless the warning already
    starts with the metric's name), ``flicker 95% CI: ...``."""
    if note.kind == "error":
        return f"{note.metric} could not run: {note.text}"
    if note.kind == "ci":
        return f"{note.metric} 95% CI: {note.text}"
    if note.text.lower().startswith(note.metric.lower()):
        return note.text
    return f"{note.metric}: {note.text}"


NOTE_STYLE = {"error": "red", "warning": "yellow", "ci": "yellow"}


def print_summary(results: Results, console: Any = None) -> None:
    """The summary on the terminal (rich): the table, its numbered notes, the error counts."""
    import pandas as pd
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from aigve.results.writers import group_table

    console = console or Console(width=max(120, Console().width))
    table = Table(title=f"aigve results — {results.dataset_name} ({len(results.entries)} videos)")
    rows, notes = summary_rows(results)
    cols: tuple[str, ...] = ("metric", "value", "95% CI", "n", "better", "errors", "backbone")
    if notes:
        cols += ("notes",)
    for col in cols:
        table.add_column(col, justify="right" if col in ("value", "n", "errors") else "left")
    for r in rows:
        table.add_row(*(escape(r[c]) for c in cols))
    console.print(table)
    for i, n in enumerate(notes, 1):
        style = NOTE_STYLE[n.kind]
        console.print(f"  [{style}]\\[{i}] {escape(note_line(n))}[/{style}]")
    from aigve.vbench.suite import results_suite_scores, summary_lines

    suite = results_suite_scores(results)
    if suite is not None:
        for line in summary_lines(suite):
            console.print(escape(line))
    by = results.hints.get("group_by")
    if by:
        g = group_table(results, by)
        if g is not None:
            t2 = Table(title=f"mean per {by} (primary outputs)")
            t2.add_column(by)
            for c in g.columns:
                hib = results.aggregates[c].outputs[results.aggregates[c].primary].higher_is_better
                t2.add_column(f"{c} {'↑' if hib else ('↓' if hib is False else '')}".strip(), justify="right")
            for idx, row in g.iterrows():
                t2.add_row(str(idx), *[fmt_value(None if pd.isna(v) else float(v)) for v in row.values])
            console.print(t2)
    counts = error_counts(results)
    if counts.videos or counts.real_videos or results.errors:
        console.print(f"[yellow]{escape(counts.headline())}; see per_video.csv (error column)[/yellow]")
        failed = set(counts.metrics_failed)
        messages = list(
            dict.fromkeys(
                [str(e["error"]) for e in results.errors]
                + [str(r.error) for r in results.records if r.error and r.metric not in failed]
            )
        )
        for m in messages[:5]:
            console.print(f"  [red]{escape(text_safe(m))}[/red]")
        if len(messages) > 5:
            console.print(f"  … and {len(messages) - 5} more")
    elif counts.metrics_failed:
        console.print(f"[yellow]{escape(counts.headline())} (the reason is in the notes above)[/yellow]")
    if results.video_warnings:
        console.print(
            f"[yellow]{len(results.video_warnings)} video(s) were scored despite a decoding problem "
            "(e.g. truncated: only the frames before the damage count); see per_video.csv (warning column)"
            "[/yellow]"
        )
        for w in results.video_warnings[:5]:
            console.print(f"  [yellow]{escape(text_safe(str(w['warning'])))}[/yellow]")
