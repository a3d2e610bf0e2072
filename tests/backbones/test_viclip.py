"""ViCLIP network (``aigve.backbones.nets.viclip``), the ``viclip`` scorer and ``vbench_temporal_style`` /
``vbench_overall_consistency``.

Reference: VBench's vendored ViCLIP (``vbench/third_party/ViCLIP/viclip*.py``) and its ``temporal_style`` /
``overall_consistency`` functions from the ``vbench`` 0.1.5 wheel (= Vchitect/VBench commit 45e79ec), loaded by
``tests/backbones/vbench_ref.py`` when ``AIGVE_VBENCH_SRC`` is set:

- layout: VBench's full-size ``ViCLIP`` (ViT-L/14 video tower, 12-layer text tower) and ours built on the meta
  device have equal state-dict keys and shapes;
- network: VBench's ``VisionTransformer`` and ``CLIP_TEXT`` built in our ``tiny_test`` sizes with the same seeded
  random weights give the same video and text embeddings within 1e-5;
- tokenizer: VBench's ``CLIP_TEXT.tokenize(context_length=32)`` equals ours on plain, long and odd prompts;
- procedure: VBench's ``temporal_style`` and ``overall_consistency`` (their frame reader replaced by one that
  takes VBench's own ``get_frame_indices`` from our decoded frames) equal our scorer + metrics within 1e-5;
- golden values recorded from that reference run everywhere, with determinism, batch-size independence and
  short videos.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aigve.backbones.base import ScorerInput
from aigve.backbones.nets.viclip import CONFIGS, ViCLIP, random_state_dict
from aigve.backbones.viclip import WEIGHTS_FILE, ClipBPE, ViCLIPScorer, clip_transform, middle_indices
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.vbench_ported import VBenchOverallConsistency, VBenchTemporalStyle
from aigve.types import Entry
from tests.backbones.vbench_ref import vbench_module
from tests.conftest import smooth_clip

pytest.importorskip("open_clip")

TINY = CONFIGS["tiny_test"]
ATOL = 1e-5
PROMPTS = ["A person is dancing, in cyberpunk style", "a cat wearing sunglasses, zoom in", "Lego"]
#: VBench temporal_style on (_clip(20), PROMPTS[0]) and (_clip(5), PROMPTS[1]) with random_state_dict(TINY, seed=4), recorded from the
#: reference (vbench 0.1.5 = Vchitect/VBench 45e79ec) on CPU
GOLDEN: dict[int, float | None] = {20: 0.13444048166275024, 5: 0.33692824840545654}


def _clip(t: int) -> np.ndarray:
    return smooth_clip(t=t, h=72, w=100, seed=2, speed=2.0)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_state_dict(TINY, seed=4)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory, state):
    path = tmp_path_factory.mktemp("viclip") / "viclip_tiny_random.pth"
    torch.save({"model": state}, path)  # the released file keeps its weights under 'model'
    return path


def _reference(state):
    vv = vbench_module("third_party.ViCLIP.viclip_vision")
    vt = vbench_module("third_party.ViCLIP.viclip_text")
    vc = vbench_module("third_party.ViCLIP.viclip")
    ref = vc.ViCLIP.__new__(vc.ViCLIP)
    nn.Module.__init__(ref)
    ref.max_txt_l = TINY.context_length
    ref.masking_prob = 0.9
    ref.vision_encoder = vv.VisionTransformer(
        input_resolution=224, patch_size=14, width=TINY.vision_width, layers=TINY.vision_layers,
        heads=TINY.vision_heads, output_dim=TINY.embed_dim, kernel_size=1, num_frames=8, drop_path=0.1,
    )  # fmt: skip
    ref.text_encoder = vt.CLIP_TEXT(
        TINY.embed_dim,
        TINY.context_length,
        TINY.vocab_size,
        TINY.text_width,
        TINY.text_heads,
        TINY.text_layers,
        0,
    )
    ref.temp = nn.Parameter(torch.ones([]) / 100.0)
    ref.load_state_dict(state, strict=True)
    return ref.eval()


def test_layout_equals_vbench(monkeypatch: pytest.MonkeyPatch) -> None:
    vc = vbench_module("third_party.ViCLIP.viclip")
    real_linspace = (
        torch.linspace
    )  # VBench's drop-path schedule calls .item() on it: keep it off the meta device
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: real_linspace(*a, **{**k, "device": "cpu"}))
    with torch.device("meta"):
        theirs = {
            k: tuple(v.shape) for k, v in vc.ViCLIP(tokenizer=object(), pretrain=None).state_dict().items()
        }
        ours = {k: tuple(v.shape) for k, v in ViCLIP(CONFIGS["vit_l14"]).state_dict().items()}
    assert ours == theirs


def test_tokenizer_matches_vbench() -> None:
    vt = vbench_module("third_party.ViCLIP.viclip_text")
    ref = vt.CLIP_TEXT(8, 32, 49408, 8, 1, 1, 0)
    texts = [*PROMPTS, "  Héllo   &amp; wörld!! " + "very long prompt " * 20]
    ours = ClipBPE()(texts, 32)
    np.testing.assert_array_equal(ours.numpy(), ref.tokenize(texts, context_length=32).numpy())


@pytest.mark.parametrize("t", [8, 1])
def test_network_matches_vbench(state, t: int) -> None:
    ref = _reference(state)
    ours = ViCLIP(TINY).eval()
    ours.load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, t, 3, 224, 224, generator=g)
    tokens = ClipBPE()(PROMPTS, 32)
    with torch.no_grad():
        v_ref = ref.encode_vision(x, test=True).float()
        t_ref = ref.text_encoder(tokens).float()
        v = ours.encode_video(x)
        tt = ours.encode_text(tokens)
    assert v.shape == (2, TINY.embed_dim)
    assert (v - v_ref).abs().max().item() <= ATOL
    assert (tt - t_ref).abs().max().item() <= ATOL


@pytest.mark.parametrize("length", [1, 3, 8, 9, 16, 17, 100])
def test_middle_indices_match_vbench(length: int) -> None:
    u = vbench_module("utils")
    assert middle_indices(8, length) == [int(i) for i in u.get_frame_indices(8, length, sample="middle")]


def test_clip_transform_matches_vbench() -> None:
    u = vbench_module("utils")
    frames = _clip(3)
    theirs = u.clip_transform(224)(torch.from_numpy(frames).permute(0, 3, 1, 2))
    assert torch.equal(clip_transform(frames), theirs)


def _vbench_dimension(name: str, state, videos: list[np.ndarray], prompts: list[str]) -> list[float]:
    mod = vbench_module(name)
    u = vbench_module("utils")
    by_path = {f"v{i}.mp4": v for i, v in enumerate(videos)}

    def read_frames(path, num_frames=8, sample="middle", **_):
        frames = by_path[path]
        idx = u.get_frame_indices(num_frames, len(frames), sample=sample)
        return torch.from_numpy(frames[idx]).permute(0, 3, 1, 2)

    mod.read_frames_decord_by_fps = read_frames
    fn = getattr(mod, name)
    mod.get_text_features.__defaults__[0].clear()  # its text cache is a mutable default, shared across calls
    info = [{"prompt": p, "video_list": [f"v{i}.mp4"]} for i, p in enumerate(prompts)]
    _, results = fn(_reference(state), info, None, "cpu")
    return [r["video_results"] for r in results]


def _ours(weights_file, videos: list[np.ndarray], prompts: list[str], batch_size: int = 32) -> list[float]:
    scorer = ViCLIPScorer(config="tiny_test", weights=str(weights_file), batch_size=batch_size)
    items = [
        ScorerInput(f"v{i}", v, 8.0, {"prompt": p})
        for i, (v, p) in enumerate(zip(videos, prompts, strict=True))
    ]
    metric = VBenchTemporalStyle(config="tiny_test", weights=str(weights_file))
    outs = scorer.score(items)
    return [
        metric.score(Entry(id="v", generated="v.mp4"), {"cosine": o})["vbench_temporal_style"] for o in outs
    ]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["temporal_style", "overall_consistency"])
def test_procedure_matches_vbench(state, weights_file, name: str) -> None:
    videos = [_clip(20), _clip(5), _clip(20)[::-1].copy()]
    theirs = _vbench_dimension(name, state, videos, PROMPTS)
    ours = _ours(weights_file, videos, PROMPTS)
    np.testing.assert_allclose(ours, theirs, atol=ATOL)
    for t, v in zip((20, 5), theirs[:2], strict=True):
        if GOLDEN[t] is not None:
            assert v == pytest.approx(GOLDEN[t], abs=ATOL)


def test_golden_deterministic_batch_independent(weights_file) -> None:
    videos = [_clip(20), _clip(5)]
    prompts = PROMPTS[:2]
    a = _ours(weights_file, videos, prompts)
    b = _ours(weights_file, videos, prompts, batch_size=1)
    assert a == _ours(weights_file, videos, prompts)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert GOLDEN[20] is not None and GOLDEN[5] is not None
    np.testing.assert_allclose(a, [GOLDEN[20], GOLDEN[5]], atol=ATOL)


def test_both_metrics_share_one_request() -> None:
    a = VBenchTemporalStyle().effective_requests()
    b = VBenchOverallConsistency().effective_requests()
    assert [r.key for r in a] == [r.key for r in b]


def test_short_videos_and_errors(weights_file, tmp_path) -> None:
    scorer = ViCLIPScorer(config="tiny_test", weights=str(weights_file))
    assert scorer.prepare(_clip(1)).shape == (8, 3, 224, 224)
    with pytest.raises(MetricInputError):
        scorer.prepare(np.zeros((0, 10, 10, 3), np.uint8))
    with pytest.raises(UsageError):
        ViCLIPScorer(num_frames=16)
    with pytest.raises(UsageError):
        ViCLIPScorer(config="nope")
    with pytest.raises(UsageError, match="no published weights"):
        ViCLIPScorer(config="tiny_test").load()
    bad = tmp_path / "bad.pth"
    torch.save({"model": {"x": torch.zeros(1)}}, bad)
    with pytest.raises(WeightsError, match="not a ViCLIP checkpoint"):
        ViCLIPScorer(config="tiny_test", weights=str(bad)).load()


def test_missing_weights_message_names_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError) as info:
        ViCLIPScorer().load()
    assert WEIGHTS_FILE in str(info.value)
