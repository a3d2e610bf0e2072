"""``docs/adding-a-metric.md`` stays true: its code runs, its weights row parses, the paths it names exist.

The page's ``python`` blocks are executed in order as one module (they register ``example_still``,
``example_colour_match`` and the ``example_colour`` scorer); the two metrics then run through the engine on
tiny generated videos, their values are recomputed here from the decoded frames, and the contract checks of
``tests/metrics/contract.py`` are applied to them as to any catalogue metric.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aigve.metrics.catalog import unregister_metric
from tests.conftest import REPO, smooth_clip

DOC = REPO / "docs" / "adding-a-metric.md"
EXAMPLE_METRICS = ("example_still", "example_colour_match")


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)


@pytest.fixture(scope="module")
def example() -> Iterator[types.ModuleType]:
    """The page's python blocks as one module; its metrics are in the catalogue only while this module runs."""
    mod = types.ModuleType("aigve_doc_adding_a_metric")
    sys.modules[mod.__name__] = mod
    try:
        exec(compile("\n".join(code_blocks("python")), str(DOC), "exec"), mod.__dict__)
        yield mod
    finally:
        for name in EXAMPLE_METRICS:
            unregister_metric(name)
        sys.modules.pop(mod.__name__, None)


def test_the_page_has_the_worked_examples() -> None:
    assert len(code_blocks("python")) >= 3 and len(code_blocks("json")) == 1


def test_backticked_paths_and_modules_exist() -> None:
    """Every repository path the page names exists (up to a ``<placeholder>``); every ``aigve.x.y`` resolves."""
    names = set(re.findall(r"`([^`\n]+)`", DOC.read_text(encoding="utf-8")))
    paths = [n for n in names if re.match(r"(src|tests|docs|configs|benchmarks)/", n)]
    assert len(paths) >= 10
    for p in paths:
        fixed = p.split("<", 1)[0].rsplit("/", 1)[0] if "<" in p else p
        assert (REPO / fixed).exists(), f"docs/adding-a-metric.md names {p}, which does not exist"
    for dotted in (n for n in names if re.fullmatch(r"aigve(\.\w+)+", n)):
        parts = dotted.split(".")
        for k in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:k]))
            except ImportError:
                continue
            for attr in parts[k:]:
                obj = getattr(obj, attr)
            break
        else:
            pytest.fail(f"docs/adding-a-metric.md names {dotted}, which does not resolve")


def test_weights_row_example_is_a_valid_registry_row() -> None:
    from aigve.weights import WeightSpec

    (block,) = code_blocks("json")
    row = json.loads(block)
    spec = WeightSpec.from_dict(row)
    assert spec.to_dict()["used_by"] == row["used_by"]
    real = json.loads((REPO / "src/aigve/weights/registry.json").read_text(encoding="utf-8"))["weights"]
    assert set(row) <= set().union(*(r.keys() for r in real)), "the example uses a field no real row has"


def test_examples_pass_the_metric_contract(example: types.ModuleType, monkeypatch) -> None:
    from tests.metrics import contract

    # a new backbone gets a SYNTHETIC row (rows per video, how to fake them), as the checklist says
    monkeypatch.setitem(
        contract.SYNTHETIC,
        "example_colour",
        contract.Synthetic(
            "frames", lambda b, k, r, q: np.stack([q * r.uniform(0.5, 1.0, k), np.ones(k)], axis=1)
        ),
    )
    for cls in (example.ExampleStill, example.ExampleColourMatch):
        for check in (contract.check_spec, contract.check_builds, contract.check_backbones):
            check(cls.spec)
        contract.check_video_metric(cls.spec)


def _tinted(t: int, seed: int, channel: int) -> np.ndarray:
    frames = smooth_clip(t, 48, 48, seed=seed).astype(np.int32)
    frames[..., channel] += 80
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_examples_run_through_the_engine(example: types.ModuleType, make_video, tmp_path: Path) -> None:
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.types import Entry
    from aigve.video.decode import decode_video

    still = np.repeat(_tinted(1, 3, 2), 6, axis=0)
    videos = {
        "red_moving": (make_video("red.mp4", _tinted(6, 1, 0)), "a red car drives by"),
        "blue_still": (make_video("blue.mp4", still), "a blue sky"),
        "no_colour": (make_video("plain.mp4", smooth_clip(6, 48, 48, seed=2)), "a quiet street"),
    }
    ds = Dataset("doc", [Entry(id=k, generated=p, prompt=t) for k, (p, t) in videos.items()])
    cfg = RunConfig(metrics=list(EXAMPLE_METRICS), cache_dir=tmp_path / "cache", bootstrap=0, progress=False)
    res = Engine(ds, cfg).run()
    assert res.exit_code == 0, res.errors
    wide = res.wide()
    for vid, (path, prompt) in videos.items():
        f = decode_video(path).frames.astype(np.float64)
        diffs = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))
        assert wide.loc[vid, "example_still"] == pytest.approx(float((diffs < 1.0).mean()), abs=0)
        named = [c for c in ("red", "green", "blue") if c in prompt.split()]
        rgb = f.reshape(len(f), -1, 3).sum(axis=1)
        share = rgb[:, ("red", "green", "blue").index(named[0])] / rgb.sum(axis=1) if named else [0.0]
        assert wide.loc[vid, "example_colour_match"] == pytest.approx(float(np.mean(share)), rel=1e-12)
        assert wide.loc[vid, "example_colour_match.colour_named"] == float(bool(named))
    assert wide.loc["blue_still", "example_still"] == 1.0
    assert wide.loc["red_moving", "example_colour_match"] > 1 / 3  # a red tint: more than a grey frame
    # a rerun is served from the cache (the scorer's output is keyed by the frames and the prompt's hash)
    again = Engine(ds, cfg).run()
    assert again.wide().equals(wide)
    assert again.provenance["cache"]["hits"] >= len(videos)
