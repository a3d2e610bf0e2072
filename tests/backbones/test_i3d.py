"""I3D (Kinetics-400) network and ``i3d_kinetics400`` extractor.

Reference: cd-fvd 0.1.1 (``cdfvd.third_party.i3d.pytorch_i3d.InceptionI3d`` and ``preprocess_i3d``),
built from its class and loaded with the *same* seeded random state dict we load through our weights
registry (the trained checkpoint is 50 MB and needs a download; parity on identical random weights
checks the architecture, padding, pooling, head and preprocessing). Tolerances: our unfused network
and preprocessing are bit-identical to cd-fvd's on the CPU (asserted exactly); the fused network
(batch norm folded, 1x1 convolutions merged) differs only by float32 rounding: max abs difference
<= 1e-5 * max(1, max |logit|) (logits here are of magnitude ~10-20).

Inputs are 9 frames at 193x193 (the smallest the 2x7x7 head accepts) to keep the file fast on 2 CPU
cores; the network is fully convolutional, so every layer and padding rule is exercised.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigve.backbones.i3d import I3DExtractor, load_i3d, preprocess
from aigve.backbones.nets.i3d import (
    InceptionI3d,
    fill_missing_bn_counters,
    random_state_dict,
    same_padding,
)
from aigve.backbones.registry import build_extractor, get_extractor_class
from aigve.errors import UsageError, WeightsError

cdfvd_i3d = pytest.importorskip("cdfvd.third_party.i3d.pytorch_i3d")
cdfvd_utils = pytest.importorskip("cdfvd.third_party.i3d.utils")

T, RES = 9, 193


def _clips(n: int, seed: int) -> np.ndarray:
    """Smooth random uint8 clips ``[n, T, 40, 52, 3]`` (odd aspect ratio: the resize must stretch)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, T, 5, 7, 3)).astype(np.float32)
    up = torch.nn.functional.interpolate(
        torch.from_numpy(base).flatten(0, 1).permute(0, 3, 1, 2), size=(40, 52), mode="bilinear"
    )
    noise = rng.normal(0, 8, (n * T, 3, 40, 52))
    out = (up.numpy() + noise).clip(0, 255).astype(np.uint8)
    return out.reshape(n, T, 3, 40, 52).transpose(0, 1, 3, 4, 2).copy()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("i3d") / "i3d_random.pt"
    torch.save(random_state_dict(seed=7), path)
    return path


@pytest.fixture(scope="module")
def parity(weights_file):
    """Features of the same clips from cd-fvd's model, our reference and our fused network."""
    state = torch.load(weights_file, weights_only=True)
    ref = cdfvd_i3d.InceptionI3d(400, in_channels=3)
    ref.load_state_dict(state, strict=True)
    ref.eval()
    clips = _clips(2, seed=1)
    x_ref = cdfvd_utils.preprocess_i3d(clips, (RES, RES))
    ours, _ = load_i3d(weights_file)
    with torch.inference_mode():
        f_ref = ref(x_ref).numpy()
        f_ours = ours(preprocess(clips, RES)).numpy()
    ext = I3DExtractor(resolution=RES, weights=weights_file)
    f_fused = np.concatenate([ext.extract(c) for c in clips])  # one clip a call, as the engine does
    return {"clips": clips, "x_ref": x_ref, "ref": f_ref, "ours": f_ours, "fused": f_fused, "ext": ext}


# ----------------------------------------------------------------------------------------------
def test_state_dict_layout_equals_cdfvd_and_loads_strictly(weights_file) -> None:
    with torch.device("meta"):
        ref_keys = {
            k: tuple(v.shape) for k, v in cdfvd_i3d.InceptionI3d(400, in_channels=3).state_dict().items()
        }
        ours = InceptionI3d()
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == ref_keys
    state = torch.load(weights_file, weights_only=True)
    missing, unexpected = ours.load_state_dict(state, strict=True, assign=True)
    assert not missing and not unexpected
    # old checkpoints without BN counters still load strictly
    no_counters = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    with torch.device("meta"):
        again = InceptionI3d()
    again.load_state_dict(fill_missing_bn_counters(no_counters, again), strict=True, assign=True)


