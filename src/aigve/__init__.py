"""aigve: evaluate AI-generated video.

>>> import aigve
>>> aigve.__version__
'0.1.0'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from aigve.api import evaluate as evaluate


def __getattr__(name: str) -> Any:  # lazy: `import aigve` stays cheap
    if name == "evaluate":
        from aigve.api import evaluate

        return evaluate
    raise AttributeError(name)


__all__ = ["__version__", "evaluate"]
