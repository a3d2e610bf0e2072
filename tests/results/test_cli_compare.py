"""``aigve compare`` and ``aigve correlate`` end to end on run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aigve.cli import main
from aigve.results.writers import write_results
from tests.report.runs import small_dataset, synthetic_results

N = 40


@pytest.fixture(scope="module")
def same_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real runs of the same videos."""
    from aigve.api import evaluate

    root = tmp_path_factory.mktemp("same")
    ds = small_dataset(root / "videos", n=6)
    for name in ("a", "b"):
        evaluate(ds, metrics=["flicker", "motion"], out_dir=root / name, use_cache=False, bootstrap=100)
    return root / "a", root / "b"


def _planted(tmp_path: Path, shift: float) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    ids = [f"v{i}" for i in range(N)]
    a = rng.normal(20.0, 4.0, N)
    b = a - shift + rng.normal(0.0, 0.5, N)  # lower flicker in B: B is better
    motion = rng.normal(3.0, 1.0, N)
    ra = synthetic_results({"flicker": a, "motion": motion}, ids)
    rb = synthetic_results({"flicker": b, "motion": motion + rng.normal(0, 1e-3, N)}, ids)
    write_results(ra, tmp_path / "A")
    write_results(rb, tmp_path / "B")
    return tmp_path / "A", tmp_path / "B", a, b


def test_same_data_shows_no_difference(same_runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = same_runs
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(a), str(b), "--out", str(out), "--all-outputs", "--bootstrap", "200"]) == 0
    pairs = pd.read_csv(tmp_path / "cmp_pairs.csv")
    assert set(pairs["metric"]) == {"flicker", "flicker.flicker_vbench", "motion", "motion.motion_norm"}
    assert (pairs["p_value"] >= 0.05).all() and not pairs["significant"].any()
    assert np.allclose(pairs["diff"], 0.0, atol=1e-12) and (pairs["n_pairs"] == 6).all()
    lb = pd.read_csv(out)
    assert set(lb["model"]) == {"a", "b"}


def test_planted_shift_is_found_with_the_catalogue_direction(tmp_path: Path) -> None:
    a_dir, b_dir, a, b = _planted(tmp_path, shift=1.5)
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(a_dir), str(b_dir), "--out", str(out), "--bootstrap", "500"]) == 0
    pairs = pd.read_csv(tmp_path / "cmp_pairs.csv").set_index("metric")
    f = pairs.loc["flicker"]
    # flicker is lower-is-better in the catalogue: diff = mean(a) - mean(b) > 0 means B better
    assert f["diff"] == pytest.approx(float(np.mean(a - b)), rel=1e-12)
    assert f["higher_is_better"] == False  # noqa: E712 - read back from csv
    assert f["p_value"] < 0.001 and f["better"] == "b" and f["ci_low"] > 0
    assert pairs.loc["motion", "better"] is np.nan or pd.isna(pairs.loc["motion", "better"])  # no direction
    lb = pd.read_csv(out)
    best = lb[(lb["metric"] == "flicker") & (lb["rank"] == 1)]["model"].tolist()
    assert best == ["B"]


def test_no_shift_is_not_significant(tmp_path: Path) -> None:
    a_dir, b_dir, _, _ = _planted(tmp_path, shift=0.0)
    out = tmp_path / "cmp.json"
    assert main(["compare", str(a_dir), str(b_dir), "--out", str(out), "--bootstrap", "200"]) == 0
    obj = json.loads(out.read_text())
    flick = next(r for r in obj["comparisons"] if r["metric"] == "flicker")
    assert flick["p_value"] > 0.05 and flick["better"] is None
    assert flick["ci_low"] < 0 < flick["ci_high"]


