"""GSTVQA port: the temporal network (``aigve.backbones.nets.gstvqa``) and the VGG16 mean/std extractor
(``aigve.backbones.vgg16_meanstd``).

Golden files (port-drift checks, not references computed by us and copied back):

- ``tests/golden/gstvqa_net.npz``: outputs of the AUTHORS' ``GSTVQA`` class and ``Test_VQADataset``
  (Baoliang93/GSTVQA at commit 8463c9c3e5720349606d8efae7a5aa274bf69e7c, ``GVQA_Cross/cross_test.py``) for the
  seeded random weights of :func:`seeded_gstvqa_state` and the seeded features of :func:`seeded_features`,
  plus the key names and shapes of their ``state_dict()``. Produced once, locally, from a fetched snapshot
  of their code (which is not committed); when generated ours matched theirs to < 1e-6 (see the note in
  the npz).
- ``tests/golden/gstvqa_vgg.npz``: OUR extractor's output for seeded random VGG16 weights on a seeded clip
  (the authors' extraction script is not available, so this only guards against drift); the extractor
  itself is checked against an independent forward-hook + numpy computation below.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.backbones.nets.gstvqa import FEATURE_DIM, INPUT_DIM, MIN_FRAMES, GSTVQANet, pyramid_pool
from aigve.backbones.vgg16_meanstd import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    OUTPUT_DIM,
    TAPS,
    VGG16MeanStdExtractor,
    build_vgg16_features,
    preprocess,
)
from aigve.errors import UsageError

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
GOLDEN_NET = GOLDEN / "gstvqa_net.npz"
GOLDEN_VGG = GOLDEN / "gstvqa_vgg.npz"
NET_SEED = 20210611
VGG_SEED = 7


# ----------------------------------------------------------------------------------- seeded inputs
def seeded_gstvqa_state(seed: int = NET_SEED) -> dict[str, torch.Tensor]:
    """Deterministic random weights for GSTVQANet: N(0, 1/fan_in) per tensor in sorted-name order, and
    ``q_att.2.bias`` = 1 so the temporal attention stays away from 0 (it is a divisor in the pooling)."""
    rng = np.random.default_rng(seed)
    shapes = {k: tuple(v.shape) for k, v in GSTVQANet().state_dict().items()}
    state = {}
    for name in sorted(shapes):
        shape = shapes[name]
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
        state[name] = torch.from_numpy((rng.standard_normal(shape) / math.sqrt(fan_in)).astype(np.float32))
    state["q_att.2.bias"] = torch.ones(1)
    return state


def seeded_features(length: int, seed: int) -> np.ndarray:
    """Deterministic non-negative ``[length, 2944]`` float32 features (means ~|N(0,1)|, stds ~|N(0,0.5)|)."""
    rng = np.random.default_rng(seed)
    means = np.abs(rng.standard_normal((length, FEATURE_DIM)))
    stds = 0.5 * np.abs(rng.standard_normal((length, FEATURE_DIM)))
    return np.concatenate([means, stds], axis=1).astype(np.float32)


@functools.lru_cache(maxsize=2)
def seeded_vgg_features(seed: int = VGG_SEED) -> torch.nn.Sequential:
    """torchvision VGG16 ``features`` with He-normal conv weights and small biases from a seeded generator."""
    feats = build_vgg16_features(None)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for layer in feats:
            if isinstance(layer, torch.nn.Conv2d):
                w = rng.standard_normal(tuple(layer.weight.shape)) * math.sqrt(2.0 / (9 * layer.in_channels))
                layer.weight.copy_(torch.from_numpy(w.astype(np.float32)))
                layer.bias.copy_(
                    torch.from_numpy((0.01 * rng.standard_normal(layer.out_channels)).astype(np.float32))
                )
    return feats.eval()


def seeded_clip(seed: int = VGG_SEED, t: int = 3, h: int = 40, w: int = 56) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, h, w, 3))
    noise = rng.integers(-20, 21, size=(t, h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def seeded_net() -> GSTVQANet:
    net = GSTVQANet()
    net.load_state_dict(seeded_gstvqa_state(), strict=True)
    return net.eval()


def _their_pipeline_ours(feats: np.ndarray, net: GSTVQANet) -> float:
    """Our network on the authors' test-time input: first 500 rows, mean_var over all rows."""
    mean_var = feats[:, :FEATURE_DIM].astype(np.float64).std(axis=0).astype(np.float32)
    seq = torch.from_numpy(feats[:500]).unsqueeze(0)
    with torch.no_grad():
        out = net(seq, torch.tensor([seq.shape[1]]), torch.from_numpy(mean_var).unsqueeze(0))
    return float(out[0])


