"""The examples in the public entry points' docstrings run, and give what they show.

``aigve.evaluate`` on small generated videos, a metric used on its own (``FrameConsistency`` with its
backbone, and its reduction on arrays). Run here rather than with ``--doctest-modules`` so that only these
modules are collected and the suite's isolated cache (``tests/conftest.py``) applies.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ("aigve", "aigve.api", "aigve.metrics.classic")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (output above)"
