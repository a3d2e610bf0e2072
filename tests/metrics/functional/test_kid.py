"""KID against torch-fidelity 0.4.0 and torchmetrics on the same features and the same subset indices.

Per-subset MMD² agrees to 1e-10 relative (both computed in float64); whole-run mean/std agree to 1e-10
when driven with the references' own subset indices, and within sampling noise with our own seeded ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigve.errors import UsageError
from aigve.metrics.functional.kid import kid, kid_subset_indices, mmd2_unbiased_poly

tf_kid = pytest.importorskip("torch_fidelity.metric_kid", reason="torch-fidelity==0.4.0 is a reference")
tm_kid = pytest.importorskip("torchmetrics.image.kid", reason="torchmetrics is a reference")


def feats(rng: np.random.Generator, n: int, d: int = 32, shift: float = 0.0) -> np.ndarray:
    return np.maximum(rng.standard_normal((n, d)) + 0.3 + shift, 0.0)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return feats(rng, 300), feats(rng, 260, shift=0.2)


def test_per_subset_mmd_matches_references(pair) -> None:
    x, y = pair[0][:100], pair[1][:100]
    ours = mmd2_unbiased_poly(x, y)
    ref_tf = tf_kid.kernel_mmd(x, y)  # numpy float64; torch-fidelity default kernel: poly, d=3, γ=1/D, c=1
    ref_tm = float(tm_kid.poly_mmd(torch.from_numpy(x), torch.from_numpy(y)))
    assert ours == pytest.approx(ref_tf, rel=1e-10)
    assert ours == pytest.approx(ref_tm, rel=1e-10)
    # non-default kernel parameters
    ours2 = mmd2_unbiased_poly(x, y, degree=2, gamma=0.5, coef0=0.25)
    ref2 = tf_kid.kernel_mmd(
        x, y, kid_kernel_poly_degree=2, kid_kernel_poly_gamma=0.5, kid_kernel_poly_coef0=0.25
    )
    assert ours2 == pytest.approx(ref2, rel=1e-10)


def test_whole_run_matches_torch_fidelity_on_its_indices(pair) -> None:
    x, y = pair
    size, subsets, seed = 50, 20, 2020
    ref = tf_kid.kid_features_to_metric(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=subsets, kid_subset_size=size, rng_seed=seed
    )
    # torch-fidelity's sampling: RandomState(seed), per subset choice(real) then choice(fake), no replacement
    rs = np.random.RandomState(seed)
    vals = []
    for _ in range(subsets):
        ir = rs.choice(len(x), size, replace=False)
        ifk = rs.choice(len(y), size, replace=False)
        vals.append(mmd2_unbiased_poly(x[ir], y[ifk]))
    assert np.mean(vals) == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-10)
    assert np.std(vals) == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-8)  # ddof=0


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save:UserWarning")
def test_whole_run_matches_torchmetrics_on_its_indices(pair) -> None:
    x, y = pair
    size, subsets = 50, 20
    metric = tm_kid.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=subsets, subset_size=size)
    metric.update(torch.from_numpy(x), real=True)
    metric.update(torch.from_numpy(y), real=False)
    torch.manual_seed(7)
    ref_mean, ref_std = metric.compute()
    torch.manual_seed(7)  # torchmetrics: randperm(real)[:m], then randperm(fake)[:m], per subset
    vals = []
    for _ in range(subsets):
        ir = torch.randperm(len(x))[:size].numpy()
        ifk = torch.randperm(len(y))[:size].numpy()
        vals.append(mmd2_unbiased_poly(x[ir], y[ifk]))
    assert np.mean(vals) == pytest.approx(float(ref_mean), rel=1e-10)
    assert np.std(vals) == pytest.approx(float(ref_std), rel=1e-8)


def test_own_sampling_agrees_within_noise(pair) -> None:
    x, y = pair
    ours = kid(x, y, subset_size=100, subsets=100, seed=0)
    ref = tf_kid.kid_features_to_metric(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=100, kid_subset_size=100, rng_seed=1
    )
    se = ours.std * np.sqrt(2.0 / 100)  # two independent means of 100 subsets each
    assert abs(ours.mean - ref["kernel_inception_distance_mean"]) < 5 * se
    assert ours.mean > 5 * se  # and the shift between the two sets is detected


def test_gram_precompute_equals_direct(pair) -> None:
    x, y = pair
    a = kid(x, y, subset_size=40, subsets=10, precompute_gram=True)
    b = kid(x, y, subset_size=40, subsets=10, precompute_gram=False)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-9, atol=1e-12)
    # torch tensor inputs, and the torch path used on CUDA (here on the CPU), give the same values
    c = kid(torch.from_numpy(x), torch.from_numpy(y), subset_size=40, subsets=10)
    np.testing.assert_allclose(c.values, a.values, rtol=1e-9, atol=1e-12)
    for pre in (True, False):
        t = kid(x, y, subset_size=40, subsets=10, device="cpu", precompute_gram=pre)
        np.testing.assert_allclose(t.values, a.values, rtol=1e-9, atol=1e-12)
    assert mmd2_unbiased_poly(x[:40], y[:40], device="cpu") == pytest.approx(
        mmd2_unbiased_poly(x[:40], y[:40]), rel=1e-10
    )


def test_deterministic_and_seeded(pair) -> None:
    x, y = pair
    a = kid(x, y, subset_size=50, subsets=10, seed=3)
    assert a == kid(x, y, subset_size=50, subsets=10, seed=3)
    assert a.values != kid(x, y, subset_size=50, subsets=10, seed=4).values
    assert a.subset_size == 50 and a.subsets == 10 and len(a.values) == 10 and a.warnings == ()


def test_unbiased_mean_zero_on_one_distribution() -> None:
    # 300 independent pairs of samples of one distribution: E[MMD²_u] = 0, so the mean is within 3 SE
    rng = np.random.default_rng(11)
    vals = np.array([mmd2_unbiased_poly(feats(rng, 40, 8), feats(rng, 40, 8)) for _ in range(300)])
    se = vals.std(ddof=1) / np.sqrt(len(vals))
    assert abs(vals.mean()) < 3 * se
    # the biased (V-statistic) estimator on the same kind of data is clearly positive: the test has power
    rng = np.random.default_rng(11)
    biased = []
    for _ in range(300):
        a, b = feats(rng, 40, 8), feats(rng, 40, 8)
        biased.append(
            tf_kid.mmd2(*(tf_kid.kernel_poly(p, q) for p, q in ((a, a), (a, b), (b, b))), mmd_est="biased")
        )
    assert np.mean(biased) > 3 * np.std(biased, ddof=1) / np.sqrt(300)
    # and one kid() run on two samples of one distribution
    r = kid(feats(rng, 400, 8), feats(rng, 400, 8), subset_size=100, subsets=50)
    assert abs(r.mean) < 3 * r.std


def test_small_sets_shrink_subset_without_replacement(pair) -> None:
    x, y = pair
    r = kid(x, y[:80], subset_size=1000, subsets=5)
    assert r.subset_size == 80
    assert len(r.warnings) == 1 and "subset_size=80 without replacement" in r.warnings[0]
    for ir, ifk in kid_subset_indices(300, 80, 80, 5, seed=0):
        assert len(set(ir.tolist())) == 80 and len(set(ifk.tolist())) == 80
    whole = kid(x[:60], y[:60], subset_size=60, subsets=3)
    assert whole.std == pytest.approx(0.0, abs=1e-12) and "std=0" in whole.warnings[0]


def test_usage_errors(pair) -> None:
    x, y = pair
    with pytest.raises(UsageError, match="dimensions differ"):
        kid(x, y[:, :10])
    with pytest.raises(UsageError, match="at least 2"):
        kid(x, y[:1])
    with pytest.raises(UsageError, match="NaN"):
        kid(np.full((5, 3), np.nan), y[:5, :3])
    with pytest.raises(UsageError, match="subsets"):
        kid(x, y, subsets=0)
