"""A judge in this process: Qwen2-VL or Qwen2.5-VL with transformers, on ``--device``.

- The model: a weights-registry name (``qwen2_vl_2b_instruct``, ``qwen2_vl_7b_instruct``,
  ``qwen2_5_vl_3b_instruct``, ``qwen2_5_vl_7b_instruct``: a hub repository folder, found in
  ``$AIGVE_WEIGHTS_DIR`` or the cache, never downloaded silently; missing -> ``WeightsError`` with the fix) or a
  directory in the ``save_pretrained`` layout. The architecture comes from its ``config.json``
  (``model_type`` ``qwen2_vl`` -> ``Qwen2VLForConditionalGeneration``, ``qwen2_5_vl`` ->
  ``Qwen2_5_VLForConditionalGeneration``), the processor from ``AutoProcessor``.
- A question is one user turn, the images first then the text, formatted by the processor's chat template
  with the generation prompt; batches are left-padded, so the last position of every row is where the
  answer starts.
- ``yes_probability``: softmax over the whole vocabulary of the logits at that position, at the id of the
  token ``Yes`` (t2v_metrics' Qwen2-VL VQAScore: the first generated token's distribution under greedy
  decoding); up to ``batch_size`` questions per forward pass.
- Precision: the checkpoint's own (``dtype="auto"``, bfloat16 for the Qwen releases) on a GPU, float32 on the
  CPU; log-probabilities are computed in float32 either way.
- ``ask``: greedy decoding (``do_sample=False``), ``max_tokens`` new tokens (512 by default).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigve.device import resolve_device
from aigve.errors import MissingDependencyError, UsageError, WeightsError
from aigve.judges.base import CachedJudge
from aigve.judges.cache import ResponseCache
from aigve.judges.protocol import JudgeError

log = logging.getLogger(__name__)

__all__ = ["LOCAL_MODELS", "LocalJudge"]

#: registry names of the local judges (hub repository folders)
LOCAL_MODELS = (
    "qwen2_vl_2b_instruct",
    "qwen2_vl_7b_instruct",
    "qwen2_5_vl_3b_instruct",
    "qwen2_5_vl_7b_instruct",
)
DEFAULT_MAX_NEW_TOKENS = 512
TOP_K = 20


def _model_class(model_type: str) -> Any:
    import transformers

    classes = {
        "qwen2_vl": "Qwen2VLForConditionalGeneration",
        "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    }
    if model_type not in classes:
        raise UsageError(
            f"the local judge runs Qwen2-VL and Qwen2.5-VL models (model_type qwen2_vl, qwen2_5_vl); this model's "
            f"config.json says '{model_type}'"
        )
    return getattr(transformers, classes[model_type])


def resolve_model_dir(model: str) -> tuple[Path, str, str | None]:
    """(directory, name for the provenance, sha256 of the weights or tree) of a registry name or directory."""
    # digests cached by path, size and mtime: a 15 GB model is hashed once, not on every run
    from aigve.weights import cached_sha256

    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WeightsError(
                f"{path}: not a model directory (no config.json); give a save_pretrained folder"
            )
        weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
        if not weights:
            raise WeightsError(f"{path}: no *.safetensors (or *.bin) weights in the model directory")
        if len(weights) == 1:
            sha = cached_sha256(weights[0])
        else:
            import hashlib

            h = hashlib.sha256()
            for w in weights:
                h.update(f"{w.name}:{cached_sha256(w)}\n".encode())
            sha = h.hexdigest()
        return path, path.name, sha
    from aigve.weights import resolve_weights
    from aigve.weights.spec import weight_names

    if model not in weight_names():
        raise UsageError(
            f"--judge-model {model}: neither a directory nor a known local judge; use one of {', '.join(LOCAL_MODELS)} "
            "or a directory with a Qwen2-VL / Qwen2.5-VL model (save_pretrained layout)"
        )
    resolved = resolve_weights(model, download=False)
    return Path(resolved.path), model, resolved.sha256


class LocalJudge(CachedJudge):
    """A Qwen2-VL / Qwen2.5-VL judge in this process (see the module docstring)."""

    kind = "local"

    def __init__(
        self,
        model: str,
        *,
        device: Any = "cpu",
        batch_size: int = 8,
        seed: int = 0,
        cache: ResponseCache | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    ) -> None:
        super().__init__(cache, seed)
        try:
            from transformers import AutoProcessor
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingDependencyError("the local judge", "judges", "transformers") from exc
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.concurrency = 1  # one forward pass at a time; batching is inside
        self.path, self.model_name, self.weights_sha = resolve_model_dir(model)
        model_type = json.loads((self.path / "config.json").read_text(encoding="utf-8")).get("model_type", "")
        cls = _model_class(model_type)
        self.processor = AutoProcessor.from_pretrained(self.path)
        self.processor.tokenizer.padding_side = "left"
        # the checkpoint's own precision (bfloat16 for the Qwen releases) on a GPU, float32 on the CPU
        dtype = "auto" if self.device.type == "cuda" else torch.float32
        self.model = cls.from_pretrained(self.path, dtype=dtype).to(self.device).eval()
        ids = self.processor.tokenizer.encode("Yes", add_special_tokens=False)
        if len(ids) != 1:
            raise WeightsError(
                f"{self.path}: the tokenizer splits 'Yes' into {len(ids)} tokens; VQAScore needs one"
            )
        self.yes_id = int(ids[0])
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.kind,
            "model": self.model_name,
            "host": "local",
            "weights_sha256": self.weights_sha,
        }

    # -- inputs --------------------------------------------------------------------------------
    def _batch(self, items: Sequence[tuple[str, Sequence[np.ndarray]]], system: str | None = None) -> Any:
        from PIL import Image

        texts: list[str] = []
        images: list[Any] = []
        for text, ims in items:
            content: list[dict[str, Any]] = [{"type": "image"} for _ in ims]
            content.append({"type": "text", "text": text})
            msgs: list[dict[str, Any]] = []
            if system:
                msgs.append({"role": "system", "content": [{"type": "text", "text": system}]})
            msgs.append({"role": "user", "content": content})
            texts.append(self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False))
            images.extend(Image.fromarray(np.ascontiguousarray(im), mode="RGB") for im in ims)
        inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        return inputs.to(self.device)

    # -- backend -------------------------------------------------------------------------------
    @torch.inference_mode()
    def _first_token_many(
        self, items: Sequence[tuple[str, Sequence[np.ndarray]]]
    ) -> list[tuple[float | None, dict[str, float], int, int]]:
        out: list[tuple[float | None, dict[str, float], int, int]] = []
        tok = self.processor.tokenizer
        for i in range(0, len(items), self.batch_size):
            chunk = items[i : i + self.batch_size]
            with self._lock:
                inputs = self._batch(chunk)
                logits = self.model(**inputs).logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            top = torch.topk(logp, k=min(TOP_K, logp.shape[-1]), dim=-1)
            n_in = inputs["attention_mask"].sum(dim=1).tolist()
            for row in range(len(chunk)):
                alts: dict[str, float] = {}
                for lp, tid in zip(top.values[row].tolist(), top.indices[row].tolist(), strict=True):
                    alts.setdefault(tok.decode([tid]), float(lp))
                p_yes = float(logp[row, self.yes_id].exp())
                out.append((p_yes, alts, int(n_in[row]), 1))
        return out

    def _first_token(
        self, text: str, images: Sequence[np.ndarray]
    ) -> tuple[float | None, dict[str, float], int, int]:
        return self._first_token_many([(text, images)])[0]

    @torch.inference_mode()
    def _generate(
        self,
        text: str,
        images: Sequence[np.ndarray],
        system: str | None,
        json_mode: bool,
        max_tokens: int | None,
    ) -> tuple[str, int, int]:
        with self._lock:
            inputs = self._batch([(text, images)], system)
            n_in = int(inputs["input_ids"].shape[1])
            try:
                gen = self.model.generate(
                    **inputs, max_new_tokens=int(max_tokens or self.max_new_tokens), do_sample=False
                )
            except RuntimeError as exc:  # e.g. out of memory: this question's error, not the run's
                raise JudgeError(f"the local judge failed: {exc}", reason="local_error") from None
        new = gen[0, n_in:]
        reply = self.processor.tokenizer.decode(new, skip_special_tokens=True)
        return str(reply), n_in, int(new.shape[0])
