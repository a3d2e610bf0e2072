"""DOVER networks (``aigve.backbones.nets.dover``): checkpoint layout, golden outputs, batch independence.

How the port was checked (once, while porting, against the authors' code at VQAssessment/DOVER f1ddc96 with
the same seeded random weights): both branches' score maps were bit-identical (max abs difference 0.0) on
inputs ``[2,3,32,224,224]``, ``[1,3,8,64,96]`` and ``[1,3,17,100,70]``. That code is not part of this
repository; ``test_parity_with_authors_code`` repeats the comparison when ``DOVER_REF_DIR`` points to a
checkout of it (with ``timm`` and ``einops`` importable) and is skipped otherwise.

What runs everywhere:
- the ``state_dict`` keys, shapes and dtypes equal those of the authors' ``DOVER`` model built from
  ``dover.yml`` (recorded from their model definition in ``tests/golden/dover_layout.npz``), so ``DOVER.pth``
  loads with ``strict=True``;
- golden outputs (``tests/golden/dover_net.npz``): our score maps for fixed seeded random weights and a
  fixed input, recorded from this port after the comparison above. They only guard against drift: a
  change that alters them must be re-verified against the authors' code (tolerance 1e-5 absolute);
- batch-size independence (1e-5) and determinism.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.backbones.nets.dover import DOVERNet, _fragment_gate, _relative_index, _shift_mask

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
LAYOUT = GOLDEN / "dover_layout.npz"
NET_GOLDEN = GOLDEN / "dover_net.npz"
REGEN = os.environ.get("AIGVE_REGEN_GOLDEN") == "1"


def seeded_state_dict(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random values for every float tensor (numpy PCG64, independent of torch's RNG):
    N(0, 0.05^2), plus 1 for LayerNorm scales; integer buffers (relative position index) kept."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point:
            x = rng.standard_normal(tuple(v.shape), dtype=np.float32) * np.float32(0.05)
            if "norm" in k and k.endswith("weight"):
                x += np.float32(1.0)
            out[k] = torch.from_numpy(x)
        else:
            out[k] = v.clone()
    return out


@pytest.fixture(scope="module")
def net() -> DOVERNet:
    model = DOVERNet()
    model.load_state_dict(seeded_state_dict(model), strict=True)
    return model.eval()


def _input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def test_state_dict_layout_matches_authors_model() -> None:
    with np.load(LAYOUT) as z:
        names = [str(n) for n in z["names"]]
        shapes = json.loads(str(z["shapes"]))
        dtypes = [str(d) for d in z["dtypes"]]
    with torch.device("meta"):
        model = DOVERNet()
    ours = model.state_dict()
    assert list(ours) == names
    assert [list(v.shape) for v in ours.values()] == shapes
    assert [str(v.dtype) for v in ours.values()] == dtypes
    assert len(names) == 381


def test_relative_index_and_buffers_equal_their_persistent_values(net: DOVERNet) -> None:
    # the checkpoint stores relative_position_index; ours is computed the same way
    idx = net.technical_backbone.layers[0].blocks[0].attn.relative_position_index
    assert torch.equal(idx, _relative_index((8, 7, 7)))
    assert int(idx.min()) == 0 and int(idx.max()) == 15 * 13 * 13 - 1
    assert torch.equal(idx.flip(0).flip(1), idx.T)  # token i <-> N-1-i reverses every offset


def test_window_helpers() -> None:
    # unshifted 7x7 windows over 8x8-token fragments meet at most 2 fragments per axis: gate 0, 1 or 2;
    # shifted windows that wrap around the map pair fragment 0 with fragment 6: distances up to 12 (as the
    # authors' code computes them; the checkpoint was trained so)
    plain = _fragment_gate(16, 56, 56, (8, 7, 7), (0, 0, 0), torch.device("cpu"))
    assert plain.shape == (2 * 8 * 8, 1, 392, 392)
    assert set(torch.unique(plain).tolist()) == {0, 1, 2}
    gate = _fragment_gate(16, 56, 56, (8, 7, 7), (4, 3, 3), torch.device("cpu"))
    assert set(torch.unique(gate).tolist()) == {0, 1, 2, 6, 7, 12}
    mask = _shift_mask(16, 56, 56, (8, 7, 7), (4, 3, 3), torch.device("cpu"))
    assert mask.shape == (128, 392, 392)
    assert set(torch.unique(mask).tolist()) == {-100.0, 0.0}
    assert torch.equal(mask, mask.transpose(1, 2))
    assert bool((mask[0] == 0).all())  # the first window is not cut by the cyclic shift


def test_golden_outputs(net: DOVERNet) -> None:
    x = _input((2, 3, 8, 64, 96), seed=1)
    with torch.inference_mode():
        tech = net.technical_map(x).numpy()
        aes = net.aesthetic_map(x).numpy()
        t_mean, a_mean = net(x, x)
    assert tech.shape == (2, 1, 4, 2, 3) and aes.shape == (2, 1, 4, 2, 3)
    if REGEN:
        np.savez_compressed(NET_GOLDEN, technical=tech, aesthetic=aes)
    with np.load(NET_GOLDEN) as z:
        np.testing.assert_allclose(tech, z["technical"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(aes, z["aesthetic"], atol=1e-5, rtol=0)
    assert float(t_mean) == pytest.approx(float(tech.mean()), abs=1e-6)
    assert float(a_mean) == pytest.approx(float(aes.mean()), abs=1e-6)


def test_batch_size_independence_and_determinism(net: DOVERNet) -> None:
    x = _input((2, 3, 4, 64, 64), seed=2)
    with torch.inference_mode():
        both = net.technical_map(x)
        each = torch.cat([net.technical_map(x[i : i + 1]) for i in range(2)])
        again = net.technical_map(x)
        a_both = net.aesthetic_map(x)
        a_each = torch.cat([net.aesthetic_map(x[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(both, each, atol=1e-5, rtol=0)
    torch.testing.assert_close(a_both, a_each, atol=1e-5, rtol=0)
    assert torch.equal(both, again)


def test_full_size_shapes_on_meta() -> None:
    with torch.device("meta"):
        model = DOVERNet()
        x = torch.empty(1, 3, 32, 224, 224)
        assert model.technical_backbone(x).shape == (1, 768, 16, 7, 7)
        assert model.aesthetic_backbone(x).shape == (1, 768, 16, 7, 7)


# -- optional: against the authors' code ----------------------------------------------------------------
def _import_reference(ref_dir: str):  # noqa: ANN202 - their module
    sys.path.insert(0, ref_dir)
    for name in ("decord", "skvideo", "skvideo.io"):  # imported at module level by their datasets package
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.VideoReader = stub.cpu = stub.gpu = None  # type: ignore[attr-defined]
            stub.bridge = types.SimpleNamespace(set_bridge=lambda *a, **k: None)  # type: ignore[attr-defined]
            sys.modules[name] = stub
    sys.modules["skvideo"].io = sys.modules["skvideo.io"]  # type: ignore[attr-defined]
    import dover.models.evaluator as ev  # type: ignore[import-not-found]
    from dover.models.conv_backbone import convnext_3d_tiny  # type: ignore[import-not-found]

    ev.convnext_3d_tiny = lambda pretrained=True, **k: convnext_3d_tiny(pretrained=False, **k)  # no download
    return ev


@pytest.mark.skipif(not os.environ.get("DOVER_REF_DIR"), reason="DOVER_REF_DIR (authors' checkout) not set")
def test_parity_with_authors_code(net: DOVERNet) -> None:
    pytest.importorskip("timm")
    pytest.importorskip("einops")
    ev = _import_reference(os.environ["DOVER_REF_DIR"])
    theirs = ev.DOVER(
        backbone={"technical": {"type": "swin_tiny_grpb"}, "aesthetic": {"type": "conv_tiny"}},
        backbone_preserve_keys="technical,aesthetic",
        divide_head=True,
        vqa_head={"in_channels": 768, "hidden_channels": 64},
    ).eval()
    theirs.load_state_dict(net.state_dict(), strict=True)
    x = _input((1, 3, 8, 64, 96), seed=3)
    with torch.no_grad():
        t_ref = theirs.technical_head(theirs.technical_backbone(x))
        a_ref = theirs.aesthetic_head(theirs.aesthetic_backbone(x))
        torch.testing.assert_close(net.technical_map(x), t_ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(net.aesthetic_map(x), a_ref, atol=1e-5, rtol=0)
