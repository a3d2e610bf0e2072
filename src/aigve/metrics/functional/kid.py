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
