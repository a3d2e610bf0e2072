"""Command-line interface: a thin layer over the engine and the other stages.

``aigve`` is :func:`aigve.cli.main.main`; :mod:`aigve.cli.main` says which module holds each command.
"""

from aigve.cli.main import main

__all__ = ["main"]
