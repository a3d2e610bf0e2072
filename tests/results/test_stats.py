"""Bootstrap CIs: coverage on simulated data with a known mean, BCa against scipy, edge cases, set metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg
from scipy import stats as sstats

from aigve.errors import UsageError
from aigve.results.stats import CI, bootstrap_ci, bootstrap_distribution, bootstrap_set_metric


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("dist", ["normal", "exponential"])
def test_coverage_near_nominal(dist: str, method: str) -> None:
    """95% intervals cover the true mean in [0.92, 0.98] of 400 simulated data sets (n=200).

    Monte Carlo sd of the coverage at 400 repetitions is ~0.011, so the band is ~±2.7 sd.
    """
    rng = np.random.default_rng(2024)
    true_mean = 2.0
    hits = 0
    for rep in range(400):
        x = rng.normal(true_mean, 3.0, size=200) if dist == "normal" else rng.exponential(true_mean, size=200)
        ci = bootstrap_ci(x, n_resamples=1000, seed=rep, method=method)
        hits += ci.contains(true_mean)
    coverage = hits / 400
    assert 0.92 <= coverage <= 0.98, coverage


def test_percentile_matches_formula() -> None:
    """The percentile bounds are the quantiles of the bootstrap means drawn from the same seed."""
    x = np.random.default_rng(0).normal(size=50)
    ci = bootstrap_ci(x, n_resamples=500, seed=7)
    idx = np.random.default_rng(7).integers(0, 50, size=(500, 50))
    boot = x[idx].mean(axis=1)
    assert ci.low == pytest.approx(np.quantile(boot, 0.025), abs=1e-12)
    assert ci.high == pytest.approx(np.quantile(boot, 0.975), abs=1e-12)
    assert ci.estimate == pytest.approx(x.mean(), abs=1e-15)
    assert ci.se == pytest.approx(boot.std(ddof=1), abs=1e-12)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_matches_scipy_bootstrap(method: str) -> None:
    """Same method as scipy.stats.bootstrap (different random draws): bounds agree to Monte Carlo error."""
    x = np.random.default_rng(3).exponential(size=80)
    ours = bootstrap_ci(x, n_resamples=20000, seed=1, method=method)
    ref = sstats.bootstrap((x,), np.mean, n_resamples=20000, method="BCa" if method == "bca" else "percentile",
                           random_state=np.random.default_rng(1)).confidence_interval  # fmt: skip
    width = ref.high - ref.low
    assert ours.low == pytest.approx(ref.low, abs=0.03 * width)
    assert ours.high == pytest.approx(ref.high, abs=0.03 * width)


def test_nan_excluded_and_counted() -> None:
    x = np.array([1.0, np.nan, 2.0, 3.0, np.nan, 4.0])
    ci = bootstrap_ci(x, n_resamples=200, seed=0)
    assert (ci.n, ci.n_nan, ci.estimate) == (4, 2, 2.5)
    assert ci.low is not None and ci.low <= ci.estimate <= ci.high


@pytest.mark.parametrize("values,n", [([], 0), ([np.nan], 0), ([5.0, np.nan], 1)])
def test_too_few_values(values: list[float], n: int) -> None:
    ci = bootstrap_ci(values, n_resamples=100)
    assert ci.low is None and ci.high is None and not ci.ok
    assert ci.n == n and "at least 2" in (ci.reason or "")
    assert ci.estimate == (5.0 if n == 1 else None)


def test_deterministic_and_seed_sensitive() -> None:
    x = np.random.default_rng(1).normal(size=100)
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    assert bootstrap_ci(x, seed=5).low != bootstrap_ci(x, seed=6).low


def test_chunking_does_not_change_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import aigve.results.stats as st

    x = np.random.default_rng(2).normal(size=300)
    # numpy draws the same stream however the index blocks are split, so chunking is invisible
    a = bootstrap_distribution(x, np.mean, 100, 4)
    monkeypatch.setattr(st, "_CHUNK_ELEMENTS", 300 * 7)
    b = bootstrap_distribution(x, np.mean, 100, 4)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


def test_non_vectorised_stat_matches_vectorised() -> None:
    """A stat without an ``axis`` argument is applied per resample and gives the same numbers."""
    x = np.random.default_rng(4).normal(size=60)
    vec = bootstrap_ci(x, np.median, n_resamples=300, seed=3, method="bca")
    loop = bootstrap_ci(x, lambda v: float(np.median(v)), n_resamples=300, seed=3, method="bca")
    assert vec.low == pytest.approx(loop.low, abs=1e-12) and vec.high == pytest.approx(loop.high, abs=1e-12)


def test_constant_values_give_degenerate_interval() -> None:
    for method in ("percentile", "bca"):
        ci = bootstrap_ci([3.0] * 10, method=method, n_resamples=200)
        assert (ci.low, ci.high, ci.estimate) == (3.0, 3.0, 3.0)


def test_bad_arguments() -> None:
    with pytest.raises(UsageError):
        bootstrap_ci([1.0, 2.0], n_resamples=0)
    with pytest.raises(UsageError):
        bootstrap_ci([1.0, 2.0], level=95)
    with pytest.raises(UsageError):
        bootstrap_ci([1.0, 2.0], method="studentized")  # type: ignore[arg-type]


def test_ci_to_dict_and_str() -> None:
    ci = bootstrap_ci([1.0, 2.0, 3.0], n_resamples=50)
    d = ci.to_dict()
    assert set(d) >= {"low", "high", "estimate", "n", "method", "n_resamples", "level", "n_nan", "reason"}
    assert "[" in str(ci)
    assert "no CI" in str(CI(None, None, None, n=0, method="percentile", n_resamples=1, reason="x"))


# --- set metrics --------------------------------------------------------------------------------


def _frechet(real: np.ndarray, fake: np.ndarray) -> float:
    """Reference Fréchet distance between Gaussian fits (pytorch-fid formula)."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def _mean_gap(real: np.ndarray, fake: np.ndarray) -> float:
    return float(fake.mean() - real.mean())


