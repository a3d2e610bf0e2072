"""``videoscore``: the VideoScore port (prompt, frames, processor, Idefics2 + regression head) and the metric.

Reference check (done while porting, in a throwaway environment with transformers 4.46.3 and mantis-vl 0.0.5,
not committed): mantis' ``Idefics2ForSequenceClassification`` (TIGER-AI-Lab/Mantis
``mantis/models/idefics2/modeling_idefics2.py`` @ 0e8a81cc) built from the tiny config of
``tests/backbones/videoscore_tiny.py`` with :func:`seeded_state` weights, fed by transformers 4.46.3's
``Idefics2Processor`` (no image splitting, 378/980, 64 tokens per image) on the upstream prompt
(TIGER-AI-Lab/VideoScore ``examples/run_videoscore.py`` @ 8e449734) + ``"<image> "`` per frame, for three
videos (3 frames 40x56, 2 frames 64x48, 2 frames 400x712). tests/golden/videoscore_tiny.npz holds their
token ids, pixel values (first two), scores, and the key names/shapes of the full-size class
(27 vision layers, perceiver depth 3, 32 Mistral layers). Ours, on transformers 5.x: token ids and pixel
values identical, scores within 6e-7, keys equal in order (764).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.backbones.videoscore import (
    REGRESSION_QUERY_PROMPT,
    encode,
    expand_image_tokens,
    frame_indices,
    image_processor,
    query_text,
)
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.catalog import get_metric_class
from aigve.types import Entry
from tests.backbones.staged import build_scorer
from tests.backbones.videoscore_tiny import build_tokenizer, full_config, seeded_state, tiny_config

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "videoscore_tiny.npz"
#: sha256 / length of REGRESSION_QUERY_PROMPT as read from TIGER-AI-Lab/VideoScore examples/run_videoscore.py
#: at commit 8e449734bbeb4aba327b82f2269e7247633a7abc (the string between the triple quotes)
UPSTREAM_PROMPT_SHA256 = "49b386d9ea3003760c983cc258cf4211faf858d58191f95fcfacdf68a8fed2c0"
UPSTREAM_PROMPT_LEN = 1163


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    g = np.load(GOLDEN)
    return {k: g[k] for k in g.files}


@pytest.fixture(scope="module")
def tiny_dir(golden: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VideoScore-like model folder (config.json, tokenizer, model.safetensors) of the tiny model."""
    from safetensors.torch import save_file

    from aigve.backbones.nets.videoscore import videoscore_class

    prompts = [str(p) for p in golden["prompts"]]
    tok = build_tokenizer(" ".join(REGRESSION_QUERY_PROMPT.format(text_prompt=p) for p in prompts))
    cfg = tiny_config(tok)
    shapes = {k: tuple(v.shape) for k, v in videoscore_class()(cfg).state_dict().items()}
    assert list(shapes) == [str(k) for k in golden["tiny_keys"]]
    d = tmp_path_factory.mktemp("VideoScore-tiny")
    cfg.save_pretrained(d)
    tok.save_pretrained(d)
    save_file(seeded_state(shapes), str(d / "model.safetensors"))
    return d


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)


def _scorer(tiny_dir: Path, **opts):
    m = get_metric_class("videoscore")(weights=str(tiny_dir), **opts)
    return m, build_scorer(m)


# --------------------------------------------------------------------------------------------- prompt
def test_prompt_is_upstreams_byte_for_byte() -> None:
    raw = REGRESSION_QUERY_PROMPT.encode("utf-8")
    assert hashlib.sha256(raw).hexdigest() == UPSTREAM_PROMPT_SHA256 and len(raw) == UPSTREAM_PROMPT_LEN
    assert "sub-score, \nthe lowest" in REGRESSION_QUERY_PROMPT  # the trailing space AIGVE's copy lost
    assert (
        REGRESSION_QUERY_PROMPT.startswith("\nSuppose")
        and REGRESSION_QUERY_PROMPT.count("{text_prompt}") == 1
    )


