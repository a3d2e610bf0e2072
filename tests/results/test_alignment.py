"""Human alignment: loading, correlations vs scipy, logistic fit, random baseline, cross-validated fusion."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sstats

import aigve.results.alignment as al
from aigve.errors import DatasetError, UsageError
from aigve.results.alignment import (
    AIGVE_ASPECTS,
    alignment_report,
    correlate,
    cross_validated_predictions,
    fit_logistic,
    fusion_srcc,
    human_scores_from_entries,
    load_human_scores,
    logistic4,
    metric_table,
    random_baseline,
)
from aigve.types import Entry


def _data(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics and 0-5 human scores with ties and missing values."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=n)
    ids = [f"vid{i:04d}" for i in range(n)]
    metrics = pd.DataFrame(
        {
            "monotone": np.exp(1.5 * q) + rng.normal(scale=0.2, size=n),
            "lower_better": -q + rng.normal(scale=0.8, size=n),
            "noise": rng.normal(size=n),
        },
        index=ids,
    )
    metrics.iloc[::17, 0] = np.nan
    human = pd.DataFrame(
        {
            "overall": np.clip(np.round(3 + q + rng.normal(scale=0.5, size=n)), 1, 5),
            "physics": np.clip(np.round(3 + rng.normal(size=n)), 1, 5),
        },
        index=ids,
    )
    human.iloc[::11, 1] = np.nan
    return metrics, human


def test_correlations_equal_scipy() -> None:
    """SRCC/PLCC/KRCC equal scipy.stats on the pairwise-complete data (ties and NaNs present), 1e-12."""
    metrics, human = _data()
    out = correlate(metrics, human.iloc[::-1], n_resamples=50, kendall_ci=False)  # order must not matter
    assert len(out) == 6
    for _, r in out.iterrows():
        x, y = metrics[r["metric"]], human[r["aspect"]]
        ok = x.notna() & y.notna()
        assert r["n"] == ok.sum()
        assert r["srcc"] == pytest.approx(sstats.spearmanr(x[ok], y[ok]).statistic, abs=1e-12)
        assert r["plcc_raw"] == pytest.approx(sstats.pearsonr(x[ok], y[ok]).statistic, abs=1e-12)
        assert r["krcc"] == pytest.approx(sstats.kendalltau(x[ok], y[ok]).statistic, abs=1e-12)


@pytest.mark.parametrize(
    "levels_x,levels_y",
    [(None, 5), (None, 3), (7, None), (None, None), (4, 6)],  # None = continuous
)
@pytest.mark.parametrize("independent", [False, True])
def test_bootstrap_correlations_match_scipy(
    levels_x: int | None, levels_y: int | None, independent: bool
) -> None:
    """The vectorised per-resample SRCC/PLCC/KRCC equal scipy on every resample (1e-12).

    Covers ties from the data and from duplicated draws, the contingency-table Kendall path (a
    variable with few levels, on either side) and its scipy fallback (both continuous), and
    separate index arrays for the two variables (used by the random baseline).
    """
    rng = np.random.default_rng(1)
    n = 45
    x = rng.normal(size=n) if levels_x is None else rng.integers(0, levels_x, size=n).astype(float)
    y = rng.normal(size=n) + x if levels_y is None else np.round(np.clip(x + rng.normal(size=n), -2, 2) + 3)
    if levels_y is not None:
        y = np.minimum(y, levels_y)
    idx = rng.integers(0, n, size=(30, n))
    idx_y = rng.permuted(np.broadcast_to(np.arange(n), (30, n)), axis=1) if independent else None
    jdx = idx if idx_y is None else idx_y
    sp = al._spearman_boot(x, y, idx, idx_y)
    kd = al._kendall_boot(x, y, idx, idx_y)
    pe = al._boot_rows(al._pearson_rows, x, y, idx, idx_y)
    sp_rank = al._spearman_rows(x[idx], y[jdx])
    for b, (i, j) in enumerate(zip(idx, jdx, strict=True)):
        assert sp[b] == pytest.approx(sstats.spearmanr(x[i], y[j]).statistic, abs=1e-12)
        assert sp_rank[b] == pytest.approx(sp[b], abs=1e-12)
        assert pe[b] == pytest.approx(sstats.pearsonr(x[i], y[j]).statistic, abs=1e-12)
        assert kd[b] == pytest.approx(sstats.kendalltau(x[i], y[j]).statistic, abs=1e-12)


def test_ci_contains_point_estimate_and_is_deterministic() -> None:
    metrics, human = _data()
    out = correlate(metrics, human, n_resamples=300, seed=3)
    for c in ("srcc", "plcc_raw", "plcc_logistic", "krcc"):
        assert (out[f"{c}_low"] <= out[c]).all() and (out[c] <= out[f"{c}_high"]).all(), c
        assert (out[f"{c}_high"] - out[f"{c}_low"] > 0).all()
    pd.testing.assert_frame_equal(out, correlate(metrics, human, n_resamples=300, seed=3))
    # a cell's draws depend on its names only: dropping another metric leaves it unchanged
    sub = correlate(metrics[["noise"]], human, n_resamples=300, seed=3)
    pd.testing.assert_frame_equal(
        sub.reset_index(drop=True), out[out.metric == "noise"].reset_index(drop=True), check_exact=True
    )


def test_direction_flips_sign() -> None:
    metrics, human = _data()
    raw = correlate(metrics, human, n_resamples=20, kendall_ci=False).set_index(["metric", "aspect"])
    flipped = correlate(metrics, human, n_resamples=20, directions={"lower_better": False}, kendall_ci=False)
    flipped = flipped.set_index(["metric", "aspect"])
    cell = ("lower_better", "overall")
    assert raw.loc[cell, "srcc"] < -0.5 and flipped.loc[cell, "sign"] == -1
    assert flipped.loc[cell, "srcc"] == pytest.approx(-raw.loc[cell, "srcc"], abs=1e-12)
    assert flipped.loc[("noise", "overall"), "srcc"] == raw.loc[("noise", "overall"), "srcc"]


def test_logistic_fit_recovers_reference_curve() -> None:
    """Noise-free data from the 4-parameter logistic: the fit gives back the curve (1e-6 on the values)."""
    x = np.linspace(-2.0, 6.0, 120)
    true = (4.5, 1.2, 2.0, 0.7)
    y = (true[0] - true[1]) / (1 + np.exp(-(x - true[2]) / abs(true[3]))) + true[1]  # reference formula
    fit = fit_logistic(x, y)
    assert fit.ok
    np.testing.assert_allclose(fit(x), y, atol=1e-6)
    np.testing.assert_allclose(fit.params, true, atol=1e-4)
    np.testing.assert_allclose(logistic4(x, *true), y, atol=1e-12)
    down = fit_logistic(x, y[::-1])  # decreasing relation
    assert down.ok and np.allclose(down(x), y[::-1], atol=1e-6)


def test_logistic_plcc_at_least_raw_on_monotone_nonlinear() -> None:
    rng = np.random.default_rng(4)
    n = 300
    x = rng.normal(size=n)
    human = pd.DataFrame({"s": 1 + 4 / (1 + np.exp(-3 * x)) + rng.normal(scale=0.2, size=n)})
    metrics = pd.DataFrame({"m": x, "m_exp": np.exp(2 * x)})
    out = correlate(metrics, human, n_resamples=100, kendall_ci=False).set_index("metric")
    for m in ("m", "m_exp"):
        assert out.loc[m, "plcc_logistic"] >= out.loc[m, "plcc_raw"]
    assert out.loc["m_exp", "plcc_logistic"] > out.loc["m_exp", "plcc_raw"] + 0.1
    assert out.loc["m_exp", "plcc_logistic"] > 0.9


def test_logistic_plcc_keeps_the_sign_of_a_negative_relation() -> None:
    """Humans score higher where the metric says worse: every column must read negative (the fitted
    logistic is decreasing, and its PLCC is signed like the raw one), also for a lower-is-better metric."""
    rng = np.random.default_rng(5)
    n = 200
    x = rng.normal(size=n)
    human = pd.DataFrame({"s": 3 - 2 * np.tanh(1.5 * x) + rng.normal(scale=0.6, size=n)})
    metrics = pd.DataFrame({"up": x, "down": -x})
    out = correlate(metrics, human, n_resamples=100, directions={"down": False}).set_index("metric")
    for m in ("up", "down"):  # "down" is lower-is-better: negated first, so it disagrees as "up" does
        r = out.loc[m]
        assert r["srcc"] < -0.3 and r["plcc_raw"] < -0.3 and r["krcc"] < -0.2
        assert r["plcc_logistic"] < -0.3, r
        assert r["plcc_logistic_low"] <= r["plcc_logistic"] <= r["plcc_logistic_high"] < 0
    # the magnitude is the fit's (at least the raw PLCC's on this curved relation)
    assert abs(out.loc["up", "plcc_logistic"]) >= abs(out.loc["up", "plcc_raw"]) - 1e-9


def test_logistic_failure_falls_back_to_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(al.optimize, "curve_fit", boom)
    metrics, human = _data(80)
    with pytest.warns(UserWarning, match="raw PLCC"):
        out = correlate(metrics[["noise"]], human[["overall"]], n_resamples=30, kendall_ci=False)
    r = out.iloc[0]
    assert r["plcc_logistic"] == r["plcc_raw"] and r["plcc_logistic_low"] == r["plcc_raw_low"]
    assert "raw PLCC" in r["note"]


def test_too_few_and_constant_cells() -> None:
    metrics = pd.DataFrame({"a": [1.0, 2.0, np.nan, np.nan], "c": [1.0, 1.0, 1.0, 1.0]}, index=list("wxyz"))
    human = pd.DataFrame({"h": [1.0, 2.0, 3.0, 4.0]}, index=list("wxyz"))
    out = correlate(metrics, human, n_resamples=10).set_index("metric")
    assert np.isnan(out.loc["a", "srcc"]) and "too few" in out.loc["a", "note"]
    assert np.isnan(out.loc["c", "srcc"]) and "constant" in out.loc["c", "note"]


def test_random_baseline_matches_null_distribution() -> None:
    """Mean ~0 and a 95% band close to ±1.96/sqrt(n-1), the null spread of a correlation."""
    _, human = _data(300)
    base = random_baseline(human, n_resamples=1000, seed=0).set_index("aspect")
    for aspect in ("overall", "physics"):
        n = base.loc[aspect, "n"]
        assert n == human[aspect].notna().sum()
        for c in ("srcc", "plcc"):
            assert abs(base.loc[aspect, f"{c}_mean"]) < 0.02
            half = (base.loc[aspect, f"{c}_high"] - base.loc[aspect, f"{c}_low"]) / 2
            assert half == pytest.approx(1.96 / np.sqrt(n - 1), rel=0.15)
        assert base.loc[aspect, "krcc_low"] < 0 < base.loc[aspect, "krcc_high"]
    pd.testing.assert_frame_equal(base, random_baseline(human, n_resamples=1000, seed=0).set_index("aspect"))


def _random_problem(n: int, k: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [str(i) for i in range(n)]
    x = pd.DataFrame(rng.normal(size=(n, k)), index=ids, columns=[f"m{j}" for j in range(k)])
    y = pd.DataFrame({"overall": rng.normal(size=n)}, index=ids)
    return x, y


def test_fusion_random_features_near_zero_no_leakage() -> None:
    """30 random features, n=300: cross-validated SRCC_reg ~0, while an in-sample fit would look good."""
    cv, insample = [], []
    for seed in range(6):
        x, y = _random_problem(300, 30, seed)
        out = fusion_srcc(x, y, folds=5, seed=seed, n_resamples=50)
        cv.append(out["srcc_reg"].iloc[0])
        beta = np.linalg.lstsq(np.c_[np.ones(300), x.to_numpy()], y["overall"].to_numpy(), rcond=None)[0]
        fitted = np.c_[np.ones(300), x.to_numpy()] @ beta
        insample.append(sstats.spearmanr(fitted, y["overall"]).statistic)
    assert abs(np.mean(cv)) < 0.15
    assert np.mean(insample) > 0.25  # what leakage would report


def test_fusion_informative_features_high() -> None:
    rng = np.random.default_rng(7)
    n = 300
    q = rng.normal(size=n)
    x = pd.DataFrame({"a": q + rng.normal(scale=0.5, size=n), "b": -q + rng.normal(scale=0.5, size=n),
                      "c": rng.normal(size=n)})  # fmt: skip
    x.iloc[::9, 0] = np.nan  # missing values are imputed from the training folds
    y = pd.DataFrame({"overall": q + rng.normal(scale=0.3, size=n)})
    out = fusion_srcc(x, y, n_resamples=100).iloc[0]
    single = max(abs(sstats.spearmanr(x[c], y["overall"], nan_policy="omit").statistic) for c in x)
    assert out["srcc_reg"] > 0.85 and out["srcc_reg"] > single
    assert out["srcc_reg_low"] <= out["srcc_reg"] <= out["srcc_reg_high"]
    assert out["n"] == n and out["n_metrics"] == 3 and "a=" in out["weights"]


def test_cross_validated_ols_matches_reference() -> None:
    """ridge=0: out-of-fold predictions equal a plain least-squares fit per fold (standardisation is invisible)."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -2.0]
    y = x @ [0.5, 0.05, 3.0] + rng.normal(size=60)
    pred = cross_validated_predictions(x, y, folds=4, seed=2, ridge=0.0)
    fold_of = np.empty(60, dtype=int)
    fold_of[np.random.default_rng(2).permutation(60)] = np.arange(60) % 4
    for f in range(4):
        tr, te = fold_of != f, fold_of == f
        beta = np.linalg.lstsq(np.c_[np.ones(tr.sum()), x[tr]], y[tr], rcond=None)[0]
        np.testing.assert_allclose(pred[te], np.c_[np.ones(te.sum()), x[te]] @ beta, atol=1e-9)


