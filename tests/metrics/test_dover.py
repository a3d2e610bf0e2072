"""``dover`` metric: view sampling, rescaling, extractor and engine behaviour.

References and tolerances:
- Rescaling: the authors' ``fuse_results`` (``evaluate_a_set_of_videos.py``, VQAssessment/DOVER f1ddc96) written
  out with numpy here; 1e-12.
- Aesthetic view: torchvision ``Resize`` on the uint8 tensor (what the authors call), antialias off and on;
  exact.
- Technical view: every 32 px fragment equals the source patch at the recorded offset; exact.
- Temporal sampling: the segment/offset/interval structure of the authors' ``UnifiedFrameSampler``, and
  the looping of short videos (indices modulo T).
- While porting, the whole pipeline (views + network) was compared with the authors' code on the same frames,
  the same random draws and the same seeded random weights: bit-identical views and raw scores, full
  configuration included (details in tests/backbones/test_dover_net.py and the closing note).
- Golden values (``tests/golden/dover_views.npz``): the frame rows and fragment offsets for seed 0 and the
  extractor's raw scores with fixed seeded random weights on a fixed clip, recorded from this port after
  that comparison; they only guard against drift (1e-5).

The networks are heavy on the CPU, so the tests use reduced views (``num_clips`` 1-2, ``clip_len`` 8,
2x2 fragments, 64 px aesthetic frames). The real ``DOVER.pth`` cannot be downloaded here; the engine tests
use a file of random weights, and the missing-weights case.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.backbones.dover import DoverExtractor, ViewConfig, sample_views, temporal_indices
from aigve.backbones.nets.dover import WINDOW, DOVERNet, _relative_index
from aigve.errors import MetricInputError, UsageError
from aigve.metrics.vqa import Dover, dover_scores
from aigve.types import Entry

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dover_views.npz"
SMALL = {"num_clips": 2, "clip_len": 8, "fragments": 2, "fragment_size": 32, "resize": 64}


def _video(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
    frames = [
        np.clip(base + 40 * np.sin(i / 3 + xx / 17.0)[..., None] + rng.normal(0, 12, (h, w, 3)), 0, 255)
        for i in range(t)
    ]
    return np.stack(frames).astype(np.uint8)


def _seeded_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Same recipe as tests/backbones/test_dover_net.py: N(0, 0.05^2) (+1 for LayerNorm scales), numpy PCG64."""
    with torch.device("meta"):
        layout = DOVERNet().state_dict()
    rng = np.random.default_rng(seed)
    out: dict[str, torch.Tensor] = {}
    for k, v in layout.items():
        if v.dtype.is_floating_point:
            x = rng.standard_normal(tuple(v.shape), dtype=np.float32) * np.float32(0.05)
            if "norm" in k and k.endswith("weight"):
                x += np.float32(1.0)
            out[k] = torch.from_numpy(x)
        else:  # relative_position_index: every block uses the full (8, 7, 7) window
            out[k] = _relative_index(WINDOW)
    return out


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dover") / "DOVER-random.pth"
    torch.save(_seeded_state_dict(0), path)
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGVE_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("AIGVE_OFFLINE", "1")


# -- rescaling --------------------------------------------------------------------------------------------
def test_rescaling_matches_authors_fuse_results() -> None:
    rng = np.random.default_rng(0)
    for t, a in rng.normal(0, 0.2, size=(50, 2)):
        zt, za = (t - 0.1107) / 0.07355, (a + 0.08285) / 0.03774
        want = {
            "dover": 1 / (1 + np.exp(-(zt * 0.6104 + za * 0.3896))),
            "dover_technical": 1 / (1 + np.exp(-zt)),
            "dover_aesthetic": 1 / (1 + np.exp(-za)),
        }
        got = dover_scores(t, a)
        for k, v in want.items():
            assert got[k] == pytest.approx(v, abs=1e-12)
    mid = dover_scores(0.1107, -0.08285)
    assert all(v == pytest.approx(0.5, abs=1e-15) for v in mid.values())
    extreme = dover_scores(-1e3, 1e3)  # no overflow far out
    assert extreme["dover_technical"] == 0.0 and extreme["dover_aesthetic"] == 1.0
    assert dover_scores(0.3, 0.0)["dover"] > dover_scores(0.2, 0.0)["dover"]


def test_spec() -> None:
    spec = Dover.spec
    assert spec.family == "nn_based_video" and spec.extra == "nnvqa" and spec.inputs == ("generated",)
    assert [o.name for o in spec.outputs] == ["dover", "dover_technical", "dover_aesthetic"]
    assert all(o.higher_is_better and o.range == (0.0, 1.0) for o in spec.outputs)
    assert spec.weights == ("dover",)
    from aigve.weights import get_weight_spec, weight_names

    assert "dover" in weight_names() and get_weight_spec("dover").filename == "DOVER.pth"
    with pytest.raises(UsageError):
        Dover(bogus=1)
    opts = Dover(seed=3, sampling="center", num_clips=1).extractor_options()
    assert (
        opts["seed"] == 3
        and opts["sampling"] == "center"
        and opts["num_clips"] == 1
        and "weights" not in opts
    )