def test_query_text_and_image_token_expansion() -> None:
    q = query_text("a cat", 3)
    assert q == REGRESSION_QUERY_PROMPT.format(text_prompt="a cat") + "<image> <image> <image> "
    e = expand_image_tokens("x<image> <image><image>y", image_seq_len=2)
    f, i = "<fake_token_around_image>", "<image>"
    assert e == f"x{f}{i}{i}{f} {f}{i}{i}{f}{i}{i}{f}y"  # adjacent images share one boundary token
    assert query_text("<image>", 2).count("<image>") == 2  # upstream counts images already in the text


# --------------------------------------------------------------------------------------------- frames
def test_frame_sampling_v11_and_v10() -> None:
    assert frame_indices(100) == [int(x) for x in np.arange(0, 100, 100 / 48).astype(int)]
    assert len(frame_indices(100)) == 48 and frame_indices(100)[:4] == [0, 2, 4, 6]
    assert frame_indices(49) == [int(x) for x in np.arange(0, 49, 49 / 48).astype(int)]
    assert frame_indices(48) == list(range(48))  # not more than 48: all frames
    assert frame_indices(16) == list(range(16))  # shorter: all frames, no padding (as upstream)
    assert frame_indices(5, 16, "linspace") == [int(x) for x in np.linspace(0, 4, 16).astype(int)]
    with pytest.raises(UsageError):
        frame_indices(10, 16, "uniform")
    with pytest.raises(MetricInputError):
        frame_indices(0)


# ------------------------------------------------------------------------------- processor + network
def test_layout_equals_mantis_full_size_key_for_key(golden: dict[str, np.ndarray]) -> None:
    from aigve.backbones.nets.videoscore import videoscore_class

    with torch.device("meta"):  # no memory for the 8B weights
        net = videoscore_class()(full_config())
    state = net.state_dict()
    assert list(state) == [str(k) for k in golden["full_keys"]]
    assert [json.dumps(list(v.shape)) for v in state.values()] == [str(s) for s in golden["full_shapes"]]
    assert state["score.bias"].shape == (5,) and state["score.weight"].shape == (5, 4096)


def test_processor_and_model_equal_mantis_golden(
    tiny_dir: Path, golden: dict[str, np.ndarray], offline
) -> None:
    _, scorer = _scorer(tiny_dir)
    scorer.ensure_loaded()
    prompts = [str(p) for p in golden["prompts"]]
    for case in range(3):
        frames = golden[f"frames{case}"]
        enc = encode(scorer.tokenizer, image_processor(), frames, prompts[case], list(range(len(frames))))
        np.testing.assert_array_equal(enc["input_ids"].numpy(), golden[f"input_ids{case}"])
        n_img = int((enc["input_ids"] == scorer.model.config.image_token_id).sum())
        assert n_img == 64 * len(frames)  # 64 tokens per frame
        if f"pixel_values{case}" in golden:
            np.testing.assert_allclose(
                enc["pixel_values"].numpy(), golden[f"pixel_values{case}"], rtol=0, atol=1e-6
            )
            np.testing.assert_array_equal(
                enc["pixel_attention_mask"].numpy(), golden[f"pixel_attention_mask{case}"]
            )
        item = _item(frames, prompts[case])
        got = scorer.score([item])[0]
        np.testing.assert_allclose(got, golden[f"logits{case}"], rtol=0, atol=1e-5)


def _item(frames: np.ndarray, prompt: str | None, vid: str = "v"):
    from aigve.backbones.base import ScorerInput

    return ScorerInput(vid, frames, 8.0, {"prompt": prompt} if prompt is not None else {})


