"""``fvd`` metric: maths vs cd-fvd 0.1.1, the engine end to end, reference statistics.

References and tolerances:
- Fréchet maths: cd-fvd's ``cdfvd.compute_fvd_from_stats`` (StyleGAN-V ``FeatureStats``: biased covariance,
  ``scipy.linalg.sqrtm`` of the product) on the same feature arrays: relative difference <= 1e-4 (on
  full-rank sets it agrees to ~1e-10; rank-deficient sets leave sqrtm with ~1e-7 noise);
- end to end: aigve's engine (decode, first-N sampler, fused I3D, streaming stats) vs cd-fvd's own I3D
  model (built from its class with the same seeded random weights, loaded through our weights file) and
  cd-fvd's Fréchet function, on the same decoded frames: FVD relative difference <= 1e-4.
Clips are 9 frames at 193 px (the smallest the I3D head accepts) to keep this file fast on 2 CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigve.errors import MetricInputError, UsageError
from aigve.metrics.catalog import get_metric_class
from aigve.metrics.functional.gaussian import GaussianStats
from aigve.metrics.video_distribution import FVD, biased_cov, fvd_from_stats
from aigve.types import Entry

cdfvd_fvd = pytest.importorskip("cdfvd.fvd")
cdfvd_i3d = pytest.importorskip("cdfvd.third_party.i3d.pytorch_i3d")
cdfvd_utils = pytest.importorskip("cdfvd.third_party.i3d.utils")
metric_utils = pytest.importorskip("cdfvd.utils.metric_utils")

FRAMES, RES = 9, 193
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")
OPTS = {"frames": FRAMES, "resolution": RES}


def cdfvd_value(gen: np.ndarray, real: np.ndarray) -> float:
    """cd-fvd's FVD of two feature arrays (its FeatureStats + compute_fvd_from_stats)."""
    fs, rs = (
        metric_utils.FeatureStats(capture_mean_cov=True),
        metric_utils.FeatureStats(capture_mean_cov=True),
    )
    fs.append(gen)
    rs.append(real)
    return float(cdfvd_fvd.cdfvd.compute_fvd_from_stats(None, fs, rs))  # self is unused when both are given


def _features(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(400, 400)) / 20
    return (rng.normal(size=(n, 400)) @ mix + shift + rng.normal(size=400)).astype(np.float32)


def _metric(weights) -> FVD:
    return FVD(**OPTS, weights=str(weights))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory):
    from aigve.backbones.nets.i3d import random_state_dict

    path = tmp_path_factory.mktemp("fvdw") / "i3d_random.pt"
    torch.save(random_state_dict(seed=3), path)
    return path


# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_gen", "n_real"), [(600, 700), (40, 30)])
def test_fvd_maths_matches_cdfvd(n_gen: int, n_real: int) -> None:
    gen, real = _features(n_gen, 1, shift=0.3), _features(n_real, 2)
    ours = fvd_from_stats(GaussianStats.from_features(gen), GaussianStats.from_features(real))
    ref = cdfvd_value(gen, real)
    assert ours == pytest.approx(ref, rel=1e-4)
    # biased covariance = np.cov(ddof=0) = what cd-fvd's FeatureStats returns
    np.testing.assert_allclose(
        biased_cov(GaussianStats.from_features(gen)),
        np.cov(gen.astype(np.float64), rowvar=False, ddof=0),
        atol=1e-12,
    )


def test_streaming_merge_and_order_independence(weights_file) -> None:
    gen, real = _features(50, 4, shift=0.2), _features(60, 5)
    a, b, whole = _metric(weights_file), _metric(weights_file), _metric(weights_file)
    for i, row in enumerate(gen):
        (a if i % 2 else b).update(Entry(f"g{i}", generated=None), "generated", {"i3d": row[None]})  # type: ignore[arg-type]
    for i, row in enumerate(real[::-1]):
        (b if i % 3 else a).update(Entry(f"r{i}", generated=None), "real", {"i3d": row[None]})  # type: ignore[arg-type]
    whole.gen.update(gen)
    whole.real.update(real)
    a.merge(b)
    assert a.compute()["fvd"] == pytest.approx(whole.compute()["fvd"], rel=1e-10)
    assert a.compute()["fvd"] == pytest.approx(cdfvd_value(gen, real), rel=1e-4)


