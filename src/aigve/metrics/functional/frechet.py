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

:class:`FrechetResampler` gives the distance of many resamples of per-video feature blocks (the set-level
bootstrap) without building a D x D matrix when a resample has fewer distinct rows than dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
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


# -- resampled sets (set-level bootstrap) ------------------------------------------------------------------

# cross inner products of all rows kept by FrechetResampler when there are at most this many (float64, ~128 MB)
_GRAM_BUDGET = 4096 * 4096
# cost of a values-only symmetric eigensolve of size n (numpy's eigvalsh), in units of n³ multiply-adds of a
# matrix product: the tridiagonal reduction (?sytrd) is half matrix-vector work, far below the product's speed
_EIG_COST = 6.0
# cost of trace_sqrt_product on two D x D covariances (two Cholesky factors, a triangular product, ?syrk and
# scipy's ?syevr) in units of D³; with _EIG_COST it puts the crossover where it was measured (m ≈ 1.4 D)
_COV_ROUTE_COST = 17.0


def _eig_trace_sqrt(m: np.ndarray) -> float:
    """Σᵢ σᵢ(M): square roots of the eigenvalues of the smaller of M Mᵀ, Mᵀ M above the noise floor."""
    if m.shape[0] == 0 or m.shape[1] == 0:
        return 0.0
    g = blas.dsyrk(1.0, m, lower=1, trans=0 if m.shape[0] <= m.shape[1] else 1)  # lower triangle
    lam = np.linalg.eigvalsh(g, UPLO="L")
    return float(np.sqrt(lam[lam > _noise_floor(lam, g.shape[0])]).sum())