# ----------------------------------------------------------------------------------- network
def test_state_dict_matches_authors_checkpoint_layout() -> None:
    """Key names and shapes equal those of the authors' GSTVQA().state_dict() (recorded in the golden file),
    so the released checkpoints load with strict=True."""
    g = np.load(GOLDEN_NET)
    theirs = {
        str(k): tuple(int(d) for d in s if d >= 0)
        for k, s in zip(g["state_keys"], g["state_shapes"], strict=True)
    }
    ours = {k: tuple(v.shape) for k, v in GSTVQANet().state_dict().items()}
    assert ours == theirs
    assert len(ours) == 22
    state = {k: torch.zeros(s) for k, s in theirs.items()}
    GSTVQANet().load_state_dict(state, strict=True)
    with pytest.raises(RuntimeError):
        GSTVQANet().load_state_dict({k: v for k, v in state.items() if k != "q_reg"}, strict=True)


def test_matches_authors_model_on_golden_outputs() -> None:
    """Ours vs the authors' model + test-time dataset code, same seeded weights and features: |diff| <= 1e-5
    (relative to max(1, |value|))."""
    g = np.load(GOLDEN_NET)
    assert int(g["seed"]) == NET_SEED
    net = seeded_net()
    for length, feat_seed, expected in zip(g["lengths"], g["feature_seeds"], g["their_outputs"], strict=True):
        got = _their_pipeline_ours(seeded_features(int(length), int(feat_seed)), net)
        assert abs(got - float(expected)) <= 1e-5 * max(1.0, abs(float(expected))), (
            int(length),
            got,
            expected,
        )


def test_batched_equals_one_by_one_and_padding_is_ignored() -> None:
    net = seeded_net()
    lengths = [29, 40, 77]
    feats = [seeded_features(n, 100 + n) for n in lengths]
    mvs = [f[:, :FEATURE_DIM].std(axis=0) for f in feats]
    single = []
    with torch.no_grad():
        for f, mv in zip(feats, mvs, strict=True):
            single.append(
                float(net(torch.from_numpy(f)[None], torch.tensor([len(f)]), torch.from_numpy(mv)[None])[0])
            )
        x = torch.full((3, 90, INPUT_DIM), 123.0)  # junk after each length must not matter
        for i, f in enumerate(feats):
            x[i, : len(f)] = torch.from_numpy(f)
        batched = net(x, torch.tensor(lengths), torch.from_numpy(np.stack(mvs))).numpy()
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


def test_deterministic() -> None:
    net = seeded_net()
    f = seeded_features(50, 1)
    a = _their_pipeline_ours(f, net)
    b = _their_pipeline_ours(f, seeded_net())
    assert a == b


def test_rejects_sequences_shorter_than_the_attention_window() -> None:
    net = seeded_net()
    f = torch.from_numpy(seeded_features(MIN_FRAMES - 1, 3))[None]
    with pytest.raises(ValueError, match="lengths must lie"):
        net(f, torch.tensor([MIN_FRAMES - 1]), torch.zeros(1, FEATURE_DIM))
    with pytest.raises(ValueError, match="expects"):
        net(f[..., :FEATURE_DIM], torch.tensor([MIN_FRAMES - 1]), torch.zeros(1, FEATURE_DIM))


