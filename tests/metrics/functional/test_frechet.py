"""Fréchet distance against pytorch-fid (scipy sqrtm), exact closed forms and an mpmath reference.

Tolerances: 1e-6 relative against pytorch-fid on well-conditioned inputs (observed ~1e-14); 1e-12
relative against exact values (known spectra, mpmath at 40 digits) on rank-deficient inputs, where
pytorch-fid itself is off by ~1e-8.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

from aigve.errors import UsageError
from aigve.metrics.functional.frechet import frechet_distance, frechet_from_stats, trace_sqrt_product
from aigve.metrics.functional.gaussian import GaussianStats

fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid==0.3.0 is the reference")
# pytorch-fid 0.3.0 passes scipy's deprecated sqrtm(disp=False)
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")

DEVICES = [None, "cpu"]  # None: LAPACK pivoted Cholesky; "cpu": the torch.linalg path used on CUDA


def relu_feats(rng: np.random.Generator, n: int, d: int, scale: float = 1.0, bias: float = 0.3) -> np.ndarray:
    k = min(d, 64)
    w = rng.standard_normal((k, d)) / np.sqrt(k)
    return np.maximum(scale * (rng.standard_normal((n, k)) @ w + 0.5 * rng.standard_normal((n, d))) + bias, 0)


def gauss(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("d,n", [(16, 200), (64, 500)])
def test_matches_pytorch_fid(d: int, n: int, device: str | None) -> None:
    rng = np.random.default_rng(d)
    m1, s1 = gauss(relu_feats(rng, n, d))
    m2, s2 = gauss(relu_feats(rng, n, d, scale=1.2, bias=0.2))
    ref = fid_score.calculate_frechet_distance(m1, s1, m2, s2)
    ours = frechet_distance(m1, s1, m2, s2, device=device)
    assert ours == pytest.approx(ref, rel=1e-6)


@pytest.fixture(scope="module")
def stats_2048() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(2048)
    m1, s1 = gauss(relu_feats(rng, 3000, 2048))
    m2, s2 = gauss(relu_feats(rng, 3000, 2048, scale=1.1, bias=0.25))
    return m1, s1, m2, s2, float(fid_score.calculate_frechet_distance(m1, s1, m2, s2))


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_matches_pytorch_fid_2048(stats_2048, device: str | None) -> None:
    m1, s1, m2, s2, ref = stats_2048
    assert frechet_distance(m1, s1, m2, s2, device=device) == pytest.approx(ref, rel=1e-6)


def _mp_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Exact FID of the sample Gaussians of x, y (n < D) at 40 digits.

    With centred rows C₁, C₂: Σᵢ = CᵢᵀCᵢ/(nᵢ-1), and tr(Σ₁^½Σ₂Σ₁^½)^½ = ||C₁C₂ᵀ||_* / sqrt((n₁-1)(n₂-1)),
    an n₁ x n₂ singular-value problem solved in mpmath.
    """
    mpmath.mp.dps = 40
    n1, n2, d = len(x), len(y), x.shape[1]

    def centred(a: np.ndarray, n: int):
        m = mpmath.matrix(a.tolist())
        mu = [mpmath.fsum(m[i, j] for i in range(n)) / n for j in range(d)]
        c = mpmath.matrix(n, d)
        for i in range(n):
            for j in range(d):
                c[i, j] = m[i, j] - mu[j]
        return mu, c

    mu1, c1 = centred(x, n1)
    mu2, c2 = centred(y, n2)
    nuc = mpmath.fsum(mpmath.svd_r(c1 * c2.T, compute_uv=False)) / mpmath.sqrt((n1 - 1) * (n2 - 1))
    tr1 = mpmath.fsum(c1[i, j] ** 2 for i in range(n1) for j in range(d)) / (n1 - 1)
    tr2 = mpmath.fsum(c2[i, j] ** 2 for i in range(n2) for j in range(d)) / (n2 - 1)
    dm = mpmath.fsum((mu1[j] - mu2[j]) ** 2 for j in range(d))
    return float(dm + tr1 + tr2 - 2 * nuc)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("d,n1,n2", [(64, 20, 25), (96, 30, 12)])
