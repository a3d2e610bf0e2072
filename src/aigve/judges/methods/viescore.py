"""VIEScore for text-to-video (TIGER-AI-Lab/VIEScore, task ``t2v``), on any :class:`~aigve.judges.protocol.Judge`.

Upstream read: TIGER-AI-Lab/VIEScore @ 2cbea4e8ce5721425a8772590ecdbe7d2edd1721 (``viescore/__init__.py``,
``viescore/vie_prompts.py``, ``viescore/utils.py``). The prompt strings are in ``data/viescore_prompts.json``,
reproduced exactly from ``vie_prompts.py``.

Prompts (as upstream's ``VIEScore(task="t2v")``)
    SC (semantic consistency) = ``context_no_delimit + "\\n" + one_video_gen_rule + "\\n" + t2v_rule_SC`` with
    ``<prompt>`` replaced by the text prompt; asks for ``score = [score]``.
    PQ (perceptual quality) = ``context_no_delimit + "\\n" + t2v_rule_PQ``; asks for
    ``score = [naturalness, artifacts]``. The reply is asked as ``{"score": [...], "reasoning": "..."}``.
    Upstream sends them with ``max_tokens=1400``, text and images in one user turn, no system message, no JSON
    mode (OpenAI's JSON mode would reject these prompts: they never say "json").

Scores (scale 0-10, higher is better)
    per evaluation: ``SC = min(SC scores)``, ``PQ = min(PQ scores)``, ``O = sqrt(SC * PQ)`` (upstream ``evaluate``).

Frames (``mode``)
    ``"per_frame"`` (default, what the original AIGVE toolkit meant to do): each sampled frame is one evaluation
    (one SC and one PQ request with that single frame), and ``viescore``/``viescore_sc``/``viescore_pq`` are the
    means over frames of the per-frame O/SC/PQ (so ``viescore`` is the mean of per-frame square roots, not the
    square root of the mean SC times mean PQ). Requests per video: ``2 * n_frames``.
    ``"clip"``: upstream's own t2v design, all sampled frames in one SC and one PQ request. Requests: 2.

Parsing (as upstream's ``mllm_output_to_dict``, without its random guess)
    the JSON between two ``||V^=^V||`` delimiters if there are exactly two, else from the first ``{`` to the
    last ``}``; a reply with no braces is read only if it is a bare two-number list ``[a, b]`` or a bare integer
    0-10. JSON that does not load is repaired the way upstream's ``fix_json`` means to (unquoted keys, a bare
    number for ``score``). A reply that still cannot be read, has no numeric ``score``, or has a score outside
    0-10 raises :class:`JudgeError` with the raw text; upstream would substitute ``random.randint(0, 10)`` after
    one retry; we never do (a retry would hit the response cache and read the same text anyway).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from aigve.errors import MetricInputError
from aigve.judges.methods._common import (
    check_frames,
    check_plan,
    check_reply,
    is_refusal,
    load_data,
    require_prompt,
)
from aigve.judges.protocol import Judge, JudgeError, JudgeOutcome, JudgeReply

NAME = "viescore"
UPSTREAM = "TIGER-AI-Lab/VIEScore@2cbea4e8ce5721425a8772590ecdbe7d2edd1721"
MAX_TOKENS = 1400  # upstream GPT4v/GPT4o payload
MODES = ("per_frame", "clip")
DELIMITER = "||V^=^V||"

_TWO_INT_LIST = re.compile(r"^\[\d+, ?\d+\]$")


def sc_prompt(prompt: str) -> str:
    """Upstream's t2v semantic-consistency prompt for ``prompt``."""
    p = load_data("viescore_prompts.json")
    template = "\n".join([p["context_no_delimit"], p["one_video_gen_rule"], p["t2v_rule_SC"]])
    return template.replace("<prompt>", prompt)


def pq_prompt() -> str:
    """Upstream's t2v perceptual-quality prompt (naturalness, artifacts); it does not depend on the prompt."""
    p = load_data("viescore_prompts.json")
    return "\n".join([p["context_no_delimit"], p["t2v_rule_PQ"]])


def _repair(json_str: str) -> dict[str, Any] | None:
    """Read ``score`` and ``reasoning`` out of JSON-like text that ``json.loads`` refused (unquoted keys,
    single quotes, a trailing comma): upstream's ``fix_json`` fallback, written as a tolerant field reader."""
    m = re.search(r"""["']?score["']?\s*:\s*(\[[^\]]*\]|-?\d+(?:\.\d+)?)""", json_str)
    if not m:
        return None
    raw_score = m.group(1)
    if raw_score.startswith("["):
        items = [s.strip().strip("\"'") for s in raw_score[1:-1].split(",") if s.strip()]
        score: Any = items
    else:
        score = [raw_score]
    r = re.search(r"""["']?reasoning["']?\s*:\s*["'](.*?)["']?\s*[,}]?\s*$""", json_str)
    return {"score": score, "reasoning": r.group(1) if r else ""}


def _numbers(values: object, raw: str) -> list[float]:
    if not isinstance(values, list):
        values = [values]
    out: list[float] = []
    for v in values:
        if isinstance(v, bool):
            raise JudgeError(f"VIEScore: score entry {v!r} is not a number", raw=raw)
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise JudgeError(f"VIEScore: score entry {v!r} is not a number", raw=raw) from None
        if not math.isfinite(x) or not 0.0 <= x <= 10.0:
            raise JudgeError(f"VIEScore: score {v!r} is outside the 0-10 scale", raw=raw)
        out.append(x)
    if not out:
        raise JudgeError("VIEScore: the reply's score list is empty", raw=raw)
    return out


