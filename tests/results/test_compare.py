"""Paired/unpaired comparisons, leaderboards and table writers."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sstats

from aigve.errors import UsageError
from aigve.results.compare import (
    compare,
    compare_frames,
    compare_paired,
    compare_unpaired,
    holm,
    label_permutation_pvalue,
    leaderboard,
    leaderboard_wide,
    sign_flip_pvalue,
    to_json_records,
    to_markdown,
    write_table,
)


def _series(values: np.ndarray, prefix: str = "p") -> pd.Series:
    return pd.Series(values, index=[f"{prefix}{i}" for i in range(len(values))])


def test_same_data_twice_not_significant() -> None:
    """Two runs of the same data: not significant (p > 0.05) whatever the seed, no winner, diff 0."""
    x = _series(np.random.default_rng(0).normal(size=200))
    for seed in range(10):
        c = compare_paired(x, x.copy(), True, seed=seed)
        assert c.p_value > 0.05 and c.better is None and c.diff == 0.0


def test_null_false_positive_rate() -> None:
    """Under H0 (independent noise on the same prompts) about 5% of tests reject at alpha=0.05."""
    rng = np.random.default_rng(11)
    rejections = 0
    for seed in range(200):
        base = rng.normal(size=60)
        a, b = _series(base + rng.normal(size=60)), _series(base + rng.normal(size=60))
        rejections += (
            compare_paired(a, b, True, n_resamples=100, n_permutations=2000, seed=seed).p_value < 0.05
        )
    assert 0.01 <= rejections / 200 <= 0.10


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_planted_shift_detected_with_direction(higher_is_better: bool) -> None:
    """+0.5 sd on 200 pairs is significant; the better side follows the metric's direction."""
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        base = rng.normal(size=200)
        a = _series(base + rng.normal(size=200))
        b = _series(base + rng.normal(size=200) + 0.5 * np.sqrt(2))  # 0.5 sd of the paired difference
        c = compare_paired(a, b, higher_is_better, seed=seed)
        assert c.p_value < 0.05 and c.significant
        assert c.better == ("b" if higher_is_better else "a")
        # diff is b - a in the direction sense: positive when B is better
        assert (c.diff > 0) == higher_is_better
        assert c.ci.contains(c.diff) and not c.ci.contains(0.0)


def test_no_direction_gives_no_winner() -> None:
    a = _series(np.zeros(50))
    b = _series(np.ones(50) + np.random.default_rng(0).normal(scale=0.1, size=50))
    c = compare_paired(a, b, None)
    assert c.p_value < 0.05 and c.better is None and c.diff > 0


def test_paired_diff_and_ci_match_formula() -> None:
    rng = np.random.default_rng(1)
    a, b = _series(rng.normal(size=40)), _series(rng.normal(size=40))
    c = compare_paired(a, b, False, n_resamples=300, seed=3)
    d = -(b - a)
    assert c.diff == pytest.approx(d.mean(), abs=1e-14)
    assert c.mean_a == pytest.approx(a.mean()) and c.mean_b == pytest.approx(b.mean())
    assert c.ci.low < c.diff < c.ci.high and c.n_pairs == 40


def test_paired_alignment_nan_and_duplicates() -> None:
    """Only shared keys are paired; NaN dropped; duplicate keys (several videos per prompt) averaged."""
    a = pd.Series([1.0, 2.0, np.nan, 4.0, 9.0], index=["x", "y", "z", "w", "only_a"])
    b = pd.Series([2.0, 4.0, 5.0, 3.0, 5.0, 7.0], index=["x", "y", "y", "z", "w", "only_b"])
    c = compare_paired(a, b, True, n_resamples=50)
    # pairs: x (1 -> 2), y (2 -> mean(4,5)=4.5), w (4 -> 5); z dropped (NaN in a)
    assert c.n_pairs == 3
    assert c.diff == pytest.approx(np.mean([1.0, 2.5, 1.0]))


def test_sign_flip_exact_matches_enumeration_and_scipy() -> None:
    """Small n: exact enumeration equals scipy.stats.permutation_test (samples, exact)."""
    d = np.array([0.3, -0.1, 0.8, 0.5, 0.2, -0.4, 0.9, 0.05])
    ours = sign_flip_pvalue(d)
    brute = np.mean(
        [abs(np.dot(s, d)) / len(d) >= abs(d.mean()) - 1e-12 for s in product((1, -1), repeat=len(d))]
    )
    ref = sstats.permutation_test(
        (d,), np.mean, permutation_type="samples", alternative="two-sided", n_resamples=np.inf
    ).pvalue
    assert ours == pytest.approx(brute, abs=1e-15)
    assert ours == pytest.approx(ref, abs=1e-12)


