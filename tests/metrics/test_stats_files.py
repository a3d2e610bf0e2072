"""Statistics files of other tools (pytorch-fid 0.3.0, clean-fid 0.1.35, cd-fvd 0.1.1) read as the real side,
and ours written in their formats.

References: pytorch-fid's ``calculate_frechet_distance`` and ``np.cov`` (ddof=1), clean-fid's
``get_reference_statistics`` (its loader, file naming included), cd-fvd's ``FeatureStats`` (its own ``save`` /
``get_mean_cov``, the biased covariance) and ``compute_fvd_from_stats``. Tolerances: float64 sums vs two-pass
numpy, relative 1e-9 on means/covariances; Fréchet distances (different sqrtm routes) relative 1e-6.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigve.errors import UsageError
from aigve.metrics.frame_distribution import FID
from aigve.metrics.functional.frechet import frechet_from_stats
from aigve.metrics.functional.gaussian import GaussianStats
from aigve.metrics.functional.stats_files import (
    MomentStats,
    export_stats,
    load_reference_stats,
    read_stats_file,
)
from aigve.metrics.video_distribution import FVD
from aigve.types import Entry

pytorch_fid = pytest.importorskip("pytorch_fid.fid_score")
cleanfid_features = pytest.importorskip("cleanfid.features")
cdfvd_utils = pytest.importorskip("cdfvd.utils.metric_utils")
cdfvd_fvd = pytest.importorskip("cdfvd.fvd")

D = 16
EFF_DIM = 1280
META = {"backbone": "efficientnet_lite0", "extractor_options": {"output": "pool"}, "frames_per_video": 4}


def rows(n: int, d: int = D, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + shift + rng.normal(size=d)


def ours(tmp_path: Path, x: np.ndarray, meta: dict[str, Any] | None = None) -> Path:
    return GaussianStats.from_features(x).save(tmp_path / "ours.npz", meta=meta or META)


def test_pytorch_fid_export_round_trip_gives_the_same_fid(tmp_path: Path) -> None:
    real, gen = rows(300, seed=1), rows(200, seed=2, shift=0.5)
    out = export_stats(ours(tmp_path, real), "pytorch-fid", tmp_path / "exported.npz")
    with np.load(out) as f:  # what pytorch-fid's _compute_statistics_of_path reads
        mu, sigma = f["mu"][:], f["sigma"][:]
    np.testing.assert_allclose(mu, real.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(real, rowvar=False), rtol=1e-9, atol=1e-12)
    g = GaussianStats.from_features(gen)
    ref = pytorch_fid.calculate_frechet_distance(mu, sigma, g.mean, g.cov)
    ours_value = frechet_from_stats(GaussianStats.from_features(real), g)
    back = read_stats_file(out)
    assert back.format == "mu-sigma" and back.n == 300 and isinstance(back.stats, MomentStats)
    assert frechet_from_stats(back.stats, g) == pytest.approx(ref, rel=1e-6)
    assert ours_value == pytest.approx(ref, rel=1e-6)


def test_clean_fid_export_is_found_and_read_by_clean_fids_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = rows(120, seed=3)
    folder = tmp_path / "cleanfid_stats"
    meta = {**META, "extractor_options": {"output": "both", "resize": "clean"}}
    out = export_stats(ours(tmp_path, real, meta), "clean-fid", folder, name="MyVideos")
    assert out.name == "myvideos_clean_custom_na.npz"  # clean mode from resize=clean
    # clean-fid looks in its package folder and downloads what is missing: point it at ours, no network
    monkeypatch.setattr(
        cleanfid_features, "check_download_url", lambda local_folder, url: str(folder / os.path.basename(url))
    )
    mu, sigma = cleanfid_features.get_reference_statistics("MyVideos", 0, mode="clean", split="custom")
    np.testing.assert_allclose(mu, real.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(real, rowvar=False), rtol=1e-9, atol=1e-12)
    cleanfid_fid = pytest.importorskip("cleanfid.fid")
    g = GaussianStats.from_features(rows(90, seed=13, shift=0.4))
    assert cleanfid_fid.frechet_distance(g.mean, g.cov, mu, sigma) == pytest.approx(
        frechet_from_stats(g, GaussianStats.from_features(real)), rel=1e-6
    )
    legacy = export_stats(ours(tmp_path, real), "clean-fid", folder, name="x")
    assert legacy.name == "x_legacy_pytorch_custom_na.npz"  # resize=pytorch-fid (or unrecorded)
    with pytest.raises(UsageError, match="--name"):
        export_stats(ours(tmp_path, real), "clean-fid", folder)
    with pytest.raises(UsageError, match=r"\.npz"):
        export_stats(ours(tmp_path, real), "pytorch-fid", tmp_path / "x.txt")


def test_clean_fid_kid_feature_file_is_read_as_rows(tmp_path: Path) -> None:
    x = rows(50, seed=4)
    np.savez_compressed(tmp_path / "k_clean_custom_na_kid.npz", feats=x)  # clean-fid's make_custom_stats
    sf = read_stats_file(tmp_path / "k_clean_custom_na_kid.npz")
    assert sf.format == "feats" and sf.n == 50
    np.testing.assert_allclose(sf.stats.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)


def _cdfvd_pickle(tmp_path: Path, x: np.ndarray, **kw: Any) -> Path:
    fs = cdfvd_utils.FeatureStats(**({"capture_mean_cov": True} | kw))
    for chunk in np.array_split(x, 3):
        fs.append(chunk)
    path = tmp_path / "real_stats.pkl"
    fs.save(str(path))
    return path


def test_cdfvd_pickle_gives_cdfvds_fvd_exactly(tmp_path: Path) -> None:
    real, gen = rows(80, seed=5), rows(60, seed=6, shift=0.2)
    path = _cdfvd_pickle(tmp_path, real)
    sf = read_stats_file(path)
    assert sf.format == "cd-fvd" and sf.n == 80
    ref_mu, ref_cov = cdfvd_utils.FeatureStats.load(str(path)).get_mean_cov()
    from aigve.metrics.video_distribution import biased_cov, fvd_from_stats

    np.testing.assert_allclose(sf.stats.mean, ref_mu, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(biased_cov(sf.stats), ref_cov, rtol=1e-9, atol=1e-10)
    fake = cdfvd_utils.FeatureStats(capture_mean_cov=True)
    fake.append(gen)
    ref = float(cdfvd_fvd.cdfvd.compute_fvd_from_stats(None, fake, cdfvd_utils.FeatureStats.load(str(path))))
    # cd-fvd appends float32 features: compare on the same float32 rows
    assert fvd_from_stats(GaussianStats.from_features(gen.astype(np.float32)), sf.stats) == pytest.approx(
        ref, rel=1e-6
    )
    # capture_all only: the rows themselves
    rows_only = read_stats_file(_cdfvd_pickle(tmp_path, real, capture_mean_cov=False, capture_all=True))
    np.testing.assert_allclose(rows_only.stats.mean, ref_mu, rtol=1e-6)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_pickle_naming_anything_but_numpy_arrays_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"num_items": 2, "raw_mean": _Evil(marker)}, fh)
    with pytest.raises(UsageError, match="not read.*pathlib.*convert it"):
        read_stats_file(path)
    assert not marker.exists()
    with open(path, "wb") as fh:
        pickle.dump({"num_items": 3, "raw_mean": np.array([1, "a"], dtype=object)}, fh)
    with pytest.raises(UsageError):
        read_stats_file(path)


def test_foreign_files_need_the_users_backbone_claim_checked_against_the_metric(tmp_path: Path) -> None:
    x = rows(40, d=EFF_DIM // 80, seed=7)
    np.savez(tmp_path / "pf.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    kw: dict[str, Any] = dict(
        metric="fid", backbone="efficientnet_lite0", dim=x.shape[1], expect_meta={}, ddof=1
    )
    with pytest.raises(UsageError, match="--real-stats-backbone efficientnet_lite0"):
        load_reference_stats(tmp_path / "pf.npz", claimed_backbone=None, **kw)
    with pytest.raises(UsageError, match="uses the efficientnet_lite0 backbone"):
        load_reference_stats(tmp_path / "pf.npz", claimed_backbone="fid_inception", **kw)
    with pytest.raises(UsageError, match="16-d features"):
        load_reference_stats(tmp_path / "pf.npz", claimed_backbone="efficientnet_lite0", **{**kw, "dim": 32})
    stats, prov, feats = load_reference_stats(
        tmp_path / "pf.npz", claimed_backbone="efficientnet_lite0", **kw
    )
    assert prov["real_stats_format"] == "mu-sigma" and prov["real_stats_rows"] is None and feats is None
    assert "the user's claim" in prov["real_stats_backbone_source"]
    assert "ddof=1" in prov["real_stats_covariance"]
    # FVD's biased covariance needs n: a mu/sigma file without it is refused, with it converted exactly
    with pytest.raises(UsageError, match="without the number of rows"):
        load_reference_stats(tmp_path / "pf.npz", claimed_backbone="efficientnet_lite0", **{**kw, "ddof": 0})
    np.savez(tmp_path / "pfn.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=40)
    stats, _, _ = load_reference_stats(
        tmp_path / "pfn.npz", claimed_backbone="efficientnet_lite0", **{**kw, "ddof": 0}
    )
    np.testing.assert_allclose(
        stats.biased_cov(),  # type: ignore[attr-defined]
        np.cov(x, rowvar=False, ddof=0),
        rtol=1e-12,
    )


def test_fid_metric_with_a_pytorch_fid_file_equals_pytorch_fid_and_records_the_claim(tmp_path: Path) -> None:
    real, gen = rows(50, d=EFF_DIM, seed=8), rows(40, d=EFF_DIM, seed=9, shift=0.1)
    np.savez(tmp_path / "pf.npz", mu=real.mean(0), sigma=np.cov(real, rowvar=False))  # as pytorch-fid saves
    opts = {"backbone": "efficientnet_lite0", "frames": 4, "real_stats": str(tmp_path / "pf.npz")}
    with pytest.raises(UsageError, match="real-stats-backbone"):
        FID(**opts).bind({})
    m = FID(**opts, real_stats_backbone="efficientnet_lite0")
    m.bind({})
    assert [r.side for r in m.requests()] == ["generated"]
    for i, chunk in enumerate(np.array_split(gen, 10)):
        m.update(Entry(id=str(i), generated=Path(f"{i}.mp4")), "generated", {"gen": chunk})
    out = m.compute()
    ref = pytorch_fid.calculate_frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), gen.mean(0), np.cov(gen, rowvar=False)
    )
    assert out["fid"] == pytest.approx(ref, rel=1e-6)
    p = out["protocol"]
    assert p["real_stats_backbone"] == "efficientnet_lite0" and "claim" in p["real_stats_backbone_source"]
    assert p["n_real_frames"] is None and "ddof=1" in p["covariance"]
    assert m.value_from_features(real, gen) is None  # no per-video real features: no set-level CI


def test_fvd_metric_reads_a_cdfvd_pickle(tmp_path: Path) -> None:
    real, gen = rows(30, d=400, seed=10), rows(25, d=400, seed=11, shift=0.3)
    path = _cdfvd_pickle(tmp_path, real)
    m = FVD(real_stats=str(path), real_stats_backbone="i3d_kinetics400")
    m.bind({"i3d": {"weights_sha256": "0" * 64}})
    m.update(Entry(id="g", generated=Path("g.mp4")), "generated", {"i3d": gen})
    fake = cdfvd_utils.FeatureStats(capture_mean_cov=True)
    fake.append(gen)
    ref = float(cdfvd_fvd.cdfvd.compute_fvd_from_stats(None, fake, cdfvd_utils.FeatureStats.load(str(path))))
    out = m.compute()
    assert out["fvd"] == pytest.approx(ref, rel=1e-5)
    assert (
        out["protocol"]["real_stats_format"] == "cd-fvd"
        and "biased" in out["protocol"]["real_stats_covariance"]
    )
    with pytest.raises(UsageError, match="i3d_kinetics400 backbone"):
        FVD(real_stats=str(path), real_stats_backbone="videomae_v2").bind({})
