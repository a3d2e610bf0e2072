"""``blip``: per-frame BLIP image features for ``blipsim`` (``Salesforce/blip-itm-base-coco``).

BLIP scores an image-text pair two ways (transformers' ``BlipForImageTextRetrieval``):

- ITC (``use_itm_head=False``, the default and the original AIGVE BLIPSim): cosine of
  ``normalize(vision_proj(vision_tokens[:, 0]))`` and ``normalize(text_proj(text_encoder(ids)[:, 0]))``.
  The text side does not depend on the image, so the extractor returns the image half only:
  ``head="itc"`` -> ``[T, P]`` projected CLS features (float32, **not** normalised; P = 256).
- ITM (``use_itm_head=True``): the text encoder cross-attends to all vision tokens, then
  ``softmax(itm_head(cls))[:, 1]`` is the match probability. It needs every vision token per frame, so
  ``head="itm"`` returns the flattened last hidden state ``[T, N * D]`` (N = 577 tokens, D = 768 at 384 px:
  ~1.7 MB per frame in the feature cache); :meth:`BlipModel.itm_probability` reshapes it and runs the text
  encoder per frame and prompt. ITC can be computed from the same tokens (:meth:`BlipModel.project_cls`).

The prompt side is the ``blip_text`` scorer: it reads the ``blip`` extractor's features of the sampled frames
and the entry's prompt and gives per frame the ITC cosine and (``head="itm"``) the ITM probability, with the
same loaded model (the engine hands the scorer the built extractor).

Inputs follow transformers' processor exactly (the ids include ``[CLS]`` for ITM too, as in
``BlipForImageTextRetrieval``). Prompts longer than the text encoder's positions are truncated (flagged).
Weights: the ``blip_itm_base_coco`` registry entry's hub snapshot (see :mod:`aigve.backbones.clip`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Extractor, ScorerInput, SharedModelScorer
from aigve.backbones.clip import (
    HF_PROCESSOR_FILES,
    HF_WEIGHT_FILES,
    image_text_cosine,
    import_transformers,
    resolve_hf_dir,
)
from aigve.backbones.registry import register_extractor
from aigve.errors import UsageError, WeightsError

log = logging.getLogger(__name__)

EXTRACTOR_NAME = "blip"
WEIGHTS_NAME = "blip_itm_base_coco"
Head = Literal["itc", "itm"]
BLIP_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


class BlipModel:
    """A loaded ``BlipForImageTextRetrieval`` with its processor and a per-prompt ITC text cache."""

    def __init__(self, model: Any, processor: Any, device: torch.device) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.device = device
        self.max_length = int(model.config.text_config.max_position_embeddings)
        vc = model.config.vision_config
        self.num_tokens = (int(vc.image_size) // int(vc.patch_size)) ** 2 + 1
        self.hidden = int(vc.hidden_size)
        self._text_cache: dict[str, tuple[np.ndarray, bool]] = {}
        self._lock = threading.Lock()

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        return self.processor(images=list(frames), return_tensors="pt")["pixel_values"].to(self.device)

    @torch.inference_mode()
    def vision_tokens(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` -> ``[N, tokens, D]`` last hidden state of the vision model."""
        return self.model.vision_model(pixel_values=self._pixels(frames)).last_hidden_state

    @torch.inference_mode()
    def project_cls(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, tokens, D]`` -> ``[N, P]`` ``vision_proj`` of the CLS token (not normalised)."""
        return self.model.vision_proj(tokens[:, 0, :])

    def _tokenize(self, text: str) -> tuple[dict[str, torch.Tensor], bool]:
        n = len(self.tokenizer(text, truncation=False)["input_ids"])
        tok = self.tokenizer([text], truncation=True, max_length=self.max_length, return_tensors="pt")
        return {k: tok[k].to(self.device) for k in ("input_ids", "attention_mask")}, n > self.max_length

    @torch.inference_mode()
    def itc_text(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """Prompts -> (float32 ``[N, P]`` ``text_proj`` of the CLS state, not normalised; truncated flags)."""
        rows, flags = [], []
        for t in texts:
            with self._lock:
                hit = self._text_cache.get(t)
            if hit is None:
                tok, trunc = self._tokenize(t)
                h = self.model.text_encoder(**tok).last_hidden_state
                hit = (self.model.text_proj(h[:, 0, :])[0].float().cpu().numpy(), trunc)
                with self._lock:
                    self._text_cache[t] = hit
            rows.append(hit[0])
            flags.append(hit[1])
        return np.stack(rows), flags

    @torch.inference_mode()
    def itm_probability(
        self, flat_tokens: np.ndarray, text: str, batch_size: int = 32
    ) -> tuple[np.ndarray, bool]:
        """``[T, tokens * D]`` (the ``head="itm"`` features) and a prompt -> (``[T]`` match probability, truncated)."""
        tok, trunc = self._tokenize(text)
        emb = torch.from_numpy(np.ascontiguousarray(flat_tokens, dtype=np.float32))
        emb = emb.reshape(emb.shape[0], self.num_tokens, self.hidden)
        out = []
        for i in range(0, emb.shape[0], batch_size):
            e = emb[i : i + batch_size].to(self.device)
            n = e.shape[0]
            atts = torch.ones(e.shape[:-1], dtype=torch.long, device=self.device)
            h = self.model.text_encoder(
                input_ids=tok["input_ids"].expand(n, -1),
                attention_mask=tok["attention_mask"].expand(n, -1),
                encoder_hidden_states=e,
                encoder_attention_mask=atts,
            ).last_hidden_state
            logits = self.model.itm_head(h[:, 0, :])
            out.append(torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy())
        return np.concatenate(out).astype(np.float64), trunc


def load_blip_model(
    weights: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    image_backend: str = "pil",
) -> tuple[BlipModel, str | None, list[str]]:
    """Build BLIP ITM/ITC from local files only. Returns ``(model, weights_sha256, warnings)``."""
    from aigve.device import resolve_device

    tf = import_transformers()
    dev = resolve_device(device)
    groups = [("config.json",), HF_WEIGHT_FILES, HF_PROCESSOR_FILES, BLIP_TOKENIZER_FILES]
    rd = resolve_hf_dir(WEIGHTS_NAME, weights, groups, "blipsim")
    try:
        proc = tf.BlipProcessor.from_pretrained(str(rd.path), local_files_only=True, backend=image_backend)
        net = tf.BlipForImageTextRetrieval.from_pretrained(str(rd.path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise WeightsError(
            f"{rd.path}: cannot load BLIP with transformers ({type(e).__name__}: {e}); "
            f"check the directory or run `aigve weights fetch blipsim` again"
        ) from e
    return BlipModel(net.to(dev).eval(), proc, dev), rd.sha256, list(rd.warnings)


@register_extractor
class BlipExtractor(Extractor):
    """Per-frame BLIP image features: ``head="itc"`` -> ``[T, 256]``, ``head="itm"`` -> ``[T, N*D]``.

    Options: ``weights`` (snapshot directory), ``head`` (``"itc"`` default, ``"itm"``), ``image_backend``.
    """

    name: ClassVar[str] = EXTRACTOR_NAME
    input_side: ClassVar[int | None] = 384  # BLIP ViT-B at 384 px
    kind: ClassVar[Literal["frames"]] = "frames"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("weights", "head", "image_backend")
    extra: ClassVar[str | None] = "vlsim"

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        options.setdefault("head", "itc")
        if options["head"] not in ("itc", "itm"):
            raise UsageError(f"blip backbone: head must be 'itc' or 'itm', got '{options['head']}'")
        super().__init__(device, batch_size, **options)
        self.model: BlipModel | None = None

    def _load_network(self) -> tuple[BlipModel, str | None]:
        handle, sha, warnings = load_blip_model(
            self.options.get("weights"), self.device, self.options.get("image_backend", "pil")
        )
        for w in warnings:
            log.warning("%s", w)
        return handle, sha

    @property
    def handle(self) -> BlipModel:
        self.ensure_loaded()
        assert self.model is not None
        return self.model

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        h = self.handle
        itm = self.options["head"] == "itm"

        def run(chunk: np.ndarray) -> np.ndarray:
            tokens = h.vision_tokens(chunk)
            if itm:
                return tokens.reshape(tokens.shape[0], -1).float().cpu().numpy()
            return h.project_cls(tokens).float().cpu().numpy()

        return self.batched(np.asarray(frames), run)


BLIP_TEXT_COLUMNS = ("itc_cosine", "itm_probability", "truncated")


@register_extractor
class BlipTextScorer(SharedModelScorer):
    """Per frame ``[T, 3]`` float64: ``itc_cosine``, ``itm_probability`` (NaN unless ``head="itm"``) and
    ``truncated`` (1 when the prompt was cut to the text encoder's positions). Reads the ``blip`` extractor's
    features (same options): projected CLS features for ITC, every vision token for ITM (ITC is then
    projected from the CLS token, exactly as ``BlipForImageTextRetrieval`` does)."""

    name: ClassVar[str] = "blip_text"
    input_side: ClassVar[int | None] = 384  # reads frames through its BLIP extractor
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = "vlsim"
    texts: ClassVar[tuple[str, ...]] = ("prompt",)
    columns: ClassVar[tuple[str, ...]] = BLIP_TEXT_COLUMNS
    extractor_class: ClassVar[type[Extractor]] = BlipExtractor
    known_options: ClassVar[tuple[str, ...] | None] = BlipExtractor.known_options

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        super().__init__(device, batch_size, **options)
        BlipExtractor(device, batch_size, **options)  # validates the head (nothing is loaded)
        self.options.setdefault("head", "itc")

    @property
    def handle(self) -> BlipModel:
        return super().handle

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        m = self.handle
        itm = self.options["head"] == "itm"
        out = []
        for it in items:
            prompt = it.texts["prompt"]
            f = np.asarray(it.data)
            txt, trunc = m.itc_text([prompt])
            if itm:
                tokens = torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32))
                tokens = tokens.reshape(f.shape[0], m.num_tokens, m.hidden).to(m.device)
                img = m.project_cls(tokens).float().cpu().numpy()
                prob, _ = m.itm_probability(f, prompt)
            else:
                img, prob = f, np.full(f.shape[0], np.nan)
            cos = image_text_cosine(img, txt[0])
            out.append(
                np.stack([cos, np.asarray(prob, dtype=np.float64), np.full_like(cos, float(trunc[0]))], 1)
            )
        return out
