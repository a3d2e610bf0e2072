"""AMT-S network (``aigve.backbones.nets.amt``), the ``amt_s`` extractor and ``vbench_motion_smoothness``.

Reference: VBench's vendored AMT (``vbench/third_party/amt/networks/AMT-S.py``) and its
``MotionSmoothness.motion_score`` (``vbench/motion_smoothness.py``), from the ``vbench`` 0.1.5 wheel (= Vchitect/VBench
commit 45e79ec), loaded by ``tests/backbones/vbench_ref.py`` when ``AIGVE_VBENCH_SRC`` is set. AMT-S is small
(213 tensors, ~3M parameters), so the tests use the real architecture with seeded random weights:

- layout: the state-dict keys and shapes equal VBench's class built from ``cfgs/AMT-S.yaml``;
- network: same weights, same inputs -> the same interpolated frame within 1e-5 (measured: 0.0);
- procedure: VBench's ``motion_score`` on the frames written as PNGs (its image-folder path, lossless) equals our
  extractor + metric within 1e-6;
- golden values recorded from that reference run everywhere, with determinism, batch-size independence, short
  and odd/even-length videos, and the error paths.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigve.backbones.amt import (
    WEIGHTS_FILE,
    AMTSmoothnessExtractor,
    check_scale,
    pad_amounts,
    vram_scale,
)
from aigve.backbones.nets.amt import AMT, random_state_dict
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.vbench_ported import VBenchMotionSmoothness, motion_smoothness_score
from aigve.types import Entry
from tests.backbones.vbench_ref import vbench_module
from tests.conftest import smooth_clip

ATOL_NET = 1e-5
#: VBench motion_score on smooth_clip(t, 128, 144, seed=1, speed=3) with random_state_dict(seed=3), recorded from the
#: reference (tests/backbones/vbench_ref.py, vbench 0.1.5 = Vchitect/VBench 45e79ec) on CPU
GOLDEN = {5: 0.7868884250748911, 6: 0.7884707116353485}


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_state_dict(seed=3)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory, state):
    path = tmp_path_factory.mktemp("amt") / "amt_s_random.pth"
    torch.save({"state_dict": state}, path)  # the released file keeps its weights under 'state_dict'
    return path


def _clip(t: int) -> np.ndarray:
    return smooth_clip(t=t, h=128, w=144, seed=1, speed=3.0)


def _reference_net(state):
    ref = vbench_module("third_party.amt.networks.AMT-S")
    net = ref.Model(corr_radius=3, corr_lvls=4, num_flows=3).eval()
    net.load_state_dict(state, strict=True)
    return net


def test_layout_equals_vbench() -> None:
    ref = vbench_module("third_party.amt.networks.AMT-S")
    with torch.device("meta"):
        theirs = {k: tuple(v.shape) for k, v in ref.Model(3, 4, 3).state_dict().items()}
        ours = {k: tuple(v.shape) for k, v in AMT().state_dict().items()}
    assert ours == theirs
    assert len(ours) == 213


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_network_matches_vbench(state, scale: float) -> None:
    ref = _reference_net(state)
    ours = AMT().eval()
    ours.load_state_dict(state, strict=True)
    side = 128 if scale == 1.0 else 256
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 3, side, side + 32, generator=g)  # multiples of 16 / scale
    x1 = (x0 + 0.1 * torch.randn(x0.shape, generator=g)).clamp(0, 1)
    embt = torch.full((2, 1, 1, 1), 0.5)
    with torch.no_grad():
        a = ref(x0, x1, embt, scale_factor=scale, eval=True)["imgt_pred"]
        b = ours(x0, x1, embt, scale_factor=scale)
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= ATOL_NET
    assert a.std().item() > 0.05  # not a degenerate (all clamped) output


def _vbench_score(state, frames: np.ndarray, tmp_path, scale: float = 1.0) -> float:
    import cv2

    ms = vbench_module("motion_smoothness")
    obj = ms.MotionSmoothness.__new__(ms.MotionSmoothness)
    obj.device = "cpu"
    obj.niters = 1
    obj.initialization()
    if scale != 1.0:  # VBench's GPU branch: anchors such that its formula gives `scale` (s = scale^2 here)
        obj.anchor_resolution = scale**2 * frames.shape[1] * frames.shape[2]
        obj.anchor_memory, obj.anchor_memory_bias, obj.vram_avail = 1, 0, 1
    obj.model = _reference_net(state)
    folder = tmp_path / "frames"
    folder.mkdir(exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return float(obj.motion_score(str(folder)))


def _ours(weights_file, frames: np.ndarray, batch_size: int = 32) -> float:
    ext = AMTSmoothnessExtractor(weights=str(weights_file), batch_size=batch_size)
    metric = VBenchMotionSmoothness(weights=str(weights_file))
    entry = Entry(id="v", generated="v.mp4")  # type: ignore[arg-type]
    return metric.score(entry, {"residuals": ext.extract(frames)})["vbench_motion_smoothness"]


@pytest.mark.parametrize("t", [5, 6])
def test_procedure_matches_vbench(state, weights_file, tmp_path, t: int) -> None:
    frames = _clip(t)
    theirs = _vbench_score(state, frames, tmp_path)
    ours = _ours(weights_file, frames)
    assert ours == pytest.approx(theirs, abs=1e-6)
    if GOLDEN[t] is not None:
        assert theirs == pytest.approx(GOLDEN[t], abs=1e-6)


def test_procedure_with_scale_matches_vbench(state, weights_file, tmp_path) -> None:
    """VBench's down-scaled path (what it picks on small GPUs): network at half size, padding to 32."""
    frames = smooth_clip(t=3, h=250, w=270, seed=4, speed=3.0)
    theirs = _vbench_score(state, frames, tmp_path, scale=0.5)
    ext = AMTSmoothnessExtractor(weights=str(weights_file), scale=0.5)
    assert motion_smoothness_score(ext.extract(frames)) == pytest.approx(theirs, abs=1e-6)


