"""Vision-language similarity: ``clipsim``, ``cliptemp``, ``pickscore``, ``blipsim``.

All four score the frames picked by one sampler: ``num_frames=16`` frames spread uniformly over the decoded
window by default (``Sampler("uniform", n)``: every frame when the video has fewer); ``num_frames="all"``
(or 0) uses every frame, as the original AIGVE toolkit did. ``clipsim`` and ``cliptemp`` with the same
``model``/``weights``/``num_frames`` share one feature request, so one CLIP image forward pass per frame
serves both. Each distinct prompt is encoded once per model.

Per video (mean over the sampled frames):

- ``clipsim``: ``clip_cosine`` = mean cos(image, text), the original toolkit's number (range [-1, 1]);
  ``clipscore`` = mean of ``100 * max(cos, 0)`` per frame (CLIPScore, Hessel et al. 2021, w = 100; note that
  torchmetrics' ``CLIPScore`` clamps the *mean* instead, which equals this whenever every frame has cos >= 0,
  as with real CLIP weights).
- ``cliptemp``: mean (and minimum) cosine similarity of consecutive sampled frames' CLIP image embeddings.
- ``pickscore``: ``pickscore`` = mean of ``exp(logit_scale) * cos`` (the PickScore model card's score) and
  ``pickscore_cosine`` = mean cos (what the original reported); PickScore_v1 with the CLIP-ViT-H-14 processor.
- ``blipsim``: ``blip_itc_cosine`` = BLIP ITC cosine (the original's); ``blip_itm_probability`` = ITM match
  probability, computed only with ``itm=true`` (null otherwise).

Prompts: a missing or empty prompt is an error record for that video. A prompt longer than the text
encoder's context (77 tokens for CLIP/PickScore) is truncated to it, keeping the end token, and the video's
``prompt_truncated`` output is 1 (0 otherwise; its aggregate is the fraction truncated), with a log warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.errors import MetricInputError, UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.metrics.functional.similarity import consecutive_cosine
from aigve.types import Entry
from aigve.video.sampling import Sampler

log = logging.getLogger(__name__)


CLIP_ROLE = "clip_image"
BLIP_ROLE = "blip_image"
DEFAULT_NUM_FRAMES = 16
TRUNCATED = OutputSpec(
    "prompt_truncated",
    None,
    (0.0, 1.0),
    "1 if the prompt was longer than the text encoder's context and was truncated, else 0",
)
CLIP_CITATION = (
    "Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021; "
    "Hessel et al., CLIPScore: A Reference-free Evaluation Metric for Image Captioning, EMNLP 2021"
)


def frame_sampler(num_frames: Any) -> Sampler:
    """``num_frames`` option -> sampler: an int n >= 1 = uniform n; ``"all"``/0/None = every frame."""
    if num_frames in (None, 0, "all"):
        return Sampler("all")
    try:
        n = int(num_frames)
    except (TypeError, ValueError):
        raise UsageError(f"num_frames must be a positive integer or 'all', got {num_frames!r}") from None
    if n < 1:
        raise UsageError(f"num_frames must be a positive integer or 'all', got {num_frames!r}")
    return Sampler("uniform", n=n)


def normalize_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """L2-normalise the rows of ``[N, D]`` in float64 (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def image_text_cosine(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """``[T, D]`` image embeddings and one ``[D]`` text embedding -> ``[T]`` float64 cosines."""
    return normalize_rows(image_emb) @ normalize_rows(np.asarray(text_emb).reshape(1, -1))[0]


def clipsim_scores(cos: np.ndarray) -> dict[str, float]:
    """Per-frame cosines -> ``{"clip_cosine": mean cos, "clipscore": mean 100 * max(cos, 0)}``."""
    c = np.asarray(cos, dtype=np.float64)
    return {"clip_cosine": float(c.mean()), "clipscore": float((100.0 * np.maximum(c, 0.0)).mean())}


def _prompt(entry: Entry, metric: str) -> str:
    p = entry.prompt
    if p is None or not p.strip():
        raise MetricInputError(
            f"entry '{entry.id}' ({entry.generated}) has no prompt; {metric} needs one (prompt_gt in the annotation)"
        )
    return p


def _frames(
    feats: Mapping[str, np.ndarray], role: str, entry: Entry, metric: str, least: int = 1
) -> np.ndarray:
    f = np.asarray(feats[role])
    n = f.shape[0] if f.ndim == 2 else 0
    if n < least:
        raise MetricInputError(
            f"{entry.generated}: {metric} needs at least {least} frame(s), got {n} — use a longer video or a "
            f"window (--max-len/--max-seconds) that keeps more frames"
        )
    return f


def _warn_truncated(entry: Entry, metric: str, truncated: bool, ctx: int) -> float:
    if truncated:
        log.warning("%s: prompt of entry '%s' is longer than %d tokens; truncated", metric, entry.id, ctx)
    return 1.0 if truncated else 0.0


class _ClipBase(VideoMetric):
    """Shared plumbing of the CLIP-backed metrics (one ``clip`` feature request)."""

    def sampler(self) -> Sampler:
        return frame_sampler(self.options.get("num_frames"))

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(CLIP_ROLE, "clip", self.sampler(), "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "model": self.options["model"],
            "image_backend": self.options["image_backend"],
        }
        for k in ("weights", "processor"):
            if self.options.get(k):
                opts[k] = str(self.options[k])
        return opts

    def model(self) -> Any:
        from aigve.backbones.clip import get_clip_model

        return get_clip_model(self.extractor_options())


_CLIP_OPTIONS = {
    "model": "clip_vit_b32",
    "num_frames": DEFAULT_NUM_FRAMES,
    "image_backend": "pil",
    "processor": None,
}


@register_metric
class ClipSim(_ClipBase):
    """CLIP image-text similarity per video: mean raw cosine and CLIPScore over the sampled frames."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="clipsim",
        family="vl_similarity",
        description="CLIP image-text similarity of the sampled frames with the prompt (raw cosine and CLIPScore)",
        inputs=("generated", "prompt"),
        backbone="clip",
        outputs=(
            OutputSpec(
                "clip_cosine",
                True,
                (-1.0, 1.0),
                "mean over frames of cos(CLIP image, CLIP text) (original AIGVE)",
            ),
            OutputSpec(
                "clipscore", True, (0.0, 100.0), "mean over frames of 100 * max(cos, 0) (Hessel et al.)"
            ),
            TRUNCATED,
        ),
        citation=CLIP_CITATION,
        extra="vlsim",
        requires=("transformers",),
        weights=("clip_vit_b32",),
        options=_CLIP_OPTIONS,
    )

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        prompt = _prompt(entry, self.name)
        img = _frames(feats, CLIP_ROLE, entry, self.name)
        m = self.model()
        txt, trunc = m.encode_text([prompt])
        out = clipsim_scores(image_text_cosine(img, txt[0]))
        out["prompt_truncated"] = _warn_truncated(entry, self.name, trunc[0], m.context_length)
        return out


@register_metric
class ClipTemp(_ClipBase):
    """Temporal consistency: cosine similarity of consecutive frames' CLIP image embeddings."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="cliptemp",
        family="vl_similarity",
        description="mean cosine similarity of consecutive sampled frames' CLIP image embeddings",
        inputs=("generated",),
        backbone="clip",
        outputs=(
            OutputSpec(
                "cliptemp", True, (-1.0, 1.0), "mean over consecutive sampled frame pairs of the cosine"
            ),
            OutputSpec("cliptemp_min", True, (-1.0, 1.0), "minimum over consecutive sampled frame pairs"),
        ),
        citation=CLIP_CITATION,
        extra="vlsim",
        requires=("transformers",),
        weights=("clip_vit_b32",),
        options=_CLIP_OPTIONS,
    )

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        sims = consecutive_cosine(_frames(feats, CLIP_ROLE, entry, self.name, least=2))
        return {"cliptemp": float(sims.mean()), "cliptemp_min": float(sims.min())}


@register_metric
class PickScore(_ClipBase):
    """PickScore_v1: ``exp(logit_scale) * cos`` per frame, averaged; plus the plain cosine."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="pickscore",
        family="vl_similarity",
        description="PickScore_v1 (CLIP-H fine-tuned on Pick-a-Pic preferences) of the sampled frames and prompt",
        inputs=("generated", "prompt"),
        backbone="clip",
        outputs=(
            OutputSpec(
                "pickscore", True, (None, None), "mean over frames of exp(logit_scale) * cos (model card)"
            ),
            OutputSpec(
                "pickscore_cosine", True, (-1.0, 1.0), "mean over frames of the plain cosine (original AIGVE)"
            ),
            TRUNCATED,
        ),
        citation="Kirstain et al., Pick-a-Pic: An Open Dataset of User Preferences for Text-to-Image Generation, NeurIPS 2023",
        extra="vlsim",
        requires=("transformers",),
        weights=("pickscore_v1", "clip_vit_h14_laion2b"),
        options={**_CLIP_OPTIONS, "model": "pickscore_v1"},
    )

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        prompt = _prompt(entry, self.name)
        img = _frames(feats, CLIP_ROLE, entry, self.name)
        m = self.model()
        txt, trunc = m.encode_text([prompt])
        cos = image_text_cosine(img, txt[0])
        return {
            "pickscore": float((m.logit_scale * cos).mean()),
            "pickscore_cosine": float(cos.mean()),
            "prompt_truncated": _warn_truncated(entry, self.name, trunc[0], m.context_length),
        }


@register_metric
class BlipSim(VideoMetric):
    """BLIP image-text similarity per video: ITC cosine (default) and optionally the ITM match probability."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="blipsim",
        family="vl_similarity",
        description="BLIP (blip-itm-base-coco) image-text similarity of the sampled frames and the prompt",
        inputs=("generated", "prompt"),
        backbone="blip",
        outputs=(
            OutputSpec(
                "blip_itc_cosine", True, (-1.0, 1.0), "mean over frames of the ITC cosine (original AIGVE)"
            ),
            OutputSpec(
                "blip_itm_probability",
                True,
                (0.0, 1.0),
                "mean over frames of the ITM match probability (itm=true)",
            ),
            TRUNCATED,
        ),
        citation="Li et al., BLIP: Bootstrapping Language-Image Pre-training, ICML 2022",
        extra="vlsim",
        requires=("transformers",),
        weights=("blip_itm_base_coco",),
        options={"num_frames": DEFAULT_NUM_FRAMES, "itm": False, "image_backend": "pil"},
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(BLIP_ROLE, "blip", frame_sampler(self.options.get("num_frames")), "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "head": "itm" if self.options.get("itm") else "itc",
            "image_backend": self.options["image_backend"],
        }
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return opts

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        import torch

        from aigve.backbones.blip import get_blip_model

        prompt = _prompt(entry, self.name)
        f = _frames(feats, BLIP_ROLE, entry, self.name)
        m = get_blip_model(self.extractor_options())
        txt, trunc = m.itc_text([prompt])
        out: dict[str, float] = {}
        if self.options.get("itm"):
            tokens = torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32))
            tokens = tokens.reshape(f.shape[0], m.num_tokens, m.hidden).to(m.device)
            img = m.project_cls(tokens).float().cpu().numpy()
            prob, _ = m.itm_probability(f, prompt)
            out["blip_itm_probability"] = float(prob.mean())
        else:
            img = f
        out["blip_itc_cosine"] = float(image_text_cosine(img, txt[0]).mean())
        out["prompt_truncated"] = _warn_truncated(entry, self.name, trunc[0], m.max_length)
        return out
