"""Scorers used only by the VBench dimensions.

``vbench_clip_style``: VBench's ``appearance_style`` (Vchitect/VBench 45e79ec, ``vbench/appearance_style.py``)
scores each frame against the prompt's *style text* (auxiliary info ``appearance_style``, e.g. "oil painting"),
not against the prompt. This is the ``clip_text`` scorer reading the entry's ``appearance_style`` field instead:
per frame the cosine, ``exp(logit_scale) * cosine`` (CLIP's ``logits_per_text``, which VBench divides by 100) and
the truncation flag, on the ``clip`` extractor's embeddings of the same frames and model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from aigve.backbones.base import ScorerInput
from aigve.backbones.clip import ClipTextScorer, image_text_cosine
from aigve.backbones.registry import register_extractor

STYLE_FIELD = "appearance_style"


@register_extractor
class VBenchClipStyleScorer(ClipTextScorer):
    """``clip_text`` on the entry's ``appearance_style`` text: ``[T, 3]`` cosine, scaled cosine, truncated."""

    name: ClassVar[str] = "vbench_clip_style"
    version: ClassVar[str] = "1"
    texts: ClassVar[tuple[str, ...]] = (STYLE_FIELD,)

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        if not items:
            return []
        h = self.handle
        txt, trunc = h.encode_text([it.texts[STYLE_FIELD] for it in items])
        scale = h.logit_scale
        out = []
        for i, it in enumerate(items):
            cos = image_text_cosine(it.data, txt[i])
            out.append(np.stack([cos, scale * cos, np.full_like(cos, float(trunc[i]))], axis=1))
        return out
