"""``videophy``: our mPLUG-Owl-Video port, prompts, tokenisation, frame sampling and reading against the authors' code.

Reference: Hritikbansal/videophy at 01d366c979e4a82875852adbf427ccc036e7373a, run with transformers 4.28.1 in a
separate environment (not part of this repository): ``utils/constants.py`` (templates),
``videocon/training/pipeline_video/mplug_owl_video/*`` (``MplugOwlForConditionalGeneration``, ``get_index``,
``MplugOwlImageProcessor``), ``data_utils/xgpt3_dataset.py`` (``_extract_text_token_from_conversation`` with
transformers 4.28.1's ``LlamaTokenizer``, ``max_length=256``) and ``entailment_inference.py`` (``get_entail``).
It was given the tiny snapshot of ``tests/backbones/videophy_tiny.py`` and seeded pixels; what it returned is
``tests/golden/videophy_tiny.npz`` (token ids, ``get_index`` rows, the processor's normalisation, the video
tokens, the logits at the read position and the entailment scores of six questions). The full-size state
dict's keys and shapes of the authors' class (built on the meta device) are ``tests/golden/videophy_keys.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sentencepiece")

from aigve.backbones.base import ScorerInput  # noqa: E402
from aigve.backbones.nets.mplug_owl_video import MplugOwlVideo, map_checkpoint_keys, rotary_inv_freq  # noqa: E402
from aigve.backbones.videophy import (  # noqa: E402
    COLUMNS,
    PROMPT_PC,
    PROMPT_SA,
    VideophyScorer,
    conversation_ids,
    load_videophy,
    p_yes,
    preprocess_frames,
    read_position,
)
from aigve.errors import MetricInputError, UsageError, WeightsError  # noqa: E402
from aigve.video.sampling import Sampler  # noqa: E402
from tests.backbones.videophy_tiny import CAPTIONS, GOLDEN, tiny_pixels, write_tiny_snapshot  # noqa: E402

TOL = 1e-5  # fp32 on CPU; the port reproduced the authors' numbers exactly when this file was made


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "videophy_tiny.npz"))


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_snapshot(tmp_path_factory.mktemp("videophy") / "snapshot")


@pytest.fixture(scope="module")
def model(snapshot: Path):  # noqa: ANN201
    return load_videophy(snapshot)


# ------------------------------------------------------------------------------------------ text side
def test_templates_are_upstream_bytes(golden: dict[str, np.ndarray]) -> None:
    assert PROMPT_SA.encode("utf-8") == golden["prompt_vta"].tobytes()
    assert PROMPT_PC.encode("utf-8") == golden["prompt_physics"].tobytes()
    assert "{caption}" in PROMPT_SA and "{caption}" not in PROMPT_PC


def test_token_ids_match_the_authors_dataset(model, golden: dict[str, np.ndarray]) -> None:  # noqa: ANN001
    tok = model.tokenizer
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    assert [model.yes_id, model.no_id] == golden["yes_no_ids"].tolist()
    for i, caption in enumerate(CAPTIONS):
        ids = conversation_ids(tok, PROMPT_SA.format(caption=caption))
        assert ids == golden[f"ids_sa_{i}"].tolist(), caption
        assert len(ids) == 257
    assert conversation_ids(tok, PROMPT_PC) == golden["ids_pc"].tolist()
    # the video takes 65 placeholders; the long caption is cut at 257 tokens (no padding left)
    assert golden["ids_pc"].tolist().count(-2) == 65
    assert 0 not in golden["ids_sa_6"].tolist()
    # a caption holding the video tag gets a second run of 65 placeholders (the model splices the video again)
    assert golden["ids_sa_7"].tolist().count(-2) == 130 and "sa_7" in golden["model_questions"].tolist()


def test_read_position_is_get_entails() -> None:
    assert read_position([1, 5, 6, 0, 0], 0) == 2
    assert read_position([1, 5, 6], 0) == 2  # no padding: the last token
    assert read_position([0, 5], 0) == -1  # the authors' loop gives -1 (Python: the last position)
    assert read_position([1, 0, 7, 0], 0) == 0  # a literal <unk> in the caption stops the scan, as upstream


def test_p_yes_is_the_ratio_of_softmax_probabilities() -> None:
    logits = torch.tensor([[0.0, 2.0, -1.0, 0.5], [3.0, 0.0, 0.0, 1.0]])
    probs = torch.softmax(logits, -1)
    expected = probs[:, 1] / (probs[:, 1] + probs[:, 2])
    assert torch.allclose(p_yes(logits, 1, 2), expected)
    assert torch.allclose(p_yes(logits, 1, 2), torch.sigmoid(logits[:, 1] - logits[:, 2]), atol=1e-7)


# ------------------------------------------------------------------------------------------ frames
def test_segment_sampler_matches_get_index(golden: dict[str, np.ndarray]) -> None:
    for key in (k for k in golden if k.startswith("get_index_")):
        n = int(key.rsplit("_", 1)[1])
        assert Sampler("segments", n=32).select(n) == golden[key].tolist(), n
    # shorter than 32 frames: 32 rows, each frame repeated near its segments (no padding, no error)
    rows = Sampler("segments", n=32).select(5)
    assert len(rows) == 32 and set(rows) == {0, 1, 2, 3, 4} and rows == sorted(rows)
    assert Sampler("segments", n=32).select(1) == [0] * 32
    assert Sampler("segments", n=32).select(0) == []
    assert Sampler("segments", n=32).id == "segments,n=32,pad=none"
    with pytest.raises(UsageError):
        Sampler("segments")


def test_normalisation_matches_the_authors_processor(golden: dict[str, np.ndarray]) -> None:
    """At 224 x 224 the CLIP processor only rescales and normalises; ours must give the same numbers."""
    frames = np.random.default_rng(11).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    ours = preprocess_frames(frames).permute(1, 0, 2, 3)  # [T, 3, H, W] like the processor
    assert np.abs(ours[:, :, :32, :32].numpy() - golden["clip_proc_crop"]).max() < 1e-5
    assert abs(float(ours.double().sum()) - float(golden["clip_proc_sum"])) < 1e-2


def test_preprocess_resizes_to_224_and_rejects_bad_frames() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 80, 3), dtype=np.uint8)
    out = preprocess_frames(frames)
    assert out.shape == (3, 3, 224, 224) and out.dtype == torch.float32
    flat = np.full((2, 50, 70, 3), 128, dtype=np.uint8)  # a flat frame stays flat after resizing
    assert torch.allclose(
        preprocess_frames(flat)[0], preprocess_frames(np.full((2, 224, 224, 3), 128, np.uint8))[0]
    )
    with pytest.raises(UsageError):
        preprocess_frames(frames.astype(np.float32))  # type: ignore[arg-type]
    with pytest.raises(MetricInputError):
        preprocess_frames(np.zeros((0, 8, 8, 3), dtype=np.uint8))


# ------------------------------------------------------------------------------------------ the network
def test_tiny_network_matches_the_authors_class(model, golden: dict[str, np.ndarray]) -> None:  # noqa: ANN001
    """Same config, same random weights (loaded through our loader), same inputs: the authors' video tokens,
    logits at the read position and entailment scores within 1e-5."""
    with torch.inference_mode():
        videos = model.net.video_tokens(tiny_pixels(2))
        assert np.abs(videos.numpy() - golden["video_tokens"]).max() < TOL
        prompts = []
        for q, pos in zip(golden["model_questions"], golden["model_read_pos"], strict=True):
            ids = golden[f"ids_{q}"].tolist()
            assert read_position(ids, model.tokenizer.pad_id) == int(pos)
            prompts.append(ids[: int(pos) + 1])
        logits = model.net.read_logits(prompts, videos, golden["model_video_index"].tolist())
        assert np.abs(logits.numpy() - golden["model_read_logits"]).max() < TOL
        scores = p_yes(logits, model.yes_id, model.no_id).numpy()
    assert np.abs(scores - golden["model_entail"]).max() < TOL
    assert scores.std() > 1e-3  # the golden values are not degenerate


def test_full_size_state_dict_keys_equal_the_authors() -> None:
    """The released layout (ViT-L/14, 6-layer abstractor, LLaMA-7B): every key and shape of the authors'
    ``MplugOwlForConditionalGeneration`` state dict, less the 32 ``inv_freq`` buffers the mapping drops."""
    upstream = json.loads((GOLDEN / "videophy_keys.json").read_text())["shapes"]
    with torch.device("meta"):
        net = MplugOwlVideo()
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    state = {
        k: (rotary_inv_freq(128, 10000.0) if k.endswith("inv_freq") else torch.empty(v, device="meta"))
        for k, v in upstream.items()
    }
    mapped = map_checkpoint_keys(state, net)
    assert {k: list(v.shape) for k, v in mapped.items()} == ours
    assert len(upstream) - len(ours) == 32 and len(ours) == 917
    assert sum(int(np.prod(v)) for v in ours.values()) == 7_152_635_904 - 32 * 64


def test_checkpoint_mapping_and_strict_load_errors(snapshot: Path, tmp_path: Path) -> None:
    state = torch.load(snapshot / "pytorch_model.bin", weights_only=True)
    bad = dict(state)
    bad["language_model.model.layers.0.self_attn.rotary_emb.inv_freq"] = (
        bad["language_model.model.layers.0.self_attn.rotary_emb.inv_freq"] * 2
    )
    with torch.device("meta"):
        net = MplugOwlVideo(load_videophy(snapshot).net.cfg)
    with pytest.raises(RuntimeError, match="rotary"):
        map_checkpoint_keys(bad, net)
    broken = write_tiny_snapshot(tmp_path / "broken")
    del state["abstractor.vit_eos"]
    torch.save(state, broken / "pytorch_model.bin")
    with pytest.raises(WeightsError, match=r"not a VideoCon-Physics.*vit_eos"):
        load_videophy(broken)


def test_safetensors_snapshot_loads_the_same(snapshot: Path, tmp_path: Path) -> None:
    alt = write_tiny_snapshot(tmp_path / "st", weight_file="model.safetensors")
    a, b = load_videophy(snapshot).net.state_dict(), load_videophy(alt).net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_offline_error_names_the_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as info:
        load_videophy(None)
    msg = str(info.value)
    assert "videophysics/videocon_physics" in msg and "aigve weights fetch videophy" in msg
    with pytest.raises(WeightsError, match="tokenizer.model"):
        d = write_tiny_snapshot(tmp_path / "notok")
        (d / "tokenizer.model").unlink()
        load_videophy(d)


# ------------------------------------------------------------------------------------------ the scorer
def _videos() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (t, 40 + 8 * i, 56, 3), dtype=np.uint8) for i, t in enumerate((32, 32, 32))]


def test_scorer_determinism_batch_independence_and_prompt_use(snapshot: Path) -> None:
    prompts = ["An apple falls and bounces.", "Water pours into a glass.", "A car drives on a wet road."]
    items = [
        ScorerInput(f"v{i}", v, 8.0, {"prompt": p})
        for i, (v, p) in enumerate(zip(_videos(), prompts, strict=True))
    ]
    one = VideophyScorer(weights=str(snapshot), batch_size=1)
    three = VideophyScorer(weights=str(snapshot), batch_size=3)
    a = one.score(items)
    b = three.score(items)
    again = one.score(items)
    for x, y, z in zip(a, b, again, strict=True):
        assert x.shape == (1, 2) and np.all((x >= 0) & (x <= 1))
        assert np.array_equal(x, z)  # deterministic
        assert np.abs(x - y).max() < 1e-6  # batch-size independent (padding never reaches a read position)
    # physical commonsense ignores the caption; semantic adherence reads it
    other = [
        ScorerInput(it.video_id, it.data, it.fps, {"prompt": "Something else entirely."}) for it in items
    ]
    c = one.score(other)
    for x, y in zip(a, c, strict=True):
        assert x[0, COLUMNS.index("physical_commonsense")] == pytest.approx(y[0, 1], abs=1e-7)
        assert x[0, 0] != pytest.approx(y[0, 0], abs=1e-6)
    assert one.identity()["dtype"] == "float32" and one.weights_sha256()


def test_scorer_equals_the_golden_path_on_the_same_pixels(snapshot: Path, model) -> None:  # noqa: ANN001
    """The scorer's own path (prompts, splice, batching) on frames equals the network read directly."""
    sc = VideophyScorer(weights=str(snapshot))
    frames = _videos()[0]
    out = sc.score([ScorerInput("v", frames, 8.0, {"prompt": CAPTIONS[0]})])[0]
    tok = model.tokenizer
    with torch.inference_mode():
        videos = model.net.video_tokens(preprocess_frames(frames, 56)[None])
        prompts = []
        for conv in (PROMPT_SA.format(caption=CAPTIONS[0]), PROMPT_PC):
            ids = conversation_ids(tok, conv)
            prompts.append(ids[: read_position(ids, tok.pad_id) + 1])
        ref = p_yes(model.net.read_logits(prompts, videos, [0, 0]), model.yes_id, model.no_id).numpy()
    assert np.abs(out[0] - ref).max() < 1e-6


