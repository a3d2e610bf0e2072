"""The run journal: an append-only JSON-lines file of per-unit outcomes, for ``--resume``.

Line 1 is a header with the run's fingerprint (metrics, options, window, dataset). Every later line
records one finished unit (a generated or real video) with its per-video records, the video file's
sha256 and its decoder warning. A line is written, flushed and fsynced after the unit's features are
in the cache, so a run killed at any point resumes with nothing lost or duplicated; a torn last line
is ignored. A unit may appear twice (redone on resume because its file changed or it had failed):
the later line wins.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, TextIO

from aigve.data.dataset import Dataset
from aigve.errors import UsageError
from aigve.types import VideoRecord


def run_fingerprint(config: dict[str, Any], dataset: Dataset) -> str:
    payload: dict[str, Any] = {
        "config": config,
        "entries": [
            [e.id, str(e.generated), str(e.real) if e.real else None, e.prompt] for e in dataset.entries
        ],
        "extra_reals": [str(p) for p in dataset.extra_reals],
    }
    if any(
        e.extra for e in dataset.entries
    ):  # fields a scorer may read (only then: plain journals still resume)
        payload["extra"] = [e.extra for e in dataset.entries]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class Journal:
    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._f: TextIO | None = None
        self.unit_errors: dict[str, dict[str, Any] | None] = {}
        self.unit_shas: dict[str, str | None] = {}
        self.unit_warnings: dict[str, str | None] = {}

    def open(self, resume: bool) -> dict[str, list[VideoRecord]]:
        """Start a journal (or continue one with ``resume``); returns the finished units' records."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        done: dict[str, list[VideoRecord]] = {}
        if resume and self.path.exists():
            done = self._read()
            self._f = open(self.path, "a", encoding="utf-8")
        else:
            self._f = open(self.path, "w", encoding="utf-8")
            self._write({"journal": 1, "fingerprint": self.fingerprint})
        return done

    def _read(self) -> dict[str, list[VideoRecord]]:
        done: dict[str, list[VideoRecord]] = {}
        with open(self.path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        if not lines or not lines[0].strip():
            return done
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            raise UsageError(f"{self.path}: not a journal of an aigve run; start without --resume") from None
        if header.get("fingerprint") != self.fingerprint:
            raise UsageError(
                f"{self.path}: --resume refused: the journal belongs to a run with different metrics, options, "
                "sampling or dataset. Use the same command line, or another --out directory."
            )
        good = [lines[0]]
        for line in lines[1:]:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                break  # torn last line of a killed run
            good.append(line)
            recs = [VideoRecord(**r) for r in obj["records"]]
            done[obj["unit"]] = recs
            self.unit_shas[obj["unit"]] = obj.get("sha")
            self.unit_warnings[obj["unit"]] = obj.get("warning")
            self.unit_errors[obj["unit"]] = (
                {
                    "video_id": obj.get("video_id"),
                    "side": obj["side"],
                    "path": obj["path"],
                    "error": obj["error"],
                }
                if obj.get("error")
                else None
            )
        # rewrite without a torn tail, so appends start on a clean line
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("\n".join(good) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        return done

    def _write(self, obj: dict[str, Any]) -> None:
        assert self._f is not None
        self._f.write(json.dumps(obj, sort_keys=True) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def append(
        self,
        unit: str,
        records: list[VideoRecord],
        error: str | None,
        side: str,
        path: str,
        sha: str | None = None,
        warning: str | None = None,
    ) -> None:
        vid = unit[4:] if unit.startswith("gen:") else None
        self._write(
            {
                "unit": unit,
                "video_id": vid,
                "side": side,
                "path": path,
                "sha": sha,
                "error": error,
                "warning": warning,
                "records": [r.to_dict() for r in records],
            }
        )

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
