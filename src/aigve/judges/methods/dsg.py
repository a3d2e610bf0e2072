"""DSG, Davidsonian Scene Graph (j-min/DSG), on any :class:`~aigve.judges.protocol.Judge`.

Upstream read: j-min/DSG @ 7330119a39f76ff90e619a8bd3ff321e71aa986b (``dsg/query_utils.py``,
``dsg/parse_utils.py``, ``dsg/vqa_utils.py``, ``dsg/openai_utils.py``, ``t2i_eval_example.ipynb``). The three
preambles and the 23 in-context examples (``TIFA160_ICL_TRAIN_IDS`` rows of ``dsg/data/tifa160-dev-anns.csv``,
as pandas reads them) are in ``data/dsg_examples.json``, exact.

Generation (``prepare``, once per prompt, three text-only requests with ``max_tokens=500``, upstream's
``openai_completion``), in upstream's order:
    1. tuples:        input = the prompt;
    2. questions:     input = ``prompt + "\\n" + tuple output``;
    3. dependencies:  input = ``prompt + "\\n" + tuple output``.
Each prompt is ``preamble \\n\\n examples \\n\\n "input: {input}\\noutput: "``, the examples being
``"input: ...\\noutput: ..."`` blocks joined by blank lines (``make_prompt``). Each reply is cut before any
``"input:"`` and stripped (``parse_with_input_name``), then parsed as upstream's ``parse_*_output``: text after
``output:`` if present, one ``id | value`` line each; tuples keep the text before ``(`` as their type (the full
tuple is kept too); dependency ids keep numeric entries (and drop ``0`` when there are others). Where upstream
would crash we raise :class:`JudgeError` with the raw reply (a line without ``|``, a non-integer id) or are
lenient and say so in the plan (a dependency list with no id, e.g. ``-``, means "no parent").

VQA (``score_video``): every question about every sampled frame (one image per request) in upstream's
GPT-4o VQA format, ``Answer only with 'yes' or 'no'. Do not give other outputs or punctuation marks.
Question: {q}``, ``max_tokens=20``; the answer is lower-cased, stripped and freed of ``. , ? !`` as upstream,
then compared EXACTLY with ``"yes"`` (the original AIGVE toolkit tested the substring, so "yes" inside another
word counted; not here). Requests per video: ``n_questions * n_frames``.

Score (``calc_vqa_score``): per frame, score(q) = 1.0 if the answer is "yes" else 0.0; a question with a parent
(non-zero dependency id) whose own score is 0 is set to 0 (parents' *unfiltered* scores, no propagation, as
upstream); ``dsg`` = mean over frames of the dependency-filtered average, ``dsg_no_dep`` = mean over frames of
the plain average. Both 0-1, higher is better. Parent ids that name no question are ignored (upstream would
raise KeyError) and listed in the details.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from aigve.errors import MetricInputError
from aigve.judges.methods._common import (
    check_frames,
    check_plan,
    check_reply,
    load_data,
    require_prompt,
    usage,
)
from aigve.judges.protocol import Judge, JudgeError, JudgeOutcome, JudgeReply

NAME = "dsg"
UPSTREAM = "j-min/DSG@7330119a39f76ff90e619a8bd3ff321e71aa986b"
GEN_MAX_TOKENS = 500  # upstream openai_completion
VQA_MAX_TOKENS = 20  # upstream GPT4o.vqa
TASKS = ("tuple", "question", "dependency")  # upstream generate_dsg order


def _examples(task: str) -> list[dict[str, str]]:
    """Upstream's ``create_train_example`` for the 23 in-context items: (input, output) strings."""
    out = []
    for ex in load_data("dsg_examples.json")["examples"]:
        tuples = ex["tuples"]
        numbered_tuples = [" ".join(f"{i + 1} | {t}".split()) for i, t in enumerate(tuples)]
        if task == "tuple":
            inputs, outputs = [ex["prompt"]], numbered_tuples
        else:
            column = ex["dependencies"] if task == "dependency" else ex["questions"]
            inputs = [ex["prompt"], *numbered_tuples]
            outputs = [" ".join(f"{i + 1} | {v}".split()) for i, v in enumerate(column)]
        out.append({"input": "\n".join(inputs), "output": "\n".join(outputs)})
    return out