def test_cross_validation_ignores_held_out_labels() -> None:
    """Changing the held-out scores of one fold leaves that fold's predictions unchanged."""
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=50)
    pred = cross_validated_predictions(x, y, folds=5, seed=1)
    fold_of = np.empty(50, dtype=int)
    fold_of[np.random.default_rng(1).permutation(50)] = np.arange(50) % 5
    y2 = y.copy()
    y2[fold_of == 0] += 100.0
    pred2 = cross_validated_predictions(x, y2, folds=5, seed=1)
    np.testing.assert_array_equal(pred[fold_of == 0], pred2[fold_of == 0])
    assert not np.allclose(pred[fold_of != 0], pred2[fold_of != 0])


# --- loading --------------------------------------------------------------------------------------


def _bench_rows() -> list[dict[str, object]]:
    return [
        {
            "id": 1,
            "video_path_pd": "v/a.mp4",
            "model": "m1",
            "technical_quality": 4,
            "physics": 0,
            "overall": 3,
        },
        {
            "id": 2,
            "video_path_pd": "v/b.mp4",
            "model": "m2",
            "technical_quality": 0,
            "physics": 5,
            "overall": 2,
        },
        {
            "id": 3,
            "video_path_pd": "v/c.mp4",
            "model": "m1",
            "technical_quality": 2,
            "physics": 1,
            "overall": 0,
        },
    ]


