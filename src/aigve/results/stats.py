"""Bootstrap confidence intervals for aggregates (pure numpy, seeded, vectorised).

Two cases:

- per-video metrics: the aggregate is a statistic (the mean) over videos, so the interval comes
  from resampling videos with replacement (:func:`bootstrap_ci`, percentile or BCa);
- set metrics (FID, KID, FVD, ...): the aggregate is a function of two feature sets, so both sides
  are resampled by video, independently, from the cached features and the function is re-applied
  (:func:`bootstrap_set_metric`); nothing is re-extracted. FID, FVD and KID evaluate a resample from
  per-video statistics without restacking its rows (their ``bootstrap_resampler``): same values up to
  float64 rounding, a small fraction of the time.

Every interval is a :class:`CI`, whose ``estimate`` is always the statistic of the full data (never
the bootstrap mean), and whose bounds are ``None`` with a ``reason`` when there is too little data.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr, ndtri

from aigve.errors import UsageError

Method = Literal["percentile", "bca"]
SetMethod = Literal["percentile", "centered"]
METHODS: tuple[str, ...] = ("percentile", "bca")
SET_METHODS: tuple[str, ...] = ("percentile", "centered")

# resamples are drawn in chunks so that one chunk holds at most this many numbers
_CHUNK_ELEMENTS = 4_000_000
# exact leave-one-out jackknife (for BCa) up to this n, delete-a-block jackknife above it
_MAX_JACKKNIFE = 2000


@dataclass(frozen=True)
class CI:
    """A confidence interval for one aggregate.

    ``estimate`` is the statistic on all the (non-NaN) data; ``low``/``high`` are ``None`` when no
    interval could be formed (then ``reason`` says why). ``n`` counts the values used and
    ``n_nan`` those left out. ``se`` is the bootstrap standard error; ``bias`` is the mean of the
    bootstrap distribution minus ``estimate`` (reported for set metrics, where it is large for FID).
    """

    low: float | None
    high: float | None
    estimate: float | None
    n: int
    method: str
    n_resamples: int
    level: float = 0.95
    n_nan: int = 0
    se: float | None = None
    bias: float | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when both bounds exist."""
        return self.low is not None and self.high is not None

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the closed interval (False when there is no interval)."""
        return self.ok and self.low <= value <= self.high  # type: ignore[operator]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        if not self.ok:
            est = "nan" if self.estimate is None else f"{self.estimate:.4g}"
            return f"{est} (no CI: {self.reason})"
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}]"


def _check_common(n_resamples: int, level: float) -> None:
    if int(n_resamples) < 1:
        raise UsageError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < float(level) < 1.0:
        raise UsageError(f"level must be in (0, 1), e.g. 0.95, got {level}")


def _as_float_or_none(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def cell_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and the names, so that one cell's draws (a metric, a metric x
    aspect, ...) depend on nothing but the seed and its own names. The one seed derivation used
    by runs, ``compare`` and ``correlate``."""
    return np.random.default_rng([int(seed), *(zlib.crc32(str(n).encode()) for n in names)])


def mean_ci(
    values: Sequence[float] | np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    metric: str = "",
    output: str = "",
    level: float = 0.95,
) -> CI:
    """Bootstrap CI of the mean over videos of one aggregate (a metric output), as a run records it.

    The values are sorted first and the generator is :func:`cell_rng` of ``(seed, metric, output)``,
    so the interval depends only on the values (not their order), the seed and the names: a run's
    ``results.json`` and ``aigve compare``'s leaderboard get the same numbers for the same data.
    """
    arr = np.sort(np.asarray(values, dtype=np.float64).ravel())  # NaNs sort last; bootstrap_ci drops them
    return bootstrap_ci(arr, np.mean, n_resamples, level, cell_rng(seed, "aggregate", metric, output))


