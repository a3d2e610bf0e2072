"""File-system helpers shared by every writer.

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
