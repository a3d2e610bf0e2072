"""File-system helpers shared by the data readers and every writer.

``tempfile.mkstemp`` creates files readable by their owner only (0600). Our result files, statistics,
caches and downloaded weights are written to a temporary file and renamed into place, so without help they
would all end up 0600, unlike files opened normally. :func:`as_if_opened` gives the temporary file the mode
``open()`` would have given it under the process umask.
"""

from __future__ import annotations

import os


def _read_umask() -> int:
    try:  # Linux: no race with other threads
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_if_opened(fd: int) -> None:
    """Set a ``mkstemp`` file's mode to what ``open(path, "w")`` would create (0666 minus the umask)."""
    if os.name == "posix":
        os.fchmod(fd, 0o666 & ~_read_umask())


def text_name(name: str) -> str:
    """``name`` as valid Unicode text, for ids and labels derived from file names.

    Python represents undecodable bytes of a file name with lone surrogates (``b"\\xff"`` ->
    ``"\\udcff"``), which cannot be written as UTF-8. Such bytes become a visible ``\\xff`` escape;
    text that is already valid is returned unchanged. Ids and written text use this; paths keep the real name for opening.
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        raw = os.fsencode(name)
    except UnicodeEncodeError:  # lone surrogates that are not surrogate escapes (e.g. from JSON)
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
