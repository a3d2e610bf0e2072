"""``aigve compare --by`` says *why* a run cannot be grouped (field missing vs. no successful rows) and
``aigve correlate --human`` finds aigve's own ``video_id`` column without ``--id-column``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aigve.cli import main
from aigve.errors import DatasetError
from aigve.results.alignment import load_human_scores
from aigve.results.analysis import run_comparison
from aigve.results.records import MetricAggregate, OutputValue, Results
from aigve.results.writers import write_results
from aigve.types import Entry, VideoRecord
from tests.report.runs import synthetic_results

IDS = [f"v{i}" for i in range(8)]
DISTORTION = ["blur", "noise"] * 4


def _entries() -> list[Entry]:
    return [
        Entry(id=v, generated=Path(f"/nonexistent/{v}.mp4"), extra={"distortion": d})
        for v, d in zip(IDS, DISTORTION, strict=True)
    ]


def _all_failed() -> Results:
    """A per-video metric whose every video failed: the field exists, no row can be grouped."""
    records = [VideoRecord(v, "flicker", "flicker", None, "decode failed: truncated file") for v in IDS]
    agg = MetricAggregate(
        "flicker",
        "classic",
        "video",
        "none",
        {"flicker": OutputValue(None, 0, False)},
        n_videos=8,
        n_errors=8,
    )
    return Results({"flicker": agg}, records, _entries(), provenance={}, errors=[], dataset_name="failed")


def _set_only() -> Results:
    """Only a set-level metric (one value for the whole run): nothing per video to group."""
    agg = MetricAggregate(
        "fid", "distribution_based", "set", "efficientnet_lite0", {"fid": OutputValue(12.0, 8, False)},
        n_videos=8, n_errors=0, provenance={"sampling": "uniform,n=4,pad=none"},
    )  # fmt: skip
    records = [VideoRecord(v, "fid", "_dist", 1.0) for v in IDS]  # a diagnostic, left out of comparisons
    return Results({"fid": agg}, records, _entries(), provenance={}, errors=[], dataset_name="setonly")


@pytest.mark.parametrize(
    ("make", "reason"),
    [(_all_failed, "every per-video value failed"), (_set_only, "its metrics (fid) are set-level")],
)
def test_field_present_but_no_successful_rows(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError) as exc:
        run_comparison([("X", make())], by="distortion", n_resamples=50)
    msg = str(exc.value)
    assert "run 'X' has no successful rows for the dataset field 'distortion'" in msg, msg
    assert reason in msg and "has no dataset field" not in msg


def test_missing_field_keeps_its_message() -> None:
    res = synthetic_results({"flicker": np.arange(8.0)}, IDS, extra={"distortion": DISTORTION})
    with pytest.raises(
        DatasetError, match=r"run 'X' has no dataset field 'model' to group by \(fields: .*distortion"
    ):
        run_comparison([("X", res)], by="model", n_resamples=50)
    # and the field that exists groups fine
    tables = run_comparison([("X", res)], by="distortion", n_resamples=50, n_permutations=200)
    assert sorted(tables.groups) == ["blur", "noise"]


def test_compare_cli_says_no_successful_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_results(_all_failed(), tmp_path / "X")
    assert main(["compare", str(tmp_path / "X"), "--by", "distortion"]) != 0
    text = " ".join(capsys.readouterr().err.split())  # the console wraps long log lines
    assert "has no successful rows for the dataset field 'distortion'" in text, text
    assert "has no dataset field" not in text


def _run_dir(tmp_path: Path) -> tuple[Path, dict[str, float]]:
    rng = np.random.default_rng(3)
    vals = rng.normal(10.0, 2.0, len(IDS))
    write_results(synthetic_results({"motion": vals}, IDS, directions={"motion": True}), tmp_path / "run")
    return tmp_path / "run", dict(zip(IDS, vals, strict=True))


def test_correlate_detects_video_id_column(tmp_path: Path) -> None:
    run, vals = _run_dir(tmp_path)
    # scores in rank agreement with the metric: SRCC = 1 exactly (reference: the definition of Spearman)
    order = sorted(IDS, key=lambda v: vals[v])
    human = pd.DataFrame({"video_id": IDS, "overall": [order.index(v) + 1 for v in IDS]})
    human.to_csv(tmp_path / "scores.csv", index=False)
    out = tmp_path / "corr"
    args = [
        "correlate",
        str(run),
        "--human",
        str(tmp_path / "scores.csv"),
        "--out",
        str(out),
        "--bootstrap",
        "50",
    ]
    assert main(args) == 0
    corr = pd.read_csv(out / "alignment.csv")
    row = corr[(corr["metric"] == "motion") & (corr["aspect"] == "overall")].iloc[0]
    assert row["n"] == len(IDS) and row["srcc"] == pytest.approx(1.0, abs=1e-12)


def test_human_scores_id_column_order(tmp_path: Path) -> None:
    """``id`` still wins over ``video_id``; ``video_id`` over ``video_path_pd``; id columns are never scores."""
    p = tmp_path / "h.csv"
    pd.DataFrame({"video_id": ["a", "b"], "video_path_pd": ["x/c.mp4", "x/d.mp4"], "q": [1, 2]}).to_csv(
        p, index=False
    )
    h = load_human_scores(p)
    assert list(h.index) == ["a", "b"] and list(h.columns) == ["q"]
    pd.DataFrame({"id": [7, 8], "video_id": ["a", "b"], "q": [1, 2]}).to_csv(p, index=False)
    h = load_human_scores(p)
    assert list(h.index) == ["7", "8"] and list(h.columns) == [
        "q"
    ]  # numeric video_id-like columns not scores
    pd.DataFrame({"name": ["a"], "q": [1]}).to_csv(p, index=False)
    with pytest.raises(DatasetError, match="no 'id', 'video_id' or 'video_path_pd'"):
        load_human_scores(p)


def test_correlate_names_ignored_numeric_columns_and_takes_score_columns(tmp_path: Path) -> None:
    from aigve.results.alignment import human_scores_from_records

    rows = [{"video_id": f"v{i}", "quality": float(i), "consistency": float(5 - i)} for i in range(5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said in the report (attrs -> notes), not as a Python warning
        h = human_scores_from_records(rows)
    assert list(h.columns) == ["consistency"] and h.attrs["left_out_columns"] == ["quality"]
    assert "numeric columns left out: quality (choose with --score-columns)" in h.attrs["note"]
    h = human_scores_from_records(rows, score_columns=["quality", "consistency"])
    assert list(h.columns) == ["quality", "consistency"] and h.loc["v3", "quality"] == 3.0


def test_correlate_prints_the_columns_used_and_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, vals = _run_dir(tmp_path)
    rng = np.random.default_rng(0)
    human = pd.DataFrame(
        {"video_id": IDS, "overall": rng.integers(1, 6, len(IDS)), "duration": rng.normal(5, 1, len(IDS))}
    )
    human.to_csv(tmp_path / "scores.csv", index=False)
    args = ["correlate", str(run), "--human", str(tmp_path / "scores.csv"), "--out", str(tmp_path / "c")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert main([*args, "--bootstrap", "50"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "score columns used (the AIGVE-Bench aspects): overall; numeric columns left out: duration" in out
    assert "WARNING: fusion on fewer than 10 videos per metric" in out  # 8 videos, 1 metric
    assert "numeric columns left out: duration" in (tmp_path / "c" / "alignment.md").read_text()
