"""load_run: a finished run directory read back equals the Results that were written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aigve.errors import DatasetError, UsageError
from aigve.results.load import load_run, load_runs, run_labels
from aigve.results.writers import write_results
from tests.report.runs import small_dataset, synthetic_results


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    from aigve.api import evaluate

    root = tmp_path_factory.mktemp("load")
    ds = small_dataset(root / "videos", n=4)
    res = evaluate(ds, metrics=["flicker"], out_dir=root / "run", use_cache=False, bootstrap=100)
    return res, root / "run"


def test_round_trip_of_a_real_run(real_run: tuple[object, Path]) -> None:
    res, run_dir = real_run
    loaded = load_run(run_dir)
    written = json.loads((run_dir / "results.json").read_text())
    assert loaded.to_dict()["metrics"] == written["metrics"]
    assert loaded.dataset_name == res.dataset_name  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(loaded.per_video, res.per_video, check_dtype=False)  # type: ignore[attr-defined]
    ex = {e.id: dict(e.extra) for e in loaded.entries}
    orig = {e.id: dict(e.extra) for e in res.entries}  # type: ignore[attr-defined]
    assert ex == orig  # model and human-score fields survive
    assert all(e.generated.is_file() for e in loaded.entries)


def test_csv_fallback_matches_parquet(real_run: tuple[object, Path], tmp_path: Path) -> None:
    _, run_dir = real_run
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("results.json", "per_video.csv"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    a, b = load_run(run_dir), load_run(copy)
    va = a.per_video.sort_values(["video_id", "output"])["value"].to_numpy()
    vb = b.per_video.sort_values(["video_id", "output"])["value"].to_numpy()
    np.testing.assert_allclose(va, vb, rtol=1e-12)  # CSV keeps full float precision
    assert [e.extra["model"] for e in a.entries] == [e.extra["model"] for e in b.entries]


def test_errors_and_nan_values_survive(tmp_path: Path) -> None:
    res = synthetic_results({"flicker": np.array([1.0, 2.0, 3.0])}, ["a", "b", "c"])
    from aigve.types import VideoRecord

    res.records[1] = VideoRecord("b", "flicker", "flicker", None, "DecodeError: broken")
    write_results(res, tmp_path)
    back = load_run(tmp_path / "results.json")  # the results.json path works too
    rec = {r.video_id: r for r in back.records}
    assert rec["b"].value is None and rec["b"].error == "DecodeError: broken"
    assert rec["a"].value == 1.0 and rec["a"].error is None
    assert back.failed_videos == {"b"}


def test_bad_directories(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such run directory"):
        load_run(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no results.json"):
        load_run(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_run(tmp_path)
    (tmp_path / "results.json").write_text("[]")
    with pytest.raises(DatasetError, match="not an aigve results.json"):
        load_run(tmp_path)


def test_labels_are_distinct(tmp_path: Path) -> None:
    assert run_labels([tmp_path / "x" / "run", tmp_path / "y" / "run"]) == ["x/run", "y/run"]
    assert run_labels([tmp_path / "a", tmp_path / "b"]) == ["a", "b"]
    with pytest.raises(UsageError):
        load_runs([])