def resample_indices(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_resamples, n]`` int indices drawn uniformly with replacement from ``range(n)``."""
    return rng.integers(0, n, size=(int(n_resamples), int(n)))


def _apply_rows(stat: Callable[..., Any], samples: np.ndarray) -> np.ndarray:
    """``stat`` of each row of a 2-D array: vectorised via ``axis=-1`` when ``stat`` supports it."""
    try:
        out = np.asarray(stat(samples, axis=-1), dtype=np.float64)
        if out.shape == (samples.shape[0],):
            return out
    except TypeError:
        pass
    return np.array([float(stat(row)) for row in samples], dtype=np.float64)


def bootstrap_distribution(
    values: np.ndarray,
    stat: Callable[..., Any] = np.mean,
    n_resamples: int = 1000,
    rng: np.random.Generator | int = 0,
) -> np.ndarray:
    """The bootstrap distribution ``[n_resamples]`` of ``stat`` over rows of 1-D ``values``.

    ``stat`` is called as ``stat(samples, axis=-1)`` on a 2-D block of resamples when it accepts
    an ``axis`` keyword (numpy reductions do), else once per resample. Resamples are drawn in
    chunks, so memory stays bounded; the result does not depend on the chunking.
    """
    values = np.asarray(values, dtype=np.float64)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = values.shape[0]
    rows = max(1, _CHUNK_ELEMENTS // max(n, 1))  # depends on n only, so the draws are reproducible
    out = np.empty(int(n_resamples), dtype=np.float64)
    for start in range(0, int(n_resamples), rows):
        idx = resample_indices(n, min(rows, int(n_resamples) - start), gen)
        out[start : start + idx.shape[0]] = _apply_rows(stat, values[idx])
    return out


def _jackknife(values: np.ndarray, stat: Callable[..., Any]) -> np.ndarray:
    """Leave-one-out statistics (exact up to ``_MAX_JACKKNIFE`` values, delete-a-block above)."""
    n = values.shape[0]
    if n <= _MAX_JACKKNIFE:
        keep = ~np.eye(n, dtype=bool)
        loo = np.broadcast_to(values, (n, n))[keep].reshape(n, n - 1)
        return _apply_rows(stat, loo)
    blocks = np.array_split(np.arange(n), _MAX_JACKKNIFE)
    return np.array([float(stat(np.delete(values, b))) for b in blocks], dtype=np.float64)


def interval_from_distribution(
    boot: np.ndarray,
    estimate: float,
    level: float = 0.95,
    method: Method = "percentile",
    jackknife: np.ndarray | None = None,
) -> tuple[float, float, str]:
    """Bounds of a ``level`` interval from a bootstrap distribution.

    ``percentile``: the ``(1-level)/2`` and ``(1+level)/2`` quantiles. ``bca``: Efron's
    bias-corrected and accelerated quantiles; ``z0`` from the share of resamples below the
    estimate (ties count half), acceleration from ``jackknife`` (leave-one-out statistics).
    Non-finite resamples are ignored. Returns ``(low, high, method_used)``: BCa falls back to
    percentile (and says so) when the bias correction is infinite.
    """
    boot = np.asarray(boot, dtype=np.float64)
    boot = boot[np.isfinite(boot)]
    alpha = (1.0 - level) / 2.0
    probs = np.array([alpha, 1.0 - alpha])
    used = "percentile"
    if method == "bca":
        if jackknife is None:
            raise UsageError("method='bca' needs the jackknife statistics")
        below = np.mean(boot < estimate) + 0.5 * np.mean(boot == estimate)
        z0 = ndtri(below)
        if np.isfinite(z0):
            jk = np.asarray(jackknife, dtype=np.float64)
            jk = jk[np.isfinite(jk)]
            d = jk.mean() - jk
            den = 6.0 * np.sum(d**2) ** 1.5
            a = float(np.sum(d**3) / den) if den > 0 else 0.0
            z = ndtri(probs)
            probs = ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
            used = "bca"
        else:
            used = "percentile (bca undefined: all resamples on one side of the estimate)"
    elif method != "percentile":
        raise UsageError(f"unknown CI method {method!r}: use one of {METHODS}")
    low, high = np.quantile(boot, probs)
    return float(low), float(high), used


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    stat: Callable[..., Any] = np.mean,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
    method: Method = "percentile",
) -> CI:
    """Bootstrap CI of ``stat`` over the values (videos), resampled with replacement.

    NaNs (failed videos) are left out and counted in ``n_nan``. With fewer than 2 values the
    bounds are ``None`` and ``reason`` says why. Deterministic for a given ``seed``.

    >>> ci = bootstrap_ci([1.0, 2.0, 3.0, 4.0, float("nan")], n_resamples=200, seed=0)
    >>> (ci.estimate, ci.n, ci.n_nan, ci.low <= 2.5 <= ci.high)
    (2.5, 4, 1, True)
    """
    _check_common(n_resamples, level)
    if method not in METHODS:
        raise UsageError(f"unknown CI method {method!r}: use one of {METHODS}")
    arr = np.asarray(values, dtype=np.float64).ravel()
    finite = ~np.isnan(arr)
    n_nan = int((~finite).sum())
    arr = arr[finite]
    n = int(arr.shape[0])
    common: dict[str, Any] = dict(
        n=n, method=method, n_resamples=int(n_resamples), level=float(level), n_nan=n_nan
    )
    if n < 2:
        est = _as_float_or_none(stat(arr)) if n == 1 else None
        return CI(None, None, est, reason=f"need at least 2 non-NaN values, got {n}", **common)
    estimate = float(stat(arr))
    boot = bootstrap_distribution(arr, stat, n_resamples, seed)
    jk = _jackknife(arr, stat) if method == "bca" else None
    low, high, used = interval_from_distribution(boot, estimate, level, method, jk)
    common["method"] = used
    fin = boot[np.isfinite(boot)]
    se = float(fin.std(ddof=1)) if fin.size > 1 else None
    return CI(low, high, estimate, se=se, **common)


FeatureSet = np.ndarray | Sequence[np.ndarray]
#: ``(real video indices, fake video indices) -> value``: the metric of one resample
ResampledValue = Callable[[np.ndarray, np.ndarray], float]
#: builds a :data:`ResampledValue` once from the per-video ``[k_i, D]`` blocks of both sides, or ``None``
ResamplerFactory = Callable[[list[np.ndarray], list[np.ndarray]], ResampledValue | None]


def _as_units(feats: FeatureSet, side: str) -> tuple[list[np.ndarray] | np.ndarray, int]:
    """Rows of a 2-D array, or a list of per-video ``[k_i, D]`` arrays; returns (units, count)."""
    if isinstance(feats, np.ndarray):
        if feats.ndim != 2:
            raise UsageError(f"{side} features must be [N, D] (one row per video), got shape {feats.shape}")
        return feats, int(feats.shape[0])
    units = [np.atleast_2d(np.asarray(f)) for f in feats]
    return units, len(units)


def _take(units: list[np.ndarray] | np.ndarray, idx: np.ndarray) -> np.ndarray:
    if isinstance(units, np.ndarray):
        return units[idx]
    return np.concatenate([units[i] for i in idx], axis=0)


def _blocks(units: list[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Per-video ``[k_i, D]`` blocks (a 2-D array is one row per video)."""
    return [units[i : i + 1] for i in range(units.shape[0])] if isinstance(units, np.ndarray) else units