def test_load_aigve_bench_json_zero_is_missing(tmp_path: Path) -> None:
    p = tmp_path / "bench.json"
    p.write_text(json.dumps({"metainfo": {}, "data_list": _bench_rows()}))
    h = load_human_scores(p)
    assert list(h.index) == ["1", "2", "3"] and h.index.name == "id"
    assert list(h.columns) == ["technical_quality", "physics", "overall"]  # 'model' and 'id' are not scores
    assert np.isnan(h.loc["1", "physics"]) and np.isnan(h.loc["2", "technical_quality"])
    assert h.loc["2", "physics"] == 5.0 and h.loc["3", "physics"] == 1.0
    assert h.notna().sum().sum() == 6
    # a bare list works too, and the id can come from the generated video's file stem
    p2 = tmp_path / "list.json"
    p2.write_text(json.dumps([{k: v for k, v in r.items() if k != "id"} for r in _bench_rows()]))
    assert list(load_human_scores(p2).index) == ["a", "b", "c"]
    assert list(load_human_scores(p, id_column="video_path_pd").index) == ["a", "b", "c"]


def test_load_generic_csv_keeps_zero(tmp_path: Path) -> None:
    p = tmp_path / "scores.csv"
    pd.DataFrame({"name": ["x", "y", "z"], "mos": [0.0, 2.5, 4.0], "label": ["a", "b", "c"]}).to_csv(
        p, index=False
    )
    with pytest.raises(DatasetError, match="--id-column"):
        load_human_scores(p)
    h = load_human_scores(p, id_column="name")
    assert list(h.columns) == ["mos"] and h.loc["x", "mos"] == 0.0  # 0 is a real score outside AIGVE-Bench
    h2 = load_human_scores(p, id_column="name", score_columns=["mos"])
    pd.testing.assert_frame_equal(h, h2)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_human_scores(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="bad.json"):
        load_human_scores(bad)
    nolist = tmp_path / "obj.json"
    nolist.write_text(json.dumps({"videos": []}))
    with pytest.raises(DatasetError, match="data_list"):
        load_human_scores(nolist)
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"id": ["a", "a"], "overall": [1, 2]}).to_csv(dup, index=False)
    with pytest.raises(DatasetError, match="duplicate"):
        load_human_scores(dup)
    other = tmp_path / "x.xlsx"
    other.write_text("")
    with pytest.raises(DatasetError, match="xlsx"):
        load_human_scores(other)
    with pytest.raises(DatasetError, match="nope"):
        load_human_scores(dup, id_column="nope")


