"""``aigve compare`` tells what the numbers support: the verdict follows the Holm-adjusted p, runs made
with different settings are refused (or marked), too few pairs to test is said, and the leaderboard
repeats the run's own CIs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aigve.cli import main
from aigve.errors import UsageError
from aigve.results import alignment, compare, stats
from aigve.results.analysis import run_comparison, settings_differences
from aigve.results.compare import min_attainable_p
from aigve.results.records import Results
from aigve.results.writers import write_results
from tests.report.runs import synthetic_results

HIB = {"m1": True, "m2": True, "m3": True}


def _pair(a: dict[str, np.ndarray], b: dict[str, np.ndarray], ids: list[str]) -> tuple[Results, Results]:
    return synthetic_results(a, ids, directions=HIB), synthetic_results(b, ids, directions=HIB)


def _holm_borderline() -> tuple[Results, Results]:
    """m1 has raw p < 0.05 but Holm p >= 0.05 over three metrics; m2, m3 show nothing."""
    n = 14
    ids = [f"v{i}" for i in range(n)]
    rng = np.random.default_rng(0)
    base = {m: rng.normal(0.5, 0.1, n) for m in HIB}
    d = np.full(n, 0.01)
    d[:6] = -0.003  # a modest, not overwhelming shift in m1: raw p about 0.03
    b = {"m1": base["m1"] + d, "m2": base["m2"] + rng.normal(0, 0.01, n), "m3": base["m3"][::-1].copy()}
    return _pair(base, b, ids)


def test_verdict_follows_the_holm_adjusted_p() -> None:
    ra, rb = _holm_borderline()
    t = run_comparison([("A", ra), ("B", rb)], n_resamples=200)
    row = t.comparisons.set_index("metric").loc["m1"]
    assert row["p_value"] < 0.05 <= row["p_holm"]  # the case of the issue
    assert row["significant"] and not row["significant_holm"]
    assert row["better"] is None  # not "b": the header promises Holm
    shown = t.comparisons_display()
    assert {"p (raw)", "p (Holm)", "significant (Holm, α=0.05)", "better (Holm)"} <= set(shown.columns)
    m1 = shown[shown["metric"].str.startswith("m1")].iloc[0]
    assert m1["significant (Holm, α=0.05)"] == "no" and m1["better (Holm)"] == ""
    assert "Holm-adjusted p-value" in t.to_markdown()


def _window(results: Results, max_len: int | None, sha: str = "abc", weights: str = "/a/w.pt") -> Results:
    for agg in results.aggregates.values():
        agg.provenance = {
            "options": {"device": "cpu"},
            "sampling": {"frames": {"protocol": "all", "n": None}},
            "extractors": {
                "frames": {"extractor": "net", "weights_sha256": sha, "options": {"weights": weights}}
            },
            "window": {"max_len": max_len, "max_seconds": None},
        }
    return results


def test_runs_with_different_settings_are_refused_or_marked(tmp_path: Path) -> None:
    ra, rb = _holm_borderline()
    _window(ra, None)
    _window(rb, 8)
    with pytest.raises(UsageError, match=r"(?s)m1 \(A vs B\): window\.max_len: null vs 8.*--allow-mismatch"):
        run_comparison([("A", ra), ("B", rb)], n_resamples=50)
    t = run_comparison([("A", ra), ("B", rb)], n_resamples=50, allow_mismatch=True)
    assert (t.comparisons["settings_differ"] == "window.max_len: null vs 8").all()
    assert any(n.startswith("WARNING: m1") for n in t.notes)
    md = t.to_markdown()
    assert "**WARNING: the runs were made with different settings for m1, m2, m3" in md
    assert "settings differ: window.max_len" in md
    # end to end: the CLI refuses (exit 2) and, on request, writes the warnings into the JSON
    write_results(ra, tmp_path / "A")
    write_results(rb, tmp_path / "B")
    assert main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--bootstrap", "50"]) == 2
    out = tmp_path / "c.json"
    args = ["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--bootstrap", "50", "--allow-mismatch"]
    assert main([*args, "--out", str(out)]) == 0
    obj = json.loads(out.read_text())
    assert {m["metric"] for m in obj["settings_mismatches"]} == {"m1", "m2", "m3"}
    assert all(r["settings_differ"] for r in obj["comparisons"])


def test_settings_that_do_not_change_numbers_are_not_a_mismatch() -> None:
    ra, rb = _holm_borderline()
    _window(ra, 8, weights="/home/a/w.pt")
    _window(rb, 8, weights="/home/b/w.pt")  # same weights hash, read from elsewhere
    rb.aggregates["m1"].provenance["options"]["device"] = "cuda"
    t = run_comparison([("A", ra), ("B", rb)], n_resamples=50)
    assert t.comparisons["settings_differ"].isna().all() and not t.mismatches
    rb = _window(rb, 8, sha="def", weights="/home/a/w.pt")
    other = settings_differences(ra.aggregates["m1"].provenance, rb.aggregates["m1"].provenance)
    assert other == ["extractors.frames.weights_sha256: abc vs def"]


def test_too_few_pairs_to_test_is_said_not_tabled(tmp_path: Path) -> None:
    ids = [f"v{i}" for i in range(4)]
    a = {"m1": np.array([0.1, 0.2, 0.3, 0.4])}
    ra, rb = _pair(a, {"m1": a["m1"] + 1.0}, ids)  # B better on every pair, as strongly as can be
    assert min_attainable_p(True, 4, 0, 0) == 0.125
    t = run_comparison([("A", ra), ("B", rb)], n_resamples=50)
    row = t.comparisons.iloc[0]
    assert row["p_value"] == pytest.approx(0.125) and not row["testable"] and t.untestable
    md = t.to_markdown()
    assert "No test in this table can reach significance at α = 0.05" in md and "0.125" in md
    assert "p (raw)" not in md and "better (Holm)" not in md  # no column of non-significant p-values
    assert any("with 4 pairs the smallest p" in n for n in t.notes)
    # with enough pairs the same data are tested as usual
    ids12 = [f"v{i}" for i in range(12)]
    x = np.linspace(0, 1, 12)
    t12 = run_comparison(list(zip("AB", _pair({"m1": x}, {"m1": x + 1}, ids12), strict=True)), n_resamples=50)
    assert not t12.untestable and t12.comparisons.iloc[0]["better"] == "b"


def test_min_attainable_p_matches_the_tests() -> None:
    for n in (2, 3, 5):
        d = np.ones(n)
        assert compare.sign_flip_pvalue(d) == pytest.approx(min_attainable_p(True, n, 0, 0))
    x, y = np.array([0.0, 0.1, 0.2]), np.array([5.0, 5.1, 5.2])
    p = compare.label_permutation_pvalue(x, y, n_permutations=20000, rng=1)
    assert p == pytest.approx(min_attainable_p(False, 0, 3, 3), abs=0.01)  # 2 / C(6, 3) = 0.1


def test_leaderboard_ci_is_the_run_ci() -> None:
    """A run's recorded CI and the leaderboard's are one bootstrap: the same helper and seed derivation,
    and a whole run's leaderboard cell repeats what the run recorded."""
    rng = np.random.default_rng(3)
    vals = rng.normal(10, 3, 30)
    ci = stats.mean_ci(vals, 300, 7, "m1", "m1")
    shuffled = stats.mean_ci(rng.permutation(vals), 300, 7, "m1", "m1")
    assert (ci.low, ci.high) == (shuffled.low, shuffled.high)  # order of the videos does not matter
    ids = [f"v{i}" for i in range(30)]
    ra, rb = _pair({"m1": vals}, {"m1": vals + 1}, ids)
    for r in (ra, rb):
        ov = r.aggregates["m1"].outputs["m1"]
        v = np.array([rec.value for rec in r.records])
        c = stats.mean_ci(v, 300, 7, "m1", "m1")
        ov.ci_low, ov.ci_high = c.low, c.high
    # by run: the recorded CI, whatever --bootstrap/--seed compare was given
    lb = run_comparison([("A", ra), ("B", rb)], n_resamples=50, seed=1).leaderboard.set_index("model")
    assert (lb.loc["A", "ci_low"], lb.loc["A", "ci_high"]) == (ci.low, ci.high)
    # no recorded CI: the same helper with the same seed gives the same numbers
    ra.aggregates["m1"].outputs["m1"].ci_low = None
    lb = run_comparison([("A", ra), ("B", rb)], n_resamples=300, seed=7).leaderboard.set_index("model")
    assert (lb.loc["A", "ci_low"], lb.loc["A", "ci_high"]) == (ci.low, ci.high)


def test_one_seeded_rng_helper() -> None:
    assert not hasattr(compare, "_cell_rng") and not hasattr(alignment, "_cell_rng")
    assert compare.cell_rng is stats.cell_rng and alignment.cell_rng is stats.cell_rng
