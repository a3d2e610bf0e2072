"""SlowFast R50 port (aigve.backbones.nets.slowfast) and the ``slowfast_r50`` motion extractor.

Port check (done while porting, recorded in tests/golden/simplevqa_slowfast.npz): pytorchvideo's own
``slowfast_r50()`` (facebookresearch/pytorchvideo @ f3142bb05cdb56af0704ab6f0adfb0c7bbafe4a0) and ours,
both loaded strictly with the same :func:`seeded_state` weights, gave identical SimpleVQA motion features
(max |diff| = 0.0) and Kinetics logits (0.0) on a seeded [2, 3, 32, 224, 224] clip. The golden file holds
their state dict's key names and shapes and *our* outputs at that time (a port-drift check, not a reference
value); when pytorchvideo is importable the comparison with it is repeated here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.backbones.nets.slowfast import SlowFastR50, slow_indices

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "simplevqa_slowfast.npz"


def seeded_state(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Deterministic random weights for a state-dict layout (numpy PCG64, sorted keys): He-normal conv/linear
    weights, BN scales and running variances U[0.5, 1.5), biases and running means N(0, 0.1); float32."""
    rng = np.random.default_rng(seed)
    out = {}
    for k in sorted(state):
        v = state[k]
        shape = tuple(v.shape)
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros_like(v)
            continue
        if k.endswith("running_var") or (v.ndim == 1 and not k.endswith(("bias", "running_mean"))):
            a = rng.random(shape, dtype=np.float32) + np.float32(0.5)
        elif k.endswith(("running_mean", ".bias")):
            a = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)
        else:
            a = rng.standard_normal(shape, dtype=np.float32) * np.float32(
                np.sqrt(2.0 / int(np.prod(shape[1:])))
            )
        out[k] = torch.from_numpy(a.astype(np.float32))
    return out


def golden_clip() -> torch.Tensor:
    """The fixed input of the golden check: ``[1, 3, 32, 224, 224]`` float32, N(0, 1), seed 1."""
    return torch.from_numpy(np.random.default_rng(1).standard_normal((1, 3, 32, 224, 224)).astype(np.float32))


def seeded_slowfast() -> SlowFastR50:
    model = SlowFastR50().eval()
    model.load_state_dict(seeded_state(model.state_dict(), 0), strict=True)
    return model


def test_state_dict_layout_equals_pytorchvideo() -> None:
    g = np.load(GOLDEN)
    ours = SlowFastR50().state_dict()
    assert list(ours) == [str(k) for k in g["keys"]]
    shapes = [tuple(int(d) for d in s[:n]) for s, n in zip(g["shapes"], g["ndims"], strict=True)]
    assert [tuple(v.shape) for v in ours.values()] == shapes


def test_slow_indices_match_simplevqa_pack_pathway() -> None:
    # pack_pathway_output: torch.linspace(0, T - 1, T // 4).long()
    assert slow_indices(32).tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    assert slow_indices(16).tolist() == [0, 5, 10, 15]


@pytest.mark.slow
def test_golden_outputs() -> None:
    g = np.load(GOLDEN)
    model = seeded_slowfast()
    clip = golden_clip()
    with torch.inference_mode():
        xs, xf = model.trunk(*SlowFastR50.pathways(clip))  # one pass for both outputs
        pools, gap = model.blocks[5].pool, model.blocks[6].output_pool
        feats = torch.cat([gap(pools[0](xs)).flatten(1), gap(pools[1](xf)).flatten(1)], 1).numpy()
        logits = model.blocks[6](model.blocks[5]([xs, xf]))
    scale = float(np.abs(g["features"]).max())
    np.testing.assert_allclose(feats, g["features"], rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(
        logits.numpy(), g["logits"], rtol=0, atol=1e-5 * float(np.abs(g["logits"]).max())
    )


@pytest.mark.skipif(importlib.util.find_spec("pytorchvideo") is None, reason="pytorchvideo not installed")
def test_equals_pytorchvideo_when_available() -> None:  # pragma: no cover - needs pytorchvideo
    from pytorchvideo.models.hub import slowfast_r50

    theirs = slowfast_r50(pretrained=False).eval()
    state = seeded_state(theirs.state_dict(), 0)
    theirs.load_state_dict(state, strict=True)
    ours = SlowFastR50().eval()
    ours.load_state_dict(state, strict=True)
    clip = golden_clip()[:, :, :, :224, :224]
    with torch.inference_mode():
        a = theirs(list(SlowFastR50.pathways(clip)))
        b = ours(*SlowFastR50.pathways(clip))
    torch.testing.assert_close(b, a, rtol=0, atol=1e-5 * float(a.abs().max()))
