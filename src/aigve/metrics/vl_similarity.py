"""Vision-language similarity: ``clipsim``, ``cliptemp``, ``pickscore``, ``blipsim``.

All four score the frames picked by one sampler: ``num_frames=16`` frames spread uniformly over the decoded
window by default (``Sampler("uniform", n)``: every frame when the video has fewer); ``num_frames="all"``
(or 0) uses every frame, as the original AIGVE toolkit did. ``cliptemp`` reads the ``clip`` extractor's image
embeddings; ``clipsim`` and ``pickscore`` read the ``clip_text`` scorer (:mod:`aigve.backbones.clip`), whose
input is those same embeddings plus the prompt, so with equal ``model``/``weights``/``num_frames`` one CLIP
image forward pass per frame serves all three, and one loaded model encodes images and prompts (each
distinct prompt once). ``blipsim`` reads the ``blip_text`` scorer on the ``blip`` extractor's features. The
scorers' outputs are cached with a hash of the prompt: a rerun does no model work, a changed prompt
re-scores only that video.

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

from aigve.backbones.base import column
from aigve.backbones.blip import BLIP_TEXT_COLUMNS
from aigve.backbones.clip import CLIP_TEXT_COLUMNS
from aigve.errors import MetricInputError, UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.metrics.functional.similarity import consecutive_cosine
from aigve.types import Entry
from aigve.video.sampling import Sampler

log = logging.getLogger(__name__)


CLIP_ROLE = "clip_image"  # the clip extractor's image embeddings (cliptemp)
CLIP_TEXT_ROLE = "clip_text"  # the clip_text scorer's per-frame image-text scores (clipsim, pickscore)
BLIP_TEXT_ROLE = "blip_text"  # the blip_text scorer's per-frame scores (blipsim)
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


def clipsim_scores(cos: np.ndarray) -> dict[str, float]:
    """Per-frame cosines -> ``{"clip_cosine": mean cos, "clipscore": mean 100 * max(cos, 0)}``."""
    c = np.asarray(cos, dtype=np.float64)
    return {"clip_cosine": float(c.mean()), "clipscore": float((100.0 * np.maximum(c, 0.0)).mean())}


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


def _warn_truncated(entry: Entry, metric: str, truncated: bool) -> float:
    if truncated:
        log.warning(
            "%s: prompt of entry '%s' is longer than the text encoder's context; truncated", metric, entry.id
        )
    return 1.0 if truncated else 0.0


class _ClipBase(VideoMetric):
    """Shared plumbing of the CLIP-backed metrics (one ``clip`` feature request)."""

    def sampler(self) -> Sampler:
        return frame_sampler(self.options.get("num_frames"))

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(CLIP_ROLE, "clip", self.sampler(), "generated")]

    def _text_scores(self, feats: Mapping[str, np.ndarray], entry: Entry) -> tuple[np.ndarray, float]:
        """The clip_text scorer's ``[T, 3]`` output and the prompt-truncated flag (logged when set)."""
        out = _frames(feats, CLIP_TEXT_ROLE, entry, self.name)
        truncated = bool(column(out, CLIP_TEXT_COLUMNS, "truncated")[0])
        return out, _warn_truncated(entry, self.name, truncated)

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "model": self.options["model"],
            "image_backend": self.options["image_backend"],
        }
        for k in ("weights", "processor"):
            if self.options.get(k):
                opts[k] = str(self.options[k])
        return opts


class _ClipTextBase(_ClipBase):
    """CLIP metrics that read the prompt: they ask for the ``clip_text`` scorer (which reads the same
    ``clip`` image embeddings that ``cliptemp`` asks for, so one image forward pass serves all)."""

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(CLIP_TEXT_ROLE, "clip_text", self.sampler(), "generated")]


_CLIP_OPTIONS = {
    "model": "clip_vit_b32",
    "num_frames": DEFAULT_NUM_FRAMES,
    "image_backend": "pil",
    "processor": None,
}


@register_metric
class ClipSim(_ClipTextBase):
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
        scores, truncated = self._text_scores(feats, entry)
        out = clipsim_scores(column(scores, CLIP_TEXT_COLUMNS, "cosine"))
        out["prompt_truncated"] = truncated
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
class PickScore(_ClipTextBase):
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
        scores, truncated = self._text_scores(feats, entry)
        return {
            "pickscore": float(column(scores, CLIP_TEXT_COLUMNS, "scaled_cosine").mean()),
            "pickscore_cosine": float(column(scores, CLIP_TEXT_COLUMNS, "cosine").mean()),
            "prompt_truncated": truncated,
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
        sampler = frame_sampler(self.options.get("num_frames"))
        return [FeatureRequest(BLIP_TEXT_ROLE, "blip_text", sampler, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "head": "itm" if self.options.get("itm") else "itc",
            "image_backend": self.options["image_backend"],
        }
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return opts

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        scores = _frames(feats, BLIP_TEXT_ROLE, entry, self.name)
        out: dict[str, float] = {}
        if self.options.get("itm"):
            out["blip_itm_probability"] = float(column(scores, BLIP_TEXT_COLUMNS, "itm_probability").mean())
        out["blip_itc_cosine"] = float(column(scores, BLIP_TEXT_COLUMNS, "itc_cosine").mean())
        truncated = bool(column(scores, BLIP_TEXT_COLUMNS, "truncated")[0])
        out["prompt_truncated"] = _warn_truncated(entry, self.name, truncated)
        return out