def test_human_scores_from_dataset_extra_fields() -> None:
    entries = [
        Entry(
            id=f"e{i}",
            generated=Path(f"/v/e{i}.mp4"),
            extra={"model": "m", "overall": float(i % 5), "dynamic": 3},
        )
        for i in range(10)
    ]
    h = human_scores_from_entries(entries)
    assert list(h.columns) == ["dynamic", "overall"] == [a for a in AIGVE_ASPECTS if a in h.columns]
    assert h["overall"].isna().sum() == 2  # the 0s
    with pytest.raises(DatasetError, match="--human"):
        human_scores_from_entries([Entry(id="x", generated=Path("x.mp4"))])


def test_metric_table_and_alignment_by_stem() -> None:
    records = pd.DataFrame(
        [
            {"video_id": "a", "metric": "clip", "output": "clip", "value": 0.3},
            {"video_id": "a", "metric": "dover", "output": "technical", "value": 0.7},
            {"video_id": "b", "metric": "clip", "output": "clip", "value": 0.5},
            {"video_id": "b", "metric": "dover", "output": "technical", "value": None},
        ]
    )
    wide = metric_table(records)
    assert list(wide.columns) == ["clip", "dover.technical"] and list(wide.index) == ["a", "b"]
    assert np.isnan(wide.loc["b", "dover.technical"])
    human = pd.DataFrame({"overall": [1.0, 2.0]}, index=["dir/a.mp4", "dir/b.mp4"])
    with pytest.warns(UserWarning, match="stem"):
        m, h = al._align(wide, human)
    assert list(m.index) == list(h.index) == ["a", "b"]
    with pytest.raises(UsageError, match="--id-column"):
        al._align(wide, pd.DataFrame({"overall": [1.0]}, index=["zzz"]))


