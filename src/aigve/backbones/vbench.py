"""Scorers used only by the VBench dimensions.

``vbench_clip_style``: VBench's ``appearance_style`` (Vchitect/VBench 45e79ec, ``vbench/appearance_style.py``)
scores each frame against the prompt's *style text* (auxiliary info ``appearance_style``, e.g. "oil painting"),
not against the prompt. This is the ``clip_text`` scorer reading the entry's ``appearance_style`` field instead:
per frame the cosine, ``exp(logit_scale) * cosine`` (CLIP's ``logits_per_text``, which VBench divides by 100) and
the truncation flag, on the ``clip`` extractor's embeddings of the same frames and model.

``vbench_aesthetic``: the LAION linear aesthetic head of ``aesthetic_quality`` on CLIP ViT-L/14 embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Scorer, ScorerInput
from aigve.backbones.clip import ClipTextScorer, image_text_cosine
from aigve.backbones.registry import register_extractor
from aigve.errors import UsageError

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


AESTHETIC_WEIGHTS = "laion_aesthetic_l14"


@register_extractor
class VBenchAestheticScorer(Scorer):
    """VBench's ``aesthetic_quality`` head (Vchitect/VBench 45e79ec, ``vbench/aesthetic_quality.py``): the LAION
    aesthetic predictor's *linear* head ``sa_0_4_vit_l_14_linear.pth`` (``nn.Linear(768, 1)``) on the L2-normalised
    CLIP ViT-L/14 image embedding of each frame, divided by 10 -> ``[T, 1]``.

    Reads the ``clip`` extractor (``model=clip_vit_l14``, ``image_backend=vbench``: VBench's ``clip_transform``).
    Options: the upstream's ``model``/``weights`` and ``head_weights`` (the head file; default the registry's).
    """

    name: ClassVar[str] = "vbench_aesthetic"
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = "vlsim"
    input: ClassVar[Literal["frames", "features"]] = "features"
    columns: ClassVar[tuple[str, ...]] = ("aesthetic",)

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        known = {"model", "weights", "image_backend", "head_weights"}
        unknown = set(options) - known
        if unknown:
            raise UsageError(f"vbench_aesthetic: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        options.setdefault("model", "clip_vit_l14")
        options.setdefault("image_backend", "vbench")
        super().__init__(device, batch_size, **options)
        self._head: torch.nn.Linear | None = None
        self._sha: str | None = None

    def upstream(self) -> tuple[str, dict[str, Any]]:
        opts = {k: self.options[k] for k in ("model", "image_backend")}
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return "clip", opts

    def load(self) -> None:
        if self._head is not None:
            return
        from aigve.weights import load_into, resolve_for_backbone
        from aigve.weights.load import load_state_dict

        resolved = resolve_for_backbone(
            AESTHETIC_WEIGHTS,
            self.options.get("head_weights"),
            context="vbench_aesthetic_quality needs the LAION aesthetic linear head",
        )
        in_features = int(load_state_dict(resolved.path)["weight"].shape[1])
        loaded = load_into(
            lambda: torch.nn.Linear(in_features, 1),
            AESTHETIC_WEIGHTS,
            resolved=resolved,
            what="the LAION aesthetic linear head (sa_0_4_vit_l_14_linear.pth)",
            fix="pass sa_0_4_vit_l_14_linear.pth with --metric-option vbench_aesthetic_quality.head_weights=PATH",
        )
        self._head = loaded.module.eval().to(self.device)
        self._sha = loaded.sha256
        self._loaded = True

    def weights_sha256(self) -> str | None:
        self.ensure_loaded()
        return self._sha

    @torch.inference_mode()
    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self.ensure_loaded()
        assert self._head is not None
        out = []
        for it in items:
            emb = torch.as_tensor(np.asarray(it.data, dtype=np.float32), device=self.device)
            emb = torch.nn.functional.normalize(emb, dim=-1, p=2)
            s = self._head(emb).squeeze(-1) / 10
            out.append(s.double().cpu().numpy().reshape(-1, 1))
        return out