# -- temporal sampling ------------------------------------------------------------------------------------
def test_temporal_indices_structure_default_config() -> None:
    n = 240
    for seed in range(5):
        rng = np.random.default_rng(seed)
        rows = temporal_indices(n, 32, 3, 2, rng).reshape(3, 32)
        for i, seg in enumerate(rows):  # segment i starts at 80 i, offset in [0, 80 - 64)
            off = seg[0] - 80 * i
            assert 0 <= off < 16
            np.testing.assert_array_equal(seg, 80 * i + off + 2 * np.arange(32))
        aes = temporal_indices(n, 1, 32, 2, rng)  # one frame per 7-frame segment, offset in [0, 7 - 2)
        offs = aes - 7 * np.arange(32)
        assert aes.shape == (32,) and offs.min() >= 0 and offs.max() < 5
    centre = temporal_indices(n, 32, 3, 2, None).reshape(3, 32)
    np.testing.assert_array_equal(centre[:, 0], [7, 87, 167])  # (16 - 1) // 2 = 7


def test_short_video_loops_like_the_authors_sampler() -> None:
    # 16 frames: segments of 5, no room for a 64-frame span: offsets 0, indices wrap modulo 16
    rows = temporal_indices(16, 32, 3, 2, np.random.default_rng(0))
    want = np.concatenate([np.mod(s + 2 * np.arange(32), 16) for s in (0, 5, 10)])
    np.testing.assert_array_equal(rows, want)
    one = temporal_indices(1, 32, 3, 2, np.random.default_rng(0))
    assert one.shape == (96,) and not one.any()


# -- spatial views ----------------------------------------------------------------------------------------
def test_views_deterministic_per_seed_and_centre_mode() -> None:
    frames = _video(40, 150, 200)
    cfg = ViewConfig(**SMALL)
    a, b = sample_views(frames, cfg, seed=5), sample_views(frames, cfg, seed=5)
    assert torch.equal(a.technical, b.technical) and torch.equal(a.aesthetic, b.aesthetic)
    c = sample_views(frames, cfg, seed=6)
    assert not (
        np.array_equal(a.offsets_h, c.offsets_h) and np.array_equal(a.technical_frames, c.technical_frames)
    )
    assert a.technical.shape == (2, 3, 8, 64, 64) and a.aesthetic.shape == (1, 3, 8, 64, 64)
    m0, m1 = (
        sample_views(frames, cfg, seed=0, sampling="center"),
        sample_views(frames, cfg, seed=9, sampling="center"),
    )
    assert torch.equal(m0.technical, m1.technical)
    # cells are 75 x 100 px: fragment offsets are the middle of [0, 43) and [0, 68)
    assert (m0.offsets_h == 21).all() and (m0.offsets_w == 33).all()
    with pytest.raises(UsageError):
        sample_views(frames, cfg, sampling="bogus")  # type: ignore[arg-type]


def test_fragments_are_source_patches() -> None:
    frames = _video(20, 150, 200, seed=2)
    cfg = ViewConfig(**SMALL)
    v = sample_views(frames, cfg, seed=1)
    mean = torch.tensor([123.675, 116.28, 103.53])[:, None, None, None]
    std = torch.tensor([58.395, 57.12, 57.375])[:, None, None, None]
    for k in range(cfg.num_clips):
        raw = (v.technical[k] * std + mean).round().to(torch.uint8)  # [3, 8, 64, 64]
        rows = v.technical_frames[k * 8 : (k + 1) * 8]
        for i, gh in enumerate((0, 75)):
            for j, gw in enumerate((0, 100)):
                h0, w0 = gh + v.offsets_h[i, j, k], gw + v.offsets_w[i, j, k]
                src = torch.from_numpy(frames[rows][:, h0 : h0 + 32, w0 : w0 + 32]).permute(3, 0, 1, 2)
                assert torch.equal(raw[:, :, i * 32 : (i + 1) * 32, j * 32 : (j + 1) * 32], src)


@pytest.mark.parametrize("antialias", [False, True])
def test_aesthetic_view_equals_torchvision_resize(antialias: bool) -> None:
    tv = pytest.importorskip("torchvision")
    frames = _video(24, 90, 120, seed=3)
    cfg = ViewConfig(**{**SMALL, "antialias": antialias})
    v = sample_views(frames, cfg, seed=0)
    src = torch.from_numpy(frames[v.aesthetic_frames]).permute(0, 3, 1, 2)  # [T, 3, H, W] uint8
    ref = tv.transforms.Resize((64, 64), antialias=antialias)(src).permute(1, 0, 2, 3).float()
    mean = torch.tensor([123.675, 116.28, 103.53])[:, None, None, None]
    std = torch.tensor([58.395, 57.12, 57.375])[:, None, None, None]
    torch.testing.assert_close(v.aesthetic[0], (ref - mean) / std, atol=0, rtol=0)


