"""TIFA against upstream Yushi-Hu/tifa @ 8e37050f44ab4ee681e4251f3c8a9d4cc86e901e.

Prompt: the sha256 of ``prompt + caption + "\\nEntities"`` as upstream's ``get_question_and_answers`` builds it
(computed by running ``tifascore/question_gen.py`` at that commit), plus its opening and closing text as read.
Scoring reference: a re-statement of ``tifa_score_single`` + ``VQAModel.multiple_choice_vqa`` +
``SBERTModel.multiple_choice`` (exact choice, else argmax of cosine; accuracy = mean of mapped == answer),
and of ``filter_question_and_answers`` / ``compute_prf`` for the UnifiedQA filter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from aigve.errors import MetricInputError
from aigve.judges.methods import METHODS, tifa
from aigve.judges.protocol import JudgeError
from tests.judges.methods.fakes import ScriptedJudge, frames

CAPTION = "A red apple on a table."
UPSTREAM_GEN_SHA256 = "02a82ed20b523f062c3ed4e71bf42a9f68fa44d8dbbb3b342b1ff3c01c68f22a"
UPSTREAM_GEN_HEAD = (
    "\nGiven a image descriptions, generate one or two multiple-choice questions that verifies if the image "
    "description is correct.\nClassify each concept into a type (object, human, animal, food, activity, "
    "attribute, counting, color, material, spatial, location, shape, other), and then generate a question for "
    "each type.\n\nDescription: A man posing for a selfie in a jacket and bow tie.\nEntities: man, selfie, "
    "jacket, bow tie\n"
)
UPSTREAM_GEN_TAIL = (
    "Q: what is the material of the stove top?\nChoices: stainless steel, iron, aluminum, copper\n"
    "A: stainless steel\n\nDescription: A red apple on a table.\nEntities"
)

GENERATION_REPLY = """: apple, table
Activities:
Colors: red
Counting:
Other attributes:
Questions and answers are below:
About apple (food):
Q: is there an apple?
Choices: yes, no
A: yes
Q: what fruit is on the table?
Choices: apple, pear, banana, orange
A: apple
About table (object):
Q: is there a table?
Choices: yes, no
A: yes
About red (color):
Q: what color is the apple?
Choices: red, green, yellow, blue
A: red
About thing (nonsense):
Q: is this dropped?
Choices: yes, no
A: yes

