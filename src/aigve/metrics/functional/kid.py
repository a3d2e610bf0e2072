"""Kernel Inception Distance: unbiased MMD² with a polynomial kernel, averaged over random subsets.

    k(x, y) = (γ x·y + c)^d          (defaults γ = 1/D, c = 1, d = 3: Bińkowski et al. 2018)
    MMD²ᵤ(X, Y) = Σ_{i≠j} k(xᵢ,xⱼ)/(m(m-1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(m(m-1)) - 2 Σ_{i,j} k(xᵢ,yⱼ)/m²

This is the estimator torch-fidelity (``mmd_est="unbiased"``) and torchmetrics use: the within-set
terms drop their diagonal, the cross term keeps it. KID is the mean over ``subsets`` random subsets
of ``subset_size`` rows of each set, each subset drawn *without replacement* (``numpy`` Generator
seeded with ``seed``: real rows first, then fake rows, per subset); the reported std is the
population std over subsets (ddof=0), as in torch-fidelity and torchmetrics. When a set has fewer rows
than ``subset_size``, the subset size shrinks to the smaller set and a warning says so; rows are never
resampled with replacement. Everything is computed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from aigve.device import resolve_device
from aigve.errors import UsageError

ArrayLike = np.ndarray | torch.Tensor

# precompute the full Gram matrices when they fit in this many float64 entries (~128 MB)
_GRAM_BUDGET = 4096 * 4096


@dataclass(frozen=True)
class KIDResult:
    """KID mean and std over subsets, the subset design actually used, and any warnings."""

    mean: float
    std: float
    subset_size: int
    subsets: int
    values: tuple[float, ...]
    warnings: tuple[str, ...] = ()


Array = np.ndarray | torch.Tensor


def _as_array(x: ArrayLike, name: str, device: torch.device | None) -> Array:
    """float64 numpy array (``device=None``) or float64 tensor on ``device``; checked [N, D] and finite."""
    a: Array
    if device is None:
        an = (
            x.detach().to("cpu", torch.float64).numpy()
            if isinstance(x, torch.Tensor)
            else np.asarray(x, np.float64)
        )
        ok = bool(np.isfinite(an).all())
        a = an
    else:
        t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
        at = t.to(device=device, dtype=torch.float64)
        ok = bool(torch.isfinite(at).all())
        a = at
    if a.ndim != 2:
        raise UsageError(f"kid: {name} must be a 2-D [N, D] feature array, got shape {tuple(a.shape)}")
    if not ok:
        raise UsageError(f"kid: {name} contains NaN or inf (check the extractor's input)")
    return a


def _mmd2_from_kernels(k_xx: Array, k_yy: Array, k_xy: Array) -> float:
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())
    return float(within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def _poly(a: Array, b: Array, gamma: float, coef0: float, degree: int) -> Array:
    return (a @ b.T * gamma + coef0) ** degree


def _device(device: str | torch.device | None) -> torch.device | None:
    return None if device is None else resolve_device(device)


def mmd2_unbiased_poly(
    x: ArrayLike,
    y: ArrayLike,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    device: str | torch.device | None = None,
) -> float:
    """Unbiased MMD² of two equal-size samples ``[m, D]`` under k(x,y) = (γ x·y + coef0)^degree.

    ``gamma=None`` means 1/D. This is one subset's term of ``kid``. ``device=None``: numpy on the CPU;
    a torch device: torch there.
    """
    dev = _device(device)
    xa = _as_array(x, "x", dev)
    ya = _as_array(y, "y", dev)
    if tuple(xa.shape) != tuple(ya.shape) or xa.shape[0] < 2:
        raise UsageError(
            "mmd2_unbiased_poly needs two [m, D] arrays of equal shape with m >= 2, "
            f"got {tuple(xa.shape)} and {tuple(ya.shape)}"
        )
    g = 1.0 / xa.shape[1] if gamma is None else float(gamma)
    return _mmd2_from_kernels(
        _poly(xa, xa, g, coef0, degree), _poly(ya, ya, g, coef0, degree), _poly(xa, ya, g, coef0, degree)
    )


def _idx(i: np.ndarray, dev: torch.device | None) -> np.ndarray | torch.Tensor:
    return i if dev is None else torch.as_tensor(i, device=dev)


def kid_subset_indices(
    n_real: int, n_fake: int, subset_size: int, subsets: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (real rows, fake rows) of every subset ``kid`` uses: without replacement within a subset."""
    if subset_size > min(n_real, n_fake):
        raise UsageError(f"subset_size {subset_size} exceeds the set sizes ({n_real}, {n_fake})")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(subsets):
        ir = rng.choice(n_real, subset_size, replace=False)
        ifk = rng.choice(n_fake, subset_size, replace=False)
        out.append((ir, ifk))
    return out