def test_sign_flip_monte_carlo_close_to_scipy() -> None:
    d = np.random.default_rng(2).normal(0.15, 1.0, size=80)
    ours = sign_flip_pvalue(d, n_permutations=20000, rng=0)
    ref = sstats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=20000, random_state=np.random.default_rng(0)
    ).pvalue
    assert ours == pytest.approx(ref, abs=0.02)


def test_label_permutation_close_to_scipy() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=40), rng.normal(0.4, 1.0, size=50)
    ours = label_permutation_pvalue(x, y, n_permutations=20000, rng=0)

    def stat(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(v, axis=axis) - np.mean(u, axis=axis)

    ref = sstats.permutation_test(
        (x, y), stat, vectorized=True, n_resamples=20000, random_state=np.random.default_rng(0)
    ).pvalue
    assert ours == pytest.approx(ref, abs=0.02)


def test_unpaired() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=150), rng.normal(0.5, 1.0, size=120)
    c = compare_unpaired(a, b, True, seed=0)
    assert not c.paired and c.n_pairs == 0 and c.better == "b" and c.p_value < 0.05
    assert c.diff == pytest.approx(b.mean() - a.mean()) and c.ci.contains(c.diff)
    lower = compare_unpaired(a, b, False, seed=0)
    assert lower.better == "a" and lower.diff == pytest.approx(-c.diff)
    same = compare_unpaired(a, a.copy(), True, seed=0)
    assert same.p_value > 0.05 and same.better is None
    tiny = compare_unpaired([1.0], [2.0, 3.0])
    assert tiny.p_value is None and not tiny.ci.ok


def test_compare_falls_back_to_unpaired_without_shared_keys() -> None:
    rng = np.random.default_rng(5)
    a, b = _series(rng.normal(size=30), "a"), _series(rng.normal(size=30), "b")
    assert not compare(a, b).paired
    assert compare(a, _series(rng.normal(size=30), "a")).paired


def test_deterministic() -> None:
    rng = np.random.default_rng(6)
    a, b = _series(rng.normal(size=100)), _series(rng.normal(size=100))
    assert compare_paired(a, b, seed=3) == compare_paired(a, b, seed=3)


def test_holm() -> None:
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    # 2 x 0.5 = 1.0 (capped), then 0.9 is raised to the running max 1.0 (monotone adjusted p-values)
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2] and holm([]) == []