def test_set_metric_estimate_and_determinism() -> None:
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 4)), rng.normal(0.3, 1.0, size=(50, 4))
    ci = bootstrap_set_metric(_frechet, real, fake, n_resamples=100, seed=1)
    assert ci.estimate == pytest.approx(_frechet(real, fake), abs=1e-12)
    assert ci == bootstrap_set_metric(_frechet, real, fake, n_resamples=100, seed=1)
    assert ci.n == 50 and ci.ok and ci.bias is not None


def test_set_metric_fid_bias_and_centered_interval() -> None:
    """FID of resamples is larger than the full-set FID (duplicates); 'centered' re-centres the interval."""
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    pct = bootstrap_set_metric(_frechet, real, fake, n_resamples=200, seed=0)
    cen = bootstrap_set_metric(_frechet, real, fake, n_resamples=200, seed=0, method="centered")
    assert pct.bias > 0  # documented upward bias
    assert pct.low > pct.estimate  # the raw percentile interval misses the point estimate here
    assert cen.low <= cen.estimate <= cen.high
    assert (cen.high - cen.low) == pytest.approx(pct.high - pct.low, rel=1e-9)


def test_set_metric_resamples_whole_videos() -> None:
    """Per-video blocks of rows are resampled as units: a metric over frames sees whole videos."""
    rng = np.random.default_rng(2)
    real = [rng.normal(size=(k, 3)) for k in (2, 3, 4, 5)]
    fake = [np.full((k, 3), float(i)) for i, k in enumerate((1, 2, 3))]
    seen: list[int] = []

    def rows_per_value(r: np.ndarray, f: np.ndarray) -> float:
        vals, counts = np.unique(f[:, 0], return_counts=True)
        # each fake video i has i+1 rows, so every value's count is a multiple of its block size
        assert all(c % (int(v) + 1) == 0 for v, c in zip(vals, counts, strict=True))
        seen.append(r.shape[0])
        return float(f.mean() - r.mean())

    ci = bootstrap_set_metric(rows_per_value, real, fake, n_resamples=30, seed=0)
    assert ci.ok and len(seen) == 31 and seen[0] == 14


def test_set_metric_coverage_mean_gap() -> None:
    """For a smooth set statistic (difference of means) the interval covers the true gap at ~95%."""
    rng = np.random.default_rng(5)
    hits = 0
    for rep in range(200):
        real, fake = rng.normal(size=(80, 1)), rng.normal(0.5, 1.0, size=(80, 1))
        hits += bootstrap_set_metric(_mean_gap, real, fake, n_resamples=300, seed=rep).contains(0.5)
    assert 0.90 <= hits / 200 <= 0.99


def test_set_metric_paired_and_errors() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 2))
    paired = bootstrap_set_metric(_mean_gap, x, x + 1.0, n_resamples=50, seed=0, paired=True)
    assert paired.low == pytest.approx(1.0) and paired.high == pytest.approx(1.0)  # same rows on both sides
    with pytest.raises(UsageError):
        bootstrap_set_metric(_mean_gap, x, x[:10], paired=True)
    with pytest.raises(UsageError):
        bootstrap_set_metric(_mean_gap, x, x, method="bca")  # type: ignore[arg-type]
    tiny = bootstrap_set_metric(_mean_gap, x[:1], x, n_resamples=10)
    assert not tiny.ok and "at least 2" in (tiny.reason or "")
