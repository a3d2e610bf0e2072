"""VIEScore (t2v) against upstream TIGER-AI-Lab/VIEScore @ 2cbea4e8ce5721425a8772590ecdbe7d2edd1721.

The expected prompt strings below were read from ``viescore/vie_prompts.py`` at that commit and composed as
``viescore/__init__.py`` does for ``task="t2v"``; the sha256 values were computed by running that upstream
code on the same caption. The scoring reference is a re-statement of ``VIEScore.evaluate`` (SC = min, PQ = min,
O = sqrt(SC*PQ)) averaged over frames as the original toolkit averaged per-frame overall scores.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from aigve.errors import MetricInputError
from aigve.judges.methods import METHODS, viescore
from aigve.judges.protocol import JudgeError
from tests.judges.methods.fakes import ScriptedJudge, frames

CAPTION = "A red apple on a table."

UPSTREAM_CONTEXT = (
    "You are a professional digital artist. You will have to evaluate the effectiveness of the AI-generated "
    "image(s) based on given rules.\nAll the input images are AI-generated. All human in the images are "
    "AI-generated too. so you need not worry about the privacy confidentials.\n\nYou will have to give your "
    'output in this way (Keep your reasoning concise and short.):\n{\n"score" : [...],\n"reasoning" : "..."\n}'
)
UPSTREAM_SC = (
    UPSTREAM_CONTEXT
    + "\nRULES:\n\nThe images are extracted from a AI-generated video according to the text prompt.\n"
    "The objective is to evaluate how successfully the video has been generated.\n\n"
    "From scale 0 to 10: \nA score from 0 to 10 will be given based on the success in following the prompt. \n"
    "(0 indicates that the image frames does not follow the prompt at all. 10 indicates the image frames "
    "follows the prompt perfectly.)\n\nPut the score in a list such that output score = [score].\n\n"
    "Text Prompt: A red apple on a table.\n"
)
UPSTREAM_PQ = (
    UPSTREAM_CONTEXT
    + "\nRULES:\n\nThe image frames are AI-generated.\nThe objective is to evaluate how successfully the image "
    "frames has been generated.\n\nFrom scale 0 to 10: \nA score from 0 to 10 will be given based on the image "
    "frames naturalness. \n(\n    0 indicates that the scene in the image frames does not look natural at all "
    "or give a unnatural feeling such as wrong sense of distance, or wrong shadow, or wrong lighting. \n    "
    "10 indicates that the image frames looks natural.\n)\nA second score from 0 to 10 will rate the image "
    "frames artifacts. \n(\n    0 indicates that the image frames contains a large portion of distortion, or "
    "watermark, or scratches, or blurred faces, or unusual body parts, or subjects not harmonized. \n    "
    "10 indicates the image frames has no artifacts.\n)\nPut the score in a list such that output score = "
    "[naturalness, artifacts]\n"
)
# sha256 of the prompts produced by upstream's code for CAPTION (run at the commit above)
UPSTREAM_SC_SHA256 = "32d6eb9b9d29b0a31d75afab3f410643978efad949da3d59b1f59758924d0515"
UPSTREAM_PQ_SHA256 = "c2afdbf22138d391660cc8f796510b249c27e5f3c94e72e4ea8bf811edf6faa9"


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def reference(sc_lists: list[list[float]], pq_lists: list[list[float]]) -> dict[str, float]:
    """Upstream evaluate() per frame, then the mean over frames."""
    sc = [min(s) for s in sc_lists]
    pq = [min(p) for p in pq_lists]
    o = [math.sqrt(a * b) for a, b in zip(sc, pq, strict=True)]
    n = len(o)
    return {"viescore": sum(o) / n, "viescore_sc": sum(sc) / n, "viescore_pq": sum(pq) / n}


def scripted(sc_replies: list[str], pq_replies: list[str]) -> ScriptedJudge:
    sc_q, pq_q = list(sc_replies), list(pq_replies)

    def reply(text: str, images: object) -> str:
        return sc_q.pop(0) if "Text Prompt:" in text else pq_q.pop(0)

    return ScriptedJudge(reply)


def test_prompts_equal_upstream() -> None:
    plan = viescore.prepare(ScriptedJudge.queue([]), CAPTION)
    assert plan["sc_prompt"] == UPSTREAM_SC
    assert plan["pq_prompt"] == UPSTREAM_PQ
    assert sha(plan["sc_prompt"]) == UPSTREAM_SC_SHA256
    assert sha(plan["pq_prompt"]) == UPSTREAM_PQ_SHA256


def test_requests_per_frame_carry_one_frame_each_and_upstream_parameters() -> None:
    fr = frames(3)
    judge = scripted(['{"score": [7], "reasoning": "a"}'] * 3, ['{"score": [6, 8], "reasoning": "b"}'] * 3)
    viescore.score_video(judge, viescore.prepare(judge, CAPTION), fr)
    assert len(judge.calls) == viescore.calls_per_video(3) == 6
    assert [c.text for c in judge.calls] == [UPSTREAM_SC, UPSTREAM_PQ] * 3  # SC then PQ, frame by frame
    hashes = [c.image_hashes for c in judge.calls]
    assert all(len(h) == 1 for h in hashes)
    assert hashes[0] == hashes[1] and hashes[2] == hashes[3] and hashes[0] != hashes[2]
    assert all(c.max_tokens == 1400 and not c.json_mode and c.system is None for c in judge.calls)
    assert METHODS["viescore"].calls(3) == 6


def test_clip_mode_sends_all_frames_in_two_requests() -> None:
    judge = scripted(['{"score": [9], "reasoning": ""}'], ['{"score": [4, 5], "reasoning": ""}'])
    out = viescore.score_video(judge, viescore.prepare(judge, CAPTION), frames(4), mode="clip")
    assert len(judge.calls) == viescore.calls_per_video(4, mode="clip") == 2
    assert all(len(c.image_hashes) == 4 for c in judge.calls)
    assert out.values == pytest.approx(reference([[9]], [[4, 5]]), abs=1e-12)


@pytest.mark.parametrize(
    ("sc", "pq", "sc_lists", "pq_lists"),
    [
        # plain JSON; the per-frame geometric mean sqrt(7*6), sqrt(3*9), sqrt(10*0)
        (
            [
                '{"score": [7], "reasoning": "ok"}',
                '{"score": [3], "reasoning": "x"}',
                '{"score": [10], "reasoning": ""}',
            ],
            [
                '{"score": [6, 8], "reasoning": "n"}',
                '{"score": [9, 9], "reasoning": "y"}',
                '{"score": [0, 10], "reasoning": ""}',
            ],
            [[7], [3], [10]],
            [[6, 8], [9, 9], [0, 10]],
        ),
        # upstream's delimiter form, a code fence, a bare number and a bare two-number list
        (
            ['Here:\n||V^=^V||\n{\n"score" : [5],\n"reasoning" : "fine"\n}\n||V^=^V||', "8"],
            ['```json\n{\n "score": [8, 2],\n "reasoning": "blur"\n}\n```', "[6, 7]"],
            [[5], [8]],
            [[8, 2], [6, 7]],
        ),
        # a scalar score is wrapped into a list, unquoted keys are repaired
        (['{"score": 4, "reasoning": "x"}'], ["{score: [3, 9], reasoning: 'meh'}"], [[4]], [[3, 9]]),
    ],
)
def test_scoring_equals_upstream_combination(
    sc: list[str], pq: list[str], sc_lists: list[list[float]], pq_lists: list[list[float]]
) -> None:
    judge = scripted(sc, pq)
    out = viescore.score_video(judge, viescore.prepare(judge, CAPTION), frames(len(sc)))
    assert out.values == pytest.approx(reference(sc_lists, pq_lists), abs=1e-12)
    assert set(out.values) == {o.name for o in METHODS["viescore"].outputs}
    ev = out.details["evaluations"]
    assert [e["sc_scores"] for e in ev] == sc_lists and [e["pq_scores"] for e in ev] == pq_lists
    assert [e["sc_raw"] for e in ev] == sc and out.details["scale"] == "0-10"
    assert len(out.replies) == 2 * len(sc)


def test_hand_checked_values() -> None:
    judge = scripted(['{"score": [4]}', '{"score": [9]}'], ['{"score": [9, 1]}', '{"score": [4, 4]}'])
    out = viescore.score_video(judge, viescore.prepare(judge, CAPTION), frames(2))
    # frame 1: sqrt(4*1) = 2; frame 2: sqrt(9*4) = 6
    assert out.values["viescore"] == pytest.approx(4.0)
    assert out.values["viescore_sc"] == pytest.approx(6.5)
    assert out.values["viescore_pq"] == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("The video looks great, I would say quite good.", "unparseable"),
        ("I'm sorry, but I can't help with evaluating these images.", "refusal"),
        ("", "empty"),
        ('{"reasoning": "no score given"}', "unparseable"),
        ('{"score": [11], "reasoning": "too high"}', "unparseable"),
        ('{"score": ["high"], "reasoning": ""}', "unparseable"),
        ('{"score": [], "reasoning": ""}', "unparseable"),
        ("Score: [7]", "unparseable"),  # a one-element list without braces is not read by upstream either
    ],
)
def test_unusable_reply_raises_with_raw_text(reply: str, reason: str) -> None:
    judge = scripted([reply], ['{"score": [5, 5], "reasoning": ""}'])
    with pytest.raises(JudgeError) as err:
        viescore.score_video(judge, viescore.prepare(judge, CAPTION), frames(1))
    assert err.value.raw == reply
    assert err.value.reason == reason


def test_deterministic() -> None:
    sc = ['{"score": [7], "reasoning": "ok"}', '{"score": [2], "reasoning": "x"}']
    pq = ['{"score": [6, 8], "reasoning": "n"}', '{"score": [9, 3], "reasoning": "y"}']
    fr = frames(2)
    a = viescore.score_video(scripted(sc, pq), viescore.prepare(scripted([], []), CAPTION), fr)
    b = viescore.score_video(scripted(sc, pq), viescore.prepare(scripted([], []), CAPTION), fr)
    assert a.values == b.values and a.details == b.details


@pytest.mark.parametrize("prompt", ["", "   \n", None])
def test_missing_or_empty_prompt(prompt: str | None) -> None:
    with pytest.raises(MetricInputError, match="prompt"):
        viescore.prepare(ScriptedJudge.queue([]), prompt)  # type: ignore[arg-type]


def test_bad_frames_and_plan() -> None:
    judge = ScriptedJudge.queue([])
    plan = viescore.prepare(judge, CAPTION)
    with pytest.raises(MetricInputError, match="at least one"):
        viescore.score_video(judge, plan, [])
    with pytest.raises(MetricInputError, match="uint8 RGB"):
        viescore.score_video(judge, plan, [np.zeros((4, 4), np.uint8)])
    with pytest.raises(MetricInputError, match="plan"):
        viescore.score_video(judge, {"method": "tifa"}, frames(1))
    with pytest.raises(MetricInputError, match="mode"):
        viescore.score_video(judge, plan, frames(1), mode="video")
    assert judge.calls == []
