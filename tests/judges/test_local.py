"""The local judge: a tiny Qwen2-VL / Qwen2.5-VL with seeded random weights, saved in the save_pretrained
layout and loaded through :class:`aigve.judges.local.LocalJudge`; VQAScore against P("Yes") computed directly
with transformers (greedy ``generate`` with ``max_new_tokens=1``, as t2v_metrics' Qwen2-VL model does)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aigve.errors import UsageError, WeightsError
from aigve.judges import vqascore
from aigve.judges.cache import ResponseCache
from aigve.judges.local import LocalJudge
from tests.judges.tiny_qwen import build_tiny_qwen

pytest.importorskip("transformers")


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def tiny_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen(tmp_path_factory.mktemp(request.param) / "model", family=request.param, seed=3)


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(40 + 8 * i, 56, 3), dtype=np.uint8) for i in range(n)]


def reference_p_yes(model_dir: Path, question: str, image: np.ndarray) -> float:
    """P("Yes") the way t2v_metrics reads it from a Qwen2-VL: greedy generate, one new token, softmax of its
    logits at the id of "Yes"; model and processor loaded here with plain transformers."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    proc = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    inputs = proc(text=[text], images=[Image.fromarray(image)], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True
        )
    yes = proc.tokenizer.encode("Yes", add_special_tokens=False)[0]
    return float(torch.softmax(out.logits[0][0].double(), dim=-1)[yes])


def test_vqascore_equals_p_yes_from_transformers(tiny_dir: Path) -> None:
    judge = LocalJudge(str(tiny_dir), batch_size=3)
    fs = frames(4)
    plan = vqascore.prepare(judge, "a cat on a sofa")
    outcome = vqascore.score_video(judge, plan, fs)
    ref = [reference_p_yes(tiny_dir, plan["question"], f) for f in fs]
    assert outcome.details["p_yes_per_frame"] == pytest.approx(ref, abs=1e-5)
    assert outcome.values["vqascore"] == pytest.approx(float(np.mean(ref)), abs=1e-5)
    assert len(set(np.round(ref, 6))) > 1  # the frames give different answers: a real check
    ident = judge.identity()
    assert ident["backend"] == "local" and ident["model"] == "model" and len(ident["weights_sha256"]) == 64


def test_batch_size_independent_and_deterministic(tiny_dir: Path) -> None:
    fs = frames(5, seed=1)
    q = vqascore.QUESTION.format("a dog")
    one = LocalJudge(str(tiny_dir), batch_size=1).yes_probabilities([(q, [f]) for f in fs])
    many = LocalJudge(str(tiny_dir), batch_size=4).yes_probabilities([(q, [f]) for f in fs])
    assert many == pytest.approx(one, abs=1e-6)
    assert LocalJudge(str(tiny_dir), batch_size=4).yes_probabilities([(q, [f]) for f in fs]) == many


def test_generation_is_greedy_and_cached(tiny_dir: Path, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite")
    judge = LocalJudge(str(tiny_dir), cache=cache)
    a = judge.ask("Does this figure show a cat?", frames(2), max_tokens=6)
    assert a.completion_tokens <= 6 and a.prompt_tokens > 0
    b = LocalJudge(str(tiny_dir), cache=cache).ask("Does this figure show a cat?", frames(2), max_tokens=6)
    assert b.cached and b.text == a.text
    c = LocalJudge(str(tiny_dir)).ask("Does this figure show a cat?", frames(2), max_tokens=6)
    assert c.text == a.text  # greedy: the same answer without the cache


def test_missing_model_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="huggingface-cli download Qwen/Qwen2-VL-2B-Instruct"):
        LocalJudge("qwen2_vl_2b_instruct")
    with pytest.raises(UsageError, match="neither a directory nor a known local judge"):
        LocalJudge("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="config.json"):
        LocalJudge(str(tmp_path / "empty"))


def test_vqascore_through_the_engine_with_the_local_judge(tiny_dir: Path, tmp_path: Path) -> None:
    from aigve import evaluate
    from aigve.data.dataset import Dataset
    from aigve.types import Entry
    from aigve.video.encode import write_video
    from tests.conftest import smooth_clip

    v = write_video(tmp_path / "v.mp4", smooth_clip(t=6, h=32, w=48), fps=6)
    ds = Dataset(name="local", entries=[Entry(id="v", generated=v, prompt="a cat")])
    res = evaluate(
        ds,
        "vqascore",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge={"backend": "local", "model": str(tiny_dir)},
        metric_options={"vqascore": {"num_frames": 2}},
    )
    from aigve.video.decode import decode_video

    clip = decode_video(v)
    rows = [0, clip.num_frames - 1]
    ref = np.mean(
        [reference_p_yes(tiny_dir, vqascore.QUESTION.format("a cat"), clip.frames[r]) for r in rows]
    )
    assert res.wide().loc["v", "vqascore"] == pytest.approx(ref, abs=1e-5)
    assert res.aggregates["vqascore"].provenance["judge"]["backend"] == "local"