def task_prompt(task: str, test_input: str) -> str:
    """Upstream's ``make_prompt`` for ``task`` (tuple / question / dependency) and the test input."""
    if task not in TASKS:
        raise ValueError(f"DSG task must be one of {TASKS}, got {task!r}")
    preamble = load_data("dsg_examples.json")[f"{task}_preamble"]
    blocks = [f"input: {e['input'].strip()}\noutput: {e['output'].strip()}" for e in _examples(task)]
    return f"{preamble}\n\n" + "\n\n".join(blocks) + f"\n\ninput: {test_input}\noutput: "


def cut_output(text: str) -> str:
    """Upstream's ``parse_with_input_name`` + strip: the reply before any ``input:``."""
    return text.split("input:")[0].strip()


def _lines(output: str, what: str, raw: str) -> list[tuple[int, str]]:
    if "output:" in output:
        output = output[output.index("output:") + len("output:") :].strip()
    rows: list[tuple[int, str]] = []
    for line in output.strip().split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition("|")
        if not sep:
            raise JudgeError(f"DSG {what}: line {line!r} is not 'id | value'", raw=raw)
        try:
            rows.append((int(key.strip()), value.strip()))
        except ValueError:
            raise JudgeError(f"DSG {what}: id {key.strip()!r} is not an integer", raw=raw) from None
    if not rows:
        raise JudgeError(f"DSG {what}: the reply has no 'id | value' line", raw=raw)
    return rows


def parse_tuples(output: str, raw: str | None = None) -> dict[int, dict[str, str]]:
    """``{id: {"tuple": full tuple text, "type": text before "("}}`` (upstream keeps only the type)."""
    return {
        i: {"tuple": v, "type": v.strip().split("(")[0].strip()}
        for i, v in _lines(output, "tuples", raw or output)
    }


def clean_dependency_ids(value: str) -> list[int]:
    """Upstream's ``clean_dependency_id``: numeric comma-separated ids, ``0`` dropped when others exist;
    an empty result (or ``-``) reads as ``[0]``, no parent."""
    ids = [d.strip() for d in value.strip().split(",")]
    ids = [d for d in ids if d.isnumeric() or d == "-"]
    if len(ids) > 1:
        ids = [d for d in ids if d != "0"]
    nums = [int(d) for d in ids if d.isnumeric()]
    return nums or [0]


def parse_dependencies(output: str, raw: str | None = None) -> dict[int, list[int]]:
    return {i: clean_dependency_ids(v) for i, v in _lines(output, "dependencies", raw or output)}


def parse_questions(output: str, raw: str | None = None) -> dict[int, str]:
    return dict(_lines(output, "questions", raw or output))


def prepare(judge: Judge, prompt: str) -> dict[str, Any]:
    """The DSG of ``prompt``: tuples, questions, dependencies (three text-only judge requests)."""
    prompt = require_prompt(prompt, NAME)
    raw: dict[str, str] = {}
    outputs: dict[str, str] = {}
    usages: dict[str, Any] = {}

    def generate(task: str, test_input: str) -> str:
        reply = judge.ask(task_prompt(task, test_input), (), max_tokens=GEN_MAX_TOKENS)
        raw[task] = check_reply(reply, f"DSG {task} generation")
        usages[task] = usage(reply)
        outputs[task] = cut_output(raw[task])
        return outputs[task]

    tuple_out = generate("tuple", prompt)
    tuples = parse_tuples(tuple_out, raw["tuple"])
    followup = "\n".join([prompt, tuple_out.strip()])
    questions = parse_questions(generate("question", followup), raw["question"])
    dependencies = parse_dependencies(generate("dependency", followup), raw["dependency"])
    items = [
        {
            "id": qid,
            "question": q,
            "tuple": tuples.get(qid, {}).get("tuple"),
            "tuple_type": tuples.get(qid, {}).get("type"),
            "parents": dependencies.get(qid, [0]),
        }
        for qid, q in questions.items()
    ]
    return {
        "method": NAME,
        "upstream": UPSTREAM,
        "prompt": prompt,
        "questions": items,
        "dependencies": {str(k): v for k, v in dependencies.items()},
        "generation_raw": raw,
        "generation_usage": usages,
    }