def test_determinism_batch_independence_and_short_videos(
    tiny_dir: Path, golden: dict[str, np.ndarray], offline
) -> None:
    _, scorer = _scorer(tiny_dir, num_frames=4)
    rng = np.random.default_rng(5)
    vids = [rng.integers(0, 256, (t, 24, 32, 3), dtype=np.uint8) for t in (9, 2, 1)]
    items = [_item(v, f"prompt number {i}") for i, v in enumerate(vids)]
    together = scorer.score(items)
    alone = [scorer.score([it])[0] for it in items]
    for a, b in zip(together, alone, strict=True):
        assert a.shape == (1, 5)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.concatenate(scorer.score(items)), np.concatenate(together))
    # a 2-frame video with num_frames=4 reads its 2 frames once each (no padding): same as num_frames=2
    _, two = _scorer(tiny_dir, num_frames=2)
    np.testing.assert_array_equal(two.score([items[1]])[0], together[1])
    # 9 frames, num_frames=4: frames arange(0, 9, 2.25).astype(int) = 0, 2, 4, 6
    sub = _item(vids[0][[0, 2, 4, 6]], "prompt number 0")
    np.testing.assert_allclose(scorer.score([sub])[0], together[0], rtol=0, atol=1e-6)


def test_missing_prompt_is_an_error_for_that_video(tiny_dir: Path, offline) -> None:
    _, scorer = _scorer(tiny_dir)
    frames = np.zeros((3, 24, 32, 3), dtype=np.uint8)
    for prompt in (None, "", "   "):
        with pytest.raises(MetricInputError, match="prompt"):
            scorer.score([_item(frames, prompt)])


def test_engine_missing_prompt_only_errors_that_video(tiny_dir: Path, tmp_path: Path, offline) -> None:
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.video.encode import write_video

    rng = np.random.default_rng(0)
    paths = []
    for name in ("a", "b"):
        p = tmp_path / f"{name}.mp4"
        write_video(p, rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8), fps=8)
        paths.append(p)
    entries = [Entry("a", paths[0], prompt="a red car"), Entry("b", paths[1], prompt=None)]
    cfg = RunConfig(
        metrics=["videoscore", "flicker"],
        metric_options={"videoscore": {"weights": str(tiny_dir)}},
        bootstrap=0,
        progress=False,
    )
    res = Engine(Dataset("t", entries), cfg).run()
    recs = {(r.video_id, r.metric, r.output): r for r in res.records}
    outputs = [o.name for o in get_metric_class("videoscore").spec.outputs]
    assert all(recs[("a", "videoscore", o)].error is None for o in outputs)
    assert all("no prompt" in (recs[("b", "videoscore", o)].error or "") for o in outputs)
    assert recs[("b", "flicker", "flicker")].error is None  # other metrics of that video still scored
    a = [
        recs[("a", "videoscore", f"videoscore_{x}")].value for x in ("visual_quality", "factual_consistency")
    ]
    assert all(v is not None and np.isfinite(v) for v in a)


def test_offline_without_checkpoint_names_it(tmp_path: Path, offline) -> None:
    with pytest.raises(WeightsError, match="VideoScore-v1.1") as e:
        build_scorer(get_metric_class("videoscore")()).ensure_loaded()
    assert "videoscore.weights" in str(e.value)


def test_wrong_folder_is_a_weights_error(tmp_path: Path, tiny_dir: Path, offline) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(tiny_dir, bad)
    state = load_file(str(bad / "model.safetensors"))
    state.pop("score.bias")  # a head without bias (transformers' own classifiers) is not VideoScore's
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(WeightsError, match="score.bias"):
        _scorer(bad)[1].ensure_loaded()
    with pytest.raises(WeightsError):
        _scorer(tmp_path)[1].ensure_loaded()  # no config.json
    six = tmp_path / "six"
    shutil.copytree(tiny_dir, six)
    state = load_file(str(six / "model.safetensors"))
    state["score.weight"], state["score.bias"] = torch.zeros(6, 64), torch.zeros(6)  # not 5 aspects
    save_file(state, str(six / "model.safetensors"))
    with pytest.raises(WeightsError, match="score"):
        _scorer(six)[1].ensure_loaded()


