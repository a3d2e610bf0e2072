"""The suite layer against VBench's own total-score code.

The reference below restates ``scripts/constant.py`` and ``scripts/cal_final_score.py`` of Vchitect/VBench at
commit 45e79ec (read with the library's tools): same constants, same functions, keys with spaces.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aigve.results.records import MetricAggregate, OutputValue, Results
from aigve.types import VideoRecord
from aigve.vbench import suite

# ---------------------------------------------------------------- restated reference (VBench 45e79ec)
TASK_INFO = [
    "subject consistency", "background consistency", "temporal flickering", "motion smoothness",
    "dynamic degree", "aesthetic quality", "imaging quality", "object class", "multiple objects",
    "human action", "color", "spatial relationship", "scene", "appearance style", "temporal style",
    "overall consistency",
]  # fmt: skip
DIM_WEIGHT = {k: 1 for k in TASK_INFO} | {"dynamic degree": 0.5}
NORMALIZE_DIC = {
    "subject consistency": {"Min": 0.1462, "Max": 1.0},
    "background consistency": {"Min": 0.2615, "Max": 1.0},
    "temporal flickering": {"Min": 0.6293, "Max": 1.0},
    "motion smoothness": {"Min": 0.706, "Max": 0.9975},
    "dynamic degree": {"Min": 0.0, "Max": 1.0},
    "aesthetic quality": {"Min": 0.0, "Max": 1.0},
    "imaging quality": {"Min": 0.0, "Max": 1.0},
    "object class": {"Min": 0.0, "Max": 1.0},
    "multiple objects": {"Min": 0.0, "Max": 1.0},
    "human action": {"Min": 0.0, "Max": 1.0},
    "color": {"Min": 0.0, "Max": 1.0},
    "spatial relationship": {"Min": 0.0, "Max": 1.0},
    "scene": {"Min": 0.0, "Max": 0.8222},
    "appearance style": {"Min": 0.0009, "Max": 0.2855},
    "temporal style": {"Min": 0.0, "Max": 0.364},
    "overall consistency": {"Min": 0.0, "Max": 0.364},
}
SEMANTIC_WEIGHT, QUALITY_WEIGHT = 1, 4
QUALITY_LIST = TASK_INFO[:7]
SEMANTIC_LIST = TASK_INFO[7:]


def ref_normalized(upload_data, keys=TASK_INFO):
    out = {}
    for key in keys:
        lo, hi = NORMALIZE_DIC[key]["Min"], NORMALIZE_DIC[key]["Max"]
        out[key] = (upload_data[key] - lo) / (hi - lo) * DIM_WEIGHT[key]
    return out


def ref_group(normalized, keys):
    return sum(normalized[k] for k in keys) / sum(DIM_WEIGHT[k] for k in keys)


def ref_final(q, s):
    return (q * QUALITY_WEIGHT + s * SEMANTIC_WEIGHT) / (QUALITY_WEIGHT + SEMANTIC_WEIGHT)


# ---------------------------------------------------------------------------------------------------
def test_constants_are_vbenchs():
    assert [d.replace("_", " ") for d in suite.DIMENSIONS] == TASK_INFO
    assert sorted(d.replace("_", " ") for d in suite.QUALITY) == sorted(QUALITY_LIST)
    assert sorted(d.replace("_", " ") for d in suite.SEMANTIC) == sorted(SEMANTIC_LIST)
    for d in suite.DIMENSIONS:
        k = d.replace("_", " ")
        assert suite.NORMALIZE[d] == (NORMALIZE_DIC[k]["Min"], NORMALIZE_DIC[k]["Max"])
        assert suite.DIM_WEIGHT[d] == DIM_WEIGHT[k]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_dimensions_equal_cal_final_score(seed):
    rng = np.random.default_rng(seed)
    raw = {d: float(rng.uniform(0.0, 1.0)) for d in suite.DIMENSIONS}
    ref_in = {d.replace("_", " "): v for d, v in raw.items()}
    norm = ref_normalized(ref_in)
    q, s = ref_group(norm, QUALITY_LIST), ref_group(norm, SEMANTIC_LIST)
    got = suite.suite_scores({suite.metric_name(d): v for d, v in raw.items()})
    assert got.complete and got.missing == ()
    assert got.label.startswith("VBench Total (16/16")
    for d in suite.DIMENSIONS:
        assert got.normalized[d] == pytest.approx(norm[d.replace("_", " ")], abs=1e-15)
    assert got.quality == pytest.approx(q, abs=1e-15)
    assert got.semantic == pytest.approx(s, abs=1e-15)
    assert got.total == pytest.approx(ref_final(q, s), abs=1e-15)


def test_subset_is_labelled_and_uses_computed_dimensions_only():
    raw = {"subject_consistency": 0.95, "dynamic_degree": 0.4, "appearance_style": 0.2}
    got = suite.suite_scores(raw)
    keys_q = ["subject consistency", "dynamic degree"]
    norm = ref_normalized({k.replace("_", " "): v for k, v in raw.items()}, [*keys_q, "appearance style"])
    q = ref_group(norm, keys_q)
    s = ref_group(norm, ["appearance style"])
    assert got.quality == pytest.approx(q, abs=1e-15)  # dynamic degree counts 0.5 in the denominator too
    assert got.semantic == pytest.approx(s, abs=1e-15)
    assert got.total == pytest.approx(ref_final(q, s), abs=1e-15)
    assert not got.complete and len(got.missing) == 13 and "scene" in got.missing
    assert "subset (3/16" in got.label and "motion_smoothness" in got.label
    d = got.to_dict()
    assert d["missing_quality"] == [x for x in suite.QUALITY if x not in raw]
    json.dumps(d)


def test_no_semantic_dimension_means_no_total():
    got = suite.suite_scores({"temporal_flickering": 0.97})
    assert got.quality == pytest.approx((0.97 - 0.6293) / (1 - 0.6293))
    assert got.semantic is None and got.total is None


def test_unknown_dimension_is_an_error():
    with pytest.raises(KeyError, match="unknown VBench dimension"):
        suite.suite_scores({"vbench_sharpness": 0.5})


def _results(records, aggregates):
    return Results(aggregates=aggregates, records=records, entries=[], provenance={}, errors=[])


def _agg(name, outputs):
    return MetricAggregate(
        name, "multi_aspect", "video", "x", {o: OutputValue(v, 2, True) for o, v in outputs.items()}, 2, 0
    )


def test_run_values_by_name_frame_weighted_and_other_helpers_metrics():
    """The totals read any metric named vbench_<dimension> (e.g. the other helper's motion_smoothness); the
    consistency dimensions are frame-weighted with the _frames output, like VBench's sim / cnt."""
    sc, fr = "vbench_subject_consistency", "vbench_subject_consistency_frames"
    ms = "vbench_motion_smoothness"
    records = [
        VideoRecord("a", sc, sc, 0.9),
        VideoRecord("a", sc, fr, 15.0),
        VideoRecord("b", sc, sc, 0.6),
        VideoRecord("b", sc, fr, 5.0),
        VideoRecord("a", ms, ms, 0.99),
        VideoRecord("b", ms, ms, 0.97),
    ]
    aggs = {
        sc: _agg(sc, {sc: 0.75, fr: 10.0}),
        ms: _agg(ms, {ms: 0.98}),
        "clipsim": _agg("clipsim", {"clipsim": 0.3}),
    }
    res = _results(records, aggs)
    vals = suite.dimension_values(res)
    assert vals["subject_consistency"] == pytest.approx((0.9 * 15 + 0.6 * 5) / 20)
    assert vals["motion_smoothness"] == pytest.approx(0.98)
    scores = suite.results_suite_scores(res)
    assert scores is not None and scores.semantic is None
    d = res.to_dict()
    assert d["vbench"]["dimensions"]["motion_smoothness"]["raw"] == pytest.approx(0.98)
    assert math.isclose(d["vbench"]["quality_score"], scores.quality)


def test_failed_dimension_is_missing_and_runs_without_vbench_have_no_block():
    sc = "vbench_subject_consistency"
    agg = _agg(sc, {sc: 0.8})
    agg.error = "weights missing"
    res = _results([], {sc: agg})
    assert "subject_consistency" in suite.results_suite_scores(res).missing
    assert "vbench" not in _results([], {"clipsim": _agg("clipsim", {"clipsim": 0.3})}).to_dict()


def test_summary_prints_the_totals():
    from rich.console import Console

    from aigve.results.summary import print_summary

    ms = "vbench_motion_smoothness"
    res = _results([VideoRecord("a", ms, ms, 0.98)], {ms: _agg(ms, {ms: 0.98})})
    con = Console(record=True, width=200)
    print_summary(res, console=con)
    text = con.export_text()
    assert "VBench Total over a subset (1/16" in text and "Quality" in text