def vqa_prompt(question: str) -> str:
    """Upstream's yes/no VQA text (``dsg/vqa_utils.py`` ``GPT4o.vqa``)."""
    return f"Answer only with 'yes' or 'no'. Do not give other outputs or punctuation marks. Question: {question}"


def normalize_answer(text: str) -> str:
    """Upstream's answer clean-up: lower-case, strip, remove ``. , ? !``."""
    out = text.lower().strip()
    for ch in ".,?!":
        out = out.replace(ch, "")
    return out


def dependency_scores(
    answers: dict[int, str], dependencies: dict[int, list[int]]
) -> tuple[dict[int, float], dict[int, float], dict[int, bool], list[int]]:
    """Upstream's ``calc_vqa_score`` on normalised answers with gold answer 'yes' for every question.

    Returns (scores, scores after dependency filtering, validity, unknown parent ids)."""
    scores = {qid: float(a == "yes") for qid, a in answers.items()}
    filtered = copy.deepcopy(scores)
    validity: dict[int, bool] = {}
    unknown: list[int] = []
    for qid in answers:
        any_parent_no = False
        for parent in dependencies.get(qid, [0]):
            if parent == 0:
                continue
            if parent not in scores:
                unknown.append(parent)
                continue
            if scores[parent] == 0:
                any_parent_no = True
                break
        validity[qid] = not any_parent_no
        if any_parent_no:
            filtered[qid] = 0.0
    return scores, filtered, validity, sorted(set(unknown))


def score_video(judge: Judge, plan: dict[str, Any], frames: Sequence[np.ndarray]) -> JudgeOutcome:
    """DSG of one video: every question asked about every sampled frame.

    ``values``: ``dsg`` (with upstream's dependency rule) and ``dsg_no_dep`` (without), both 0-1.
    """
    plan = check_plan(plan, NAME)
    images = check_frames(frames, NAME)
    items = plan["questions"]
    if not items:
        raise MetricInputError(f"{NAME}: the plan has no questions")
    deps = {int(it["id"]): [int(p) for p in it["parents"]] for it in items}
    replies: list[JudgeReply] = []
    per_question = [{**it, "answers": [], "raw_answers": [], "scores": [], "valid": []} for it in items]
    with_dep: list[float] = []
    without_dep: list[float] = []
    unknown_parents: set[int] = set()
    for image in images:
        answers: dict[int, str] = {}
        for it, log in zip(items, per_question, strict=True):
            reply = judge.ask(vqa_prompt(it["question"]), [image], max_tokens=VQA_MAX_TOKENS)
            replies.append(reply)
            text = check_reply(reply, f"DSG VQA ({it['question']!r})")
            answers[int(it["id"])] = normalize_answer(text)
            log["raw_answers"].append(text)
        scores, filtered, validity, unknown = dependency_scores(answers, deps)
        unknown_parents.update(unknown)
        for it, log in zip(items, per_question, strict=True):
            qid = int(it["id"])
            log["answers"].append(answers[qid])
            log["scores"].append(filtered[qid])
            log["valid"].append(validity[qid])
        without_dep.append(sum(scores.values()) / len(scores))
        with_dep.append(sum(filtered.values()) / len(scores))
    n_other = sum(1 for log in per_question for a in log["answers"] if a not in ("yes", "no"))
    details = {
        "method": NAME,
        "upstream": UPSTREAM,
        "n_frames": len(images),
        "n_questions": len(items),
        "frame_scores_with_dependency": with_dep,
        "frame_scores_without_dependency": without_dep,
        "answers_neither_yes_nor_no": n_other,
        "unknown_parent_ids": sorted(unknown_parents),
        "questions": per_question,
    }
    values = {"dsg": sum(with_dep) / len(with_dep), "dsg_no_dep": sum(without_dep) / len(without_dep)}
    return JudgeOutcome(values=values, details=details, replies=replies)


def calls_per_video(n_frames: int, n_questions: int) -> int:
    """Judge requests per video (``score_video``): one per question and frame. ``prepare`` adds 3 per prompt."""
    return n_frames * n_questions
