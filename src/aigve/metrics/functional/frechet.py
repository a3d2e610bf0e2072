"""Fréchet distance between two Gaussians (FID, FVD and friends), without ``scipy.linalg.sqrtm``.

    d² = ||μ₁ - μ₂||² + tr Σ₁ + tr Σ₂ - 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}

The last trace is computed from factorisations Σ₁ = F₁F₁ᵀ, Σ₂ = F₂F₂ᵀ: with W = F₁ᵀF₂,
Σ₁^{1/2} Σ₂ Σ₁^{1/2} has the same non-zero eigenvalues as W Wᵀ (and WᵀW), which is symmetric PSD, so

    tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} = Σᵢ sqrt(λᵢ(W Wᵀ)) = Σᵢ σᵢ(W).

Squaring W costs precision near zero: an exact zero singular value comes out of ``eigvalsh`` as
±eps·||W||², whose square root (~1e-8·||W||) would add up over hundreds of null directions (a
rank-deficient pair of covariances). Eigenvalues at or below ``n·eps·λmax`` are therefore treated as
zero; a genuine singular value that small (< sqrt(n·eps)·σmax, about 7e-7·σmax at n = 2048) is dropped,
an error of the same size as the rounding noise it replaces. Against exact values (mpmath, known
spectra) this gives ~1e-14 relative where scipy's sqrtm (pytorch-fid) is off by 1e-8 to 1e-6.

On the numpy path, positive-definite covariances (more samples than dimensions, the usual case) take a
fast path: blocked Cholesky (``?potrf``), W by a triangular product (``?trmm``), W Wᵀ by ``?syrk`` and a
values-only eigensolver (``?syevr``). When a covariance is not numerically positive definite, the factors
come from LAPACK's pivoted Cholesky (``?pstrf``), which also reveals the rank of a rank-deficient covariance (fewer samples than dimensions), so W is r₁ x r₂ and the
eigenproblem is of size min(r₁, r₂). On the torch path (``device=...``, e.g. CUDA) the factor is a
Cholesky factor, or ``V diag(sqrt(λ))`` over the eigenvalues above D·eps·λmax of a symmetric
eigendecomposition when Cholesky fails (the same rank cut as ``?pstrf``). Everything runs in float64; the result is a real, finite float for any symmetric PSD input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.linalg import blas, lapack

from aigve.device import resolve_device
from aigve.errors import UsageError

if TYPE_CHECKING:
    from aigve.metrics.functional.gaussian import GaussianStats

ArrayLike = np.ndarray | torch.Tensor


def _as_f64(a: ArrayLike, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().to("cpu", torch.float64).numpy()
    out = np.asarray(a, dtype=np.float64)
    if not np.isfinite(out).all():
        raise UsageError(
            f"frechet_distance: {name} contains NaN or inf (check how the statistics were computed)"
        )
    return out


def _check(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> None:
    d = mu1.shape[0]
    if mu1.ndim != 1 or mu2.shape != mu1.shape:
        raise UsageError(
            f"frechet_distance: means must be 1-D of equal length, got {mu1.shape} and {mu2.shape}"
        )
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise UsageError(
            f"frechet_distance: covariances must be [{d}, {d}] to match the means, got {s1.shape} and {s2.shape}"
        )


def _psd_factor_np(s: np.ndarray) -> np.ndarray:
    """F with F Fᵀ ≈ s (``[D, r]``, r = numerical rank), by pivoted Cholesky; eigh if LAPACK refuses."""
    d = s.shape[0]
    c, piv, rank, info = lapack.dpstrf(s, lower=1)
    if info < 0:  # pragma: no cover - argument error, cannot happen with a square float64 matrix
        raise RuntimeError(f"dpstrf failed with info={info}")
    if rank == 0 or not np.isfinite(c).all():
        w, v = np.linalg.eigh(s)
        keep = w > d * np.finfo(np.float64).eps * max(float(w.max()), 0.0)
        return v[:, keep] * np.sqrt(w[keep])
    lower = np.tril(c)[:, :rank]
    f = np.empty((d, rank), dtype=np.float64)
    f[piv - 1] = lower  # s[piv][:, piv] = L Lᵀ  =>  s = F Fᵀ with F[piv] = L
    return f


def _trace_sqrt_product_full_rank(s1: np.ndarray, s2: np.ndarray) -> float | None:
    """Fast path for positive-definite covariances (the usual case, n > D): plain blocked Cholesky,
    a triangular product and a values-only symmetric eigensolver. ``None`` when a covariance is not
    numerically positive definite, so the caller takes the rank-revealing path."""
    l1, info1 = lapack.dpotrf(s1, lower=1, clean=1)
    if info1 != 0:
        return None
    l2, info2 = lapack.dpotrf(s2, lower=1, clean=1)
    if info2 != 0 or not (np.isfinite(l1).all() and np.isfinite(l2).all()):
        return None
    w = blas.dtrmm(1.0, l1, l2, side=0, lower=1, trans_a=1)  # L1ᵀ L2
    g = blas.dsyrk(1.0, w, lower=1)  # W Wᵀ (lower triangle)
    out = lapack.dsyevr(g, compute_v=0, lower=1, overwrite_a=1)  # values only (MRRR): fastest here
    lam, info = out[0], out[-1]
    if info != 0:
        return None
    return float(np.sqrt(lam[lam > _noise_floor(lam, g.shape[0])]).sum())


def _trace_sqrt_product_np(s1: np.ndarray, s2: np.ndarray) -> float:
    fast = _trace_sqrt_product_full_rank(s1, s2)
    if fast is not None:
        return fast
    f1 = _psd_factor_np(s1)
    f2 = _psd_factor_np(s2)
    if f1.shape[1] == 0 or f2.shape[1] == 0:
        return 0.0
    w = f1.T @ f2
    g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    g = (g + g.T) / 2
    lam = np.linalg.eigvalsh(g)
    return float(np.sqrt(lam[lam > _noise_floor(lam, g.shape[0])]).sum())


def _noise_floor(lam: np.ndarray, n: int) -> float:
    """Eigenvalues of W Wᵀ at or below n·eps·λmax are rounding noise of exact zeros (see module doc)."""
    return float(n * np.finfo(np.float64).eps * max(float(lam.max()), 0.0))


def _psd_factor_torch(s: torch.Tensor) -> torch.Tensor:
    """F with F Fᵀ ≈ s: Cholesky, or eigenvectors scaled by sqrt of the eigenvalues above the noise level."""
    lower, info = torch.linalg.cholesky_ex(s)
    if int(info) == 0 and bool(torch.isfinite(lower).all()):
        return lower
    w, v = torch.linalg.eigh(s)
    # eigenvalues below D * eps * max are rounding noise of a rank-deficient matrix (same cut as ?pstrf)
    keep = w > s.shape[0] * torch.finfo(torch.float64).eps * torch.clamp(w.max(), min=0.0)
    return v[:, keep] * torch.sqrt(w[keep])


def _trace_sqrt_product_torch(s1: np.ndarray, s2: np.ndarray, device: torch.device) -> float:
    t1 = torch.as_tensor(s1, dtype=torch.float64, device=device)
    t2 = torch.as_tensor(s2, dtype=torch.float64, device=device)
    f1 = _psd_factor_torch(t1)
    f2 = _psd_factor_torch(t2)
    if f1.shape[1] == 0 or f2.shape[1] == 0:
        return 0.0
    w = f1.T @ f2
    g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    g = (g + g.T) / 2
    lam = torch.linalg.eigvalsh(g).cpu().numpy()
    return float(np.sqrt(lam[lam > _noise_floor(lam, g.shape[0])]).sum())


def trace_sqrt_product(
    sigma1: ArrayLike, sigma2: ArrayLike, device: str | torch.device | None = None
) -> float:
    """tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} for symmetric PSD Σ₁, Σ₂ (the cross term of the Fréchet distance)."""
    s1 = _as_f64(sigma1, "sigma1")
    s2 = _as_f64(sigma2, "sigma2")
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    if device is None:
        return _trace_sqrt_product_np(s1, s2)
    return _trace_sqrt_product_torch(s1, s2, resolve_device(device))


def frechet_distance(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    device: str | torch.device | None = None,
) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Accepts numpy arrays or torch tensors (any dtype; computed in float64). ``device=None`` uses
    LAPACK on the CPU (pivoted Cholesky + symmetric eigenvalues); a torch device (``"cuda"``,
    ``"cpu"``) runs the same maths with ``torch.linalg`` there. Covariances are symmetrised
    (``(S + Sᵀ)/2``) first. Never NaN or complex for PSD inputs; may be a tiny negative number
    (rounding) when the two Gaussians are identical.
    """
    m1 = _as_f64(mu1, "mu1")
    m2 = _as_f64(mu2, "mu2")
    s1 = _as_f64(sigma1, "sigma1")
    s2 = _as_f64(sigma2, "sigma2")
    m1 = np.atleast_1d(m1)
    m2 = np.atleast_1d(m2)
    s1 = np.atleast_2d(s1)
    s2 = np.atleast_2d(s2)
    _check(m1, s1, m2, s2)
    diff = m1 - m2
    cross = trace_sqrt_product(s1, s2, device=device)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * cross)


def frechet_from_stats(
    stats1: GaussianStats, stats2: GaussianStats, device: str | torch.device | None = None
) -> float:
    """``frechet_distance`` of the mean and unbiased covariance of two ``GaussianStats``."""
    if stats1.dim != stats2.dim:
        raise UsageError(
            f"frechet_from_stats: feature dimensions differ ({stats1.dim} vs {stats2.dim}); "
            "both sets must come from the same extractor and layer"
        )
    return frechet_distance(stats1.mean, stats1.cov, stats2.mean, stats2.cov, device=device)
