"""``vbench_imaging_quality``: MUSIQ (``aigve.backbones.nets.musiq``) against pyiqa's, and VBench's per-video formula.

Reference: IQA-PyTorch (pyiqa) 0.1.16, ``pyiqa/archs/musiq_arch.py`` + ``pyiqa/data/multiscale_trans_util.py``, the
network VBench (Vchitect/VBench 45e79ec, ``vbench/imaging_quality.py``) imports. pyiqa is not a dependency; with
``PYIQA_REF_DIR`` pointing at an unpacked pyiqa 0.1.16 (its ``musiq_arch`` imports with this environment's torch)
``test_parity_with_pyiqa`` compares both networks live, and ``AIGVE_REGEN_GOLDEN=1`` re-records
``tests/golden/musiq_pyiqa.npz`` from pyiqa. What runs everywhere:

- the full-size ``state_dict`` keys and shapes equal pyiqa's ``MUSIQ(pretrained=False)`` (recorded in the npz), so
  ``musiq_spaq_ckpt-358bb6af.pth`` loads strictly;
- pyiqa's outputs, recorded in the npz, for a tiny MUSIQ (patch 16, hidden 12, 2 layers, 6 heads) with seeded
  random weights on square, non-square and >512 px frames (VBench's resize first), and pyiqa's multi-scale patch
  encoding (spatial index, scale id, mask, sampled patch pixels) of a non-square frame: ours within 1e-5;
- VBench's per-video value restated (mean over frames of the score, /100), determinism, batch-size independence,
  and an offline run where the missing checkpoint fails this dimension only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.backbones.nets.musiq import MUSIQ, config_from_state, multiscale_patches

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "musiq_pyiqa.npz"
REF_DIR = os.environ.get("PYIQA_REF_DIR")
REGEN = os.environ.get("AIGVE_REGEN_GOLDEN") == "1"
TOL = 1e-5
TINY = {"patch_size": 16, "hidden_size": 12, "mlp_dim": 24, "num_heads": 6, "num_layers": 2}
FRAME_SHAPES = (
    (3, 64, 64),
    (3, 72, 120),
    (2, 96, 600),
)  # (T, H, W); the last is resized by VBench to 81 x 512


def seeded_state(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic values for every tensor, in sorted key order (numpy PCG64, independent of torch's RNG)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, v in sorted(model.state_dict().items()):
        a = rng.standard_normal(tuple(v.shape)).astype(np.float32)
        out[k] = torch.from_numpy(a * 0.2 + (1.0 if k.endswith(("gn1.weight", "norm1.weight")) else 0.0))
    return out


def frames(t: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, h, w, 3))
    return np.clip(base + rng.integers(-90, 91, (t, h, w, 3)), 0, 255).astype(np.uint8)


def ref_vbench_transform(fr: np.ndarray) -> torch.Tensor:
    """VBench's ``transform(images, 'longer')`` on ``load_video``'s float ``[T, 3, H, W]`` tensor."""
    from torchvision import transforms

    images = torch.Tensor(fr).permute(0, 3, 1, 2)
    _, _, h, w = images.size()
    if max(h, w) > 512:
        scale = 512.0 / max(h, w)
        images = transforms.Resize(size=(int(scale * h), int(scale * w)), antialias=False)(images)
    return images / 255.0


def ref_video_value(per_frame_scores: list[float]) -> float:
    """VBench: ``acc_score_video += float(model(frame))`` per frame, ``/ len(images)``; the dimension divides by 100."""
    acc = 0.0
    for s in per_frame_scores:
        acc += float(s)
    return acc / len(per_frame_scores) / 100.0


def _pyiqa_musiq():  # type: ignore[no-untyped-def]
    assert REF_DIR
    sys.path.insert(0, REF_DIR)
    try:
        from pyiqa.archs.musiq_arch import MUSIQ as RefMUSIQ
        from pyiqa.data.multiscale_trans_util import get_multiscale_patches
    finally:
        sys.path.remove(REF_DIR)
    return RefMUSIQ, get_multiscale_patches


def _record_from_pyiqa() -> dict[str, np.ndarray]:
    RefMUSIQ, get_patches = _pyiqa_musiq()
    full = RefMUSIQ(pretrained=False)
    keys = sorted(full.state_dict())
    rec: dict[str, np.ndarray] = {
        "keys": np.array(keys),
        "shapes": np.array([",".join(map(str, full.state_dict()[k].shape)) for k in keys]),
    }
    ref = RefMUSIQ(pretrained=False, **TINY).eval()
    ref.load_state_dict(seeded_state(ref))
    with torch.no_grad():
        for i, (t, h, w) in enumerate(FRAME_SHAPES):
            x = ref_vbench_transform(frames(t, h, w, seed=i))
            rec[f"scores_{i}"] = np.array([float(ref(x[j : j + 1])) for j in range(t)])
        x = ref_vbench_transform(frames(1, 72, 120, seed=1))[:1] * 2 - 1
        p = get_patches(x, 16, 16, 10, [224, 384], -1)[0]
        rec["patch_spatial"] = p[:, -3].numpy().astype(np.int16)
        rec["patch_scale"] = p[:, -2].numpy().astype(np.int16)
        rec["patch_mask"] = p[:, -1].numpy().astype(np.int16)
        idx = np.random.default_rng(7).choice(p.shape[0], 24, replace=False)
        rec["patch_idx"] = idx
        rec["patch_pixels"] = p[idx, :-3].numpy()
    return rec


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    if REGEN:
        if not REF_DIR:
            pytest.fail("AIGVE_REGEN_GOLDEN=1 needs PYIQA_REF_DIR (pyiqa 0.1.16 unpacked)")
        np.savez_compressed(GOLDEN, **_record_from_pyiqa())
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = MUSIQ(**TINY)
    path = tmp_path_factory.mktemp("musiq") / "tiny_musiq.pth"
    torch.save(seeded_state(net), path)
    return path


def _load(path: Path) -> MUSIQ:
    from aigve.weights import load_into

    state = torch.load(path, weights_only=True)
    cfg = config_from_state(state)  # the head count is not in a checkpoint: MUSIQ's 6 (TINY uses 6 too)
    return load_into(lambda: MUSIQ(**cfg), "musiq_spaq", path).module


def test_state_dict_layout_equals_pyiqa(golden) -> None:
    with torch.device("meta"):
        net = MUSIQ()
    sd = net.state_dict()
    assert sorted(sd) == list(golden["keys"])
    assert [",".join(map(str, sd[k].shape)) for k in sorted(sd)] == list(golden["shapes"])
    cfg = config_from_state(sd)
    assert cfg == {
        "patch_size": 32,
        "num_class": 1,
        "hidden_size": 384,
        "mlp_dim": 1152,
        "num_layers": 14,
        "num_scales": 3,
        "spatial_pos_grid_size": 10,
    }


def test_multiscale_patches_equal_pyiqa_on_non_square_frame(golden) -> None:
    x = ref_vbench_transform(frames(1, 72, 120, seed=1))[:1] * 2 - 1
    pixels, pos, scale, mask = multiscale_patches(x, 16, 10, (384, 224))  # sorted inside, as pyiqa
    assert pixels.shape[1] == 14 * 14 + 24 * 24 + 5 * 8
    np.testing.assert_array_equal(pos[0].numpy(), golden["patch_spatial"])
    np.testing.assert_array_equal(scale[0].numpy(), golden["patch_scale"])
    np.testing.assert_array_equal(mask[0].numpy().astype(np.int16), golden["patch_mask"])
    np.testing.assert_allclose(
        pixels[0, golden["patch_idx"]].numpy(), golden["patch_pixels"], atol=TOL, rtol=0
    )


def test_network_equals_pyiqa_outputs(golden, tiny_file: Path) -> None:
    net = _load(tiny_file)
    with torch.no_grad():
        for i, (t, h, w) in enumerate(FRAME_SHAPES):
            x = ref_vbench_transform(frames(t, h, w, seed=i))
            got = np.array([float(net(x[j : j + 1])) for j in range(t)])
            np.testing.assert_allclose(got, golden[f"scores_{i}"], atol=TOL, rtol=0)
    assert np.ptp(golden["scores_0"]) > 1e-3  # the frames are told apart


@pytest.mark.skipif(not REF_DIR, reason="PYIQA_REF_DIR (pyiqa 0.1.16 unpacked) not set")
def test_parity_with_pyiqa(tiny_file: Path) -> None:
    RefMUSIQ, _ = _pyiqa_musiq()
    ref = RefMUSIQ(pretrained=False, **TINY).eval()
    ref.load_state_dict(torch.load(tiny_file, weights_only=True))
    net = _load(tiny_file)
    x = ref_vbench_transform(frames(2, 50, 130, seed=9))
    with torch.no_grad():
        for j in range(2):
            assert abs(float(net(x[j : j + 1])) - float(ref(x[j : j + 1]))) < TOL


def test_transform_equals_vbench() -> None:
    from aigve.backbones.musiq import imaging_quality_transform

    for t, h, w in FRAME_SHAPES:
        fr = frames(t, h, w, seed=3)
        ours, ref = imaging_quality_transform(fr), ref_vbench_transform(fr)
        assert ours.shape == ref.shape
        assert torch.allclose(ours, ref, atol=1e-6, rtol=0)
    assert imaging_quality_transform(frames(1, 96, 600, seed=0)).shape[-2:] == (81, 512)


def test_extractor_and_metric_follow_vbench_formula(golden, tiny_file: Path) -> None:
    from aigve.backbones.musiq import MusiqExtractor
    from aigve.metrics.vbench import VBenchImagingQuality
    from aigve.types import Entry

    ext = MusiqExtractor(batch_size=2, weights=str(tiny_file))  # the real loading path (load_into, strict)
    t, h, w = FRAME_SHAPES[2]
    fr = frames(t, h, w, seed=2)
    out = ext.extract(fr)
    assert out.shape == (t, 1)
    np.testing.assert_allclose(out[:, 0], golden["scores_2"], atol=TOL, rtol=0)
    metric = VBenchImagingQuality()
    got = metric.score(Entry(id="v", generated=Path("v.mp4")), {"musiq": out})["vbench_imaging_quality"]
    assert got == pytest.approx(ref_video_value(list(golden["scores_2"])), abs=1e-7)


def _set_model(ext, path: Path) -> None:  # type: ignore[no-untyped-def]
    ext.model = _load(path).eval()
    ext._sha256 = "test"
    ext._loaded = True


def test_determinism_and_batch_size_independence(tiny_file: Path) -> None:
    from aigve.backbones.musiq import MusiqExtractor

    fr = frames(3, 40, 72, seed=5)
    outs = []
    for bs in (1, 2, 3, 3):
        ext = MusiqExtractor(batch_size=bs, weights=str(tiny_file))
        _set_model(ext, tiny_file)
        outs.append(ext.extract(fr))
    np.testing.assert_array_equal(outs[2], outs[3])
    for o in outs[:2]:
        np.testing.assert_allclose(o, outs[2], atol=TOL, rtol=0)


def test_offline_missing_checkpoint_fails_this_dimension_only(make_video, tmp_path: Path) -> None:
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.types import Entry

    entries = [
        Entry(id=f"v{i}", generated=make_video(f"g{i}.mp4", frames(4, 32, 48, seed=i))) for i in range(2)
    ]
    cfg = RunConfig(
        metrics=["vbench_imaging_quality", "vbench_temporal_flickering"],
        cache_dir=tmp_path / "cache",
        bootstrap=0,
        progress=False,
    )
    res = Engine(Dataset(name="d", entries=entries), cfg).run()
    agg = res.aggregates["vbench_imaging_quality"]
    msg = str(agg.error or "") + " ".join(str(r.error) for r in res.records if r.error)
    assert "musiq_spaq_ckpt-358bb6af.pth" in msg or "musiq_spaq" in msg
    assert res.aggregates["vbench_temporal_flickering"].error is None
    assert np.isfinite(res.value("vbench_temporal_flickering"))


def test_engine_run_with_weights_gives_vbench_video_values(
    make_video, tmp_path: Path, tiny_file: Path
) -> None:
    from aigve.backbones.musiq import MusiqExtractor
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.types import Entry
    from aigve.video.decode import decode_video

    paths = [make_video(f"w{i}.mp4", frames(3 + i, 32, 48, seed=10 + i)) for i in range(2)]
    cfg = RunConfig(
        metrics=["vbench_imaging_quality"],
        metric_options={"vbench_imaging_quality": {"weights": str(tiny_file)}},
        cache_dir=tmp_path / "cache",
        bootstrap=0,
        progress=False,
    )
    res = Engine(
        Dataset(name="d", entries=[Entry(id=f"v{i}", generated=p) for i, p in enumerate(paths)]), cfg
    ).run()
    assert res.exit_code == 0, res.errors
    ext = MusiqExtractor(batch_size=1, weights=str(tiny_file))
    got = res.wide()["vbench_imaging_quality"].to_numpy()
    for i, p in enumerate(paths):
        per_frame = ext.extract(decode_video(p).frames)[:, 0]
        assert got[i] == pytest.approx(ref_video_value(list(per_frame)), abs=1e-6)