def test_scale_needs_larger_frames(weights_file) -> None:
    with pytest.raises(MetricInputError, match="scale 0.5"):
        AMTSmoothnessExtractor(weights=str(weights_file), scale=0.5).extract(_clip(3))


@pytest.mark.parametrize("t", [5, 6])
def test_golden(weights_file, t: int) -> None:
    assert GOLDEN[t] is not None
    assert _ours(weights_file, _clip(t)) == pytest.approx(GOLDEN[t], abs=1e-5)


def test_deterministic_and_batch_size_independent(weights_file) -> None:
    frames = _clip(5)
    a = AMTSmoothnessExtractor(weights=str(weights_file), batch_size=32).extract(frames)
    b = AMTSmoothnessExtractor(weights=str(weights_file), batch_size=32).extract(frames)
    c = AMTSmoothnessExtractor(weights=str(weights_file), batch_size=1).extract(frames)
    assert a.shape == (2, 1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-3)  # uint8 truncation may flip a rare pixel by 1/255 of a level
    assert motion_smoothness_score(a) == pytest.approx(motion_smoothness_score(c), abs=1e-5)


def test_static_video_scores_higher_than_noise(weights_file) -> None:
    still = np.repeat(_clip(1), 3, axis=0)
    res = AMTSmoothnessExtractor(weights=str(weights_file)).extract(still)
    noisy = np.random.default_rng(0).integers(0, 256, still.shape, dtype=np.uint8)
    worse = AMTSmoothnessExtractor(weights=str(weights_file)).extract(noisy)
    assert motion_smoothness_score(worse) < motion_smoothness_score(res)


def test_short_and_small_videos(weights_file) -> None:
    ext = AMTSmoothnessExtractor(weights=str(weights_file))
    assert ext.extract(_clip(4)).shape == (1, 1)  # the last odd frame has no prediction (as VBench)
    with pytest.raises(MetricInputError, match="at least 3 frames"):
        ext.extract(_clip(2))
    with pytest.raises(MetricInputError, match="at least 113 px"):
        ext.extract(smooth_clip(t=5, h=64, w=144))
    # 120 px pads to 128: fine; odd sizes are padded and unpadded
    assert ext.extract(smooth_clip(t=3, h=120, w=133)[:, :117]).shape == (1, 1)


def test_padding_and_scale_rules() -> None:
    assert pad_amounts(128, 144, 16) == (0, 0, 0, 0)
    assert pad_amounts(117, 133, 16) == (5, 6, 5, 6)
    assert check_scale(0.5) == 0.5
    with pytest.raises(UsageError):
        check_scale(0.3)
    with pytest.raises(UsageError):
        check_scale(1.5)
    assert vram_scale(1080, 1920, 80 * 1024**3) == 1.0
    assert vram_scale(2160, 3840, 24 * 1024**3) < 1.0


def test_identity_and_errors(weights_file, tmp_path) -> None:
    ext = AMTSmoothnessExtractor(weights=str(weights_file))
    ident = ext.identity()
    assert ident["weights"] == "amt_s" and ident["weights_sha256"] and ident["network"]["num_flows"] == 3
    with pytest.raises(UsageError):
        AMTSmoothnessExtractor(bogus=1)
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}}, bad)
    with pytest.raises(WeightsError, match="not an AMT-S checkpoint"):
        AMTSmoothnessExtractor(weights=str(bad)).load()


def test_missing_weights_message_names_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError) as info:
        AMTSmoothnessExtractor().load()
    assert WEIGHTS_FILE in str(info.value)
