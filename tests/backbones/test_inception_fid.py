"""FID Inception backbone: parity with pytorch-fid 0.3.0 (and torch-fidelity 0.4.0, clean-fid 0.1.35).

No real weights are needed: the reference network is built by pytorch-fid itself with its weight download
replaced by seeded random weights (BN running statistics perturbed too, so batch norm is exercised). That
state dict (the released file's key layout) is saved to a file and loaded by our extractor through its
explicit ``weights=`` path, so both sides run the same numbers through independent code.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch

from aigve.backbones.fid_inception import (
    LOGITS_SLICE,
    OUTPUT_DIMS,
    POOL_SLICE,
    WEIGHTS_FILE,
    FIDInceptionExtractor,
    clean_resize,
    load_fid_inception,
    split_features,
)
from aigve.backbones.nets.fid_inception import FIDInceptionV3
from aigve.backbones.registry import build_extractor, get_extractor_class, known_extractors
from aigve.errors import UsageError, WeightsError

pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
torchvision = pytest.importorskip("torchvision")

TOL = 1e-5  # max abs difference on features (pool values are O(1), max ~6 here)
FID_RTOL = 1e-4


# --------------------------------------------------------------------------------------------------
# reference: pytorch-fid's FID Inception with seeded random weights
# --------------------------------------------------------------------------------------------------
def _randomise(net: torch.nn.Module, seed: int = 0) -> None:
    """He-normal convs, perturbed BN affine + running stats, random fc: activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(1 + 0.2 * (torch.rand(n, generator=g) - 0.5))
                mod.bias.copy_(0.1 * torch.randn(n, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
            elif isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / mod.in_features**0.5)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g))