def test_by_model_pairs_on_prompts(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(0.5, 0.1, N)
    vals = np.concatenate([base, base + 0.05 + rng.normal(0, 0.01, N)])  # model m2 scores higher
    ids = [f"m1_{i}" for i in range(N)] + [f"m2_{i}" for i in range(N)]
    prompts = [f"p{i}" for i in range(N)] * 2
    res = synthetic_results(
        {"clipsim_like": vals}, ids, extra={"model": ["m1"] * N + ["m2"] * N}, prompts=prompts,
        directions={"clipsim_like": True},
    )  # fmt: skip
    write_results(res, tmp_path / "run")
    out = tmp_path / "cmp.md"
    assert (
        main(["compare", str(tmp_path / "run"), "--by", "model", "--out", str(out), "--bootstrap", "200"])
        == 0
    )
    md = out.read_text()
    assert "Comparison of 2 groups of 'model': m1, m2" in md and "Paired on `prompt`" in md
    from aigve.results.analysis import run_comparison

    t = run_comparison([("run", res)], by="model", n_resamples=200)
    row = t.comparisons.iloc[0]
    assert (
        row["paired"] and row["n_pairs"] == N and row["better"] == "b"
    )  # direction from the run (not in catalogue)
    assert row["diff"] == pytest.approx(float(np.mean(vals[N:] - vals[:N])), rel=1e-12)


def test_usage_errors(tmp_path: Path, same_runs: tuple[Path, Path]) -> None:
    a, b = same_runs
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "x.txt")]) == 2
    assert main(["compare", str(a)]) == 2  # one run and no --by
    assert main(["compare", str(a), "--by", "nonexistent_field"]) == 2
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2


def _bench_json(path: Path, ids: list[str], overall: list[int]) -> Path:
    """AIGVE-Bench-like annotations: ``id`` is a prompt id shared by the models' videos."""
    data = {
        "metainfo": {},
        "data_list": [
            {
                "id": vid.split("_")[1],
                "video_path_pd": f"{vid}.mp4",
                "model": vid.split("_")[0],
                "overall": o,
                "physics": 0,
            }  # 0 = not applicable
            for vid, o in zip(ids, overall, strict=True)
        ],  # fmt: skip
    }
    path.write_text(json.dumps(data))
    return path


def test_correlate_matches_aigve_bench_by_video_stem(same_runs: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = same_runs
    from aigve.results.load import load_run

    res = load_run(run)
    flick = {r.video_id: r.value for r in res.records if r.output == "flicker"}
    ids = sorted(flick)
    # humans prefer less flicker: rank-agreeing scores (1..6), so SRCC of -flicker with them is 1
    order = sorted(ids, key=lambda v: -flick[v])
    overall = [order.index(v) + 1 for v in ids]
    human = _bench_json(tmp_path / "bench.json", ids, overall)
    out = tmp_path / "corr"
    assert main(["correlate", str(run), "--human", str(human), "--out", str(out), "--bootstrap", "200"]) == 0
    corr = pd.read_csv(out / "alignment.csv")
    row = corr[(corr["metric"] == "flicker") & (corr["aspect"] == "overall")].iloc[0]
    assert row["n"] == 6 and row["sign"] == -1 and row["srcc"] == pytest.approx(1.0)
    assert "physics" not in set(corr["aspect"]) or corr.loc[corr["aspect"] == "physics", "n"].eq(0).all()
    assert (out / "alignment.md").is_file() and (out / "alignment_fusion.csv").is_file()
    assert (out / "alignment_srcc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_correlate_uses_scores_in_the_dataset(same_runs: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = same_runs
    assert main(["correlate", str(run), "--out", str(tmp_path), "--bootstrap", "100"]) == 0
    corr = pd.read_csv(tmp_path / "alignment.csv")
    assert set(corr["aspect"]) == {"overall", "technical_quality"} and (corr["n"] == 6).all()


def test_run_ci_is_the_shared_mean_ci(same_runs: tuple[Path, Path]) -> None:
    """The engine's per-video aggregate CI is results.stats.mean_ci with the run's seed: the helper the
    leaderboard uses, so both report one bootstrap."""
    from aigve.results.analysis import long_table, run_comparison
    from aigve.results.load import load_run
    from aigve.results.stats import mean_ci

    res = load_run(same_runs[0])
    ov = res.aggregates["flicker"].outputs["flicker"]
    vals = long_table(res).query("metric == 'flicker'")["value"].to_numpy()
    ci = mean_ci(vals, 100, 0, "flicker", "flicker")
    assert (ov.ci_low, ov.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    lb = run_comparison([("a", res), ("b", load_run(same_runs[1]))], n_resamples=100).leaderboard
    row = lb[(lb["model"] == "a") & (lb["metric"] == "flicker")].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
