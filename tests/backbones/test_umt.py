"""UMT classifier (``aigve.backbones.nets.umt``), the ``umt_k400`` extractor and ``vbench_human_action``.

Reference: VBench's vendored UMT (``vbench/third_party/umt/models/modeling_finetune.py``), its UMT video
transforms and its ``human_action`` function from the ``vbench`` 0.1.5 wheel (= Vchitect/VBench commit 45e79ec),
loaded by ``tests/backbones/vbench_ref.py`` when ``AIGVE_VBENCH_SRC`` is set:

- layout: VBench's ``vit_large_patch16_224(num_classes=400, all_frames=16, tubelet_size=1, use_mean_pooling=True)``
  and our ``vit_l16_k400`` built on the meta device have equal state-dict keys and shapes, and our position
  table equals VBench's resampled one exactly;
- network: VBench's ``VisionTransformer`` in our ``tiny_test`` sizes with the same seeded random weights gives
  the same logits within 1e-5;
- preprocessing: VBench's ``Compose([Resize(256), CenterCrop(224), ClipToTensor(), Normalize])`` on VBench's
  16 middle frames equals ours exactly, for landscape, portrait and already-256 videos;
- procedure: VBench's ``human_action`` (``create_model`` returning the tiny network, ``load_video`` reading our
  decoded frames) gives the same per-video verdicts as our extractor + metric, for labels it recognises and
  labels it does not;
- golden probabilities recorded from the reference run everywhere, with determinism, batch-size independence,
  short videos and the label errors.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from aigve.backbones.base import ScorerInput
from aigve.backbones.nets.umt import (
    CONFIGS,
    UMTClassifier,
    kinetics400_labels,
    random_state_dict,
    sinusoid_table,
)
from aigve.backbones.umt import (
    WEIGHTS_FILE,
    UMTActionScorer,
    UMTKineticsExtractor,
    action_hit,
    action_label,
    preprocess,
)
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.vbench_ported import VBenchHumanAction
from aigve.types import Entry
from tests.backbones.vbench_ref import vbench_module
from tests.conftest import smooth_clip

pytest.importorskip("cv2")

TINY = CONFIGS["tiny_test"]
ATOL = 1e-5
#: top-5 (class index, sigmoid probability) of the tiny random UMT (random_state_dict(TINY, seed=6)) on
#: _clip(20), recorded from VBench's VisionTransformer + transforms (vbench 0.1.5 = Vchitect/VBench 45e79ec), CPU
GOLDEN_TOP5: list[tuple[int, float]] | None = [
    (146, 0.9545055627822876),
    (111, 0.9461658596992493),
    (366, 0.9419529438018799),
    (396, 0.9141992330551147),
    (157, 0.9122572541236877),
]


def _clip(t: int, h: int = 240, w: int = 320) -> np.ndarray:
    return smooth_clip(t=t, h=h, w=w, seed=3, speed=4.0)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_state_dict(TINY, seed=6)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory, state):
    path = tmp_path_factory.mktemp("umt") / "umt_tiny_random.pth"
    torch.save(state, path)  # VBench loads the file itself as the state dict
    return path


def _reference_net(state=None, cfg=TINY):
    mf = vbench_module("third_party.umt.models.modeling_finetune")
    net = mf.VisionTransformer(
        img_size=224, patch_size=16, embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.heads, mlp_ratio=4,
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), num_classes=400, all_frames=16,
        tubelet_size=1, use_learnable_pos_emb=False, fc_drop_rate=0.0, drop_rate=0.0, drop_path_rate=0.2,
        attn_drop_rate=0.0, use_checkpoint=False, checkpoint_num=16, use_mean_pooling=True, init_scale=0.001,
    )  # fmt: skip
    if state is not None:
        net.load_state_dict(state, strict=True)
    return net.eval()


def test_layout_and_position_table_equal_vbench(monkeypatch: pytest.MonkeyPatch) -> None:
    mf = vbench_module("third_party.umt.models.modeling_finetune")
    real_linspace = (
        torch.linspace
    )  # VBench's drop-path schedule calls .item() on it: keep it off the meta device
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: real_linspace(*a, **{**k, "device": "cpu"}))
    with torch.device("meta"):
        theirs = {
            k: tuple(v.shape) for k, v in _reference_net(cfg=CONFIGS["vit_l16_k400"]).state_dict().items()
        }
        ours = {k: tuple(v.shape) for k, v in UMTClassifier(CONFIGS["vit_l16_k400"]).state_dict().items()}
    assert ours == theirs
    table = mf.get_sinusoid_encoding_table(3136, 64, 16, pre_n_position=1568)
    assert torch.equal(sinusoid_table(16, 14, 64), table.detach())


def test_network_matches_vbench(state) -> None:
    ref = _reference_net(state)
    ours = UMTClassifier(TINY).eval()
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 16, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = ref(x)
        b = ours(x)
    assert (a - b).abs().max().item() <= ATOL


def _vbench_transform():
    vt = vbench_module("third_party.umt.datasets.video_transforms")
    vol = vbench_module("third_party.umt.datasets.volume_transforms")
    return vt.Compose(
        [
            vt.Resize(256, interpolation="bilinear"),
            vt.CenterCrop(size=(224, 224)),
            vol.ClipToTensor(),
            vt.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )


@pytest.mark.parametrize("hw", [(240, 320), (330, 250), (256, 300), (130, 140)])
def test_preprocess_matches_vbench(hw) -> None:
    u = vbench_module("utils")
    frames = _clip(11, *hw)
    theirs = _vbench_transform()(frames[u.get_frame_indices(16, len(frames), sample="middle")])
    assert torch.equal(preprocess(frames), theirs)


def _ours_probs(weights_file, videos, batch_size: int = 32) -> np.ndarray:
    ext = UMTKineticsExtractor(config="tiny_test", weights=str(weights_file), batch_size=batch_size)
    return np.concatenate(ext.extract_many(videos, [None] * len(videos)))


def test_procedure_matches_vbench(state, weights_file, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    ha = vbench_module("human_action")
    u = vbench_module("utils")
    labels = kinetics400_labels()
    videos = [_clip(20), _clip(7, 300, 240)]
    probs = _ours_probs(weights_file, videos)
    # per video: the most probable class (a hit when >= 0.85) and the least probable one (never a hit)
    cases = []
    for i, p in enumerate(probs):
        cases += [(i, labels[int(np.argmax(p))]), (i, labels[int(np.argmin(p))])]
    by_path = {f"/v/A person is {lab}-{k}.mp4": videos[i] for k, (i, lab) in enumerate(cases)}

    def load_video(path, data_transform=None, num_frames=None, **_):
        frames = by_path[path]
        return data_transform(frames[u.get_frame_indices(num_frames, len(frames), sample="middle")])

    monkeypatch.setattr(ha, "load_video", load_video)
    monkeypatch.setattr(ha, "create_model", lambda *a, **k: _reference_net())
    _, results = ha.human_action(str(weights_file), list(by_path), "cpu")
    theirs = [r["video_results"] for r in results]
    metric = VBenchHumanAction(config="tiny_test", weights=str(weights_file))
    scorer = UMTActionScorer(config="tiny_test", weights=str(weights_file))
    items = [
        ScorerInput(str(k), probs[i : i + 1], None, {"prompt": f"A person is {lab}"})
        for k, (i, lab) in enumerate(cases)
    ]
    ours = []
    for k, out in enumerate(scorer.score(items)):
        entry = Entry(id=str(k), generated=f"v{k}.mp4", prompt=items[k].texts["prompt"])  # type: ignore[arg-type]
        ours.append(bool(metric.score(entry, {"action": out})["vbench_human_action"]))
    assert ours == theirs
    assert any(theirs) or max(probs.max(axis=1)) < 0.85


def test_golden_deterministic_batch_independent(weights_file) -> None:
    videos = [_clip(20), _clip(3, 300, 240)]
    a = _ours_probs(weights_file, videos)
    b = _ours_probs(weights_file, videos, batch_size=1)
    np.testing.assert_array_equal(a, _ours_probs(weights_file, videos))
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert GOLDEN_TOP5 is not None
    top = np.argsort(-a[0])[:5]
    assert [int(i) for i in top] == [i for i, _ in GOLDEN_TOP5]
    np.testing.assert_allclose(a[0][top], [p for _, p in GOLDEN_TOP5], atol=ATOL)


def test_label_rule_and_errors(weights_file) -> None:
    labels = kinetics400_labels()
    assert action_label("A person is riding a bike") == "riding a bike"
    assert action_label("a person is Playing Cello") == "playing cello"
    probs = np.full(400, 0.1)
    probs[labels.index("riding a bike")] = 0.86
    probs[labels.index("marching")] = 0.849949  # rounds to 0.8499 < 0.85
    assert action_hit(probs, "riding a bike", labels)
    assert not action_hit(probs, "marching", labels)
    metric = VBenchHumanAction()
    scorer = UMTActionScorer()
    out = scorer.score([ScorerInput("x", probs[None], None, {"prompt": "a cat on a sofa"})])[0]
    assert out.tolist() == [[0.0, 0.0]]
    with pytest.raises(MetricInputError, match="Kinetics-400"):
        metric.score(Entry(id="x", generated="x.mp4", prompt="a cat on a sofa"), {"action": out})  # type: ignore[arg-type]
    hit = scorer.score([ScorerInput("y", probs[None], None, {"prompt": "A person is riding a bike"})])[0]
    assert hit.tolist() == [[1.0, 1.0]]
    assert scorer.upstream() == ("umt_k400", {"config": "vit_l16_k400"})
    ext = UMTKineticsExtractor(config="tiny_test", weights=str(weights_file))
    assert ext.extract(_clip(1)).shape == (1, 400)  # one frame, repeated to 16
    with pytest.raises(MetricInputError):
        preprocess(np.zeros((0, 10, 10, 3), np.uint8))
    with pytest.raises(UsageError):
        UMTKineticsExtractor(config="nope")
    with pytest.raises(UsageError, match="no published weights"):
        UMTKineticsExtractor(config="tiny_test").load()


def test_checkpoint_without_pos_embed_keeps_own_table(tmp_path, state) -> None:
    path = tmp_path / "no_pos.pth"
    torch.save({k: v for k, v in state.items() if k != "pos_embed"}, path)
    ext = UMTKineticsExtractor(config="tiny_test", weights=str(path))
    ext.load()
    assert ext.model is not None
    assert torch.equal(ext.model.pos_embed.detach(), sinusoid_table(16, 14, TINY.embed_dim))
    bad = tmp_path / "bad.pth"
    torch.save({**state, "extra.weight": torch.zeros(1)}, bad)
    with pytest.raises(WeightsError, match="not a UMT Kinetics-400 checkpoint"):
        UMTKineticsExtractor(config="tiny_test", weights=str(bad)).load()


def test_missing_weights_message_names_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError) as info:
        UMTKineticsExtractor().load()
    assert WEIGHTS_FILE in str(info.value)
