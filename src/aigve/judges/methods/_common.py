"""Small helpers shared by the judge methods: input checks, the prompt data files, refusal detection."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from aigve.errors import MetricInputError
from aigve.judges.protocol import JudgeError, JudgeReply

# A reply that opens like this is a refusal, not an answer: the video gets an error record (reason "refusal")
# instead of a score. Deliberately narrow (only the opening words), so that an ordinary answer that happens
# to contain "sorry" later on is not mistaken for one.
_REFUSAL = re.compile(
    r"^\s*(?:i['\u2019]?m sorry|i am sorry|sorry,|i cannot|i can['\u2019]?t|i am unable|i['\u2019]?m unable|"
    r"i am not able|i['\u2019]?m not able|as an ai)",
    re.IGNORECASE,
)


def is_refusal(text: str) -> bool:
    """True when the reply opens like a refusal ("I'm sorry, ...", "I can't ...", "As an AI ...")."""
    return bool(_REFUSAL.match(text))


def check_reply(reply: JudgeReply, what: str) -> str:
    """The reply's text, or :class:`JudgeError` for an empty reply or a refusal (raw text kept)."""
    text = reply.text if isinstance(reply.text, str) else ""
    if not text.strip():
        raise JudgeError(f"{what}: the judge gave an empty reply", raw=text, reason="empty")
    if is_refusal(text):
        raise JudgeError(f"{what}: the judge refused to answer", raw=text, reason="refusal")
    return text


def require_prompt(prompt: object, method: str) -> str:
    """The prompt as a non-empty string, or a :class:`MetricInputError` saying what is missing."""
    if prompt is None:
        raise MetricInputError(f"{method} needs the video's text prompt, and this entry has none")
    if not isinstance(prompt, str):
        raise MetricInputError(f"{method} needs the text prompt as a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise MetricInputError(f"{method} needs a non-empty text prompt, got an empty or blank one")
    return prompt


def check_plan(plan: object, method: str) -> dict[str, Any]:
    """The plan returned by ``prepare`` for this method (a clear error for anything else)."""
    if not isinstance(plan, dict) or plan.get("method") != method:
        got = plan.get("method") if isinstance(plan, dict) else type(plan).__name__
        raise MetricInputError(f"{method}: score_video needs the plan made by {method}.prepare, got {got!r}")
    return plan


def check_frames(frames: Sequence[np.ndarray], method: str) -> list[np.ndarray]:
    """The sampled frames as a list of uint8 RGB ``[H, W, 3]`` arrays (at least one)."""
    if isinstance(frames, np.ndarray):
        frames = list(frames) if frames.ndim == 4 else [frames]
    out = list(frames)
    if not out:
        raise MetricInputError(f"{method} needs at least one sampled frame, got none")
    for i, f in enumerate(out):
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            desc = f"{f.dtype} {f.shape}" if isinstance(f, np.ndarray) else type(f).__name__
            raise MetricInputError(f"{method}: frame {i} must be a uint8 RGB array [H, W, 3], got {desc}")
    return out


def usage(reply: JudgeReply) -> dict[str, Any]:
    """Token accounting of one reply, JSON-able (kept in plans, whose replies are not JudgeReply objects)."""
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "cached": reply.cached,
    }


@cache
def load_data(name: str) -> dict[str, Any]:
    """A prompt data file shipped in ``aigve/judges/methods/data`` (upstream strings, reproduced exactly)."""
    text = resources.files("aigve.judges.methods").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