class Reference:
    """pytorch-fid's ``InceptionV3([3])`` plus the full torchvision-layout net it was cut from (for fc)."""

    def __init__(self, path: Path) -> None:
        captured: dict[str, torch.nn.Module] = {}
        original = pytorch_fid_inception.fid_inception_v3

        def no_download(url: str, progress: bool = True) -> dict[str, torch.Tensor]:
            blank = torchvision.models.inception_v3(
                num_classes=1008, aux_logits=False, weights=None, init_weights=False
            )
            return blank.state_dict()  # same keys as the released file; values replaced below

        def capture() -> torch.nn.Module:
            net = original()
            captured["net"] = net
            return net

        with (
            mock.patch.object(pytorch_fid_inception, "load_state_dict_from_url", no_download),
            mock.patch.object(pytorch_fid_inception, "fid_inception_v3", capture),
        ):
            self.model = pytorch_fid_inception.InceptionV3(
                [3], resize_input=True, normalize_input=True, use_fid_inception=True
            )
        self.full = captured["net"]
        _randomise(self.full)
        self.model.eval()
        self.full.eval()
        self.path = path
        torch.save(self.full.state_dict(), path)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    @torch.inference_mode()
    def features(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 [N,H,W,3] -> pytorch-fid pool3, fc(pool3) and pool3 @ W.T (unbiased logits)."""
        x = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float().div(255) for f in frames])
        pool = self.model(x)[0].flatten(1)
        return {
            "pool": pool.numpy(),
            "logits": self.full.fc(pool).numpy(),
            "logits_unbiased": (pool @ self.full.fc.weight.T).numpy(),
        }


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Any:
    """One intra-op thread: on a busy 2-core CI box OpenMP spinning makes 2 threads several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return Reference(tmp_path_factory.mktemp("fid-weights") / "random_fid_inception.pth")


def _toy_frames(n: int) -> np.ndarray | None:
    env = os.environ.get("AIGVE_TOY_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "aigve_toy"
    videos = sorted(root.rglob("*.mp4")) if root.is_dir() else []
    if not videos:
        return None
    import av

    with av.open(str(videos[0])) as container:
        frames = [
            f.to_ndarray(format="rgb24") for _, f in zip(range(n), container.decode(video=0), strict=False)
        ]
    return np.stack(frames)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """6 random 64x80 frames + 2 natural frames (toy set, resized to 64x80; smooth pattern if absent)."""
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, size=(6, 64, 80, 3), dtype=np.uint8)
    toy = _toy_frames(2)
    if toy is not None:
        t = torch.from_numpy(toy).permute(0, 3, 1, 2).float()
        small = torch.nn.functional.interpolate(t, size=(64, 80), mode="area").round().clamp(0, 255)
        natural = small.permute(0, 2, 3, 1).to(torch.uint8).numpy()
    else:
        base = rng.integers(0, 256, size=(2, 8, 10, 3)).astype(np.float32)
        natural = np.kron(base, np.ones((1, 8, 8, 1), dtype=np.float32)).astype(np.uint8)
    return np.concatenate([noise, natural])


def _fid_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of the sample Gaussians, exact for rank-deficient covariances (n << d).

    tr sqrt(S_a S_b) = sum of singular values of (A_c B_cᵀ) / sqrt((n-1)(m-1)), A_c, B_c centred rows.
    """
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    ac, bc = a - a.mean(0), b - b.mean(0)
    n, m = len(a), len(b)
    cross = np.linalg.svd(ac @ bc.T, compute_uv=False).sum() / np.sqrt((n - 1) * (m - 1))
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + (ac**2).sum() / (n - 1) + (bc**2).sum() / (m - 1) - 2 * cross)


def _extractor(ref: Reference, **kw: Any) -> FIDInceptionExtractor:
    ex = build_extractor("fid_inception", weights=str(ref.path), **kw)
    assert isinstance(ex, FIDInceptionExtractor)
    return ex


# --------------------------------------------------------------------------------------------------
# layout and loading
# --------------------------------------------------------------------------------------------------
def test_state_dict_layout_equals_pytorch_fid(ref: Reference) -> None:
    theirs = {k: tuple(v.shape) for k, v in ref.full.state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in FIDInceptionV3().state_dict().items()}
    assert ours == theirs
    assert "fc.weight" in ours and ours["fc.weight"] == (1008, 2048)
    assert not any(k.startswith("AuxLogits") for k in ours)


def test_strict_load_of_saved_file(ref: Reference, tmp_path: Path) -> None:
    model, sha = load_fid_inception(ref.path)
    assert sha == ref.sha256
    for k, v in ref.full.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k

    # checkpoints written by old PyTorch have no BN num_batches_tracked: still loads
    state = {k: v for k, v in ref.full.state_dict().items() if not k.endswith("num_batches_tracked")}
    old = tmp_path / "old_layout.pth"
    torch.save(state, old)
    load_fid_inception(old)

    # a missing learned tensor, or a wrong shape (torchvision's 1000-class fc), is an error naming the file
    wrong = tmp_path / "wrong_fc.pth"
    state.pop("Mixed_7c.branch_pool.conv.weight")
    torch.save({**state, "fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}, wrong)
    with pytest.raises(WeightsError, match=r"wrong_fc\.pth.*fid_inception"):
        load_fid_inception(wrong)


def test_registered_and_options_validated() -> None:
    assert "fid_inception" in known_extractors()
    assert get_extractor_class("fid_inception") is FIDInceptionExtractor
    with pytest.raises(UsageError, match="output"):
        build_extractor("fid_inception", output="features")
    with pytest.raises(UsageError, match="resize"):
        build_extractor("fid_inception", resize="bicubic")
    with pytest.raises(UsageError, match="no option"):
        build_extractor("fid_inception", dims=2048)


def test_identity_carries_hash_resize_output(ref: Reference) -> None:
    ex = _extractor(ref)
    a = ex.identity()
    assert ex.model is None  # the hash needs no network load (cached features can skip the model)
    assert a["extractor"] == "fid_inception"
    assert a["weights_sha256"] == ref.sha256
    assert a["options"] == {"output": "both", "resize": "pytorch-fid"}
    b = _extractor(ref, resize="clean", output="pool").identity()
    assert b["options"] == {"output": "pool", "resize": "clean"}
    assert a["preprocess"] != b["preprocess"]


# --------------------------------------------------------------------------------------------------
# parity
# --------------------------------------------------------------------------------------------------
def test_parity_with_pytorch_fid_features_and_fid(ref: Reference, frames: np.ndarray) -> None:
    ours = _extractor(ref, batch_size=4).extract(frames)
    assert ours.shape == (8, OUTPUT_DIMS["both"]) and ours.dtype == np.float32
    pool, logits_u = split_features(ours)
    theirs = ref.features(frames)

    assert np.abs(pool - theirs["pool"]).max() <= TOL  # absolute; observed 0.0 (same kernels)
    assert np.abs(logits_u - theirs["logits_unbiased"]).max() <= TOL * 10  # logits are O(1..10)
    assert np.abs(theirs["pool"]).max() > 0.5  # features are not degenerate
    assert 0.0 < (theirs["pool"] == 0).mean() < 0.5  # BN + ReLU exercised, most units alive

    # FID between two subsets, same exact formula on both feature sets
    fid_ours = _fid_exact(pool[:4], pool[4:])
    fid_ref = _fid_exact(theirs["pool"][:4], theirs["pool"][4:])
    assert fid_ref > 1.0
    assert abs(fid_ours - fid_ref) <= FID_RTOL * fid_ref
    try:
        from aigve.metrics.functional.frechet import frechet_distance
    except ImportError:  # functional module written elsewhere; the exact formula above suffices
        return

    def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x.mean(0), np.cov(x.astype(np.float64), rowvar=False)

    via_lib = frechet_distance(*stats(pool[:4]), *stats(pool[4:]))
    assert abs(via_lib - fid_ref) <= FID_RTOL * fid_ref


def test_single_outputs_match_reference(ref: Reference, frames: np.ndarray) -> None:
    sub = frames[[7]]
    want = ref.features(sub)
    for output in ("pool", "logits", "logits_unbiased"):
        got = _extractor(ref, output=output).extract(sub)
        assert got.shape == (1, OUTPUT_DIMS[output])
        assert np.abs(got - want[output]).max() <= TOL * 10, output


def test_architecture_and_unbiased_logits_match_torch_fidelity(ref: Reference) -> None:
    """torch-fidelity's own Inception code, same file, same normalised 299x299 input."""
    tf_ex = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    fid_net = tf_ex.FeatureExtractorInceptionV3(
        "inception-v3-compat",
        ["2048", "logits_unbiased", "logits"],
        feature_extractor_weights_path=str(ref.path),
    )
    x = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (1, 3, 299, 299), dtype=np.uint8))
    model, _ = load_fid_inception(ref.path)
    with torch.inference_mode():
        t_pool, t_lu, t_l = fid_net(x)
        pool = model.pool3((x.float() - 128) / 128)  # torch-fidelity's scaling; no resize at 299
        lu = model.unbiased_logits(pool)
    assert (pool - t_pool).abs().max().item() <= TOL
    assert (lu - t_lu).abs().max().item() <= TOL * 10  # IS input: fc without bias
    assert (model.add_bias(lu) - t_l).abs().max().item() <= TOL * 10