def test_compute_contract_warnings_and_manifest(weights_file) -> None:
    import hashlib

    m = _metric(weights_file)
    m.gen.update(_features(30, 6))
    m.real.update(_features(3000, 7))
    out = m.compute()
    assert set(out) == {"fvd", "n_real", "n_generated", "warnings", "protocol"}
    assert out["n_generated"] == 30 and out["n_real"] == 3000
    assert any("fewer than 2048" in w and "n_generated=30" in w for w in out["warnings"])
    assert any("feature dimension" in w and "n_generated=30" in w for w in out["warnings"])
    assert not any("n_real=3000" in w for w in out["warnings"])
    p = out["protocol"]
    assert p["weights_sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert (p["backbone"], p["feature_layer"], p["frames"], p["stride"], p["resolution"]) == (
        "i3d_kinetics400",
        "logits",
        FRAMES,
        1,
        RES,
    )
    assert p["n_real"] == 3000 and p["n_generated"] == 30 and "none" in p["resampling"]


def test_too_few_videos_is_an_error_not_a_number(weights_file) -> None:
    m = _metric(weights_file)
    m.gen.update(_features(1, 8))
    m.real.update(_features(5, 9))
    with pytest.raises(MetricInputError, match="at least 2 generated"):
        m.compute()


def test_sampler_is_deterministic_first_n_padded() -> None:
    m = FVD()
    assert m.sampler.select(40) == list(range(16))
    assert m.sampler.select(5) == [0, 1, 2, 3, 4] + [4] * 11  # short clip: last frame repeated
    s = FVD(stride=2, frames=10).sampler
    assert s.select(40) == list(range(0, 20, 2))
    assert s.select(7) == [0, 2, 4, 6] + [6] * 6
    with pytest.raises(UsageError):
        FVD(frames=4)
    with pytest.raises(UsageError):
        FVD(resolution=64)
    assert get_metric_class("fvd") is FVD
    assert FVD.spec.weights == ("i3d_tats",) and FVD.spec.level == "set"


def test_reference_stats_round_trip_and_mismatch(tmp_path, weights_file) -> None:
    gen, real = _features(40, 10), _features(50, 11, shift=0.5)
    m = _metric(weights_file)
    m.gen.update(gen)
    m.real.update(real)
    expected = m.compute()["fvd"]
    path = m.save_real_stats(tmp_path / "real.npz")

    loaded = _metric(weights_file)
    loaded.load_real_stats(path)
    assert [r.side for r in loaded.requests()] == ["generated"]  # real videos are not decoded again
    loaded.gen.update(gen)
    out = loaded.compute()
    assert out["fvd"] == pytest.approx(expected, rel=1e-12)
    assert out["n_real"] == 50 and out["protocol"]["real_stats"] == str(path)

    with pytest.raises(UsageError, match="frames=9, this run uses frames=16"):
        FVD(resolution=RES, weights=str(weights_file)).load_real_stats(path)
    with pytest.raises(UsageError, match="stride"):
        FVD(**OPTS, stride=2, weights=str(weights_file)).load_real_stats(path)
    other_weights = tmp_path / "other.pt"
    other_weights.write_bytes(weights_file.read_bytes() + b"\0")
    with pytest.raises(UsageError, match="weights_sha256"):
        FVD(**OPTS, weights=str(other_weights)).load_real_stats(path)


