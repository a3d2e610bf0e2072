"""VIEScore, TIFA and DSG wired through the engine to the endpoint judge, against the scripted server: the
requests each method sends (images, texts), question generation once per distinct prompt, the scoring on
recorded replies, per-question details, error rows with the raw reply, and zero requests on a rerun."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from aigve import evaluate
from aigve.data.dataset import Dataset
from aigve.types import Entry
from tests.conftest import smooth_clip
from tests.judges.chatserver import ChatServer, Seen

pytest.importorskip("sentence_transformers")

APPLE = "A red apple on a table."
DOG = "A dog on a table."
TIFA_GENERATION = """: {obj}, table
Activities:
Colors: red
Counting:
Other attributes:
Questions and answers are below:
About {obj} (object):
Q: is there {article} {obj}?
Choices: yes, no
A: yes
Q: what is on the table?
Choices: {obj}, pear, banana, orange
A: {obj}
About table (object):
Q: is there a table?
Choices: yes, no
A: yes
About red (color):
Q: what color is the {obj}?
Choices: red, green, yellow, blue
A: red"""
DSG_TUPLES = "1 | entity - whole ({obj})\n2 | entity - whole (table)\n3 | attribute - color ({obj}, red)\n4 | relation - spatial ({obj}, table, on)"
DSG_QUESTIONS = "1 | Is there {article} {obj}?\n2 | Is there a table?\n3 | Is the {obj} red?\n4 | Is the {obj} on the table?"
DSG_DEPENDENCIES = "1 | 0\n2 | 0\n3 | 1\n4 | 1,2"
DSG_VQA = "Answer only with 'yes' or 'no'. Do not give other outputs or punctuation marks. Question: "
TIFA_VQA = "Answer the multiple-choice question. Question: "


def respond(seen: Seen) -> str | dict:
    text = seen.text
    obj = "dog" if "dog" in text.split("Entities")[-1] or "Description: A dog" in text[-200:] else "apple"
    fill = {"obj": obj, "article": "a" if obj == "dog" else "an"}
    if text.endswith("\nEntities"):  # TIFA question generation (text only)
        assert seen.n_images == 0
        return TIFA_GENERATION.format(**fill)
    if text.startswith("Task: given input prompts, describe each scene"):
        assert seen.n_images == 0
        return DSG_TUPLES.format(**fill)
    if text.startswith("Task: given input prompts and skill-specific tuples"):
        return DSG_QUESTIONS.format(**fill)
    if text.startswith("Task: given input prompts and tuples, describe the parent"):
        return DSG_DEPENDENCIES
    assert seen.n_images >= 1  # every VQA / rating request carries frames
    if text.startswith(DSG_VQA):
        q = text[len(DSG_VQA) :]
        return "No" if q.startswith("Is there an apple") else "yes"  # the root 'no' zeroes its children
    if text.startswith(TIFA_VQA):
        q = text[len(TIFA_VQA) :]
        if q.startswith("what is on the table"):
            return f"a {'small dog' if 'dog' in q else 'shiny apple'}"  # free-form: mapped by the embedder
        if q.startswith("what color"):
            return "green"  # wrong
        return "yes"
    if "naturalness" in text:  # VIEScore PQ
        return '{"score": [6, 8], "reasoning": "fine"}'
    if "dog" in text and "sorry" not in text:  # VIEScore SC for the dog prompt: unusable
        return "I cannot rate this."
    return '{"score": [7], "reasoning": "matches"}'


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from aigve.video.encode import write_video

    d = tmp_path_factory.mktemp("judge-method-videos")
    return [write_video(d / f"v{i}.mp4", smooth_clip(t=6, h=32, w=32, seed=i), fps=6) for i in range(3)]


def run(videos: list[Path], server: ChatServer, tmp: Path, name: str):  # noqa: ANN201
    ds = Dataset(
        name="methods",
        entries=[
            Entry(id=f"v{i}", generated=v, prompt=p)
            for i, (v, p) in enumerate(zip(videos, [APPLE, APPLE, DOG], strict=True))
        ],
    )
    return evaluate(
        ds,
        ["tifa", "dsg", "viescore"],
        bootstrap=0,
        cache_dir=tmp / "cache",
        out_dir=tmp / name,
        report=False,
        judge={"backend": "endpoint", "model": "judge-model", "base_url": server.base_url, "frames": 2},
    )


def test_methods_through_the_engine(server: ChatServer, videos: list[Path], tmp_path: Path) -> None:
    server.responder = respond
    res = run(videos, server, tmp_path, "first")
    assert not server.invalid
    texts = [s.text for s in server.requests]
    # question generation: once per distinct prompt (2), shared by the two videos with the apple prompt
    assert sum(t.endswith("\nEntities") for t in texts) == 2
    assert sum(t.endswith(f"Description: {APPLE}\nEntities") for t in texts) == 1
    for task in ("describe each scene", "and skill-specific tuples", "describe the parent"):
        assert sum(t.startswith("Task: given input prompts") and task in t[:80] for t in texts) == 2
    # per video and frame: 4 TIFA + 4 DSG questions, 2 VIEScore ratings; 2 frames, 3 videos
    assert sum(t.startswith(TIFA_VQA) for t in texts) == 4 * 2 * 3
    assert sum(t.startswith(DSG_VQA) for t in texts) == 4 * 2 * 3
    # VIEScore: 2 per frame; the dog video stops after its first frame's unusable SC reply
    assert len(server.requests) == 2 + 6 + 24 + 24 + 2 * 2 * 2 + 2
    assert all(s.body["temperature"] == 0 for s in server.requests)
    generation = [s for s in server.requests if s.text.startswith("Task:") or s.text.endswith("\nEntities")]
    assert len(generation) == 8 and all(s.n_images == 0 for s in generation)
    assert all(s.n_images == 1 for s in server.requests if s not in generation)  # one frame per question

    wide = res.wide()
    # TIFA: yes, yes (mapped from "a shiny apple"), yes, green != red -> 3/4 per frame
    assert wide.loc["v0", "tifa"] == pytest.approx(0.75) and wide.loc["v2", "tifa"] == pytest.approx(0.75)
    # DSG (apple): no, yes, yes, yes -> without dependencies 3/4; the children of 'no' zeroed -> 1/4
    assert wide.loc["v0", "dsg"] == pytest.approx(0.25) and wide.loc["v0", "dsg.dsg_no_dep"] == pytest.approx(
        0.75
    )
    assert wide.loc["v2", "dsg"] == pytest.approx(1.0)
    # VIEScore: SC 7, PQ min(6, 8) = 6, overall sqrt(42)
    assert wide.loc["v0", "viescore"] == pytest.approx(math.sqrt(42))
    assert wide.loc["v0", "viescore.viescore_sc"] == 7 and wide.loc["v0", "viescore.viescore_pq"] == 6
    # the unusable VIEScore reply: that video's error row, with the raw reply; its other metrics stand
    row = res.per_video.query("video_id == 'v2' and metric == 'viescore' and output == 'viescore'").iloc[0]
    assert "VIEScore" in row["error"] or "viescore" in row["error"]
    assert json.loads(row["details"])["raw_reply"] == "I cannot rate this."
    # per-question details in the per-video file
    det = json.loads(res.per_video.query("video_id == 'v1' and output == 'tifa'")["details"].iloc[0])
    mapped = {q["question"]: q["multiple_choice_vqa"] for q in det["questions"]}
    assert mapped["what is on the table?"] == ["apple", "apple"] and det["n_questions"] == 4
    det = json.loads(res.per_video.query("video_id == 'v0' and output == 'dsg'")["details"].iloc[0])
    assert [q["answers"] for q in det["questions"]][0] == ["no", "no"]
    prov = res.aggregates["tifa"].provenance
    assert prov["usage"]["judge"]["distinct_prompts"] == 2 and prov["judge"]["model"] == "judge-model"
    assert prov["extractors"]["judge"]["embedder"].startswith("sentence-transformers/all-MiniLM-L6-v2")

    server.reset()
    again = run(videos, server, tmp_path, "second")
    assert server.attempts == 0
    assert again.wide().equals(wide)


def test_viescore_clip_mode_sends_all_frames_in_one_request(
    server: ChatServer, videos: list[Path], tmp_path: Path
) -> None:
    server.responder = respond
    ds = Dataset(name="clip", entries=[Entry(id="v0", generated=videos[0], prompt=APPLE)])
    res = evaluate(
        ds,
        "viescore",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge={"backend": "endpoint", "model": "judge-model", "base_url": server.base_url},
        metric_options={"viescore": {"mode": "clip", "num_frames": 3}},
    )
    assert [s.n_images for s in server.requests] == [3, 3]  # one SC and one PQ request, all frames in each
    assert res.wide().loc["v0", "viescore"] == pytest.approx(math.sqrt(42))


def test_tifa_unifiedqa_filter_from_a_directory(
    server: ChatServer, videos: list[Path], tmp_path: Path
) -> None:
    from aigve.judges.methods import tifa
    from tests.judges.methods.test_tifa_models import tiny_t5

    model, tokenizer = tiny_t5()
    qa_dir = tmp_path / "unifiedqa"
    model.save_pretrained(qa_dir)  # type: ignore[attr-defined]
    tokenizer.save_pretrained(qa_dir)  # type: ignore[attr-defined]
    generated = TIFA_GENERATION.format(obj="apple", article="an")
    kept = tifa.filter_questions(
        tifa.parse_questions(tifa.apply_stop(generated), APPLE), tifa.UnifiedQA(model, tokenizer)
    )
    server.responder = respond
    ds = Dataset(name="qa", entries=[Entry(id="v0", generated=videos[0], prompt=APPLE)])
    res = evaluate(
        ds,
        "tifa",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge={"backend": "endpoint", "model": "judge-model", "base_url": server.base_url, "frames": 1},
        metric_options={"tifa": {"unifiedqa": str(qa_dir)}},
    )
    row = res.per_video.query("output == 'tifa'").iloc[0]
    if kept:
        assert json.loads(row["details"])["n_questions"] == len(kept)
        assert sum(s.text.startswith(TIFA_VQA) for s in server.requests) == len(kept)
    else:  # the random T5 keeps nothing: the video's error says so, with the generation reply kept
        assert "UnifiedQA filtering removed every generated question" in row["error"]
        assert json.loads(row["details"])["raw_reply"] == generated
    bad = evaluate(
        ds,
        "tifa",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge={"backend": "endpoint", "model": "judge-model", "base_url": server.base_url},
        metric_options={"tifa": {"unifiedqa": str(tmp_path)}},
    )
    assert "not a UnifiedQA (T5) model directory" in (bad.aggregates["tifa"].error or "")