def test_scorer_options_and_bad_prompts(snapshot: Path) -> None:
    with pytest.raises(UsageError):
        VideophyScorer(weights=str(snapshot), colour="red")
    with pytest.raises(UsageError):
        VideophyScorer(weights=str(snapshot), dtype="int8")
    with pytest.raises(UsageError):
        VideophyScorer(weights=str(snapshot), max_length=10)
    sc = VideophyScorer(weights=str(snapshot))
    with pytest.raises(MetricInputError, match="<image>"):
        sc.score([ScorerInput("v", _videos()[0], 8.0, {"prompt": "an <image> tag"})])


def test_bfloat16_matches_the_authors_bfloat16(snapshot: Path, golden: dict[str, np.ndarray]) -> None:
    """The authors' setting (bfloat16 weights and activations, logits and softmax in bfloat16): their class
    (with transformers 4.28's float32 rotary tables) gave ``model_entail_bf16`` on CPU; ours equals it
    there (tolerance: one bfloat16 step near 1, for other CPUs' kernels)."""
    m = load_videophy(snapshot, dtype="bfloat16")
    assert m.net.dtype == torch.bfloat16
    with torch.inference_mode():
        videos = m.net.video_tokens(tiny_pixels(2))
        prompts = [
            golden[f"ids_{q}"].tolist()[: int(p) + 1]
            for q, p in zip(golden["model_questions"], golden["model_read_pos"], strict=True)
        ]
        logits = m.net.read_logits(prompts, videos, golden["model_video_index"].tolist())
        assert logits.dtype == torch.bfloat16
        scores = p_yes(logits, m.yes_id, m.no_id).float().numpy()
    assert np.abs(scores - golden["model_entail_bf16"]).max() <= 2**-8
    assert np.abs(scores - golden["model_entail"]).max() < 0.02  # and near the float32 values