def kid(
    feats_real: ArrayLike,
    feats_fake: ArrayLike,
    subset_size: int = 1000,
    subsets: int = 100,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
    device: str | torch.device | None = None,
    precompute_gram: bool | None = None,
) -> KIDResult:
    """Kernel Inception Distance between two feature sets ``[N_real, D]`` and ``[N_fake, D]``.

    Mean ± std (ddof=0) of the unbiased polynomial-kernel MMD² over ``subsets`` seeded subsets of
    ``subset_size`` rows per set (see the module doc). ``device=None`` computes with numpy on the CPU,
    a torch device (e.g. ``"cuda"``) with torch there. ``precompute_gram=None`` computes all inner
    products once when that is cheaper and fits in memory (same values, up to rounding).
    """
    if subsets < 1:
        raise UsageError(f"kid: subsets must be >= 1, got {subsets}")
    if subset_size < 2:
        raise UsageError(f"kid: subset_size must be >= 2, got {subset_size}")
    dev = _device(device)
    xr = _as_array(feats_real, "feats_real", dev)
    xf = _as_array(feats_fake, "feats_fake", dev)
    if xr.shape[1] != xf.shape[1]:
        raise UsageError(
            f"kid: feature dimensions differ (real {xr.shape[1]}, fake {xf.shape[1]}); use the same extractor"
        )
    n_r, n_f, d = xr.shape[0], xf.shape[0], xr.shape[1]
    warnings: list[str] = []
    m = int(subset_size)
    if m > min(n_r, n_f):
        m = min(n_r, n_f)
        if m < 2:
            raise UsageError(f"kid needs at least 2 feature rows per set, got n_real={n_r}, n_fake={n_f}")
        warnings.append(
            f"KID: subset_size {subset_size} is larger than a set (n_real={n_r}, n_fake={n_f}); "
            f"used subset_size={m} without replacement — values are not comparable with subset_size={subset_size}"
        )
    if m == n_r and m == n_f and subsets > 1:
        warnings.append(
            "KID: every subset is the whole of both sets, so all subsets give the same value and std=0 "
            "is not an uncertainty estimate"
        )
    g = 1.0 / d if gamma is None else float(gamma)
    n_all = n_r + n_f
    if precompute_gram is None:
        precompute_gram = n_all * n_all <= _GRAM_BUDGET and n_all * n_all < 3 * subsets * m * m

    index_sets = kid_subset_indices(n_r, n_f, m, subsets, seed)
    values = []
    if precompute_gram:
        both = np.concatenate([xr, xf]) if dev is None else torch.cat([xr, xf])  # type: ignore[list-item]
        kern = both @ both.T
        kern *= g
        kern += coef0
        kern **= degree  # in place: one [N, N] buffer
        for ir, ifk in index_sets:
            a, b = _idx(ir, dev), _idx(ifk + n_r, dev)
            values.append(_mmd2_from_kernels(kern[a][:, a], kern[b][:, b], kern[a][:, b]))
    else:
        for ir, ifk in index_sets:
            a, b = xr[_idx(ir, dev)], xf[_idx(ifk, dev)]
            values.append(
                _mmd2_from_kernels(
                    _poly(a, a, g, coef0, degree),
                    _poly(b, b, g, coef0, degree),
                    _poly(a, b, g, coef0, degree),
                )
            )
    arr = np.asarray(values, dtype=np.float64)
    return KIDResult(
        mean=float(arr.mean()),
        std=float(arr.std()),
        subset_size=m,
        subsets=int(subsets),
        values=tuple(float(v) for v in arr),
        warnings=tuple(warnings),
    )


