"""DSG against upstream j-min/DSG @ 7330119a39f76ff90e619a8bd3ff321e71aa986b.

Prompts: sha256 of ``query_utils.make_prompt`` for each task on the inputs below, computed by running the
upstream code at that commit (with its ``dsg/data/tifa160-dev-anns.csv``), plus the preambles as read.
Scoring reference: a re-statement of ``vqa_utils.calc_vqa_score`` (gold answer 'yes', exact comparison,
children of a parent whose own score is 0 set to 0, averages with and without the rule) after
``GPT4o.vqa``'s answer clean-up, averaged over frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from aigve.errors import MetricInputError
from aigve.judges.methods import METHODS, dsg
from aigve.judges.protocol import JudgeError
from tests.judges.methods.fakes import ScriptedJudge, frames

CAPTION = "A red apple on a table."
TUPLES = (
    "1 | entity - whole (apple)\n2 | entity - whole (table)\n3 | attribute - color (apple, red)\n"
    "4 | relation - spatial (apple, table, on)"
)
QUESTIONS = (
    "1 | Is there an apple?\n2 | Is there a table?\n3 | Is the apple red?\n4 | Is the apple on the table?"
)
DEPENDENCIES = "1 | 0\n2 | 0\n3 | 1\n4 | 1,2"
UPSTREAM_SHA256 = {
    "tuple": "a626258cfa789a46dc897cfdb6b1a16a294df5ca1fb63bf081f64ecab9ffd2a0",
    "question": "b6a88d78656eb12c9afa9ccfd4aa7c2e97d5addb984dd314a60a3134f9b546c3",
    "dependency": "521c9eea643a221190c55d892ae7c36c17b7b3c307cad6b876935260adfe6710",
}
UPSTREAM_PREAMBLE = {
    "tuple": "Task: given input prompts, describe each scene with skill-specific tuples.\nDo not generate same "
    "tuples again. Do not generate tuples that are not explicitly described in the prompts.\noutput format: id | tuple",
    "question": "Task: given input prompts and skill-specific tuples, re-write tuple each in natural language "
    "question.\noutput format: id | question",
    "dependency": "Task: given input prompts and tuples, describe the parent tuples of each tuple.\noutput "
    "format: id | dependencies (comma separated)",
}
VQA_PREFIX = "Answer only with 'yes' or 'no'. Do not give other outputs or punctuation marks. Question: "


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def make_judge(
    per_frame_answers: list[dict[int, str]],
    fr: list[np.ndarray],
    generation: Sequence[str] = (TUPLES, QUESTIONS, DEPENDENCIES),
    questions: dict[int, str] | None = None,
) -> ScriptedJudge:
    gen = list(generation)
    qtext = questions or {
        1: "Is there an apple?",
        2: "Is there a table?",
        3: "Is the apple red?",
        4: "Is the apple on the table?",
    }
    by_frame = {sha_img(f): a for f, a in zip(fr, per_frame_answers, strict=True)}

    def reply(text: str, images: Sequence[np.ndarray]) -> str:
        if not images:
            return gen.pop(0)
        answers = by_frame[sha_img(images[0])]
        qid = [k for k, q in qtext.items() if text == VQA_PREFIX + q][0]
        return answers[qid]

    return ScriptedJudge(reply)


def sha_img(f: np.ndarray) -> str:
    return hashlib.sha256(f.tobytes()).hexdigest()


def ref_dsg(per_frame_answers: list[dict[int, str]], deps: dict[int, list[int]]) -> tuple[float, float]:
    """calc_vqa_score re-stated, answers cleaned as GPT4o.vqa does; mean over frames."""
    with_dep, without = [], []
    for answers in per_frame_answers:
        clean = {
            k: v.lower().strip().replace(".", "").replace(",", "").replace("?", "").replace("!", "")
            for k, v in answers.items()
        }
        s = {k: float(v == "yes") for k, v in clean.items()}
        f = dict(s)
        for k, parents in deps.items():
            if any(p != 0 and s[p] == 0 for p in parents):
                f[k] = 0.0
        without.append(sum(s.values()) / len(s))
        with_dep.append(sum(f.values()) / len(s))
    return sum(with_dep) / len(with_dep), sum(without) / len(without)


def test_generation_prompts_equal_upstream_in_upstream_order() -> None:
    judge = ScriptedJudge.queue([TUPLES, QUESTIONS, DEPENDENCIES])
    plan = dsg.prepare(judge, CAPTION)
    assert len(judge.calls) == METHODS["dsg"].prepare_calls == 3
    for call, task in zip(judge.calls, ("tuple", "question", "dependency"), strict=True):
        assert sha(call.text) == UPSTREAM_SHA256[task], task
        assert call.text.startswith(UPSTREAM_PREAMBLE[task] + "\n\ninput: A male skateboarder is trying")
        assert call.image_hashes == [] and call.max_tokens == 500 and not call.json_mode
    assert judge.calls[1].text.endswith(f"input: {CAPTION}\n{TUPLES}\noutput: ")
    assert [q["question"] for q in plan["questions"]] == [
        "Is there an apple?",
        "Is there a table?",
        "Is the apple red?",
        "Is the apple on the table?",
    ]
    assert [q["parents"] for q in plan["questions"]] == [[0], [0], [1], [1, 2]]
    assert plan["questions"][2]["tuple"] == "attribute - color (apple, red)"
    assert plan["questions"][2]["tuple_type"] == "attribute - color"


def test_generation_output_is_cut_at_the_next_input_and_after_output_label() -> None:
    chatty_tuples = "output: " + TUPLES + "\n\ninput: another prompt\noutput: 1 | entity - whole (x)"
    judge = ScriptedJudge.queue([chatty_tuples, QUESTIONS, "1 | 0\n2 | 0\n3 | 1\n4 | 1, 2, background"])
    plan = dsg.prepare(judge, CAPTION)
    assert judge.calls[1].text.endswith(f"input: {CAPTION}\noutput: {TUPLES}\noutput: ")
    assert [q["parents"] for q in plan["questions"]][3] == [1, 2]


@pytest.mark.parametrize(
    "answers",
    [
        [{1: "yes", 2: "yes", 3: "yes", 4: "yes"}],
        # parent 1 'no' -> 3 and 4 zeroed although answered yes
        [{1: "no", 2: "yes", 3: "yes", 4: "yes"}],
        # 'yes' inside another word is not yes; "Yes." cleans to yes
        [{1: "Yes.", 2: "yesterday", 3: "eyes", 4: "YES!"}],
        # several frames, one with parent 2 'no'
        [
            {1: "yes", 2: "yes", 3: "no", 4: "yes"},
            {1: "yes", 2: "no", 3: "yes", 4: "yes"},
            {1: "no", 2: "no", 3: "no", 4: "no"},
        ],
        # answers that are neither yes nor no count as not-yes (upstream's exact comparison)
        [{1: "yes, there is an apple", 2: "maybe", 3: "yes", 4: "yes"}],
    ],
)
def test_scoring_equals_calc_vqa_score(answers: list[dict[int, str]]) -> None:
    fr = frames(len(answers))
    judge = make_judge(answers, fr)
    plan = dsg.prepare(judge, CAPTION)
    out = dsg.score_video(judge, plan, fr)
    with_dep, without = ref_dsg(answers, {1: [0], 2: [0], 3: [1], 4: [1, 2]})
    assert out.values["dsg"] == pytest.approx(with_dep, abs=1e-12)
    assert out.values["dsg_no_dep"] == pytest.approx(without, abs=1e-12)
    assert set(out.values) == {o.name for o in METHODS["dsg"].outputs}
    assert len(judge.calls) == 3 + dsg.calls_per_video(len(fr), 4)
    assert all(len(c.image_hashes) == 1 and c.max_tokens == 20 for c in judge.calls[3:])
    assert out.details["questions"][0]["raw_answers"] == [a[1] for a in answers]


def test_hand_checked_values() -> None:
    fr = frames(1)
    judge = make_judge([{1: "no", 2: "yes", 3: "yes", 4: "yes"}], fr)
    out = dsg.score_video(judge, dsg.prepare(judge, CAPTION), fr)
    assert out.values["dsg"] == pytest.approx(0.25)  # only q2 survives
    assert out.values["dsg_no_dep"] == pytest.approx(0.75)
    assert [q["valid"][0] for q in out.details["questions"]] == [True, True, False, False]
    judge = make_judge([{1: "Yes.", 2: "yesterday", 3: "eyes", 4: "YES!"}], fr)
    out = dsg.score_video(judge, dsg.prepare(judge, CAPTION), fr)
    assert out.values["dsg_no_dep"] == pytest.approx(0.5) and out.values["dsg"] == pytest.approx(0.25)
    assert out.details["answers_neither_yes_nor_no"] == 2


def test_dependency_is_not_propagated_past_one_level() -> None:
    # 1 <- 2 <- 3: 1 'no', 2 'yes' (zeroed by 1), 3 'yes': upstream looks at 2's own score, so 3 stays 1.
    questions = {1: "Is there a dog?", 2: "Is the dog brown?", 3: "Is the brown dog running?"}
    gen = [
        "1 | entity - whole (dog)\n2 | attribute - color (dog, brown)\n3 | action - (dog, run)",
        "\n".join(f"{k} | {v}" for k, v in questions.items()),
        "1 | 0\n2 | 1\n3 | 2",
    ]
    fr = frames(1)
    answers = [{1: "no", 2: "yes", 3: "yes"}]
    judge = make_judge(answers, fr, gen, questions)
    out = dsg.score_video(judge, dsg.prepare(judge, "a brown dog running"), fr)
    assert [q["scores"][0] for q in out.details["questions"]] == [0.0, 0.0, 1.0]
    assert (
        out.values["dsg"]
        == pytest.approx(ref_dsg(answers, {1: [0], 2: [1], 3: [2]})[0])
        == pytest.approx(1 / 3)
    )


def test_unknown_parent_is_ignored_and_reported() -> None:
    fr = frames(1)
    judge = make_judge(
        [{1: "yes", 2: "no", 3: "yes", 4: "yes"}], fr, (TUPLES, QUESTIONS, "1 | 0\n2 | 0\n3 | 9\n4 | 1")
    )
    out = dsg.score_video(judge, dsg.prepare(judge, CAPTION), fr)
    assert out.values["dsg"] == pytest.approx(0.75) and out.details["unknown_parent_ids"] == [9]


@pytest.mark.parametrize(
    "generation",
    [
        ("I cannot break this prompt into tuples.", QUESTIONS, DEPENDENCIES),
        (TUPLES, "Here are the questions: is there an apple?", DEPENDENCIES),
        (TUPLES, QUESTIONS, "one | 0"),
    ],
)
def test_unparseable_generation_raises_with_raw(generation: tuple[str, str, str]) -> None:
    with pytest.raises(JudgeError) as err:
        dsg.prepare(ScriptedJudge.queue(list(generation)), CAPTION)
    assert err.value.raw in generation


def test_refusal_in_vqa_raises() -> None:
    fr = frames(1)
    judge = make_judge([{1: "I'm sorry, I cannot help with that.", 2: "yes", 3: "yes", 4: "yes"}], fr)
    with pytest.raises(JudgeError) as err:
        dsg.score_video(judge, dsg.prepare(judge, CAPTION), fr)
    assert err.value.reason == "refusal" and err.value.raw.startswith("I'm sorry")


def test_deterministic() -> None:
    fr = frames(2)
    answers = [{1: "yes", 2: "no", 3: "yes", 4: "yes"}, {1: "yes", 2: "yes", 3: "no", 4: "yes"}]
    outs = []
    for _ in range(2):
        judge = make_judge(answers, fr)
        outs.append(dsg.score_video(judge, dsg.prepare(judge, CAPTION), fr))
    assert outs[0].values == outs[1].values and outs[0].details == outs[1].details


@pytest.mark.parametrize("prompt", ["", "\t", None])
def test_missing_or_empty_prompt(prompt: str | None) -> None:
    judge = ScriptedJudge.queue([])
    with pytest.raises(MetricInputError, match="prompt"):
        dsg.prepare(judge, prompt)  # type: ignore[arg-type]
    assert judge.calls == []


def test_methods_registry_counts() -> None:
    info = METHODS["dsg"]
    assert info.calls(4, 10) == 40 + 3
    assert info.calls(4, 10, n_videos_per_prompt=3) == pytest.approx(41.0)
    assert METHODS["tifa"].calls(2, 5) == 11 and METHODS["viescore"].calls(8) == 16
    for m in METHODS.values():
        assert all(o.low < o.high and o.higher_is_better for o in m.outputs)
        assert m.upstream.count("@") == 1 and len(m.upstream.split("@")[1]) == 40