def test_pyramid_pool_against_explicit_bins() -> None:
    """Each level equals numpy bin means (PyTorch adaptive bins: [floor(i*n/k), ceil((i+1)*n/k)))."""
    rng = np.random.default_rng(0)
    n, c = 11, 3
    x = rng.standard_normal((n, c))
    w = rng.uniform(0.5, 1.0, n)
    got = pyramid_pool(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    rows = [x.mean(axis=0)]
    for j in range(1, 7):
        k = 2**j
        for i in range(k):
            lo, hi = (i * n) // k, -((-(i + 1) * n) // k)
            rows.append(x[lo:hi].mean(axis=0) / w[lo:hi].mean())
    np.testing.assert_allclose(got, np.stack(rows), rtol=1e-12)
    assert got.shape == (127, c)


# ----------------------------------------------------------------------------------- VGG extractor
def _extractor(batch_size: int = 32, tap: str = "relu", resize: int | None = None) -> VGG16MeanStdExtractor:
    ext = VGG16MeanStdExtractor(device="cpu", batch_size=batch_size, tap=tap, resize=resize)
    ext.set_model(seeded_vgg_features(), "seeded-test-weights")
    return ext


def _reference_features(frames: np.ndarray, tap: str = "relu") -> np.ndarray:
    """Independent computation: torchvision features with forward hooks on the tapped layers, numpy pooling."""
    feats = seeded_vgg_features()
    maps: list[np.ndarray] = []
    hooks = [
        feats[i].register_forward_hook(lambda _m, _i, out: maps.append(out.double().numpy()))
        for i in TAPS[tap]
    ]
    x = frames.astype(np.float64) / 255.0
    x = (x - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    with torch.no_grad():
        feats(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32)))
    for h in hooks:
        h.remove()
    means = [m.reshape(m.shape[0], m.shape[1], -1).mean(axis=2) for m in maps]
    stds = [m.reshape(m.shape[0], m.shape[1], -1).std(axis=2, ddof=1) for m in maps]
    return np.concatenate(means + stds, axis=1)


@pytest.mark.parametrize("tap", ["relu", "pool"])
def test_extractor_against_hooks_and_numpy(tap: str) -> None:
    frames = seeded_clip(h=64, w=80) if tap == "pool" else seeded_clip()
    got = _extractor(tap=tap).extract(frames)
    assert got.shape == (3, OUTPUT_DIM) and got.dtype == np.float32
    ref = _reference_features(frames, tap)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert (got[:, FEATURE_DIM:] >= 0).all()


def test_extractor_golden_output() -> None:
    """Port-drift check: our output for seeded VGG weights on a seeded clip (tests/golden/gstvqa_vgg.npz)."""
    g = np.load(GOLDEN_VGG)
    frames = seeded_clip(int(g["seed"]))
    np.testing.assert_allclose(_extractor().extract(frames), g["features"], rtol=1e-4, atol=1e-5)


def test_extractor_batch_size_independent_and_deterministic() -> None:
    frames = seeded_clip(t=5)
    a = _extractor(batch_size=1).extract(frames)
    b = _extractor(batch_size=4).extract(frames)
    # float32 conv kernels accumulate in a batch-size dependent order: ~1e-6 noise on features of order 1
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    np.testing.assert_array_equal(_extractor(batch_size=4).extract(frames), b)


def test_preprocess_and_resize() -> None:
    frames = seeded_clip(t=1, h=40, w=60)
    x = preprocess(torch.from_numpy(frames))
    expected = (frames[0].astype(np.float64) / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert tuple(preprocess(torch.from_numpy(frames), resize=32).shape) == (1, 3, 32, 48)
    got = _extractor(resize=32).extract(frames)
    assert got.shape == (1, OUTPUT_DIM) and np.isfinite(got).all()


def test_extractor_options_and_input_checks() -> None:
    with pytest.raises(UsageError, match="tap"):
        VGG16MeanStdExtractor(tap="conv")
    with pytest.raises(UsageError, match="no option"):
        VGG16MeanStdExtractor(output="pool")
    with pytest.raises(UsageError, match="resize"):
        VGG16MeanStdExtractor(resize=8)
    with pytest.raises(UsageError, match="resize"):
        VGG16MeanStdExtractor(tap="pool", resize=40)
    ext = _extractor()
    with pytest.raises(UsageError, match="too small"):
        ext.extract(np.zeros((1, 16, 64, 3), np.uint8))
    with pytest.raises(UsageError, match="uint8"):
        ext.extract(np.zeros((1, 64, 64, 3), np.float32))
    ident = ext.identity()
    assert ident["extractor"] == "vgg16_meanstd" and ident["preprocess"]["tap"] == "relu"
    assert ident["weights_sha256"] == "seeded-test-weights"
    assert _extractor(tap="pool").identity() != ident


def test_vgg_weights_missing_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigve.errors import WeightsError

    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError, match="vgg16-397923af.pth") as exc:
        VGG16MeanStdExtractor().load()
    assert "put it at" in str(exc.value)
