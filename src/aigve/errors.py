"""Exceptions with messages a user can act on: each names the file and the fix."""

from __future__ import annotations

from collections.abc import Iterable


class AigveError(Exception):
    """Base class: anything the toolkit raises on purpose."""


class UsageError(AigveError):
    """Bad command-line or API arguments (exit code 2)."""


class DatasetError(AigveError):
    """A dataset description (annotation JSON, manifest, prompts file) is malformed."""


class DecodeError(AigveError):
    """A video could not be opened or decoded."""

    def __init__(self, path: object, reason: str, fix: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.fix = fix or "check that the file is a complete, playable video (try `aigve check` on it)"
        super().__init__(f"{self.path}: {reason} — {self.fix}")


class WeightsError(AigveError):
    """Model weights are missing, unreadable or fail their hash check."""


class MissingDependencyError(AigveError):
    """An optional dependency group (extra) is not installed."""

    def __init__(
        self, what: str, extra: str, module: str | None = None, *, install: str | None = None
    ) -> None:
        self.extra = extra
        mod = f" (module '{module}' not found)" if module else ""
        if install:  # packages outside aigve's extras (e.g. an fsspec file system): name them
            super().__init__(f"{what} needs {install}{mod}: pip install {install}")
        else:
            super().__init__(f"{what} needs the '{extra}' extra{mod}: pip install 'aigve[{extra}]'")


class MetricInputError(AigveError):
    """A metric cannot score one entry (e.g. a missing prompt or real video)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean `clipsim`?)"`` for the valid choice closest to ``name``, or ``""`` when none is
    close: appended to "unknown ..." messages."""
    import difflib

    pool = list(dict.fromkeys(str(c) for c in choices))
    lowered = {c.lower(): c for c in pool}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f" (did you mean `{lowered[name.lower()]}`?)"
    best = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean `{lowered[best[0]]}`?)" if best else ""
