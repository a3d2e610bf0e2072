"""The metric contract, checked for every metric in the catalogue: a new metric gets these checks for free.

The checks live in ``tests/metrics/contract.py`` (see there what each covers); here they run on every
``MetricSpec`` of ``all_specs()``, and the offline suite (no download) also goes through the engine: two runs
are equal and ``batch_size`` 1 and 8 give the same values, on a few tiny generated videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigve.metrics.base import MetricSpec
from aigve.metrics.catalog import all_specs, get_metric_class, suite_members
from aigve.types import Entry
from tests.conftest import smooth_clip
from tests.metrics.contract import (
    check_backbones,
    check_builds,
    check_set_metric,
    check_spec,
    check_values,
    check_video_metric,
)

SPECS: list[MetricSpec] = all_specs()
IDS = [s.name for s in SPECS]
VIDEO_SPECS = [s for s in SPECS if s.level == "video"]
SET_SPECS = [s for s in SPECS if s.level == "set"]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_spec_is_well_formed(spec: MetricSpec) -> None:
    check_spec(spec)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_metric_builds_with_defaults_and_its_provenance_is_json(spec: MetricSpec) -> None:
    check_builds(spec)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_backbones_resolve_without_loading_and_inputs_match(spec: MetricSpec) -> None:
    check_backbones(spec)


@pytest.mark.parametrize("spec", VIDEO_SPECS, ids=[s.name for s in VIDEO_SPECS])
def test_video_metric_outputs_range_direction_and_no_hidden_state(spec: MetricSpec) -> None:
    check_video_metric(spec)


@pytest.mark.parametrize("spec", SET_SPECS, ids=[s.name for s in SET_SPECS])
def test_set_metric_outputs_merge_reset_and_determinism(spec: MetricSpec) -> None:
    check_set_metric(spec)


# ----------------------------------------------------------------------------- through the engine
OFFLINE = suite_members("offline")
#: metrics whose engine values may differ in the last bits between batch sizes (none today: every offline
#: backbone gives bit-identical rows whatever the batch); relative tolerance
ENGINE_REL_TOL: dict[str, float] = {}


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Three short videos at NIQE's smallest frame size (194 px), one still; prompts for completeness."""
    from aigve.data.dataset import Dataset
    from aigve.video.encode import write_video

    d = tmp_path_factory.mktemp("contract-videos")
    clips = [smooth_clip(4, 200, 200, seed=1), smooth_clip(4, 200, 200, seed=2, speed=5.0)]
    clips.append(np.repeat(smooth_clip(1, 200, 200, seed=3), 3, axis=0))
    entries = [
        Entry(id=f"v{i}", generated=write_video(d / f"v{i}.mp4", c, fps=8.0), prompt=f"clip {i}")
        for i, c in enumerate(clips)
    ]
    return Dataset(name="contract", entries=entries)


@pytest.mark.slow
def test_offline_metrics_through_the_engine_are_deterministic_and_batch_size_independent(
    tiny_dataset, tmp_path: Path
) -> None:
    from aigve.engine import Engine, RunConfig

    def run(batch_size: int) -> Any:
        cfg = RunConfig(metrics=OFFLINE, batch_size=batch_size, cache_dir=None, bootstrap=0, progress=False)
        res = Engine(tiny_dataset, cfg).run()
        assert res.exit_code == 0, res.errors
        return res.per_video.sort_values(["video_id", "metric", "output"]).reset_index(drop=True)

    one, eight, again = run(1), run(8), run(8)
    assert again.equals(eight), "two runs with equal settings differ"
    assert set(one["metric"]) == set(OFFLINE)
    assert one[["video_id", "metric", "output"]].equals(eight[["video_id", "metric", "output"]])
    for i in range(len(one)):
        a, b, metric = one.loc[i, "value"], eight.loc[i, "value"], one.loc[i, "metric"]
        assert b == pytest.approx(a, rel=ENGINE_REL_TOL.get(metric, 0.0), abs=0.0), (
            f"{metric}.{one.loc[i, 'output']} of {one.loc[i, 'video_id']}: batch_size 1 gives {a}, 8 gives {b}"
        )
    for name in OFFLINE:  # the engine's values obey the spec too
        spec = get_metric_class(name).spec
        for vid, rows in one[one.metric == name].groupby("video_id"):
            check_values(spec, dict(zip(rows["output"], rows["value"], strict=True)), f"{name}({vid})")