# --------------------------------------------------------------------------------------------- metric
def test_metric_spec_outputs_and_options() -> None:
    cls = get_metric_class("videoscore")
    spec = cls.spec
    assert spec.family == "multi_aspect" and spec.inputs == ("generated", "prompt")
    assert [o.name for o in spec.outputs] == [
        "videoscore_visual_quality",
        "videoscore_temporal_consistency",
        "videoscore_dynamic_degree",
        "videoscore_text_to_video_alignment",
        "videoscore_factual_consistency",
        "videoscore_mean",
    ]
    assert all(o.range == (1.0, 4.0) and o.higher_is_better for o in spec.outputs)
    for bad in ({"num_frames": 0}, {"sampling": "uniform"}, {"dtype": "fp16"}):
        with pytest.raises(UsageError):
            cls(**bad)
    sc = build_scorer(cls(num_frames=16, sampling="linspace"))
    assert sc.options["num_frames"] == 16 and sc.options["sampling"] == "linspace"
    assert sc.torch_dtype == torch.float32  # CPU: fp32 (bf16 on CUDA)


def test_metric_score_reads_raw_outputs_in_order() -> None:
    m = get_metric_class("videoscore")()
    row = np.array([[2.5, 3.0, 1.25, 4.5, 0.5]])
    got = m.score(Entry("v", Path("v.mp4"), prompt="p"), {"aspects": row})
    assert got["videoscore_visual_quality"] == 2.5 and got["videoscore_dynamic_degree"] == 1.25
    assert got["videoscore_text_to_video_alignment"] == 4.5  # raw, not clipped to the nominal range
    assert got["videoscore_mean"] == pytest.approx(row.mean())
    with pytest.raises(MetricInputError):
        m.score(Entry("v", Path("v.mp4"), prompt="p"), {"aspects": np.array([[1.0, np.nan, 1.0, 1.0, 1.0]])})


def test_streamed_video_gives_the_values_of_the_whole_one(
    tiny_dir: Path, tmp_path: Path, offline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VideoScore declares the rows ``frame_indices`` picks: a streamed video holds only those (8 of 21 here)
    and gives exactly the values of the video decoded whole."""
    import pandas as pd

    import aigve.engine.execute as execute
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.video.encode import write_video

    rng = np.random.default_rng(1)
    entries = []
    for name, t in (("a", 21), ("b", 6)):
        p = write_video(tmp_path / f"{name}.mp4", rng.integers(0, 256, (t, 32, 32, 3), dtype=np.uint8), fps=8)
        entries.append(Entry(name, p, prompt="a red car"))
    held: list[int] = []
    real_make_feed = execute.make_feed

    def make_feed(backbone, rows, fps):  # type: ignore[no-untyped-def]
        feed = real_make_feed(backbone, rows, fps)
        if backbone.name == "videoscore":
            held.append(len(feed._need))  # the rows the streamed feed keeps
        return feed

    monkeypatch.setattr(execute, "make_feed", make_feed)

    def run(**kw):  # type: ignore[no-untyped-def]
        cfg = RunConfig(
            metrics=["videoscore"], metric_options={"videoscore": {"weights": str(tiny_dir), "num_frames": 8}},
            bootstrap=0, set_bootstrap=0, progress=False, cache_dir=None, **kw,
        )  # fmt: skip
        table = Engine(Dataset("t", entries), cfg).run().per_video
        return table.sort_values(["video_id", "metric", "output"]).reset_index(drop=True)

    whole = run(stream_above_mib=None)
    streamed = run(stream_above_mib=0, stream_chunk_mib=0.01)  # 3 frames a chunk
    assert sorted(held) == [6, 8]
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    assert whole["error"].isna().all() and whole["value"].notna().all()