def _long(model_effects: dict[str, float], n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    rows = []
    for model, eff in model_effects.items():
        clip = base + eff + rng.normal(scale=0.5, size=n)
        err = 1.0 - eff + rng.normal(scale=0.5, size=n)  # lower is better
        for i in range(n):
            rows += [
                dict(model=model, metric="clip", value=clip[i], video_id=f"v{i}"),
                dict(model=model, metric="err", value=err[i], video_id=f"v{i}"),
            ]
    return pd.DataFrame(rows)


def test_compare_frames_two_runs() -> None:
    df = _long({"A": 0.0, "B": 0.6})
    fa, fb = df[df.model == "A"], df[df.model == "B"]
    out = compare_frames(fa, fb, {"clip": True, "err": False}, n_resamples=200)
    assert list(out["metric"]) == ["clip", "err"]
    assert (out["better"] == "b").all() and (out["diff"] > 0).all() and out["paired"].all()
    assert (out["p_holm"] >= out["p_value"]).all()
    same = compare_frames(fa, fa, {"clip": True, "err": False}, n_resamples=200)
    assert (same["p_value"] > 0.05).all() and same["better"].isna().all()
    with pytest.raises(UsageError, match="prompt"):
        compare_frames(fa, fb, {}, key="prompt")


def test_leaderboard_ranks_respect_direction() -> None:
    df = _long({"weak": 0.0, "mid": 0.5, "strong": 1.0})
    df = pd.concat([df, pd.DataFrame({"model": ["weak", "mid", "strong"], "metric": "fid",
                                      "value": [30.0, 20.0, 10.0], "ci_low": [25.0, np.nan, 8.0],
                                      "ci_high": [35.0, np.nan, 12.0]})])  # fmt: skip
    lb = leaderboard(df, {"clip": True, "err": False, "fid": False}, n_resamples=200)
    for metric in ("clip", "err", "fid"):
        ranks = lb[lb.metric == metric].set_index("model")["rank"]
        assert ranks.to_dict() == {"strong": 1, "mid": 2, "weak": 3}, metric
    clip = lb[lb.metric == "clip"].set_index("model")
    for model in ("weak", "mid", "strong"):
        vals = df[(df.model == model) & (df.metric == "clip")]["value"]
        assert clip.loc[model, "mean"] == pytest.approx(vals.mean())
        assert clip.loc[model, "ci_low"] < clip.loc[model, "mean"] < clip.loc[model, "ci_high"]
        assert clip.loc[model, "n"] == 80
    fid = lb[lb.metric == "fid"].set_index("model")
    assert fid.loc["strong", "ci_low"] == 8.0 and pd.isna(fid.loc["mid", "ci_low"])
    assert "single" in fid.loc["mid", "ci_reason"]
    wide = leaderboard_wide(lb)
    assert list(wide["model"]) == ["strong", "mid", "weak"]
    assert {"clip ↑", "err ↓", "fid ↓", "mean_rank"} <= set(wide.columns)


def test_leaderboard_flags_cis_from_fewer_than_five_videos_where_they_are_shown() -> None:
    """A per-video CI over 3 videos is marked in its cell and explained in the note; one over 6 is not; a
    set metric's CI keeps the caveat its run recorded."""
    from aigve.results.compare import leaderboard_caveat_note

    df = pd.DataFrame(
        {
            "model": ["few"] * 3 + ["many"] * 6,
            "metric": "clip",
            "value": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        }
    )
    fid = pd.DataFrame(
        {"model": ["few"], "metric": "fid", "value": [12.0], "ci_low": [10.0], "ci_high": [14.0],
         "ci_caveat": ["CI from only n = 2 video(s) (fewer than 5): ..."]}
    )  # fmt: skip
    lb = leaderboard(pd.concat([df, fid]), {"clip": True, "fid": False}, n_resamples=200)
    by = lb.set_index(["model", "metric"])["ci_caveat"]
    assert "n = 3" in by[("few", "clip")] and pd.isna(by[("many", "clip")])
    assert by[("few", "fid")].startswith("CI from only n = 2")
    wide = leaderboard_wide(lb).set_index("model")
    assert wide.loc["few", "clip ↑"].endswith("⚠ n<5") and "⚠" not in wide.loc["many", "clip ↑"]
    note = leaderboard_caveat_note(lb)
    assert note is not None and "few / clip (n = 3)" in note and "many" not in note


def test_leaderboard_no_direction_no_rank_and_ties() -> None:
    df = pd.DataFrame({"model": ["a", "b", "c"], "metric": "x", "value": [1.0, 1.0, 2.0]})
    lb = leaderboard(df, {"x": True})
    assert lb.set_index("model")["rank"].to_dict() == {"c": 1, "a": 2, "b": 2}
    lb2 = leaderboard(df, {})
    assert lb2["rank"].isna().all()


def test_markdown_table() -> None:
    df = pd.DataFrame({"name": ["a|b", "c"], "v": [1.23456, np.nan], "k": [1, 22]})
    md = to_markdown(df)
    lines = md.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].split("|")[1].strip() == "name"
    assert set(lines[1].replace("|", "").replace(" ", "")) <= {"-", ":"}
    assert lines[1].rstrip().endswith(":|") or lines[1].rstrip().endswith(": |")  # numbers right-aligned
    assert "a\\|b" in lines[2] and "1.235" in lines[2]
    assert lines[3].count("|") == 4  # NaN -> empty cell, structure kept
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_writers_roundtrip(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"model": ["a", "b"], "mean": [0.5, np.nan], "rank": pd.array([1, None], dtype="Int64")}
    )
    csv = write_table(df, tmp_path / "lb.csv")
    back = pd.read_csv(csv)
    assert back["mean"].iloc[0] == 0.5 and pd.isna(back["mean"].iloc[1])
    js = write_table(df, tmp_path / "lb.json")
    rec = json.loads(js.read_text())
    assert rec == [{"model": "a", "mean": 0.5, "rank": 1}, {"model": "b", "mean": None, "rank": None}]
    assert json.loads(to_json_records(df)) == rec
    md = write_table(df, tmp_path / "lb.md")
    assert md.read_text().startswith("| model |")
    with pytest.raises(UsageError, match="xlsx"):
        write_table(df, tmp_path / "lb.xlsx")


def test_markdown_separator_cells_are_valid_for_one_character_columns() -> None:
    md = to_markdown(pd.DataFrame({"n": [5, 7], "m": ["a", "b"]}))
    sep = md.splitlines()[1]
    cells = [c.strip() for c in sep.strip("|").split("|")]
    assert cells == ["--:", "---"]  # GitHub needs 3+ characters per separator cell


def test_mean_rank_uses_only_metrics_every_model_has() -> None:
    """A run with extra metrics must not climb the leaderboard by winning on metrics others lack."""
    df = pd.DataFrame(
        {
            "model": ["a", "b", "a", "a", "a"],
            "metric": ["shared", "shared", "only_a1", "only_a2", "only_a3"],
            "value": [1.0, 2.0, 5.0, 5.0, 5.0],
        }
    )
    lb = leaderboard(df, {"shared": True, "only_a1": True, "only_a2": True, "only_a3": True})
    wide = leaderboard_wide(lb).set_index("model")
    assert wide.loc["b", "mean_rank"] == 1 and wide.loc["a", "mean_rank"] == 2  # b is better on "shared"
    assert (wide["ranked_on"] == 1).all()