def test_same_padding_rule() -> None:
    # TF "same": total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0), floor half first
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == (2, 3, 2, 3, 2, 3)
    assert same_padding((9, 193, 193), (7, 7, 7), (2, 2, 2)) == (3, 3, 3, 3, 3, 3)
    assert same_padding((8, 56, 56), (1, 3, 3), (1, 2, 2)) == (0, 1, 0, 1, 0, 0)
    assert same_padding((4, 14, 14), (3, 3, 3), (1, 1, 1)) == (1, 1, 1, 1, 1, 1)


def test_preprocessing_is_cdfvds(parity) -> None:
    ours = preprocess(parity["clips"], RES)
    assert ours.shape == (2, 3, T, RES, RES)
    assert torch.equal(ours, parity["x_ref"])  # bit-identical
    assert float(ours.min()) >= -1.0 - 1e-6 and float(ours.max()) <= 1.0 + 1e-6


def test_reference_network_matches_cdfvd_exactly(parity) -> None:
    assert parity["ref"].shape == (2, 400)
    assert np.abs(parity["ref"]).max() > 1.0  # not a degenerate all-zero output
    np.testing.assert_array_equal(parity["ours"], parity["ref"])


def test_fused_extractor_matches_cdfvd(parity) -> None:
    ref, fused = parity["ref"], parity["fused"]
    assert fused.dtype == np.float32 and fused.shape == (2, 400)
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    assert float(np.abs(fused - ref).max()) <= tol


def test_extract_contract_and_determinism(parity, weights_file) -> None:
    clips = parity["clips"]
    fresh = build_extractor("i3d_kinetics400", resolution=RES, weights=str(weights_file))
    one = fresh.extract(clips[0], fps=8.0)
    assert one.shape == (1, 400) and one.dtype == np.float32
    np.testing.assert_array_equal(one[0], parity["fused"][0])  # new instance, same input: same bits
    assert get_extractor_class("i3d_kinetics400").kind == "clip"


def test_identity_records_weights_and_settings(parity, weights_file) -> None:
    import hashlib

    ident = parity["ext"].identity()
    assert ident["weights_sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert ident["resolution"] == RES and ident["layer"] == "logits" and ident["weights"] == "i3d_tats"
    assert ident["options"]["impl"] == "fused"
    other = I3DExtractor(resolution=224, weights=weights_file)
    assert other.options != parity["ext"].options  # resolution is part of the cache key


def test_bad_inputs_and_options(parity) -> None:
    ext = parity["ext"]
    with pytest.raises(UsageError, match="at least 9 frames"):
        ext.extract(parity["clips"][0, :5])
    with pytest.raises(UsageError, match="uint8"):
        ext.extract(parity["clips"][0].astype(np.float32))
    with pytest.raises(UsageError, match="resolution"):
        I3DExtractor(resolution=112)
    with pytest.raises(UsageError, match="layer"):
        I3DExtractor(layer="Mixed_4f")
    with pytest.raises(UsageError, match="no option"):
        I3DExtractor(frames=16)


def test_missing_weights_names_the_file_and_the_fix(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("AIGVE_WEIGHTS_MIRROR", raising=False)
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    with pytest.raises(WeightsError) as exc:
        I3DExtractor().load()
    msg = str(exc.value)
    assert "i3d_pretrained_400.pt" in msg
    assert str(tmp_path / "cache") in msg  # where to put it
    with pytest.raises(WeightsError, match="does not exist"):
        I3DExtractor(weights=tmp_path / "nope.pt").load()


def test_wrong_checkpoint_is_refused(tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(WeightsError, match="not a Kinetics-400 I3D checkpoint"):
        load_i3d(bad)