# ----------------------------------------------------------------------------------------------
def _clip(n: int, seed: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for t in range(n):
        base = 128 + 90 * np.sin((xx + 3 * t * (seed + 1)) / (5 + seed)) * np.cos((yy - 2 * t) / 7)
        frame = np.stack([base, np.roll(base, seed * 3, axis=1), 255 - base], axis=-1)
        frames.append(frame + rng.normal(0, 6, frame.shape))
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_engine_end_to_end_vs_cdfvd(tmp_path, weights_file) -> None:
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.video.decode import decode_video
    from aigve.video.encode import write_video

    reals = [write_video(tmp_path / f"real{i}.mp4", _clip(12, 10 + i)) for i in range(2)]
    gens = [
        write_video(tmp_path / "gen0.mp4", _clip(14, 0)),
        write_video(tmp_path / "gen1.mp4", _clip(12, 1)),
        write_video(tmp_path / "gen_short.mp4", _clip(5, 2)),  # shorter than 9 frames: padded
    ]
    entries = [Entry(id=p.stem, generated=p, real=reals[i % 2]) for i, p in enumerate(gens)]
    ds = Dataset(name="fvd-test", entries=entries)
    cfg = RunConfig(
        metrics=["fvd"],
        metric_options={"fvd": {**OPTS, "weights": str(weights_file)}},
        cache_dir=tmp_path / "cache",
        progress=False,
        bootstrap=0,
    )
    res = Engine(ds, cfg).run()
    agg = res.aggregates["fvd"]
    assert agg.error is None, agg.error
    assert agg.extra == {"n_real": 2, "n_generated": 3}
    assert any("fewer than 2048" in w for w in agg.warnings)
    assert agg.provenance["frames"] == FRAMES and agg.provenance["resolution"] == RES
    assert agg.provenance["sampling"]["i3d"]["pad"] == "repeat_last"
    ours = agg.outputs["fvd"].value
    assert ours is not None and ours > 0

    # cd-fvd on the same decoded frames (first 9, last repeated), same weights, its own model + maths
    def frames_of(path):
        clip = decode_video(path)
        rows = list(range(min(FRAMES, clip.num_frames)))
        rows += [rows[-1]] * (FRAMES - len(rows))
        return clip.frames[rows]

    state = torch.load(weights_file, weights_only=True)
    ref = cdfvd_i3d.InceptionI3d(400, in_channels=3)
    ref.load_state_dict(state, strict=True)
    ref.eval()
    videos = np.stack([frames_of(p) for p in [*gens, *reals]])
    with torch.inference_mode():
        feats = ref(cdfvd_utils.preprocess_i3d(videos, (RES, RES))).numpy()
    assert ours == pytest.approx(cdfvd_value(feats[:3], feats[3:]), rel=1e-4)

    # per-video diagnostic: distance to the real mean, from the reference features
    rows = {r.video_id: r.value for r in res.records if r.metric == "fvd" and r.output == "dist_to_real_mean"}
    real_mean = feats[3:].astype(np.float64).mean(axis=0)
    for i, p in enumerate(gens):
        assert rows[p.stem] == pytest.approx(np.linalg.norm(feats[i] - real_mean), rel=1e-4)
    assert not any(r.output == "fvd" for r in res.records)  # the per-video rows are not called FVD

    # reference statistics from this run's real videos, then a run that reads them (no real decoding)
    m = FVD(**OPTS, weights=str(weights_file))
    m.real.update(feats[3:])
    stats_path = m.save_real_stats(tmp_path / "real_stats.npz")
    opts2 = {**OPTS, "weights": str(weights_file), "real_stats": str(stats_path)}
    cfg2 = RunConfig(**{**cfg.__dict__, "metric_options": {"fvd": opts2}})
    res2 = Engine(ds, cfg2).run()
    agg2 = res2.aggregates["fvd"]
    assert agg2.error is None, agg2.error
    assert agg2.outputs["fvd"].value == pytest.approx(ours, rel=1e-4)
    assert agg2.provenance["real_stats"] == str(stats_path)
    opts3 = {"weights": str(weights_file), "real_stats": str(stats_path)}  # frames=16: refused
    cfg3 = RunConfig(**{**cfg.__dict__, "metric_options": {"fvd": opts3}})
    with pytest.raises(UsageError, match="recompute them"):
        Engine(ds, cfg3).run()