def parse_reply(text: str) -> dict[str, Any]:
    """``{"score": [floats in 0..10], "reasoning": str}`` from one VIEScore reply, or :class:`JudgeError`."""
    raw = text
    if text.count(DELIMITER) == 2:
        body = text[text.find(DELIMITER) + len(DELIMITER) : text.rfind(DELIMITER)]
    else:
        start, end = text.find("{"), text.rfind("}") + 1
        if start == -1 or end == 0:
            b_start, b_end = text.find("["), text.rfind("]") + 1
            bracket = text[b_start:b_end] if b_start != -1 and b_end > 0 else ""
            if bracket and _TWO_INT_LIST.match(bracket):
                return {"score": _numbers(json.loads(bracket), raw), "reasoning": ""}
            stripped = text.strip()
            if re.fullmatch(r"[+-]?\d+", stripped) and 0 <= int(stripped) <= 10:
                return {"score": [float(int(stripped))], "reasoning": ""}
            reason = "refusal" if is_refusal(text) else "unparseable"
            raise JudgeError("VIEScore: no JSON score found in the reply", raw=raw, reason=reason)
        body = text[start:end]
    body = body.strip().replace("\n", "")
    if not body:
        raise JudgeError("VIEScore: nothing between the reply's delimiters", raw=raw)
    data: Any
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        data = _repair(body)
    if not isinstance(data, dict) or "score" not in data:
        raise JudgeError("VIEScore: the reply has no readable 'score' field", raw=raw)
    reasoning = data.get("reasoning", "")
    return {"score": _numbers(data["score"], raw), "reasoning": "" if reasoning is None else str(reasoning)}


def combine(sc_scores: Sequence[float], pq_scores: Sequence[float]) -> tuple[float, float, float]:
    """Upstream's combination: ``SC = min(sc)``, ``PQ = min(pq)``, ``O = sqrt(SC * PQ)`` (all on 0-10)."""
    sc, pq = float(min(sc_scores)), float(min(pq_scores))
    return sc, pq, math.sqrt(sc * pq)


def prepare(judge: Judge, prompt: str) -> dict[str, Any]:
    """The plan for ``prompt``: the two upstream prompts (no judge call; ``judge`` is unused)."""
    prompt = require_prompt(prompt, NAME)
    return {
        "method": NAME,
        "upstream": UPSTREAM,
        "prompt": prompt,
        "sc_prompt": sc_prompt(prompt),
        "pq_prompt": pq_prompt(),
    }


def _evaluate(
    judge: Judge, plan: dict[str, Any], images: Sequence[np.ndarray], json_mode: bool
) -> tuple[dict[str, Any], list[JudgeReply]]:
    sc_reply = judge.ask(plan["sc_prompt"], images, json_mode=json_mode, max_tokens=MAX_TOKENS)
    pq_reply = judge.ask(plan["pq_prompt"], images, json_mode=json_mode, max_tokens=MAX_TOKENS)
    sc_parsed = parse_reply(check_reply(sc_reply, "VIEScore SC"))
    pq_parsed = parse_reply(check_reply(pq_reply, "VIEScore PQ"))
    sc, pq, overall = combine(sc_parsed["score"], pq_parsed["score"])
    result = {
        "sc_scores": sc_parsed["score"],
        "pq_scores": pq_parsed["score"],
        "sc": sc,
        "pq": pq,
        "overall": overall,
        "sc_reasoning": sc_parsed["reasoning"],
        "pq_reasoning": pq_parsed["reasoning"],
        "sc_raw": sc_reply.text,
        "pq_raw": pq_reply.text,
    }
    return result, [sc_reply, pq_reply]


def score_video(
    judge: Judge,
    plan: dict[str, Any],
    frames: Sequence[np.ndarray],
    *,
    mode: str = "per_frame",
    json_mode: bool = False,
) -> JudgeOutcome:
    """VIEScore of one video from its sampled uint8 RGB frames.

    ``values``: ``viescore`` (overall O), ``viescore_sc`` (semantic consistency), ``viescore_pq`` (perceptual
    quality), all on 0-10, higher is better. ``details``: mode, per-evaluation scores, reasoning and raw replies.
    Any unusable reply raises :class:`JudgeError` (the video's error record); nothing is guessed.
    """
    plan = check_plan(plan, NAME)
    images = check_frames(frames, NAME)
    if mode not in MODES:
        raise MetricInputError(f"{NAME}: mode must be one of {MODES}, got {mode!r}")
    groups = [[f] for f in images] if mode == "per_frame" else [images]
    evaluations: list[dict[str, Any]] = []
    replies: list[JudgeReply] = []
    for group in groups:
        result, used = _evaluate(judge, plan, group, json_mode)
        evaluations.append(result)
        replies.extend(used)
    n = len(evaluations)
    values = {
        "viescore": sum(e["overall"] for e in evaluations) / n,
        "viescore_sc": sum(e["sc"] for e in evaluations) / n,
        "viescore_pq": sum(e["pq"] for e in evaluations) / n,
    }
    details = {
        "method": NAME,
        "upstream": UPSTREAM,
        "scale": "0-10",
        "mode": mode,
        "n_frames": len(images),
        "evaluations": evaluations,
    }
    return JudgeOutcome(values=values, details=details, replies=replies)


def calls_per_video(n_frames: int, *, mode: str = "per_frame") -> int:
    """Judge requests per video: ``2 * n_frames`` per frame, 2 in ``clip`` mode; ``prepare`` makes none."""
    return 2 * n_frames if mode == "per_frame" else 2
