"""``lightvqa``: the Light-VQA port (network, features, head) and the metric.

Port check (done while porting; Light-VQA = wenzhouyidu/Light-VQA, code commit
eecf49d1c7d5684d07301b005fd13b4a7527c190, repository HEAD 32b67408a0e8d44d5b4420a3f90291d3255e4f9e): the
authors' ``final_fusion_model.SwinTransformer`` (run from their file in a throwaway directory, not committed)
and our :class:`LightVQANet` with the same weights — a tiny configuration (embed 8, depths 2-2-2-2, heads
1-2-2-4, first_fc 16) filled by :func:`seeded_upstream_state` in the authors' key order, loaded into ours
through :func:`upstream_to_ours` — gave identical scores (|diff| = 0.0) on seeded 512x960 inputs;
tests/golden/lightvqa_net.npz holds their scores and the key names/shapes of their full-size
``swin_small_patch4_window7_224()`` state dict, so the port cannot drift. No real checkpoint can be downloaded
here (Google Drive only): scores on the released weights are not tested.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.backbones.lightvqa import (
    BC_SCALE,
    band_brightness,
    brightness_consistency,
    key_frame_rows,
    preprocess_key_frames,
)
from aigve.backbones.nets.lightvqa import LightVQANet, ours_to_upstream, upstream_to_ours
from aigve.backbones.registry import build_extractor, known_extractors
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.catalog import get_metric_class
from aigve.types import Entry
from tests.backbones.staged import build_scorer, staged_score

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "lightvqa_net.npz"
TINY = {"embed_dim": 8, "depths": (2, 2, 2, 2), "num_heads": (1, 2, 2, 4), "first_fc": 16}
TINY_FEATURES = 2 * 64 + 128  # 2C + brightness + noise with C = 8 * 2**3


def seeded_upstream_state() -> tuple[dict[str, torch.Tensor], torch.Generator]:
    """The tiny net's weights in the authors' layout: N(0, 0.1^2) from seed 0 in their key order (the
    constant relative-position indices kept), head2.bias = 50 so the clamp to [0, 100] does not hide the
    output; returns the generator too (the golden inputs are drawn from it next)."""
    state = ours_to_upstream(LightVQANet(**TINY).state_dict())
    g = torch.Generator().manual_seed(0)
    for k, v in state.items():
        if not k.endswith("relative_position_index"):
            state[k] = torch.randn(v.shape, generator=g) * 0.1
    state["head2.bias"] = torch.tensor([50.0])
    return state, g


def tiny_net() -> tuple[LightVQANet, torch.Tensor, torch.Tensor]:
    state, g = seeded_upstream_state()
    net = LightVQANet(**TINY).eval()
    net.load_state_dict(upstream_to_ours(state), strict=True)
    x = torch.randn(3, 3, 512, 960, generator=g)
    y = torch.randn(3, 2448, generator=g)
    return net, x, y


# ---------------------------------------------------------------------------------------------- net
def test_state_dict_layout_equals_authors_layout_key_for_key() -> None:
    g = np.load(GOLDEN)
    theirs = [str(k) for k in g["keys"]]
    shapes = {
        k: tuple(int(d) for d in s[:n]) for k, s, n in zip(theirs, g["shapes"], g["ndims"], strict=True)
    }
    with torch.device("meta"):
        ours = LightVQANet().state_dict()
    mapped = ours_to_upstream(ours)
    assert list(mapped) == theirs  # same names, same order (357 entries)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == shapes
    assert list(upstream_to_ours(dict.fromkeys(theirs, torch.zeros(1)))) == list(ours)
    # nn.DataParallel's prefix is accepted too
    assert list(upstream_to_ours({"module." + k: torch.zeros(1) for k in theirs})) == list(ours)


def test_net_equals_authors_golden_scores() -> None:
    g = np.load(GOLDEN)
    net, x, y = tiny_net()
    with torch.inference_mode():
        out = net(x, y).numpy()
        shifted = net(x * 0.5 + 1.0, y).numpy()
        split = net.head_forward(net.frame_features(x), y).numpy()
        one_by_one = torch.cat([net(x[i : i + 1], y[i : i + 1]) for i in range(3)]).numpy()
    np.testing.assert_allclose(out, g["score"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(shifted, g["score_shifted"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(split, out, rtol=1e-6, atol=0)
    np.testing.assert_allclose(one_by_one, out, rtol=1e-5, atol=0)  # batch-size independent


def test_hand_features_from_first_principles() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 512, 960)).astype(np.float32)
    bright, noise = LightVQANet.hand_features(torch.from_numpy(x))
    gray = x.mean(axis=1)
    pooled = gray.reshape(2, 32, 16, 64, 15).max(axis=(2, 4))  # kernel = stride = (16, 15)
    np.testing.assert_allclose(bright.numpy(), pooled.mean(axis=1) / 10, rtol=1e-5, atol=1e-6)
    rows = gray.reshape(2, 32, 64, 240)  # row-major reshape, as the authors' torch.reshape
    np.testing.assert_allclose(noise.numpy(), rows.var(axis=-1, ddof=1).mean(axis=1), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="512x960"):
        LightVQANet(**TINY).frame_features(torch.zeros(1, 3, 224, 224))


def test_clamped_to_0_100() -> None:
    net, x, y = tiny_net()
    with torch.no_grad():
        net.head2.bias.fill_(1e4)
        assert torch.all(net(x[:1], y[:1]) == 100)
        net.head2.bias.fill_(-1e4)
        assert torch.all(net(x[:1], y[:1]) == 0)


# ------------------------------------------------------------------------------------ features
def test_key_frames() -> None:
    assert key_frame_rows(100) == list(range(8))  # what extract_key_frames.py saves (sequential reads)
    assert key_frame_rows(100, "strided") == [0, 12, 24, 36, 48, 60, 72, 84]
    assert key_frame_rows(5) == [0, 1, 2, 3, 4, 4, 4, 4]  # short: last frame repeated
    assert key_frame_rows(5, "strided") == [0, 1, 2, 3, 4, 4, 4, 4]
    with pytest.raises(UsageError):
        key_frame_rows(10, "middle")


def test_band_brightness_matches_pil_and_torchvision() -> None:
    PIL = pytest.importorskip("PIL.Image")
    transforms = pytest.importorskip("torchvision.transforms")
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (2, 30, 40, 3)).astype(np.float32)
    frames = np.clip(np.kron(small, np.ones((1, 12, 12, 1))) + rng.normal(0, 6, (2, 360, 480, 3)), 0, 255)
    frames = frames.astype(np.uint8)
    # brightness_consistency.py: Resize([720, 1280]), ToTensor, Normalize(0.485, 0.229), reshape [144, 80, 80]
    t = transforms.Compose(
        [transforms.Resize([720, 1280]), transforms.ToTensor(), transforms.Normalize([0.485], [0.229])]
    )
    ref = np.stack(
        [t(PIL.fromarray(f).convert("L")).reshape(144, 80, 80).flatten(1).mean(1).numpy() for f in frames]
    )
    ours = band_brightness(frames)
    assert ours.shape == (2, 144)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)  # float32 sums in torch vs float64 here


def test_brightness_consistency_slots_and_padding() -> None:
    rng = np.random.default_rng(2)
    b = rng.standard_normal((37, 144))
    bc = brightness_consistency(b)
    ref = np.stack([b[4 * i : 4 * i + 4].var(axis=0, ddof=1) for i in range(8)])  # number = 37 // 8 = 4
    np.testing.assert_allclose(bc, ref, rtol=1e-12)
    assert np.all(brightness_consistency(b[:15]) == 0)  # one frame per slot: 0 (the authors' var gives NaN)
    assert np.all(brightness_consistency(b[:5]) == 0)
    np.testing.assert_allclose(brightness_consistency(b[:16]), (b[0:16:2] - b[1:16:2]) ** 2 / 2, rtol=1e-12)


# ------------------------------------------------------------------------------------ extractor + head
@pytest.fixture
def weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    state, _ = seeded_upstream_state()
    path = tmp_path / "last2_SI+TI_epoch_16_SRCC_0.937369.pth"
    torch.save(state, path)  # the authors' layout, as their train.py saves model.state_dict()
    return str(path)


def _extractor(path: str, batch_size: int):
    ext = build_extractor("lightvqa_spatial", batch_size=batch_size, weights=path)
    ext.build = partial(LightVQANet, **TINY)
    return ext


@pytest.mark.slow
def test_extractor_through_loader_batch_size_and_determinism(weights_file: str) -> None:
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (18, 40, 56, 3), dtype=np.uint8)
    a = _extractor(weights_file, 8)  # one key frame per forward
    assert a.frame_windows(18, 8.0) == [list(range(8))]  # it declares (and reads) only its key frames
    fa = a.extract(frames, 8.0)
    fb = _extractor(weights_file, 64).extract(frames, 8.0)  # all 8 at once
    assert fa.shape == (8, TINY_FEATURES) and fa.dtype == np.float32
    np.testing.assert_allclose(fa, fb, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fa, a.extract(frames, 8.0))
    net, _, _ = tiny_net()
    with torch.inference_mode():
        ref = net.frame_features(preprocess_key_frames(torch.from_numpy(frames[:8]))).numpy()
    np.testing.assert_allclose(fa, ref, rtol=1e-5, atol=1e-5)
    # the brightness rows come from their own per-frame extractor; the head turns them into consistency
    bright = build_extractor("lightvqa_brightness", batch_size=4)
    assert bright.frame_windows(18, 8.0) is None and bright.kind == "frames" and not bright.neural
    np.testing.assert_array_equal(bright.extract(frames, 8.0), band_brightness(frames))
    assert len(a.weights_sha256() or "") == 64
    # fewer than 8 frames (the authors' code divides by zero): the last frame repeated, consistency 0
    short = a.extract(frames[:5], 8.0)
    np.testing.assert_allclose(short[:5], fa[:5], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(short[5:], np.repeat(short[4:5], 3, axis=0))
    assert np.all(brightness_consistency(bright.extract(frames[:5], 8.0)) == 0)


def test_head_scores_slots_with_padding_and_bc_scale(weights_file: str) -> None:
    m = get_metric_class("lightvqa")(weights=weights_file)
    scorer = build_scorer(m)
    ext = _extractor(weights_file, 32)
    scorer.bind_upstream(ext, "spatial")
    rng = np.random.default_rng(4)
    spatial = rng.standard_normal((8, TINY_FEATURES)).astype(np.float32)
    motion = rng.standard_normal((3, 2304)).astype(np.float32)  # 3 seconds: the last repeated to 8
    bright = rng.standard_normal((37, 144))  # band means of 37 frames: 8 slots of 4
    feats = {"spatial": spatial, "motion": motion, "brightness": bright}
    got = staged_score(m, Entry("v", Path("v.mp4")), None, scorer, **feats)
    net, _, _ = tiny_net()
    bc = brightness_consistency(bright).astype(np.float32)
    y = np.concatenate([motion[[0, 1, 2, 2, 2, 2, 2, 2]], BC_SCALE * bc], 1)
    with torch.inference_mode():
        q = net.head_forward(torch.from_numpy(spatial), torch.from_numpy(y))
    assert got["lightvqa"] == pytest.approx(float(q.double().mean()), rel=1e-6)
    assert 0.0 <= got["lightvqa"] <= 100.0
    long_motion = rng.standard_normal((12, 2304)).astype(np.float32)  # > 8 seconds: the first 8
    a = staged_score(m, Entry("v", Path("v.mp4")), None, scorer, **{**feats, "motion": long_motion})
    b = staged_score(m, Entry("v", Path("v.mp4")), None, scorer, **{**feats, "motion": long_motion[:8]})
    assert a == b
    for bad in ({"spatial": spatial[:5]}, {"brightness": bright[:, :100]}):
        with pytest.raises(MetricInputError):
            staged_score(m, Entry("v", Path("v.mp4")), None, scorer, **{**feats, **bad})


def test_metric_options_and_upstreams() -> None:
    cls = get_metric_class("lightvqa")
    spec = cls.spec
    assert spec.family == "nn_based_video" and spec.extra == "nnvqa" and spec.inputs == ("generated",)
    assert spec.outputs[0].range == (0.0, 100.0) and spec.weights == ("lightvqa", "slowfast_r50")
    ups = build_scorer(
        cls(weights="/x/l.pth", slowfast_weights="/x/s.pyth", key_frames="strided")
    ).upstreams()
    assert ups["spatial"] == ("lightvqa_spatial", {"weights": "/x/l.pth", "key_frames": "strided"})
    assert ups["motion"] == ("slowfast_r50", {"weights": "/x/s.pyth"})
    assert ups["brightness"] == ("lightvqa_brightness", {})
    # the brightness rows: a registered per-frame extractor without a network or options
    assert "lightvqa_brightness" in known_extractors()
    bright = build_extractor("lightvqa_brightness")
    bright.set_precision("bf16")
    assert (
        bright.kind == "frames" and "precision" not in bright.identity() and bright.weights_sha256() is None
    )
    with pytest.raises(UsageError, match="no option"):
        build_extractor("lightvqa_brightness", size=720)
    with pytest.raises(UsageError, match="uint8"):
        bright.extract(np.zeros((2, 8, 8, 3), dtype=np.float32))
    with pytest.raises(UsageError):
        cls(key_frames="every")


def test_wrong_checkpoint_is_a_weights_error(tmp_path: Path, weights_file: str) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"head.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(WeightsError, match="Light-VQA"):
        build_extractor("lightvqa_spatial", weights=str(bad)).ensure_loaded()


def test_lightvqa_plus_names_lightvqa_as_alternative() -> None:
    for name in ("lightvqa+", "lightvqa_plus"):
        with pytest.raises(UsageError, match="not published") as e:
            get_metric_class(name)
        assert "`lightvqa`" in str(e.value)


def test_missing_checkpoint_gives_per_video_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigve.api import evaluate
    from aigve.video.encode import write_video

    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    vids = tmp_path / "videos"
    vids.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_video(vids / f"{name}.mp4", rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), fps=8)
    res = evaluate(vids, ["lightvqa"], report=False, bootstrap=0)
    rows = [r for r in res.records if r.metric == "lightvqa"]
    assert len(rows) == 2 and all(r.value is None for r in rows)
    assert all("last2_SI+TI_epoch_16_SRCC_0.937369.pth" in (r.error or "") for r in rows)


class _StubSlowFast(torch.nn.Module):
    """No parameters (loads an empty state dict strictly); SlowFastR50's ``pathways``/``pooled`` interface:
    per-pathway channel means tiled to 2048 / 256 columns, so the motion rows depend on the clip."""

    @staticmethod
    def pathways(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, :, ::4], x

    def pooled(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = slow.mean((2, 3, 4))
        return s.repeat(1, 683)[:, :2048], fast.mean((2, 3, 4)).repeat(1, 86)[:, :256]


def test_engine_end_to_end_matches_direct_computation(
    weights_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aigve.backbones.lightvqa as lv
    import aigve.backbones.simplevqa as sv
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.video.decode import decode_video
    from aigve.video.encode import write_video

    monkeypatch.setattr(lv, "LightVQANet", partial(LightVQANet, **TINY))
    monkeypatch.setattr(sv, "SlowFastR50", _StubSlowFast)
    sf = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": {}}, sf)
    rng = np.random.default_rng(6)
    path = tmp_path / "a.mp4"
    write_video(path, rng.integers(0, 256, (12, 32, 48, 3), dtype=np.uint8), fps=4)
    opts = {"weights": weights_file, "slowfast_weights": str(sf)}
    cfg = RunConfig(metrics=["lightvqa"], metric_options={"lightvqa": opts}, bootstrap=0, progress=False)
    res = Engine(Dataset("t", [Entry("a", path)]), cfg).run()
    (rec,) = [r for r in res.records if r.metric == "lightvqa"]
    assert rec.error is None and rec.value is not None

    clip = decode_video(path)
    spatial = _extractor(weights_file, 32).extract(clip.frames, clip.fps)
    motion_ext = build_extractor("slowfast_r50", weights=str(sf))
    motion = motion_ext.extract(clip.frames, clip.fps)
    assert motion.shape == (3, 2304)  # 12 frames at 4 fps: 3 seconds, repeated to 8 slots by the head
    bc = brightness_consistency(band_brightness(clip.frames)).astype(np.float32)
    net, _, _ = tiny_net()
    y = np.concatenate([motion[[0, 1, 2, 2, 2, 2, 2, 2]], BC_SCALE * bc], 1)
    with torch.inference_mode():
        q = net.head_forward(torch.from_numpy(spatial), torch.from_numpy(y.astype(np.float32)))
    assert rec.value == pytest.approx(float(q.double().mean()), rel=1e-5)
