"""VideoMAE-v2 network and ``videomae_v2`` extractor.

Reference: cd-fvd 0.1.1 (``cdfvd.third_party.VideoMAEv2.videomaev2_finetune.VisionTransformer``,
``preprocess_videomae``). The trained ViT-g/14 checkpoint is large and needs a download, so:

- layout: cd-fvd's ``vit_giant_patch14_224`` (as its ``load_videomae_model`` builds it) and our
  ``vit_g_hybrid`` network are built on the meta device; their state-dict keys and shapes must be equal,
  and our fixed position table must equal cd-fvd's exactly;
- numbers: both classes are built in the tiny configuration (same geometry: 224 px, 14 px patches,
  2-frame tubelets, 16 frames; 24-d, 2 blocks) and given the *same* seeded random weights, saved to a
  file and loaded on our side through the weights loader. Features of the same frames (through each
  side's own preprocessing) agree within 1e-5 absolute (features are O(1); measured ~3e-7), also for
  clip lengths other than 16 (the time-resampled position table).
"""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import pytest
import torch

from aigve.backbones.nets.videomae import CONFIGS, VideoMAEv2ViT, random_state_dict, sinusoid_table
from aigve.backbones.registry import build_extractor, get_extractor_class
from aigve.backbones.videomae import WEIGHTS_FILE, VideoMAEv2Extractor, load_videomae, preprocess
from aigve.errors import UsageError, WeightsError

vf = pytest.importorskip("cdfvd.third_party.VideoMAEv2.videomaev2_finetune")
vutils = pytest.importorskip("cdfvd.third_party.VideoMAEv2.utils")

TINY = CONFIGS["tiny_test"]
ATOL = 1e-5


def cdfvd_tiny() -> torch.nn.Module:
    """cd-fvd's class with the tiny configuration (its other arguments as in ``load_videomae_model``)."""
    return vf.VisionTransformer(
        img_size=TINY.img_size,
        patch_size=TINY.patch_size,
        embed_dim=TINY.embed_dim,
        depth=TINY.depth,
        num_heads=TINY.num_heads,
        mlp_ratio=48 / 11,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_classes=TINY.num_classes,
        all_frames=16,
        tubelet_size=2,
        drop_path_rate=0.3,
        use_mean_pooling=True,
    ).eval()


def _clips(n: int, t: int, seed: int) -> np.ndarray:
    """Smooth random uint8 clips ``[n, t, 40, 52, 3]`` (odd aspect ratio: the resize must stretch)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n * t, 3, 5, 7)).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.from_numpy(base), size=(40, 52), mode="bilinear").numpy()
    out = (up + rng.normal(0, 8, up.shape)).clip(0, 255).astype(np.uint8)
    return out.reshape(n, t, 3, 40, 52).transpose(0, 1, 3, 4, 2).copy()


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_state_dict(TINY, seed=5)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory, state):
    path = tmp_path_factory.mktemp("videomae") / "videomae_tiny_random.pth"
    torch.save({"module": state}, path)  # the released checkpoint keeps its state dict under 'module'
    return path


@pytest.fixture(scope="module")
def reference(state):
    ref = cdfvd_tiny()
    ref.load_state_dict(state, strict=True)
    return ref


def _ref_features(ref: torch.nn.Module, videos: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return ref.forward_features(vutils.preprocess_videomae(videos)).numpy()


# ----------------------------------------------------------------------------------------------
def test_vit_g_layout_equals_cdfvd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same keys and shapes as cd-fvd's ViT-g/14 (so the real checkpoint loads strictly), same table."""
    real_linspace = torch.linspace
    # cd-fvd calls .item() on a linspace while building: keep that one tensor on the CPU
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: real_linspace(*a, **{**k, "device": "cpu"}))
    tables: list[torch.Tensor] = []
    real_table = vf.get_sinusoid_encoding_table

    def table_on_cpu(n: int, d: int) -> torch.Tensor:
        with torch.device("cpu"):
            tables.append(real_table(n, d))
        return tables[-1]

    monkeypatch.setattr(vf, "get_sinusoid_encoding_table", table_on_cpu)
    with torch.device("meta"):
        theirs = vf.vit_giant_patch14_224(
            img_size=224,
            pretrained=False,
            num_classes=174,
            all_frames=16,
            tubelet_size=2,
            drop_path_rate=0.3,
            use_mean_pooling=True,
        )
        ours = VideoMAEv2ViT(CONFIGS["vit_g_hybrid"])
    a = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert a == b
    assert len(a) == 526 and a["patch_embed.proj.weight"] == (1408, 3, 2, 14, 14)
    assert a["blocks.39.mlp.fc1.weight"] == (6144, 1408) and a["head.weight"] == (174, 1408)
    assert "pos_embed" not in b  # fixed table, not in the checkpoint
    assert ours.pos_embed.device.type == "cpu"
    assert torch.equal(tables[0], ours.pos_embed)


