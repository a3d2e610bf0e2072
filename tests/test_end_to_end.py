"""The main job end to end: the offline suite on the built-in demo and toy datasets, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aigve.cli import main
from aigve.metrics.catalog import get_metric_class


@pytest.mark.slow
def test_demo_offline_suite_ranks_distortions(tmp_path: Path) -> None:
    """The distorted demo videos score worse than the clean ones on the metric made to see each distortion."""
    out = tmp_path / "demo"
    code = main(
        ["run", "demo", "--suite", "offline", "--max-len", "16", "--out", str(out), "--quiet", "--no-report"]
    )
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["metrics"]) == {"flicker", "freeze", "motion", "niqe", "frame_consistency", "blur_effect"}
    assert res["n_videos"] == 24 and res["n_failed_videos"] == 0
    df = pd.read_csv(out / "per_video.csv")
    prim = df[df.metric == df.output]
    by = prim.pivot_table(index="distortion", columns="metric", values="value", aggfunc="mean")
    clean = by.loc["clean"]
    assert by.loc["flicker", "flicker"] > 2 * clean["flicker"]  # brightness jumps between frames
    assert by.loc["noise", "niqe"] > clean["niqe"] + 1  # noise worsens naturalness
    assert by.loc["frozen", "motion"] < 0.05 * clean["motion"]  # no motion at all
    assert by.loc["shuffled", "frame_consistency"] < clean["frame_consistency"]  # content jumps
    assert by.loc["shuffled", "flicker"] > clean["flicker"]
    assert by.loc["blur", "blur_effect"] > clean["blur_effect"] + 0.05  # re-blurring removes less detail
    # each distortion is the worst of all six on at least one offline metric that has a direction
    directions = {m: get_metric_class(m).spec.higher_is_better for m in by.columns}
    worst_on: dict[str, list[str]] = {d: [] for d in by.index}
    for metric, higher in directions.items():
        if higher is not None:
            worst_on[str(by[metric].idxmin() if higher else by[metric].idxmax())].append(metric)
    assert worst_on["blur"] == ["blur_effect"] and "niqe" in worst_on["noise"]
    assert "flicker" in worst_on["flicker"] and "frame_consistency" in worst_on["shuffled"]
    assert worst_on["frozen"] == ["freeze"], worst_on  # a still picture: nothing else sees it
    assert all(worst_on[d] for d in by.index if d != "clean"), worst_on
    assert worst_on["clean"] == [], worst_on  # and the clean clips are worst on nothing
    assert by.loc["frozen", "freeze"] > 0.8 and by.drop(index="frozen")["freeze"].max() == 0
    # `motion` (a diagnostic without a direction) shows them too: the least motion of all six
    assert directions["motion"] is None and by["motion"].idxmin() == "frozen"
    # every score carries its provenance
    for m in res["metrics"].values():
        assert m["provenance"]["extractors"] and m["provenance"]["window"]["max_len"] == 16


def test_toy_dataset_by_name(toy_dir: Path, tmp_path: Path) -> None:
    """`aigve run toy` finds the local copy (AIGVE_TOY_DIR), verifies it and evaluates all 11 clips."""
    out = tmp_path / "toy"
    code = main(["run", "toy", "--metrics", "flicker,motion", "--out", str(out), "--quiet", "--no-report"])
    assert code == 0
    df = pd.read_csv(out / "per_video.csv")
    assert df.video_id.nunique() == 11 and df.error.isna().all()
    assert df.prompt.str.startswith("A beautiful coastal beach").all()
    compat = json.loads((out / "flicker_results.json").read_text())
    assert len(compat["video_results"]) == 11 and compat["FLICKER_Mean_Score"] > 0
