"""``simplevqa`` metric, its ``simplevqa_spatial`` / ``slowfast_r50`` extractors and the SimpleVQA net port.

Port check (done while porting; SimpleVQA = sunwei925/SimpleVQA @ 017edda50e8cdbeb48113a001dbb9af0dbd2030b):
- net: the authors' ``UGC_BVQA_model.resnet50()`` wrapped in ``nn.DataParallel`` (as they saved the checkpoint)
  and our :class:`SimpleVQANet` loaded strictly with the same :func:`seeded_state` weights (seed 3) gave the same
  score on seeded ``[1, 2, 3, 64, 64]`` frames + ``[1, 2, 2304]`` motion features (|diff| = 0.0);
  tests/golden/simplevqa_net.npz holds their key names/shapes and our outputs at that time (port-drift check);
- preprocessing and cutting into seconds: their ``test_demo.video_processing_spatial`` / ``_motion`` (OpenCV
  decode, PIL + torchvision transforms) vs ours on a 20-frame 8 fps 144x192 video: same key frames and clips,
  tensors within two 8-bit levels (max 1.02 / 2.0 levels spatial / motion, mean 0.003 / 0.016 levels; PIL's
  fixed-point bilinear vs torch's).
Here the preprocessing is checked against torchvision + PIL directly (the authors' transforms), and the
no-checkpoint path end to end. No real checkpoint can be downloaded on this machine: scores on real weights are
not tested.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.backbones.nets.simplevqa import SimpleVQAHead, SimpleVQANet, strip_data_parallel
from aigve.backbones.nets.slowfast import SlowFastR50
from aigve.backbones.registry import build_extractor
from aigve.backbones.simplevqa import (
    clip_rows,
    key_frame_rows,
    pad_seconds,
    preprocess_motion,
    preprocess_spatial,
    simplevqa_score,
)
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.catalog import get_metric_class
from aigve.types import Entry
from tests.backbones.staged import build_scorer, staged_score
from tests.backbones.test_slowfast import seeded_state

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "simplevqa_net.npz"


# ---------------------------------------------------------------------------------------------- net
def test_state_dict_layout_equals_authors_checkpoint_layout() -> None:
    g = np.load(GOLDEN)
    theirs = [str(k) for k in g["keys"]]
    assert all(k.startswith("module.") for k in theirs)  # saved from nn.DataParallel
    shapes = {
        k: tuple(int(d) for d in s[:n]) for k, s, n in zip(theirs, g["shapes"], g["ndims"], strict=True)
    }
    ours = SimpleVQANet().state_dict()
    assert list(strip_data_parallel(dict.fromkeys(theirs, torch.zeros(0)))) == list(ours)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k[7:]: v for k, v in shapes.items()}


def test_net_golden() -> None:
    g = np.load(GOLDEN)
    net = SimpleVQANet().eval()
    net.load_state_dict(seeded_state(net.state_dict(), 3), strict=True)
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.standard_normal((1, 2, 3, 64, 64)).astype(np.float32))
    m = torch.from_numpy(rng.standard_normal((1, 2, 2304)).astype(np.float32))
    with torch.inference_mode():
        feats = net.spatial_features(x[0]).numpy()
        score = net(x, m).numpy()
    np.testing.assert_allclose(feats, g["spatial"], rtol=0, atol=1e-5 * float(np.abs(g["spatial"]).max()))
    np.testing.assert_allclose(score, g["score"], rtol=1e-5)
    # batch-size independence of the trunk (eval-mode batch norm): one frame at a time = both together
    with torch.inference_mode():
        one = torch.cat([net.spatial_features(x[0, i : i + 1]) for i in range(2)]).numpy()
    np.testing.assert_allclose(one, feats, rtol=0, atol=1e-5 * float(np.abs(feats).max()))


def test_head_equals_net_head() -> None:
    net = SimpleVQANet().eval()
    head = SimpleVQAHead().eval()
    state = seeded_state(head.state_dict(), 5)
    head.load_state_dict(state, strict=True)
    net.quality.load_state_dict({k[len("quality.") :]: v for k, v in state.items()}, strict=True)
    s, m = torch.randn(3, 7168), torch.randn(3, 2304)
    torch.testing.assert_close(head(s, m), net.frame_scores(s, m))


# ------------------------------------------------------------------------------------ preprocessing
def _pil_reference(frames: np.ndarray, kind: str) -> torch.Tensor:
    PIL = pytest.importorskip("PIL.Image")
    transforms = pytest.importorskip("torchvision.transforms")
    if kind == "spatial":  # test_demo.video_processing_spatial
        t = transforms.Compose(
            [
                transforms.Resize(520),
                transforms.CenterCrop(448),
                transforms.ToTensor(),
                transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
            ]
        )
    else:  # test_demo.video_processing_motion
        t = transforms.Compose(
            [
                transforms.Resize([224, 224]),
                transforms.ToTensor(),
                transforms.Normalize([0.45] * 3, [0.225] * 3),
            ]
        )
    return torch.stack([t(PIL.fromarray(f)) for f in frames])


@pytest.mark.parametrize("hw", [(300, 400), (600, 500), (90, 160)])
def test_preprocessing_matches_torchvision_pil(hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(hw[0])
    small = rng.integers(0, 256, (2, hw[0] // 10, hw[1] // 10, 3)).astype(np.float32)
    frames = np.clip(np.kron(small, np.ones((1, 10, 10, 1))) + rng.normal(0, 8, (2, *hw, 3)), 0, 255).astype(
        np.uint8
    )
    for kind, fn, std in (("spatial", preprocess_spatial, 0.229), ("motion", preprocess_motion, 0.225)):
        ref = _pil_reference(frames, kind)
        ours = fn(torch.from_numpy(frames))
        assert ours.shape == ref.shape
        levels = (ours - ref).abs() * std * 255  # difference in 8-bit levels
        assert float(levels.max()) <= 2.05, kind  # PIL's fixed-point bilinear vs torch: 1-2 levels at worst
        assert float(levels.mean()) < 0.05, kind


def test_seconds_key_frames_and_clips() -> None:
    # test_demo: r = int(round(fps)); n = int(T / r); key frames i*r; clip i = frames[i*r : i*r+32], tail = last
    assert key_frame_rows(20, 8.0) == [0, 8]
    assert key_frame_rows(300, 29.97) == [i * 30 for i in range(10)]
    assert key_frame_rows(5, 8.0) == [0]  # shorter than one second: one second (the authors' code fails)
    clips = clip_rows(20, 8.0)
    assert clips[0] == list(range(20)) + [19] * 12
    assert clips[1] == list(range(8, 20)) + [19] * 20
    assert clip_rows(100, 24.0)[1] == list(range(24, 56))
    with pytest.raises(UsageError, match="--fps"):
        key_frame_rows(10, None)


# ------------------------------------------------------------------------------------ extractors
@pytest.fixture(scope="module")
def _checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("ckpt")
    svqa = d / "UGC_BVQA_model.pth"  # as the authors saved it: from nn.DataParallel, "module." keys
    torch.save({"module." + k: v for k, v in seeded_state(SimpleVQANet().state_dict(), 3).items()}, svqa)
    sf = d / "SLOWFAST_8x8_R50.pyth"  # pytorchvideo's layout: {"model_state": state_dict}
    torch.save({"model_state": seeded_state(SlowFastR50().state_dict(), 0)}, sf)
    return {"simplevqa": str(svqa), "slowfast": str(sf)}


@pytest.fixture
def weight_files(
    _checkpoints: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    return _checkpoints


class _StubSlowFast(torch.nn.Module):
    """Stand-in with SlowFastR50.pooled's interface: per-pathway channel means tiled to 2048 / 256, plus the
    mean over time of the slow input weighted by frame position (so the slow frame choice matters)."""

    def pooled(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.arange(1, slow.shape[2] + 1, dtype=slow.dtype).view(1, 1, -1, 1, 1)
        s = (slow * w).mean((2, 3, 4))
        return s.repeat(1, 2048 // 3 + 1)[:, :2048], fast.mean((2, 3, 4)).repeat(1, 86)[:, :256]


def test_motion_extractor_clips_and_batch_independence(weight_files: dict[str, str]) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (21, 40, 56, 3), dtype=np.uint8)
    outs = []
    for bs in (32, 96):
        ext = build_extractor("slowfast_r50", batch_size=bs, weights=weight_files["slowfast"])
        ext.ensure_loaded()  # strict load of the seeded checkpoint file
        ext.model = _StubSlowFast()
        outs.append(ext.extract(frames, 8.0))
    assert outs[0].shape == (2, 2304)
    np.testing.assert_array_equal(outs[0], outs[1])
    # the same from first principles: clip rows, preprocessing, slow = linspace(0, 31, 8).long()
    for i in range(2):
        rows = [min(i * 8 + j, 20) for j in range(32)]
        x = preprocess_motion(torch.from_numpy(frames[rows])).permute(1, 0, 2, 3)[None]
        slow = x[:, :, [0, 4, 8, 13, 17, 22, 26, 31]]
        s, f = _StubSlowFast().pooled(slow, x)
        np.testing.assert_allclose(outs[0][i], torch.cat([s, f], 1)[0].numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_spatial_extractor_matches_net_and_batch_size(weight_files: dict[str, str]) -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (17, 36, 48, 3), dtype=np.uint8)
    a = build_extractor("simplevqa_spatial", batch_size=4, weights=weight_files["simplevqa"])
    fa = a.extract(frames, 8.0)  # key frames 0 and 8, one per forward
    assert fa.shape == (2, 7168)
    net = SimpleVQANet().eval()
    net.load_state_dict(strip_data_parallel(torch.load(weight_files["simplevqa"])), strict=True)
    with torch.inference_mode():
        ref = net.spatial_features(preprocess_spatial(torch.from_numpy(frames[[0, 8]]))).numpy()
    # one key frame per forward (batch_size 4) = both in one batch: batch-size independent
    np.testing.assert_allclose(fa, ref, rtol=0, atol=1e-5 * float(np.abs(ref).max()))
    b = build_extractor("simplevqa_spatial", batch_size=32, weights=weight_files["simplevqa"])
    assert a.identity() == b.identity()
    assert a.weights_sha256() and len(a.weights_sha256() or "") == 64


def test_wrong_checkpoint_is_a_weights_error(tmp_path: Path, weight_files: dict[str, str]) -> None:
    ext = build_extractor("simplevqa_spatial", weights=weight_files["slowfast"])
    with pytest.raises(WeightsError, match="SimpleVQA"):
        ext.ensure_loaded()


# ---------------------------------------------------------------------------------------- metric
def _head(seed: int = 7) -> SimpleVQAHead:
    head = SimpleVQAHead()
    head.load_state_dict({k: v for k, v in seeded_state(head.state_dict(), seed).items()}, strict=True)
    return head.double().eval()


def test_score_padding_policy_and_formula() -> None:
    head = _head()
    rng = np.random.default_rng(3)
    s, m = (
        rng.standard_normal((2, 7168)).astype(np.float32),
        rng.standard_normal((2, 2304)).astype(np.float32),
    )
    w1, b1 = head.quality[0].weight.detach().numpy(), head.quality[0].bias.detach().numpy()
    w2, b2 = head.quality[1].weight.detach().numpy(), head.quality[1].bias.detach().numpy()
    q = (np.concatenate([s, m], 1).astype(np.float64) @ w1.T + b1) @ w2.T + b2  # the two linear layers
    q = q[:, 0]
    assert simplevqa_score(s, m, head) == pytest.approx((q[0] + 7 * q[1]) / 8, rel=1e-9)  # 8-second window
    assert simplevqa_score(s, m, head, min_seconds=1) == pytest.approx(q.mean(), rel=1e-9)
    s10 = np.repeat(s, 5, axis=0)
    m10 = np.repeat(m, 5, axis=0)
    assert simplevqa_score(s10, m10, head) == pytest.approx(q.mean(), rel=1e-9)  # >= 8 seconds: no padding
    assert simplevqa_score(s, m, head) == simplevqa_score(s, m, head)  # deterministic
    assert pad_seconds(s, 8).shape == (8, 7168)


def test_metric_spec_options_and_inputs() -> None:
    cls = get_metric_class("simplevqa")
    spec = cls.spec
    assert spec.family == "nn_based_video" and spec.extra == "nnvqa" and spec.inputs == ("generated",)
    assert spec.primary.higher_is_better is True
    m = cls(weights="/x/UGC_BVQA_model.pth", slowfast_weights="/x/SLOWFAST_8x8_R50.pyth")
    scorer = build_scorer(m)
    ups = scorer.upstreams()
    assert ups["spatial"] == ("simplevqa_spatial", {"weights": "/x/UGC_BVQA_model.pth"})
    assert ups["motion"] == ("slowfast_r50", {"weights": "/x/SLOWFAST_8x8_R50.pyth"})
    with pytest.raises(UsageError):
        cls(min_seconds=0)
    with pytest.raises(MetricInputError):
        staged_score(
            m, Entry("v", Path("v.mp4")), None, spatial=np.zeros((2, 7168)), motion=np.zeros((3, 2304))
        )


def test_metric_uses_checkpoint_head(weight_files: dict[str, str]) -> None:
    m = get_metric_class("simplevqa")(weights=weight_files["simplevqa"])
    rng = np.random.default_rng(4)
    s, mo = (
        rng.standard_normal((3, 7168)).astype(np.float32),
        rng.standard_normal((3, 2304)).astype(np.float32),
    )
    got = staged_score(m, Entry("v", Path("v.mp4")), None, spatial=s, motion=mo)["simplevqa"]
    net = SimpleVQANet().double().eval()
    net.load_state_dict(strip_data_parallel(torch.load(weight_files["simplevqa"])), strict=True)
    with torch.inference_mode():
        q = net.frame_scores(
            torch.from_numpy(pad_seconds(s, 8)).double(), torch.from_numpy(pad_seconds(mo, 8)).double()
        )
    assert got == pytest.approx(float(q.mean()), rel=1e-9)


def test_missing_checkpoints_give_per_video_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    res = evaluate(vids, ["simplevqa"], report=False, bootstrap=0)
    rows = [r for r in res.records if r.metric == "simplevqa"]
    assert len(rows) == 2 and all(r.value is None for r in rows)
    assert all(
        "UGC_BVQA_model.pth" in (r.error or "") and "simplevqa.weights" in (r.error or "") for r in rows
    )
