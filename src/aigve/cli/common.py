"""What several commands share: exit codes, small argument parsers, the config file, the stderr console."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aigve.errors import UsageError

#: 0 success, 2 usage or input-description errors (a missing optional extra, no server at ``aigve client
#: --base-url``), 3 when any video or metric failed
EXIT_OK, EXIT_USAGE, EXIT_FAILED = 0, 2, 3


def csv_list(s: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; ``None`` stays ``None``."""
    if s is None:
        return None
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_metric_options(
    items: list[str] | None,
    flag: str = "--metric-option",
    example: str = "fid.backbone=efficientnet_lite0",
) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` strings -> {name: {key: value}} (values typed: bool/int/float/str)."""
    from aigve.metrics.base import parse_option_value

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UsageError(f"{flag} '{item}': expected NAME.KEY=VALUE, e.g. {example}")
        lhs, value = item.split("=", 1)
        name, key = lhs.split(".", 1)
        out.setdefault(name.strip(), {})[key.strip()] = parse_option_value(value)
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A ``--config`` YAML file as a mapping (a clear ``UsageError`` for a missing or malformed file)."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UsageError(f"--config {p}: file not found") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {p}: the top level must be a mapping of option names to values")
    return data


def positive_int(s: str) -> int:
    """argparse type: an integer >= 1."""
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def alpha_level(s: str) -> float:
    """argparse type: a significance level in (0, 1)."""
    v = float(s)
    if not 0 < v < 1 or math.isnan(v):
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {v}")
    return v


#: width given to rich on a stream that is not a terminal: wide enough that no name, path or command is cut
PIPE_WIDTH = 100_000


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def _console(stderr: bool):  # noqa: ANN202
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if _is_tty(stream):
        return Console(stderr=stderr)
    # piped or redirected: no wrapping at 80 columns, no colour codes, lines as long as their content
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True, no_color=True, highlight=False)


def stdout_console():  # noqa: ANN201
    """A rich console on stdout (tables, summaries); never wraps or cuts when stdout is not a terminal."""
    return _console(stderr=False)


def stderr_console():  # noqa: ANN201
    """A rich console on stderr (progress bars and logs; stdout stays for results); never wraps when
    stderr is not a terminal."""
    return _console(stderr=True)


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], console: Any = None
) -> None:
    """A table of plain text cells (no rich markup: ``aigve[vlsim]`` stays as written). On a terminal the
    cells wrap to its width; piped, every row is one line with each cell whole."""
    from rich.table import Table
    from rich.text import Text

    console = console or stdout_console()
    piped = console.width >= PIPE_WIDTH
    t = Table(title=title)
    for c in columns:
        t.add_column(c, no_wrap=piped, overflow="fold")
    for r in rows:
        t.add_row(*(Text("" if v is None else str(v)) for v in r))
    console.print(t)


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each record (not the stream at creation, which a caller that
    swaps stderr, such as a test harness or an embedding application, may have closed since)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def log_handler() -> logging.Handler:
    """The handler of the ``aigve`` log: rich on a terminal; plain ``LEVEL message`` lines, never wrapped,
    when stderr is redirected."""
    if _is_tty(sys.stderr):
        from rich.logging import RichHandler

        return RichHandler(show_path=False, console=stderr_console())
    h = _CurrentStderrHandler()
    h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return h


def emit_json(obj: Any) -> None:
    """``--json`` output: one JSON document on stdout."""
    import json

    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False))


class JournalStream:
    """``aigve run --jsonl``: one JSON object per finished video on stdout, read from the run's journal
    (``<out>/journal.jsonl``, written and flushed as each video finishes; on ``--resume`` the videos
    finished earlier come first, and a video redone because it failed or changed appears again: the later
    object wins). Each object: ``video_id``, ``path``, ``values`` (``metric`` or
    ``metric.output`` -> number), ``errors`` (same keys -> message), ``error`` (the video's own error, e.g.
    undecodable) and ``warning``. Real videos (used only by set metrics such as FID) are not emitted."""

    def __init__(self, out: Path) -> None:
        self.path = out / "journal.jsonl"
        self.offset = 0

    def emit_new(self) -> None:
        import json
        import sys

        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for line in data[: end + 1].decode("utf-8").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "unit" not in obj or obj.get("side") != "generated":
                continue
            values: dict[str, Any] = {}
            errors: dict[str, str] = {}
            for r in obj.get("records", []):
                key = r["metric"] if r["output"] == r["metric"] else f"{r['metric']}.{r['output']}"
                if r.get("error"):
                    errors[key] = r["error"]
                else:
                    values[key] = r.get("value")
            rec = {
                "video_id": obj.get("video_id"),
                "path": obj.get("path"),
                "values": values,
                "errors": errors,
                "error": obj.get("error"),
                "warning": obj.get("warning"),
            }
            sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
        sys.stdout.flush()