def test_small_frames_upscaled_and_tiny_frames_rejected() -> None:
    cfg = ViewConfig(num_clips=1, clip_len=4, fragments=3, fragment_size=20, resize=32)
    v = sample_views(_video(9, 41, 75, seed=4), cfg, seed=0)  # 41 < 60: upscaled by 60/41 first
    assert v.technical.shape == (1, 3, 4, 60, 60) and torch.isfinite(v.technical).all()
    with pytest.raises(MetricInputError, match="smaller than one 32x32 fragment"):
        sample_views(_video(4, 24, 64), ViewConfig(**SMALL), seed=0)
    with pytest.raises(UsageError):
        ViewConfig(clip_len=7)


# -- golden, extractor, engine ----------------------------------------------------------------------------
def test_golden_views_and_extractor(weights_file: Path) -> None:
    import os

    frames = _video(40, 150, 200)
    v = sample_views(frames, ViewConfig(**SMALL), seed=0)
    ext = DoverExtractor(weights=str(weights_file), seed=0, **SMALL)
    raw = ext.extract(frames)
    assert raw.shape == (1, 2) and np.isfinite(raw).all()
    if os.environ.get("AIGVE_REGEN_GOLDEN") == "1":
        np.savez_compressed(
            GOLDEN,
            technical_frames=v.technical_frames,
            aesthetic_frames=v.aesthetic_frames,
            offsets_h=v.offsets_h,
            offsets_w=v.offsets_w,
            raw=raw,
        )
    with np.load(GOLDEN) as z:
        np.testing.assert_array_equal(v.technical_frames, z["technical_frames"])
        np.testing.assert_array_equal(v.aesthetic_frames, z["aesthetic_frames"])
        np.testing.assert_array_equal(v.offsets_h, z["offsets_h"])
        np.testing.assert_array_equal(v.offsets_w, z["offsets_w"])
        np.testing.assert_allclose(raw, z["raw"], atol=1e-5, rtol=0)
    # determinism and batch-size independence (technical clips one at a time vs together)
    np.testing.assert_array_equal(ext.extract(frames), raw)
    ext.batch_size = 1
    np.testing.assert_allclose(ext.extract(frames), raw, atol=1e-6, rtol=0)
    ident = ext.identity()
    assert ident["options"]["seed"] == 0 and ident["options"]["sampling"] == "random"
    assert ident["weights_sha256"] and len(ident["weights_sha256"]) == 64
    with pytest.raises(UsageError):
        DoverExtractor(bogus=1)


def _dataset(tmp_path: Path, n: int = 2):  # noqa: ANN202
    from aigve.data.dataset import Dataset
    from aigve.video.encode import write_video

    entries = []
    for i in range(n):
        p = write_video(tmp_path / f"v{i}.mp4", _video(12, 96, 128, seed=10 + i))
        entries.append(Entry(id=f"v{i}", generated=p))
    return Dataset(name="t", entries=entries)


def test_missing_weights_gives_per_video_errors(tmp_path: Path) -> None:
    from aigve.api import evaluate

    res = evaluate(_dataset(tmp_path), ["dover"], use_cache=False, bootstrap=0, report=False)
    df = res.per_video  # the run completes; every video carries the error
    assert set(df["video_id"]) == {"v0", "v1"} and df["value"].isna().all() and df["error"].notna().all()
    msg = df["error"].iloc[0]
    assert "DOVER.pth" in msg and "weights" in msg
    assert "QualityAssessment/DOVER" in msg  # where to get it


def test_engine_with_random_weights(tmp_path: Path, weights_file: Path) -> None:
    from aigve.api import evaluate

    opts = {
        "dover": {
            "weights": str(weights_file),
            "num_clips": 1,
            **{k: v for k, v in SMALL.items() if k != "num_clips"},
        }
    }
    res = evaluate(
        _dataset(tmp_path), ["dover"], metric_options=opts, use_cache=False, bootstrap=0, report=False
    )
    df = res.per_video
    assert df["error"].isna().all()
    assert ((df["value"] > 0) & (df["value"] < 1)).all()
    # the engine's value is the rescaling of the extractor's raw scores on the decoded frames
    from aigve.video.decode import decode_video
    from aigve.video.sampling import Window

    clip = decode_video(tmp_path / "v0.mp4", Window())
    ext = DoverExtractor(
        weights=str(weights_file), num_clips=1, **{k: v for k, v in SMALL.items() if k != "num_clips"}
    )
    t, a = ext.extract(clip.frames)[0]
    want = dover_scores(t, a)
    got = df[df["video_id"] == "v0"].set_index("output")["value"]
    for k, v in want.items():
        assert math.isclose(got[k], v, abs_tol=1e-9)