def test_report_written_as_csv_and_markdown(tmp_path: Path) -> None:
    metrics, human = _data(120)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warnings on ordinary data
        rep = alignment_report(metrics, human, n_resamples=100, seed=0, directions={"lower_better": False})
    paths = rep.write(tmp_path / "out")
    assert [p.name for p in paths] == [
        "alignment.csv",
        "alignment_baseline.csv",
        "alignment_fusion.csv",
        "alignment.md",
    ]
    back = pd.read_csv(paths[0])
    assert len(back) == 6 and {"srcc", "srcc_low", "srcc_high", "plcc_logistic", "krcc"} <= set(back.columns)
    np.testing.assert_allclose(back["srcc"], rep.correlations["srcc"], atol=1e-12)
    md = paths[3].read_text()
    assert md.count("## ") == 3 and "| metric" in md and "SRCC_reg" in md and "lower_better" in md
    assert rep.correlations.set_index(["metric", "aspect"]).loc[("lower_better", "overall"), "srcc"] > 0.5


def test_fusion_leaves_out_duplicate_outputs_and_warns_on_few_videos() -> None:
    """flicker.flicker_vbench is a linear rescaling of flicker: fused together they get opposite
    weights (+w/-w) and add nothing; the fusion keeps the primary and says what it left out."""
    from aigve.results.alignment import alignment_report, drop_duplicate_outputs

    rng = np.random.default_rng(6)
    n = 25
    flicker = rng.gamma(2.0, 4.0, n)
    m = pd.DataFrame(
        {
            "flicker.flicker_vbench": 1 - flicker / 255,  # first, to check that the primary is kept
            "flicker": flicker,
            "motion": rng.normal(size=n),
            "motion.motion_norm": np.exp(rng.normal(size=n)),  # not a duplicate: kept
        },
        index=[f"v{i}" for i in range(n)],
    )
    human = pd.DataFrame({"overall": -flicker + rng.normal(scale=3, size=n)}, index=m.index)
    kept, dropped = drop_duplicate_outputs(m)
    assert list(kept.columns) == ["flicker", "motion", "motion.motion_norm"]
    assert [(c, k) for c, k, _ in dropped] == [("flicker.flicker_vbench", "flicker")]
    assert dropped[0][2] == pytest.approx(-1.0)
    fus = fusion_srcc(m, human, n_resamples=50).iloc[0]
    assert "flicker_vbench" not in fus["weights"] and fus["n_metrics"] == 3
    assert fus["left_out"].startswith("flicker.flicker_vbench (duplicates flicker, r = -1.000)")
    assert "25 videos for 3 metrics" in fus["note"]  # 25 < 10 x 3
    rep = alignment_report(m, human, n_resamples=50, kendall_ci=False)
    md = rep.to_markdown()
    assert "fusion leaves out outputs that repeat another of the same metric: flicker.flicker_vbench" in md
    assert "WARNING: fusion on fewer than 10 videos per metric (3 metrics): overall (25 videos)" in md
    assert fusion_srcc(m.iloc[:, 1:3], human, n_resamples=20).iloc[0]["note"] == ""  # 25 >= 10 x 2
