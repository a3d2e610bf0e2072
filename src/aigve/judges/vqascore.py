"""VQAScore (Lin et al., ECCV 2024; linzhiqiu/t2v_metrics): P("Yes") as the judge's first answer token to a
yes/no question about the prompt, read from the token probabilities (not from a generated answer).

The question is t2v_metrics' default VQAScore question, ``Does this figure show "{prompt}"? Please answer yes
or no.`` (the ``question`` option changes the template); the score of a frame is ``softmax(first-token logits)["Yes"]`` (local VLMs: exactly, over the whole
vocabulary; endpoints: ``exp(logprob)`` of the token ``"Yes"`` among the returned top log-probabilities, 0
when it is not among them). A video's score is the mean over its sampled frames, each asked about alone
(one image per question).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aigve.judges.protocol import Judge, JudgeOutcome

QUESTION = 'Does this figure show "{}"? Please answer yes or no.'
ANSWER = "Yes"


def prepare(judge: Judge, prompt: str, *, question: str = QUESTION) -> dict[str, Any]:
    """The question asked of every frame (no request: VQAScore's question depends only on the prompt).
    ``question`` is the template, ``{}`` standing for the prompt (t2v_metrics' Qwen2-VL class uses
    ``Does this image show "{}"?``)."""
    if question.count("{}") != 1:
        from aigve.errors import UsageError

        raise UsageError(f"vqascore question must hold one {{}} for the prompt, got {question!r}")
    return {"question": question.format(prompt)}


def score_video(judge: Judge, plan: dict[str, Any], frames: Sequence[np.ndarray], **_: Any) -> JudgeOutcome:
    """Mean P("Yes") over ``frames``; the per-frame probabilities are in the details."""
    many = getattr(judge, "yes_probabilities", None)
    if callable(many):  # a local judge answers all frames in batches
        probs = [float(p) for p in many([(plan["question"], [f]) for f in frames])]
    else:
        probs = [float(judge.yes_probability(plan["question"], [f])) for f in frames]
    return JudgeOutcome(
        {"vqascore": float(np.mean(probs))},
        {"question": plan["question"], "p_yes_per_frame": probs},
    )