def bootstrap_set_metric(
    fn: Callable[[np.ndarray, np.ndarray], float],
    real_feats: FeatureSet,
    fake_feats: FeatureSet,
    n_resamples: int = 200,
    seed: int = 0,
    level: float = 0.95,
    method: SetMethod = "percentile",
    paired: bool = False,
    resampler: ResamplerFactory | None = None,
) -> CI:
    """Bootstrap CI of a set metric ``fn(real, fake) -> float`` (FID, KID, FVD, ...).

    Each side is given either as a 2-D array with one row per video, or as a list with one
    ``[k_i, D]`` array per video (e.g. per-frame features): resampling is always over *videos*
    (whole blocks of rows), so frames of one video stay together. The two sides are resampled
    independently (``paired=True`` draws the same indices on both sides, for sets that are
    matched one-to-one). ``fn`` is called ``n_resamples + 1`` times on cached features; nothing
    is re-extracted.

    ``estimate`` is ``fn`` on the full sets; ``n`` is the smaller set's video count. ``bias`` is the mean bootstrap value minus the estimate.

    ``resampler`` (optional) is called once with the per-video blocks of both sides and may return a
    function ``(real indices, fake indices) -> value`` that equals ``fn`` on the stacked resample but
    need not stack it (FID, FVD and KID reuse per-video statistics and kernel blocks:
    their ``bootstrap_resampler`` method). It then replaces ``fn`` for the resamples only: the estimate is still
    ``fn`` on the full sets, and the resample indices are drawn exactly as without it.

    Caveat — FID (and FVD) under resampling with replacement is biased upward: a resample
    holds only about 63% distinct videos, and the duplicates shrink the rank and spread of the
    sample covariance, so the Fréchet distance of a resample is systematically larger than that
    of the full set (which is itself biased upward against the population value, more so for
    small sets). The bootstrap distribution therefore sits mostly *above* the point estimate and
    the raw ``percentile`` interval may not even contain it. ``method="centered"`` shifts the
    bootstrap distribution by ``-bias`` so the percentile interval is placed around the point
    estimate (its width is still the bootstrap spread, an honest measure of the set-to-set
    variability); use it for FID-like metrics, and read either interval as a measure of the
    spread from the choice of videos, not as an unbiased interval for the population FID.
    Unbiased statistics such as KID's MMD² do not have this problem.
    """
    _check_common(n_resamples, level)
    if method not in SET_METHODS:
        raise UsageError(f"unknown set-metric CI method {method!r}: use one of {SET_METHODS}")
    real, n_real = _as_units(real_feats, "real")
    fake, n_fake = _as_units(fake_feats, "fake")
    common: dict[str, Any] = dict(method=method, n_resamples=int(n_resamples), level=float(level))
    n = min(n_real, n_fake)
    if paired and n_real != n_fake:
        raise UsageError(f"paired resampling needs as many real as fake videos, got {n_real} and {n_fake}")
    if n < 2:
        return CI(
            None, None, None, n=n, reason=f"need at least 2 videos per side, got {n_real}/{n_fake}", **common
        )
    estimate = _as_float_or_none(fn(_take(real, np.arange(n_real)), _take(fake, np.arange(n_fake))))
    rng = np.random.default_rng(seed)
    idx_real = resample_indices(n_real, n_resamples, rng)
    idx_fake = idx_real if paired else resample_indices(n_fake, n_resamples, rng)
    fast = resampler(_blocks(real), _blocks(fake)) if resampler is not None else None
    one: ResampledValue = fast if fast is not None else (lambda ir, jf: fn(_take(real, ir), _take(fake, jf)))
    boot = np.array([one(ir, jf) for ir, jf in zip(idx_real, idx_fake, strict=True)], dtype=np.float64)
    fin = boot[np.isfinite(boot)]
    if estimate is None or fin.size < 2:
        return CI(
            None, None, estimate, n=n, reason="metric was not finite on the data or its resamples", **common
        )
    if fin.size < boot.size:
        warnings.warn(
            f"{boot.size - fin.size} of {boot.size} set-metric resamples were not finite", stacklevel=2
        )
    bias = float(fin.mean() - estimate)
    shifted = fin - bias if method == "centered" else fin
    low, high, _ = interval_from_distribution(shifted, estimate, level, "percentile")
    return CI(low, high, estimate, n=n, se=float(fin.std(ddof=1)), bias=bias, **common)
