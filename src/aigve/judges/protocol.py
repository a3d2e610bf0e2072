"""The contract between judge *backends* (an OpenAI-compatible endpoint, a local VLM) and judge *methods*
(VIEScore, TIFA, DSG, VQAScore).

A method is plain orchestration: it builds the upstream method's prompts, asks a :class:`Judge`, parses the
replies and combines them into scores. It never knows which backend answers, and a backend never knows
which method asks. Both sides are tested separately: methods against scripted judges and the upstream
scoring code, backends against a local chat-completions server and transformers.

Methods are two-phase so that work depending only on the prompt (TIFA's and DSG's question generation) is done
once per distinct prompt and shared by every video with that prompt:

- ``prepare(judge, prompt) -> dict`` : JSON-able plan for a prompt (may ask the judge's language model);
- ``score_video(judge, plan, frames, **kw) -> JudgeOutcome`` : the video's scores from its sampled frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aigve.errors import AigveError


@dataclass(frozen=True)
class JudgeReply:
    """One answer from a judge: its text, the tokens it cost, and whether it came from the response cache."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


@dataclass
class JudgeOutcome:
    """What a method gives for one video.

    ``values``: the named outputs (the metric's declared outputs, e.g. ``{"viescore": 6.3, "sc": 7.0, ...}``);
    ``details``: JSON-able per-video detail kept in the per-video file (per-question answers, parsed scores,
    the raw replies); ``replies``: every reply it used (token accounting, cache statistics).
    """

    values: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    replies: list[JudgeReply] = field(default_factory=list)


class JudgeError(AigveError):
    """A judge could not give a usable answer (unparseable reply, refusal, retries exhausted, timeout).

    ``raw`` keeps the offending reply text (if any) so the per-video error record can show it. Never replaced
    by a made-up score: the video gets an error record, other videos are unaffected.
    """

    def __init__(self, message: str, *, raw: str | None = None, reason: str = "unparseable") -> None:
        super().__init__(message)
        self.raw = raw
        self.reason = reason


class JudgeCapabilityError(JudgeError):
    """The configured backend cannot do what a method needs (e.g. VQAScore needs token log-probabilities)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="capability")


@runtime_checkable
class Judge(Protocol):
    """A vision-language model that answers questions about images (and text-only questions).

    ``images`` are uint8 RGB arrays ``[H, W, 3]`` (never BGR). Calls are deterministic where the backend allows
    (temperature 0, a fixed seed) and cached by the backend: the same call twice costs one request.
    """

    def identity(self) -> dict[str, Any]:
        """Backend kind, model name and endpoint host (never a key): part of every score's provenance."""
        ...

    def ask(
        self,
        text: str,
        images: Sequence[np.ndarray] = (),
        *,
        system: str | None = None,
        json_mode: bool = False,
        max_tokens: int | None = None,
    ) -> JudgeReply:
        """One user turn (the images first, then the text) -> the model's reply. Text-only when no images."""
        ...

    def yes_probability(self, text: str, images: Sequence[np.ndarray] = ()) -> float:
        """P("Yes") as the first answer token, over the whole vocabulary (t2v_metrics' VQAScore reading);
        raises :class:`JudgeCapabilityError` if the backend gives no log-probabilities."""
        ...

    def first_token_logprobs(self, text: str, images: Sequence[np.ndarray] = ()) -> dict[str, float]:
        """Log-probabilities of the likeliest first answer tokens (token text -> logprob), for methods that
        renormalise over a few answers; raises :class:`JudgeCapabilityError` without log-probabilities."""
        ...
