"""The set bootstrap's fast resamplers (FrechetResampler, KIDResampler, the metrics' bootstrap_resampler)
against the reference: the metric recomputed on the stacked rows of each resample, as before (D x D
covariances from GaussianStats and frechet_distance; kid on the stacked rows)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import aigve.metrics.functional.frechet as frechet_mod
from aigve.errors import UsageError
from aigve.metrics.frame_distribution import FID, KID
from aigve.metrics.functional.frechet import FrechetResampler, frechet_distance
from aigve.metrics.functional.gaussian import GaussianStats
from aigve.metrics.functional.kid import KIDResampler, kid
from aigve.metrics.video_distribution import FVD
from aigve.results.stats import bootstrap_set_metric

REL = 1e-9


def _reference_frechet(x1: np.ndarray, x2: np.ndarray, ddof: int) -> float:
    """The D x D computation the bootstrap used before: GaussianStats, then frechet_distance."""
    s1, s2 = GaussianStats.from_features(x1), GaussianStats.from_features(x2)
    c1, c2 = s1.cov, s2.cov
    if ddof == 0:
        c1, c2 = c1 * ((s1.n - 1) / s1.n), c2 * ((s2.n - 1) / s2.n)
    return frechet_distance(s1.mean, c1, s2.mean, c2)


def _blocks(
    rng: np.random.Generator, videos: int, rows: int | tuple[int, int], dim: int, shift: float, rank: int = 0
) -> list[np.ndarray]:
    """Pooled-ReLU-like features per video (``rank`` > 0: all rows in one ``rank``-dim subspace)."""
    basis = rng.standard_normal((rank, dim)) if rank else None
    out = []
    for _ in range(videos):
        k = rows if isinstance(rows, int) else int(rng.integers(rows[0], rows[1] + 1))
        z = rng.standard_normal((k, rank)) @ basis if basis is not None else rng.standard_normal((k, dim))
        out.append(np.maximum(0.5 * z + 0.3 + shift, 0.0) if basis is None else z + shift)
    return out


def _stack(blocks: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
    return np.concatenate([blocks[i] for i in idx])


CASES = {
    # name: (videos, rows per video, dim, ddof, rank)
    "n<D, frames per video (FID-like)": (12, 16, 300, 1, 0),
    "n>=D, many rows": (40, 8, 48, 1, 0),
    "n>=D, one row per video, biased (FVD-like)": (80, 1, 24, 0, 0),
    "n<D, one row per video, biased": (20, 1, 64, 0, 0),
    "uneven rows per video": (15, (1, 9), 40, 1, 0),
    "rank-deficient, n>=D": (40, 4, 64, 1, 5),
    "rank-deficient, n<D, biased": (10, 3, 64, 0, 5),
}


@pytest.mark.parametrize("route", ["auto", "gram", "cov"])
@pytest.mark.parametrize("case", list(CASES))
def test_frechet_resampler_equals_the_dxd_computation(
    case: str, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos, rows, dim, ddof, rank = CASES[case]
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    b1 = _blocks(rng, videos, rows, dim, 0.0, rank)
    b2 = _blocks(rng, videos + 3, rows, dim, 0.4, rank)
    res = FrechetResampler(b1, b2, ddof=ddof)
    if route != "auto":
        monkeypatch.setattr(res, "_gram_is_cheaper", lambda m1, m2: route == "gram")
    for _ in range(4):
        i1, i2 = rng.integers(0, len(b1), len(b1)), rng.integers(0, len(b2), len(b2))
        ref = _reference_frechet(_stack(b1, i1), _stack(b2, i2), ddof)
        assert res(i1, i2) == pytest.approx(ref, rel=REL)


def test_frechet_resampler_without_the_stored_gram_and_on_identical_sets() -> None:
    rng = np.random.default_rng(1)
    b = _blocks(rng, 10, 6, 90, 0.0)
    res = FrechetResampler(b, b, ddof=1, gram_budget=0)  # cross products computed per resample
    assert res._gram is None
    scale = sum(float(np.trace(GaussianStats.from_features(x).cov)) for x in b)
    everything = np.arange(10)
    assert abs(res(everything, everything)) < 1e-10 * scale  # identical sets: 0 up to rounding
    for _ in range(4):
        i1, i2 = rng.integers(0, 10, 10), rng.integers(0, 10, 10)
        ref = _reference_frechet(_stack(b, i1), _stack(b, i2), 1)
        assert abs(res(i1, i2) - ref) <= REL * scale


def test_frechet_resampler_picks_the_gram_route_below_d_and_the_covariances_well_above(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(2)
    calls: list[str] = []
    small = FrechetResampler(_blocks(rng, 8, 4, 64, 0.0), _blocks(rng, 8, 4, 64, 0.1))
    big = FrechetResampler(_blocks(rng, 100, 4, 16, 0.0), _blocks(rng, 100, 4, 16, 0.1))
    for res in (small, big):
        monkeypatch.setattr(res, "_cross_gram", lambda *a: calls.append("gram") or 0.0)
        monkeypatch.setattr(res, "_cross_cov", lambda *a: calls.append("cov") or 0.0)
    small(np.arange(8), np.arange(8))
    big(np.arange(100), np.arange(100))
    assert calls == ["gram", "cov"]


def test_frechet_resampler_edge_cases() -> None:
    rng = np.random.default_rng(3)
    one_row = [rng.standard_normal((1, 5)) for _ in range(3)]
    res = FrechetResampler(one_row, one_row, ddof=1)
    assert np.isnan(res(np.array([0]), np.array([0, 1])))  # a side with one row: no covariance
    twice = res(np.array([2, 2]), np.array([0, 1]))  # two copies of one row: zero covariance on side 1
    ref = _reference_frechet(np.concatenate([one_row[2]] * 2), np.concatenate(one_row[:2]), 1)
    assert twice == pytest.approx(ref, rel=REL)
    with_empty = [rng.standard_normal((3, 5)), np.empty((0, 5)), rng.standard_normal((2, 5))]
    res_empty = FrechetResampler(with_empty, one_row, ddof=1)
    i1, i2 = np.array([0, 1, 2, 1]), np.array([0, 1, 2])
    ref = _reference_frechet(_stack(with_empty, i1), _stack(one_row, i2), 1)
    assert res_empty(i1, i2) == pytest.approx(ref, rel=REL)
    with pytest.raises(UsageError):
        FrechetResampler(one_row, [rng.standard_normal((2, 6))])
    with pytest.raises(UsageError):
        FrechetResampler(one_row, one_row, ddof=2)
    with pytest.raises(UsageError):
        res(np.array([0, 5]), np.array([0, 1]))


def test_kid_resampler_equals_kid_on_the_stacked_rows() -> None:
    rng = np.random.default_rng(4)
    br = _blocks(rng, 9, (2, 7), 32, 0.0)
    bf = _blocks(rng, 7, (2, 7), 32, 0.3)
    for subset_size, subsets, degree in ((1000, 5, 3), (10, 20, 3), (6, 3, 2)):
        res = KIDResampler(br, bf, subset_size=subset_size, subsets=subsets, degree=degree, seed=5)
        for paired_ok in range(4):
            ir, jf = rng.integers(0, 9, 9), rng.integers(0, 7, 7)
            x, y = _stack(br, ir), _stack(bf, jf)
            m = min(subset_size, len(x), len(y))
            ref = kid(x, y, subset_size=m, subsets=subsets, degree=degree, seed=5).mean
            scale = float(np.abs(ref)) + 1e-3  # MMD² is a difference of kernel means of order 1
            assert abs(res(ir, jf) - ref) <= REL * scale, (subset_size, paired_ok)
    assert np.isnan(KIDResampler([br[0][:1]], bf)(np.array([0]), np.arange(3)))
    assert KIDResampler.fits(1000, 1000) and not KIDResampler.fits(5000, 5000)


def _fid_rows(rng: np.random.Generator, videos: int, frames: int, shift: float) -> list[np.ndarray]:
    """What the fid_inception extractor caches: 2048 pool columns, then 1008 logits (ignored by FID)."""
    return [
        np.concatenate([b, rng.standard_normal((frames, 1008))], axis=1).astype(np.float32)
        for b in _blocks(rng, videos, frames, 2048, shift)
    ]


@pytest.mark.parametrize(
    "metric, make",
    [
        (lambda: FID(), lambda rng, s: _fid_rows(rng, 6, 3, s)),
        (lambda: KID(subset_size=8, subsets=4), lambda rng, s: _fid_rows(rng, 6, 3, s)),
        (lambda: FVD(), lambda rng, s: [b.astype(np.float32) for b in _blocks(rng, 30, 1, 400, s)]),
    ],
    ids=["fid", "kid", "fvd"],
)
def test_metric_resamplers_equal_value_from_features(
    metric: Callable[[], FID | KID | FVD], make: Callable[[np.random.Generator, float], list[np.ndarray]]
) -> None:
    """Each metric's convention (pool columns, ddof=1 for FID, ddof=0 and argument order for FVD,
    KID's subsets) is kept: the resampler equals value_from_features on the stacked resample."""
    m = metric()
    rng = np.random.default_rng(6)
    real, gen = make(rng, 0.0), make(rng, 0.3)
    fast = m.bootstrap_resampler(real, gen)
    assert fast is not None
    for _ in range(4):
        ir, ig = rng.integers(0, len(real), len(real)), rng.integers(0, len(gen), len(gen))
        ref = m.value_from_features(_stack(real, ir), _stack(gen, ig))
        assert ref is not None and fast(ir, ig) == pytest.approx(ref, rel=REL)


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("name", ["fvd", "kid"])
def test_bootstrap_set_metric_with_a_resampler_gives_the_same_interval(name: str, paired: bool) -> None:
    """Same seed, same resample indices, same estimate (bit for bit); bounds equal to 1e-9; deterministic."""
    rng = np.random.default_rng(7)
    if name == "fvd":
        metric: FVD | KID = FVD()
        real = [b.astype(np.float32) for b in _blocks(rng, 24, 1, 400, 0.0)]
        gen = [b.astype(np.float32) for b in _blocks(rng, 24, 1, 400, 0.2)]
    else:
        metric = KID(subset_size=10, subsets=5)
        real, gen = _fid_rows(rng, 8, 4, 0.0), _fid_rows(rng, 8, 4, 0.2)

    def fn(r: np.ndarray, g: np.ndarray) -> float:
        v = metric.value_from_features(r, g)
        return float("nan") if v is None else float(v)

    kw = dict(n_resamples=40, seed=3, method="centered", paired=paired)
    old = bootstrap_set_metric(fn, real, gen, **kw)  # type: ignore[arg-type]
    new = bootstrap_set_metric(fn, real, gen, resampler=metric.bootstrap_resampler, **kw)  # type: ignore[arg-type]
    again = bootstrap_set_metric(fn, real, gen, resampler=metric.bootstrap_resampler, **kw)  # type: ignore[arg-type]
    assert new == again  # deterministic
    assert new.estimate == old.estimate
    for field in ("low", "high", "se", "bias"):
        assert getattr(new, field) == pytest.approx(getattr(old, field), rel=REL), field
    assert (new.n, new.method, new.n_resamples) == (old.n, old.method, old.n_resamples)


def test_bootstrap_set_metric_falls_back_when_the_factory_declines() -> None:
    rng = np.random.default_rng(8)
    real, gen = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)) + 1

    def fn(r: np.ndarray, g: np.ndarray) -> float:
        return float(abs(g.mean() - r.mean()))

    seen: list[int] = []

    def factory(r: list[np.ndarray], g: list[np.ndarray]) -> None:
        seen.append(len(r))
        assert all(b.shape == (1, 3) for b in r + g)  # a 2-D side is one row per video
        return None

    ref = bootstrap_set_metric(fn, real, gen, n_resamples=20)
    assert bootstrap_set_metric(fn, real, gen, n_resamples=20, resampler=factory) == ref and seen == [6]


def test_the_old_route_is_still_what_frechet_distance_does() -> None:
    """Guard: the reference above is the module's own D x D path (not a copy that could drift)."""
    assert frechet_mod.frechet_distance is frechet_distance
