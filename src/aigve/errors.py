"""Exceptions with messages a user can act on: each names the file and the fix."""

from __future__ import annotations


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

    def __init__(self, what: str, extra: str, module: str | None = None) -> None:
        self.extra = extra
        mod = f" (module '{module}' not found)" if module else ""
        super().__init__(f"{what} needs the '{extra}' extra{mod}: pip install 'aigve[{extra}]'")


class MetricInputError(AigveError):
    """A metric cannot score one entry (e.g. a missing prompt or real video)."""
