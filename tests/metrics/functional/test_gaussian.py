"""GaussianStats: streaming float64 mean/covariance against numpy's two-pass np.mean / np.cov."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aigve.errors import UsageError
from aigve.metrics.functional.gaussian import GaussianStats


def relu_features(rng: np.random.Generator, n: int, d: int, offset: float = 0.0) -> np.ndarray:
    """ReLU-pooled-like features: correlated, non-negative, mean ~0.5 (plus an optional offset)."""
    w = rng.standard_normal((32, d)) / 4
    x = rng.standard_normal((n, 32)) @ w + 0.3 * rng.standard_normal((n, d)) + 0.2
    return np.maximum(x, 0.0) + offset


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def feats() -> np.ndarray:
    return relu_features(np.random.default_rng(0), 1000, 64)


def test_mean_cov_match_numpy(feats: np.ndarray) -> None:
    st = GaussianStats(64).update(feats)
    assert st.n == 1000
    assert rel_err(st.mean, feats.mean(axis=0)) < 1e-12
    assert rel_err(st.cov, np.cov(feats, rowvar=False)) < 1e-12  # ddof=1 like np.cov / pytorch-fid


@pytest.mark.parametrize("batch", [1, 7, 100, 1000])
def test_batch_size_independence(feats: np.ndarray, batch: int) -> None:
    st = GaussianStats(64)
    for i in range(0, len(feats), batch):
        st.update(feats[i : i + batch])
    one = GaussianStats.from_features(feats)
    assert st.n == one.n
    assert rel_err(st.cov, one.cov) < 1e-10
    assert rel_err(st.mean, one.mean) < 1e-12


def test_merge_halves_equals_one_pass(feats: np.ndarray) -> None:
    a = GaussianStats.from_features(feats[:300])
    b = GaussianStats.from_features(feats[300:])
    assert not np.allclose(a.shift, b.shift)  # different shifts: the merge has to re-centre
    one = GaussianStats.from_features(feats)
    ab = a.copy().merge(b)
    ba = b.copy().merge(a)
    for m in (ab, ba):
        assert m.n == 1000
        assert rel_err(m.mean, one.mean) < 1e-10
        assert rel_err(m.cov, one.cov) < 1e-10
    # merging into an empty instance, and merging an empty one, are no-ops on the values
    e = GaussianStats(64).merge(a).merge(GaussianStats(64))
    assert rel_err(e.cov, a.cov) == 0.0
    assert a.n == 300 and b.n == 700  # inputs unchanged


def test_torch_path_matches_numpy(feats: np.ndarray) -> None:
    st_np = GaussianStats(64).update(feats[:500]).update(feats[500:])
    st_t = GaussianStats(64).update(torch.from_numpy(feats[:500])).update(torch.from_numpy(feats[500:]))
    assert rel_err(st_t.cov, st_np.cov) < 1e-12
    assert rel_err(st_t.mean, st_np.mean) < 1e-12
    # float32 tensors are widened to float64 before accumulation
    f32 = torch.from_numpy(feats).float()
    st32 = GaussianStats.from_features(f32)
    assert rel_err(st32.cov, np.cov(f32.double().numpy(), rowvar=False)) < 1e-12


def test_large_offset_keeps_precision() -> None:
    # mean 1e4, std ~0.5: the unshifted sums formula loses ~8 digits here; the shifted one does not
    x = relu_features(np.random.default_rng(1), 2000, 32, offset=1e4)
    st = GaussianStats(32)
    for i in range(0, 2000, 250):
        st.update(x[i : i + 250])
    ref = np.cov(x, rowvar=False)  # two-pass: centres first
    assert rel_err(st.cov, ref) < 1e-9
    s, o = x.sum(axis=0), x.T @ x
    naive = (o - np.outer(s, s) / len(x)) / (len(x) - 1)
    assert rel_err(naive, ref) > 100 * rel_err(st.cov, ref)  # why the shift is there


def test_usage_errors() -> None:
    st = GaussianStats(4)
    with pytest.raises(UsageError, match="at least 2"):
        _ = st.cov
    with pytest.raises(UsageError, match="no features"):
        _ = st.mean
    with pytest.raises(UsageError, match=r"\[N, 4\]"):
        st.update(np.zeros((3, 5)))
    with pytest.raises(UsageError, match="NaN"):
        st.update(np.full((3, 4), np.nan))
    with pytest.raises(UsageError, match="dim 3"):
        st.merge(GaussianStats(3))
    st.update(np.ones((1, 4)))
    with pytest.raises(UsageError, match="got 1"):
        _ = st.cov


META = {"backbone": "fid_inception", "weights_sha256": "6726825d", "frames": 16, "resolution": [299, 299]}


def test_save_load_roundtrip(tmp_path, feats: np.ndarray) -> None:
    st = GaussianStats.from_features(feats)
    p = st.save(tmp_path / "sub" / "ref.npz", META)
    back = GaussianStats.load(p, expect_meta={**META, "resolution": (299, 299)})  # tuple == stored list
    assert back.n == st.n and back.dim == st.dim
    np.testing.assert_array_equal(back.cov, st.cov)
    np.testing.assert_array_equal(back.mean, st.mean)
    _, meta = GaussianStats.load_with_meta(p)
    assert meta == json.loads(json.dumps(META))
    assert not list((tmp_path / "sub").glob(".tmp-*"))  # atomic write leaves no temp file


def test_load_refuses_mismatched_settings(tmp_path, feats: np.ndarray) -> None:
    p = GaussianStats.from_features(feats).save(tmp_path / "ref.npz", META)
    expect = {**META, "weights_sha256": "ffffffff", "frames": 32, "sampler": "uniform,n=16"}
    with pytest.raises(UsageError) as ei:
        GaussianStats.load(p, expect_meta=expect)
    msg = str(ei.value)
    assert str(p) in msg
    assert 'weights_sha256="6726825d", this run uses weights_sha256="ffffffff"' in msg
    assert "frames=16, this run uses frames=32" in msg
    assert "sampler=<not recorded>" in msg
    assert "backbone" not in msg and "resolution" not in msg  # only the differing settings are listed
    assert "aigve stats compute" in msg


def test_load_bad_files(tmp_path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        GaussianStats.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="cannot read"):
        GaussianStats.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, mu=np.zeros(3))
    with pytest.raises(UsageError, match="not an aigve statistics file"):
        GaussianStats.load(other)