class FrechetResampler:
    """Fréchet distances between resamples of two sets of per-video feature blocks, without restacking.

    ``blocks1`` and ``blocks2`` hold one ``[k_i, D]`` array per video. Calling the resampler with two
    arrays of video indices (drawn with replacement, any order) returns the squared Fréchet distance of
    the Gaussians fitted to the stacked rows of those videos — what :func:`frechet_distance` gives on the
    mean and the covariance with ``ddof`` (1: unbiased, as pytorch-fid's FID; 0: divided by n, as
    StyleGAN-V / cd-fvd's FVD) of ``np.concatenate([blocks1[i] for i in idx1])`` and the same for side 2
    — equal up to float64 rounding, not approximated. Fewer than 2 rows on a side give NaN.

    A resample holds ``n`` rows of which ``m`` are distinct (a video drawn c times is one block of rows
    with weight c). With A (``m₁ x D``) the weighted, centred rows of side 1 scaled so that Σ₁ = AᵀA, and
    B likewise, tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} = Σᵢ σᵢ(A Bᵀ): the non-zero eigenvalues of Σ₁Σ₂ are those
    of (A Bᵀ)(A Bᵀ)ᵀ. So each resample takes the cheaper of

    - the *Gram* route: A Bᵀ (``m₁ x m₂``) from the inner products of all rows of both sides, computed
      once, minus the centring terms; an eigenproblem of size ``min(m₁, m₂)``, no D x D matrix at all;
    - the *covariance* route (many distinct rows, ``m`` well above ``D``): both D x D covariances from the
      weighted distinct rows, then :func:`trace_sqrt_product`.

    Means and traces come from per-video sums (Σ rows, Σ ||row||²) weighted by the multiplicities. Every
    side is first shifted by the mean of all its rows (a translation changes no covariance; the means'
    difference keeps it), so the centring terms are small and cancel no digits.
    """

    def __init__(
        self,
        blocks1: Sequence[ArrayLike],
        blocks2: Sequence[ArrayLike],
        ddof: int = 1,
        gram_budget: int = _GRAM_BUDGET,
    ) -> None:
        if ddof not in (0, 1):
            raise UsageError(f"FrechetResampler: ddof must be 0 or 1, got {ddof}")
        self.ddof = int(ddof)
        sides = [self._side(blocks1, "blocks1"), self._side(blocks2, "blocks2")]
        if sides[0][0].shape[1] != sides[1][0].shape[1]:
            raise UsageError(
                f"FrechetResampler: feature dimensions differ ({sides[0][0].shape[1]} vs {sides[1][0].shape[1]})"
            )
        (self._x1, self._video1, self._sum1, self._sq1, self._k1, centre1) = sides[0]
        (self._x2, self._video2, self._sum2, self._sq2, self._k2, centre2) = sides[1]
        self.dim = int(self._x1.shape[1])
        self._dcentre = centre1 - centre2
        n1, n2 = self._x1.shape[0], self._x2.shape[0]
        self._gram = self._x1 @ self._x2.T if n1 * n2 <= gram_budget else None

    @staticmethod
    def _side(
        blocks: Sequence[ArrayLike], name: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        arrs = [_as_f64(b, name) for b in blocks]
        if not arrs or any(a.ndim != 2 for a in arrs) or len({a.shape[1] for a in arrs}) != 1:
            raise UsageError(f"FrechetResampler: {name} must be a non-empty list of [k_i, D] arrays")
        k = np.array([a.shape[0] for a in arrs], dtype=np.int64)
        x = np.concatenate(arrs)
        if x.shape[0] == 0:
            raise UsageError(f"FrechetResampler: {name} holds no rows")
        centre = x.mean(axis=0)
        x -= centre
        video = np.repeat(np.arange(len(arrs)), k)  # row -> video
        sums = np.zeros((len(arrs), x.shape[1]))
        full = k > 0
        sums[full] = np.add.reduceat(x, (np.cumsum(k) - k)[full], axis=0)
        sq = np.bincount(video, weights=np.einsum("ij,ij->i", x, x), minlength=len(arrs))
        return x, video, sums, sq, k, centre

    def __call__(self, idx1: np.ndarray, idx2: np.ndarray) -> float:
        """Squared Fréchet distance of the resample drawing videos ``idx1`` on side 1 and ``idx2`` on side 2."""
        c1 = np.bincount(np.asarray(idx1, dtype=np.int64), minlength=len(self._k1)).astype(np.float64)
        c2 = np.bincount(np.asarray(idx2, dtype=np.int64), minlength=len(self._k2)).astype(np.float64)
        if c1.shape[0] != len(self._k1) or c2.shape[0] != len(self._k2):
            raise UsageError("FrechetResampler: a video index is out of range")
        return self.from_counts(c1, c2)

    def from_counts(self, c1: np.ndarray, c2: np.ndarray) -> float:
        """The same from per-video multiplicities (``[V₁]`` and ``[V₂]``, how often each video was drawn)."""
        n1, n2 = float(c1 @ self._k1), float(c2 @ self._k2)
        if n1 < 2 or n2 < 2:
            return float("nan")
        mu1, mu2 = (c1 @ self._sum1) / n1, (c2 @ self._sum2) / n2  # means of the shifted rows
        tr1 = (float(c1 @ self._sq1) - n1 * float(mu1 @ mu1)) / (n1 - self.ddof)
        tr2 = (float(c2 @ self._sq2) - n2 * float(mu2 @ mu2)) / (n2 - self.ddof)
        rows1 = np.flatnonzero(c1[self._video1] > 0)
        rows2 = np.flatnonzero(c2[self._video2] > 0)
        w1 = np.sqrt(c1[self._video1[rows1]] / (n1 - self.ddof))
        w2 = np.sqrt(c2[self._video2[rows2]] / (n2 - self.ddof))
        if self._gram_is_cheaper(rows1.size, rows2.size):
            cross = self._cross_gram(rows1, rows2, w1, w2, mu1, mu2, c1, c2, n1, n2)
        else:
            cross = self._cross_cov(rows1, rows2, w1, w2, mu1, mu2)
        diff = self._dcentre + (mu1 - mu2)
        return float(diff @ diff + tr1 + tr2 - 2.0 * cross)

    def _gram_is_cheaper(self, m1: int, m2: int) -> bool:
        """Compare multiply-add counts of the two routes (see the class doc)."""
        d = float(self.dim)
        small, large = float(min(m1, m2)), float(max(m1, m2))
        gram = small * small * large + _EIG_COST * small**3 + (0.0 if self._gram is not None else m1 * m2 * d)
        cov = (m1 + m2) * d * d + _COV_ROUTE_COST * d**3
        return gram <= cov

    def _cross_gram(
        self,
        rows1: np.ndarray,
        rows2: np.ndarray,
        w1: np.ndarray,
        w2: np.ndarray,
        mu1: np.ndarray,
        mu2: np.ndarray,
        c1: np.ndarray,
        c2: np.ndarray,
        n1: float,
        n2: float,
    ) -> float:
        if self._gram is not None:
            # (x - μ₁)·(y - μ₂) = x·y - x·μ₂ - μ₁·y + μ₁·μ₂, where μ₂ = Σⱼ wⱼ yⱼ / n₂, so x·μ₂ is a
            # weighted row sum of the stored inner products (no D-sized work)
            g = self._gram
            r1 = c1[self._video1]  # multiplicity of every row (0: not drawn)
            r2 = c2[self._video2]
            x1_mu2 = g @ (r2 / n2)
            x2_mu1 = (r1 / n1) @ g
            c = g[np.ix_(rows1, rows2)]
            c -= x1_mu2[rows1, None]
            c -= x2_mu1[None, rows2]
            c += float(r1 @ x1_mu2) / n1
        else:
            c = (self._x1[rows1] - mu1) @ (self._x2[rows2] - mu2).T
        c *= w1[:, None]
        c *= w2[None, :]
        return _eig_trace_sqrt(c)

    def _cross_cov(
        self,
        rows1: np.ndarray,
        rows2: np.ndarray,
        w1: np.ndarray,
        w2: np.ndarray,
        mu1: np.ndarray,
        mu2: np.ndarray,
    ) -> float:
        a = (self._x1[rows1] - mu1) * w1[:, None]
        b = (self._x2[rows2] - mu2) * w2[:, None]
        return _trace_sqrt_product_np(a.T @ a, b.T @ b)