def test_odd_sized_frames_match_reference(ref: Reference) -> None:
    rng = np.random.default_rng(5)
    for shape in [(37, 53), (301, 300)]:
        f = rng.integers(0, 256, size=(1, *shape, 3), dtype=np.uint8)
        got = _extractor(ref, output="pool").extract(f)
        assert np.abs(got - ref.features(f)["pool"]).max() <= TOL


def test_clean_resize_matches_clean_fid_and_feeds_the_net(ref: Reference) -> None:
    rng = np.random.default_rng(6)
    f = rng.integers(0, 256, size=(1, 50, 70, 3), dtype=np.uint8)
    resized = clean_resize(f)
    assert resized.shape == (1, 299, 299, 3) and resized.dtype == np.float32
    try:
        from cleanfid.resize import make_resizer
    except ImportError:
        make_resizer = None
    if make_resizer is not None:
        want = make_resizer("PIL", False, "bicubic", (299, 299))(f[0])
        assert np.array_equal(resized[0], want)
    got = _extractor(ref, output="pool", resize="clean").extract(f)
    x = torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous().div(255)
    with torch.inference_mode():
        want_pool = ref.model(x)[0].flatten(1).numpy()  # 299x299 in: its bilinear resize is the identity
    assert np.abs(got - want_pool).max() <= TOL
    assert np.abs(got - _extractor(ref, output="pool").extract(f)).max() > 1e-3  # a different mode


# --------------------------------------------------------------------------------------------------
# determinism, batching
# --------------------------------------------------------------------------------------------------
def test_deterministic_and_batch_size_independent(ref: Reference, frames: np.ndarray) -> None:
    sub = frames[[0, 1, 7]]
    one = _extractor(ref, batch_size=1).extract(sub)
    three = _extractor(ref, batch_size=3)
    a = three.extract(sub)
    b = three.extract(sub)
    assert np.array_equal(a, b)
    assert np.abs(a - one).max() <= TOL
    assert np.abs(a[:, POOL_SLICE] - one[:, POOL_SLICE]).max() <= TOL
    assert LOGITS_SLICE.stop == a.shape[1]


def test_split_features_rejects_other_layouts() -> None:
    pool, logits = split_features(np.zeros((3, 3056), dtype=np.float32))
    assert pool.shape == (3, 2048) and logits.shape == (3, 1008)
    with pytest.raises(UsageError, match="3056"):
        split_features(np.zeros((3, 2048), dtype=np.float32))


def test_rejects_non_uint8_frames(ref: Reference) -> None:
    with pytest.raises(UsageError, match="uint8"):
        _extractor(ref).extract(np.zeros((1, 8, 8, 3), dtype=np.float32))


# --------------------------------------------------------------------------------------------------
# missing weights
# --------------------------------------------------------------------------------------------------
def _assert_helpful(msg: str, cache: Path) -> None:
    assert WEIGHTS_FILE in msg
    assert str(cache / "weights" / WEIGHTS_FILE) in msg  # where to put it
    assert "aigve weights fetch fid_inception" in msg
    assert "fid.weights=PATH" in msg or "weights=PATH" in msg


def test_missing_weights_offline_is_informative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGVE_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    with pytest.raises(WeightsError) as info:
        build_extractor("fid_inception").load()
    _assert_helpful(str(info.value), tmp_path / "cache")


def test_failed_download_is_informative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGVE_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("AIGVE_OFFLINE", raising=False)
    monkeypatch.delenv("AIGVE_WEIGHTS_MIRROR", raising=False)

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(WeightsError) as info:
        build_extractor("fid_inception").load()
    msg = str(info.value)
    _assert_helpful(msg, tmp_path / "cache")
    assert "github.com/mseitzer/pytorch-fid" in msg