def _stacked_rows(idx: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Row numbers of ``np.concatenate([blocks[i] for i in idx])`` in ``np.concatenate(blocks)``."""
    lens = lengths[idx]
    total = int(lens.sum())
    starts = np.repeat(offsets[idx] - (np.cumsum(lens) - lens), lens)
    return starts + np.arange(total)


class KIDResampler:
    """``kid(...).mean`` of resamples of two sets of per-video feature blocks, from one kernel matrix.

    ``blocks_real`` and ``blocks_fake`` hold one ``[k_i, D]`` array per video. Calling the resampler with
    two arrays of video indices (drawn with replacement, in order) returns what
    ``kid(np.concatenate([blocks_real[i] for i in idx_real]), np.concatenate(...fake...), subset_size=m,
    subsets, degree, gamma, coef0, seed).mean`` returns with ``m = min(subset_size, rows per side)`` —
    the same subsets of the same stacked rows (:func:`kid_subset_indices`), equal up to float64 rounding;
    fewer than 2 rows on a side give NaN.

    The kernel of all rows of both sides is computed once (it must fit ``gram_budget`` entries: check
    :meth:`fits` first). A subset is then a vector h of how often each row is in it, and its kernel sums
    are hᵀKh (minus hᵀdiag K within a set, whose diagonal the unbiased estimator drops), for all subsets
    in one matrix product: nothing of size ``[subset_size, subset_size]`` is gathered.
    """

    def __init__(
        self,
        blocks_real: Sequence[ArrayLike],
        blocks_fake: Sequence[ArrayLike],
        subset_size: int = 1000,
        subsets: int = 100,
        degree: int = 3,
        gamma: float | None = None,
        coef0: float = 1.0,
        seed: int = 0,
        gram_budget: int = _GRAM_BUDGET,
    ) -> None:
        if subsets < 1 or subset_size < 2:
            raise UsageError(
                f"KIDResampler: need subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}"
            )
        xr = [_as_array(b, "blocks_real", None) for b in blocks_real]
        xf = [_as_array(b, "blocks_fake", None) for b in blocks_fake]
        if not xr or not xf or len({b.shape[1] for b in xr + xf}) != 1:
            raise UsageError("KIDResampler: both sides need [k_i, D] blocks of one feature dimension")
        self._len_r = np.array([b.shape[0] for b in xr], dtype=np.int64)
        self._len_f = np.array([b.shape[0] for b in xf], dtype=np.int64)
        self._off_r = np.cumsum(self._len_r) - self._len_r
        self._off_f = np.cumsum(self._len_f) - self._len_f
        self.n_real, self.n_fake = int(self._len_r.sum()), int(self._len_f.sum())
        self.subset_size, self.subsets, self.seed = int(subset_size), int(subsets), int(seed)
        if not self.fits(self.n_real, self.n_fake, gram_budget):
            raise UsageError(
                f"KIDResampler: the kernel of {self.n_real} + {self.n_fake} rows exceeds {gram_budget} entries"
            )
        both = np.concatenate(xr + xf)
        kern = both @ both.T
        kern *= 1.0 / both.shape[1] if gamma is None else float(gamma)
        kern += coef0
        kern **= degree
        n_r = self.n_real
        self._k_rr, self._k_ff, self._k_rf = kern[:n_r, :n_r], kern[n_r:, n_r:], kern[:n_r, n_r:]
        self._diag_r, self._diag_f = self._k_rr.diagonal().copy(), self._k_ff.diagonal().copy()

    @staticmethod
    def fits(n_real: int, n_fake: int, gram_budget: int = _GRAM_BUDGET) -> bool:
        """Whether the kernel of ``n_real + n_fake`` rows fits ``gram_budget`` float64 entries."""
        return (n_real + n_fake) ** 2 <= gram_budget

    def __call__(self, idx_real: np.ndarray, idx_fake: np.ndarray) -> float:
        rows_r = _stacked_rows(np.asarray(idx_real, dtype=np.int64), self._off_r, self._len_r)
        rows_f = _stacked_rows(np.asarray(idx_fake, dtype=np.int64), self._off_f, self._len_f)
        m = min(self.subset_size, rows_r.size, rows_f.size)
        if m < 2:
            return float("nan")
        h_r = np.empty((self.n_real, self.subsets))
        h_f = np.empty((self.n_fake, self.subsets))
        for s, (ir, jf) in enumerate(
            kid_subset_indices(rows_r.size, rows_f.size, m, self.subsets, self.seed)
        ):
            h_r[:, s] = np.bincount(rows_r[ir], minlength=self.n_real)
            h_f[:, s] = np.bincount(rows_f[jf], minlength=self.n_fake)
        within = np.einsum("is,is->s", h_r, self._k_rr @ h_r) - self._diag_r @ h_r
        within += np.einsum("is,is->s", h_f, self._k_ff @ h_f) - self._diag_f @ h_f
        cross = np.einsum("is,is->s", h_r, self._k_rf @ h_f)
        values = within / (m * (m - 1)) - 2.0 * cross / (m * m)
        return float(values.mean())