Description: a continuation the stop sequence would have cut
Entities: x
About x (object):
Q: never parsed?
Choices: yes, no
A: yes"""

QUESTIONS = [
    "is there an apple?",
    "what fruit is on the table?",
    "is there a table?",
    "what color is the apple?",
]

# hand-made embeddings: hand-checkable cosine argmax
VECS = {
    "yes": [1.0, 0.0, 0.0, 0.0],
    "no": [-1.0, 0.0, 0.0, 0.0],
    "yep, there is": [0.9, 0.1, 0.0, 0.0],
    "nope": [-0.8, 0.3, 0.0, 0.0],
    "apple": [0.0, 1.0, 0.0, 0.0],
    "pear": [0.0, 0.0, 1.0, 0.0],
    "banana": [0.0, 0.0, 0.0, 1.0],
    "orange": [0.0, 0.5, 0.0, 0.5],
    "a green pear": [0.0, 0.2, 0.9, 0.0],
    "red": [0.0, 0.0, 0.0, 1.0],
    "green": [0.0, 0.0, 1.0, 0.0],
    "yellow": [0.0, 1.0, 0.0, 0.0],
    "blue": [1.0, 1.0, 1.0, 1.0],
    "crimson red": [0.1, 0.0, 0.2, 0.9],
}


def embed(sentences: list[str]) -> np.ndarray:
    return np.array([VECS[s] for s in sentences], dtype=np.float64)


def ref_map(answer: str, choices: Sequence[str]) -> str:
    """Upstream multiple_choice_vqa: exact, else SBERT multiple_choice (normalised dot product, argmax)."""
    if answer in choices:
        return answer
    a = np.array(VECS[answer]) / np.linalg.norm(VECS[answer])
    c = np.array([np.array(VECS[x]) / np.linalg.norm(VECS[x]) for x in choices])
    return choices[int(np.argmax(c @ a))]


def ref_tifa(per_frame_answers: list[list[str]], questions: list[dict]) -> float:
    accs = []
    for answers in per_frame_answers:
        scores = [
            int(ref_map(a, q["choices"]) == q["answer"]) for a, q in zip(answers, questions, strict=True)
        ]
        accs.append(sum(scores) / len(scores))
    return sum(accs) / len(accs)


def vqa_judge(per_frame_answers: list[list[str]], fr: list[np.ndarray]) -> ScriptedJudge:
    """Answers question i about frame j with per_frame_answers[j][i]; generation gets GENERATION_REPLY."""
    by_frame = {
        hashlib.sha256(f.tobytes()).hexdigest(): a for f, a in zip(fr, per_frame_answers, strict=True)
    }

    def reply(text: str, images: Sequence[np.ndarray]) -> str:
        if not images:
            return GENERATION_REPLY
        answers = by_frame[hashlib.sha256(images[0].tobytes()).hexdigest()]
        return answers[[i for i, q in enumerate(QUESTIONS) if f"Question: {q} " in text][0]]

    return ScriptedJudge(reply)


def test_generation_prompt_equals_upstream() -> None:
    judge = ScriptedJudge.queue([GENERATION_REPLY])
    tifa.prepare(judge, CAPTION)
    (call,) = judge.calls
    assert hashlib.sha256(call.text.encode()).hexdigest() == UPSTREAM_GEN_SHA256
    assert call.text.startswith(UPSTREAM_GEN_HEAD) and call.text.endswith(UPSTREAM_GEN_TAIL)
    assert call.image_hashes == [] and call.max_tokens == 700 and not call.json_mode and call.system is None


def test_parsed_questions_follow_parse_resp_and_the_stop_sequence() -> None:
    plan = tifa.prepare(ScriptedJudge.queue([GENERATION_REPLY]), CAPTION)
    qs = plan["questions"]
    assert [q["question"] for q in qs] == QUESTIONS  # 'nonsense' type dropped, text after "\n\n" cut
    assert qs[1] == {
        "caption": CAPTION,
        "element": "apple",
        "question": "what fruit is on the table?",
        "choices": ["apple", "pear", "banana", "orange"],
        "answer": "apple",
        "element_type": "food",
    }
    assert [q["element_type"] for q in qs] == ["food", "food", "object", "color"]
    assert (
        plan["n_generated"] == 4 and plan["filtered"] is False and plan["generation_raw"] == GENERATION_REPLY
    )


def test_animal_and_human_are_merged() -> None:
    reply = (
        "h\n" * 6
        + "About dog (animal):\nQ: is there a dog?\nChoices: yes, no\nA: yes\nAbout man (human):\nQ: a man?\nChoices: yes, no\nA: yes"
    )
    plan = tifa.prepare(ScriptedJudge.queue([reply]), "a dog and a man")
    assert [q["element_type"] for q in plan["questions"]] == ["animal/human", "animal/human"]


def test_vqa_prompt_format() -> None:
    assert (
        tifa.vqa_prompt("what color is the apple?", ["red", "green"])
        == "Answer the multiple-choice question. Question: what color is the apple? Choices: red, green Answer:"
    )
    assert (
        tifa.vqa_prompt("is it?", ["yes", "no"], "free_form")
        == "Answer the question. Question: is it? Answer:"
    )


@pytest.mark.parametrize(
    "answers",
    [
        [["yes", "apple", "yes", "red"]],  # all exact
        [["yep, there is", "a green pear", "nope", "crimson red"]],  # mapped: yes, pear, no, red -> 2/4
        [["yes", "apple", "no", "green"], ["no", "pear", "yes", "red"], ["yes", "banana", "yes", "blue"]],
    ],
)
def test_accuracy_equals_upstream(answers: list[list[str]]) -> None:
    fr = frames(len(answers))
    judge = vqa_judge(answers, fr)
    plan = tifa.prepare(judge, CAPTION)
    out = tifa.score_video(judge, plan, fr, embed=embed)
    assert out.values["tifa"] == pytest.approx(ref_tifa(answers, plan["questions"]), abs=1e-12)
    assert len(judge.calls) == 1 + tifa.calls_per_video(len(fr), 4)
    assert all(len(c.image_hashes) == 1 and c.max_tokens == 30 for c in judge.calls[1:])
    q0 = out.details["questions"][0]
    assert q0["free_form_vqa"] == [a[0] for a in answers]
    assert q0["multiple_choice_vqa"] == [ref_map(a[0], ["yes", "no"]) for a in answers]
    assert set(out.values) == {o.name for o in METHODS["tifa"].outputs}


def test_hand_checked_mapping() -> None:
    fr = frames(1)
    answers = [["yep, there is", "a green pear", "nope", "crimson red"]]
    judge = vqa_judge(answers, fr)
    out = tifa.score_video(judge, tifa.prepare(judge, CAPTION), fr, embed=embed)
    assert [q["multiple_choice_vqa"][0] for q in out.details["questions"]] == ["yes", "pear", "no", "red"]
    assert out.values["tifa"] == pytest.approx(0.5)
    assert out.details["accuracy_by_type"] == {"food": 0.5, "object": 0.0, "color": 1.0}


def test_embedding_only_for_inexact_answers() -> None:
    def no_embed(sentences: list[str]) -> np.ndarray:
        raise AssertionError("embed called for an exact answer")

    fr = frames(2)
    judge = vqa_judge([["yes", "apple", "yes", "red"], ["no", "pear", "no", "blue"]], fr)
    out = tifa.score_video(judge, tifa.prepare(judge, CAPTION), fr, embed=no_embed)
    assert out.values["tifa"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("answer", "reason"), [("I'm sorry, I can't answer that.", "refusal"), ("  ", "empty")]
)
def test_refusal_or_empty_vqa_reply_raises(answer: str, reason: str) -> None:
    fr = frames(1)
    judge = vqa_judge([[answer, "apple", "yes", "red"]], fr)
    with pytest.raises(JudgeError) as err:
        tifa.score_video(judge, tifa.prepare(judge, CAPTION), fr, embed=embed)
    assert err.value.reason == reason and err.value.raw == answer


def test_unparseable_generation_raises_with_raw() -> None:
    raw = "Sure! Here are some questions about the apple: Is it red? Is it on a table?"
    with pytest.raises(JudgeError) as err:
        tifa.prepare(ScriptedJudge.queue([raw]), CAPTION)
    assert err.value.raw == raw


def test_deterministic() -> None:
    fr = frames(2)
    answers = [["yep, there is", "a green pear", "nope", "crimson red"], ["yes", "apple", "no", "green"]]
    outs = []
    for _ in range(2):
        judge = vqa_judge(answers, fr)
        outs.append(tifa.score_video(judge, tifa.prepare(judge, CAPTION), fr, embed=embed))
    assert outs[0].values == outs[1].values and outs[0].details == outs[1].details


@pytest.mark.parametrize("prompt", ["", " ", None])
def test_missing_or_empty_prompt(prompt: str | None) -> None:
    judge = ScriptedJudge.queue([])
    with pytest.raises(MetricInputError, match="prompt"):
        tifa.prepare(judge, prompt)  # type: ignore[arg-type]
    assert judge.calls == []


def test_bad_vqa_format() -> None:
    judge = ScriptedJudge.queue([GENERATION_REPLY])
    with pytest.raises(MetricInputError, match="vqa_format"):
        tifa.score_video(judge, tifa.prepare(judge, CAPTION), frames(1), vqa_format="open")


# ------------------------------------------------------------------------------------------------ filtering
def ref_prf(gold: list[str], pred: list[str]) -> float:
    """Upstream compute_prf, re-stated."""
    if not gold:
        return 1.0 if not pred else 0.0
    tp = len([g for g in gold if g in pred])
    fn = len(gold) - tp
    fp = len([p for p in pred if p not in gold])
    p = tp / (tp + fp) if tp + fp else 0
    r = tp / (tp + fn) if tp + fn else 0
    return 2 * p * r / (p + r) if p + r else 0.0


@pytest.mark.parametrize(
    ("gold", "pred"),
    [("red", "red"), ("red apple", "red"), ("a a b", "a c"), ("", ""), ("", "x"), ("x", ""), ("3", "3 3")],
)
def test_token_f1_equals_compute_prf(gold: str, pred: str) -> None:
    assert tifa.token_f1(gold.split(), pred.split()) == pytest.approx(ref_prf(gold.split(), pred.split()))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("three", 3),
        ("twenty one", 21),
        ("twenty-one", 21),
        ("one hundred and five", 105),
        ("two thousand", 2000),
    ],
)
def test_word_to_num(text: str, value: int) -> None:
    assert tifa.word_to_num(text) == value


def test_word_to_num_without_number_raises() -> None:
    with pytest.raises(ValueError):
        tifa.word_to_num("some cats")


class ScriptedQA:
    def __init__(self, mc: dict[str, str], free: dict[str, str]) -> None:
        self.mc, self.free = mc, free
        self.asked: list[tuple[str, str]] = []

    def qa(self, question: str, context: str) -> str:
        self.asked.append(("qa", question))
        return self.free[question]

    def mcqa(self, question: str, context: str, choices: Sequence[str]) -> str:
        self.asked.append(("mcqa", question))
        return self.mc[question]


def test_filter_follows_upstream() -> None:
    def q(question: str, answer: str, choices: list[str]) -> dict:
        return {
            "caption": CAPTION,
            "element": "e",
            "question": question,
            "choices": choices,
            "answer": answer,
            "element_type": "object",
        }

    qs = [
        q("is there an apple?", "yes", ["yes", "no"]),  # kept
        q("is there an apple?", "yes", ["yes", "no"]),  # duplicate: dropped
        q("is there a cat?", "no", ["yes", "no"]),  # mc answer differs: dropped
        q("what fruit?", "apple", ["apple", "pear"]),  # kept: free form F1 = 1
        q("what color?", "dark red", ["dark red", "blue"]),  # F1("dark red", "red") = 0.667 > 0.6: kept
        q("what shape?", "very round", ["very round", "square"]),  # F1 with "round thing" = 0.5: dropped
        q("how many apples?", "2", ["1", "2"]),  # "two" -> "2": kept
    ]
    qa = ScriptedQA(
        mc={
            "is there an apple?": "yes",
            "is there a cat?": "yes",
            "what fruit?": "apple",
            "what color?": "dark red",
            "what shape?": "very round",
            "how many apples?": "2",
        },
        free={
            "what fruit?": "apple",
            "what color?": "red",
            "what shape?": "round thing",
            "how many apples?": "two",
        },
    )
    kept = tifa.filter_questions(qs, qa)
    assert [k["question"] for k in kept] == [
        "is there an apple?",
        "what fruit?",
        "what color?",
        "how many apples?",
    ]
    assert ("qa", "is there an apple?") not in qa.asked  # yes/no answers skip the free-form check


def test_filter_in_prepare() -> None:
    mc = {
        "is there an apple?": "yes",
        "what fruit is on the table?": "apple",
        "is there a table?": "no",
        "what color is the apple?": "red",
    }
    free = {"what fruit is on the table?": "apple", "what color is the apple?": "red"}
    plan = tifa.prepare(ScriptedJudge.queue([GENERATION_REPLY]), CAPTION, qa=ScriptedQA(mc, free))
    assert plan["filtered"] and plan["n_generated"] == 4
    assert [q["question"] for q in plan["questions"]] == [QUESTIONS[0], QUESTIONS[1], QUESTIONS[3]]
    with pytest.raises(JudgeError, match="removed every"):
        tifa.prepare(
            ScriptedJudge.queue([GENERATION_REPLY]), CAPTION, qa=ScriptedQA({q: "x" for q in QUESTIONS}, {})
        )
