"""``docs/distributed.md`` stays true: the flags it lists exist on ``aigve run``, and the Ray range it, the
``distributed`` extra and the engine state is one range, which the installed Ray satisfies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]


def test_the_flags_in_the_options_table_exist() -> None:
    import argparse

    from aigve.cli.run import add_run_options

    parser = argparse.ArgumentParser()
    add_run_options(parser)
    known = {opt for action in parser._actions for opt in action.option_strings}
    doc = (REPO / "docs" / "distributed.md").read_text()
    table = [line for line in doc.splitlines() if line.startswith("| `--")]
    flags = {re.match(r"\| `(--[a-z-]+)", line).group(1) for line in table}  # type: ignore[union-attr]
    assert {"--engine", "--ray-address", "--ray-workers", "--ray-gpus-per-worker"} <= flags
    assert flags <= known, flags - known


def test_one_ray_range_everywhere_and_the_installed_ray_is_in_it() -> None:
    import ray

    from aigve.engine.ray_engine import RAY_RANGE

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "distributed"
    ]
    assert extra == [f"ray[data]{RAY_RANGE}"]
    assert f"ray[data]{RAY_RANGE}" in (REPO / "docs" / "distributed.md").read_text()
    assert ray.__version__ in SpecifierSet(RAY_RANGE)