def test_rank_deficient_vs_mpmath(d: int, n1: int, n2: int, device: str | None) -> None:
    rng = np.random.default_rng(d + n1)
    x, y = relu_feats(rng, n1, d), relu_feats(rng, n2, d, scale=1.3)
    m1, s1 = gauss(x)
    m2, s2 = gauss(y)
    exact = _mp_reference(x, y)
    ours = frechet_distance(m1, s1, m2, s2, device=device)
    assert np.isfinite(ours) and isinstance(ours, float)
    assert ours == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_known_spectra_commuting(device: str | None) -> None:
    # Σ₁ = Q diag(a) Qᵀ, Σ₂ = Q diag(b) Qᵀ with many zero eigenvalues: tr sqrt = Σ sqrt(aᵢ bᵢ) exactly
    d = 200
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a = rng.uniform(0.1, 2.0, d)
    b = rng.uniform(0.1, 2.0, d)
    a[:80] = 0.0
    b[60:120] = 0.0
    s1 = (q * a) @ q.T
    s2 = (q * b) @ q.T
    assert trace_sqrt_product(s1, s2, device=device) == pytest.approx(np.sqrt(a * b).sum(), rel=1e-12)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2, device=device) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_zero_covariance(device: str | None) -> None:
    # a point mass against N(μ₂, Σ₂): d² = ||μ₁-μ₂||² + tr Σ₂
    rng = np.random.default_rng(8)
    m2, s2 = gauss(relu_feats(rng, 100, 20))
    m1 = rng.standard_normal(20)
    expected = np.sum((m1 - m2) ** 2) + np.trace(s2)
    assert frechet_distance(m1, np.zeros((20, 20)), m2, s2, device=device) == pytest.approx(
        expected, rel=1e-12
    )
    assert frechet_distance(m1, np.zeros((20, 20)), m1, np.zeros((20, 20)), device=device) == 0.0


def test_one_dimensional_closed_form() -> None:
    # d² = (μ₁-μ₂)² + (σ₁-σ₂)² for scalars
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0, rel=1e-14)
    assert frechet_distance(np.array(0.5), np.array(2.0), np.array(0.5), np.array(0.0)) == pytest.approx(2.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [40, 2000])  # rank-deficient and full-rank
def test_identical_inputs_give_zero(n: int, device: str | None) -> None:
    m, s = gauss(relu_feats(np.random.default_rng(n), n, 128))
    assert abs(frechet_distance(m, s, m, s, device=device)) <= 1e-8 * np.trace(s)


@pytest.mark.parametrize("device", DEVICES)
def test_symmetry_and_torch_inputs(device: str | None) -> None:
    rng = np.random.default_rng(3)
    m1, s1 = gauss(relu_feats(rng, 300, 48))
    m2, s2 = gauss(relu_feats(rng, 30, 48, scale=0.7))  # second one rank-deficient
    d12 = frechet_distance(m1, s1, m2, s2, device=device)
    d21 = frechet_distance(m2, s2, m1, s1, device=device)
    assert d12 == pytest.approx(d21, rel=1e-10)
    t = [torch.from_numpy(v) for v in (m1, s1, m2, s2)]
    assert frechet_distance(*t, device=device) == pytest.approx(d12, rel=1e-12)

    # float32 tensors (full-rank pair: rounding a rank-deficient covariance to float32 leaves ±1e-7
    # eigenvalues in its null space, which moves the exact answer by ~sqrt(1e-7) — keep stats in float64)
    m3, s3 = gauss(relu_feats(rng, 300, 48, scale=0.7))
    t32 = [torch.from_numpy(v).float() for v in (m1, s1, m3, s3)]
    ref32 = frechet_distance(*[v.double().numpy() for v in t32])  # same float32-rounded inputs
    assert frechet_distance(*t32, device=device) == pytest.approx(ref32, rel=1e-10)


def test_from_stats_matches_arrays() -> None:
    rng = np.random.default_rng(4)
    x, y = relu_feats(rng, 500, 32), relu_feats(rng, 400, 32, scale=1.5)
    a, b = GaussianStats.from_features(x), GaussianStats.from_features(y)
    ref = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert frechet_from_stats(a, b) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(UsageError, match="dimensions differ"):
        frechet_from_stats(a, GaussianStats.from_features(y[:, :16]))


def test_input_errors() -> None:
    eye = np.eye(3)
    with pytest.raises(UsageError, match="must be"):
        frechet_distance(np.zeros(3), eye, np.zeros(4), np.eye(4))
    with pytest.raises(UsageError, match=r"\[3, 3\]"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), eye)
    with pytest.raises(UsageError, match="NaN"):
        frechet_distance(np.array([np.nan, 0, 0]), eye, np.zeros(3), eye)
