"""A scripted, in-process Judge for the method tests: replies come from a function of (text, images) or a
queue, and every call is recorded (text, image count and content hashes, keyword arguments)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aigve.judges.protocol import JudgeCapabilityError, JudgeReply


@dataclass
class Call:
    text: str
    image_hashes: list[str]
    system: str | None
    json_mode: bool
    max_tokens: int | None


@dataclass
class ScriptedJudge:
    """``reply(text, images) -> str`` answers each call; ``calls`` records them in order."""

    reply: Callable[[str, Sequence[np.ndarray]], str]
    calls: list[Call] = field(default_factory=list)

    @classmethod
    def queue(cls, texts: Sequence[str]) -> ScriptedJudge:
        pending = list(texts)

        def pop(text: str, images: Sequence[np.ndarray]) -> str:
            if not pending:
                raise AssertionError(f"unexpected extra judge call: {text[:80]!r}")
            return pending.pop(0)

        return cls(pop)

    def identity(self) -> dict[str, Any]:
        return {"backend": "scripted", "model": "test"}

    def ask(
        self,
        text: str,
        images: Sequence[np.ndarray] = (),
        *,
        system: str | None = None,
        json_mode: bool = False,
        max_tokens: int | None = None,
    ) -> JudgeReply:
        hashes = [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()[:12] for im in images]
        self.calls.append(Call(text, hashes, system, json_mode, max_tokens))
        out = self.reply(text, images)
        return JudgeReply(text=out, prompt_tokens=len(text.split()), completion_tokens=len(out.split()))

    def yes_probability(self, text: str, images: Sequence[np.ndarray] = ()) -> float:
        raise JudgeCapabilityError("scripted judge has no log-probabilities")

    def first_token_logprobs(self, text: str, images: Sequence[np.ndarray] = ()) -> dict[str, float]:
        raise JudgeCapabilityError("scripted judge has no log-probabilities")


def frames(n: int, seed: int = 0, size: int = 8) -> list[np.ndarray]:
    """``n`` distinct small uint8 RGB frames."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]
