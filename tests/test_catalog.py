"""The catalogue: every row well-formed, example configs valid, third-party metrics via entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aigve.cli.main import build_parser
from aigve.cli.run import merge_run_options
from aigve.metrics import catalog
from aigve.metrics.base import FAMILIES
from tests.conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_every_catalogue_row_is_complete() -> None:
    specs = catalog.all_specs()
    assert len({s.name for s in specs}) == len(specs)
    for s in specs:
        assert s.family in FAMILIES and s.description and s.citation and s.backbone
        assert s.level in ("video", "set") and s.outputs
        assert set(s.inputs) <= {"generated", "real", "prompt"}
        lo, hi = s.primary.range
        assert lo is None or hi is None or lo < hi


def test_every_metric_has_an_example_config() -> None:
    names = {p.stem for p in CONFIGS}
    assert {s.name for s in catalog.all_specs()} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_example_configs_parse_and_their_options_are_valid(path: Path) -> None:
    opts = merge_run_options(build_parser().parse_args(["run", "--config", str(path), "--out", "o"]))
    names = opts.get("metrics") or catalog.suite_members(opts["suite"])
    for name in names:
        cls = catalog.get_metric_class(name)
        cls(**opts["metric_options"].get(name, {}))  # UsageError on an unknown or bad option


class _EP:
    def __init__(self, name: str, obj: Any) -> None:
        self.name, self.value, self._obj = name, f"plugin:{name}", obj

    def load(self) -> Any:
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_third_party_metrics_register_through_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from aigve.metrics.classic import Flicker

    class PluginMetric(Flicker):
        spec = type(Flicker.spec)(**{**Flicker.spec.__dict__, "name": "plugin_flicker"})

    monkeypatch.setattr(catalog, "_LOADED", False)
    monkeypatch.setattr(
        catalog,
        "entry_points",
        lambda group: [_EP("plugin_flicker", PluginMetric), _EP("broken", ImportError("no module"))],
    )
    try:
        assert catalog.get_metric_class("plugin_flicker") is PluginMetric  # the broken plugin is skipped
        assert "plugin_flicker" in {s.name for s in catalog.all_specs()}
    finally:
        catalog.unregister_metric("plugin_flicker")