def test_tiny_layout_and_sinusoid() -> None:
    assert set(cdfvd_tiny().state_dict()) == set(random_state_dict(TINY, 0))
    assert torch.equal(vf.get_sinusoid_encoding_table(40, 24), sinusoid_table(40, 24))


@pytest.mark.parametrize("t", [16, 8, 24, 5])
def test_features_match_cdfvd(reference, weights_file, t: int) -> None:
    """Same weights (ours via the weights file), same frames: features within 1e-5."""
    videos = _clips(3, t, seed=t)
    ref = _ref_features(reference, videos)
    ext = VideoMAEv2Extractor(config="tiny_test", weights=str(weights_file), batch_size=2)
    ours = ext.extract_videos(videos)
    assert ours.shape == (3, TINY.embed_dim) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=ATOL, rtol=0)
    assert np.abs(ref).max() > 0.5  # features are O(1): the tolerance is meaningful


def test_preprocess_matches_cdfvd() -> None:
    videos = _clips(2, 4, seed=1)
    ref = vutils.preprocess_videomae(videos)
    ours = preprocess(videos, 224)
    assert ours.shape == ref.shape == (2, 3, 4, 224, 224)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
    assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0  # no mean/std normalisation


def test_extract_many_equals_extract_and_is_deterministic(weights_file) -> None:
    ext = VideoMAEv2Extractor(config="tiny_test", weights=str(weights_file), batch_size=3)
    a, b = _clips(4, 16, seed=2), _clips(2, 10, seed=3)
    clips = [a[0], b[0], a[1], a[2], b[1], a[3]]
    many = ext.extract_many(clips, [8.0] * len(clips))
    single = [ext.extract(c) for c in clips]
    for m, s in zip(many, single, strict=True):
        assert m.shape == (1, TINY.embed_dim)
        np.testing.assert_allclose(m, s, atol=ATOL, rtol=0)  # batch-size independence
    again = VideoMAEv2Extractor(config="tiny_test", weights=str(weights_file), batch_size=1)
    np.testing.assert_array_equal(again.extract(clips[0]), ext.extract(clips[0]))


def test_identity_and_registry(weights_file) -> None:
    assert get_extractor_class("videomae_v2") is VideoMAEv2Extractor
    ext = build_extractor("videomae_v2", config="tiny_test", weights=str(weights_file))
    assert ext.kind == "clip"
    ident = ext.identity()
    assert ident["weights_sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert ident["config"] == "tiny_test" and ident["network"]["embed_dim"] == TINY.embed_dim
    assert ident["options"] == {"config": "tiny_test", "resolution": 224}
    assert "/255" in ident["preprocess"] and "bilinear" in ident["preprocess"]
    assert ident["weights"] == "videomae_v2_g_ssv2"


def test_option_errors(weights_file) -> None:
    with pytest.raises(UsageError, match="resolution must be 224"):
        VideoMAEv2Extractor(resolution=128)
    with pytest.raises(UsageError, match="unknown config"):
        VideoMAEv2Extractor(config="vit_h")
    with pytest.raises(UsageError, match="no option"):
        VideoMAEv2Extractor(layer="logits")
    with pytest.raises(UsageError, match="explicit weights"):
        load_videomae("tiny_test")
    ext = VideoMAEv2Extractor(config="tiny_test", weights=str(weights_file))
    with pytest.raises(UsageError, match="at least 2 frames"):
        ext.extract(_clips(1, 1, 0)[0])


def test_wrong_checkpoint_is_a_weights_error(tmp_path, state) -> None:
    path = tmp_path / "wrong.pth"
    torch.save(state, path)  # tiny weights for the ViT-g config
    with pytest.raises(WeightsError, match=r"not a VideoMAE-v2 checkpoint for config 'vit_g_hybrid'"):
        load_videomae("vit_g_hybrid", path)


def test_missing_weights_message_names_file_and_place(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError) as info:
        VideoMAEv2Extractor().load()
    msg = str(info.value)
    assert WEIGHTS_FILE in msg
    assert str(tmp_path / "cache" / "weights" / WEIGHTS_FILE) in msg  # where to put it
    assert "fvd_videomae.weights=PATH" in msg
