"""VideoScore's regression model: transformers' ``Idefics2Model`` plus a 5-output linear head with bias.

Ported from mantis-vl's ``Idefics2ForSequenceClassification`` (TIGER-AI-Lab/Mantis
``mantis/models/idefics2/modeling_idefics2.py``, last changed in commit 0e8a81cc; the PyPI release
``mantis-vl==0.0.5`` that VideoScore's examples import). What it computes:

- ``self.model``: an Idefics2 model (SigLIP vision tower, perceiver connector, Mistral decoder). Mantis
  vendors a copy of transformers' class; transformers' own ``Idefics2Model`` has the same parameter names
  and, for one video at a time (all frames of a video have the same size, so no image padding), the same
  function: mantis' patch mask ``sum > 0`` and transformers' ``sum == patch_size**2`` differ only on padded
  images, and mantis' eval-mode chunking of the vision tower (2 images at a time) does not change results.
- ``self.score = nn.Linear(text hidden size, 5)`` *with* bias (transformers' own ``*ForSequenceClassification``
  heads have none), applied to the decoder's last hidden states;
- pooling: the row of the last non-pad token, found as mantis does: ``(argmax(input_ids == pad_token_id) - 1)
  mod L`` when the config has a ``pad_token_id`` (for an unpadded sequence without pad tokens: the last
  token), else the last position;
- the outputs are the raw head values (regression; no sigmoid, no rescaling).

State-dict keys: ``model.vision_model.*``, ``model.connector.*``, ``model.text_model.*``, ``score.weight``,
``score.bias`` — those of the released checkpoints, loaded strictly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

NUM_ASPECTS = 5


def _pretrained_base() -> type:
    from transformers.models.idefics2.modeling_idefics2 import Idefics2PreTrainedModel

    return Idefics2PreTrainedModel


def pooled_index(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """Per row, the position mantis' ``Idefics2ForSequenceClassification`` reads its logits from."""
    length = input_ids.shape[-1]
    if pad_token_id is None:
        return torch.full((input_ids.shape[0],), length - 1, dtype=torch.long, device=input_ids.device)
    first_pad = torch.eq(input_ids, pad_token_id).int().argmax(-1)
    return (first_pad - 1) % length


def build_videoscore_class() -> Any:
    """The network class (built lazily: transformers is imported only when a model is made)."""
    base = _pretrained_base()
    from transformers import Idefics2Model

    class VideoScoreRegression(base):  # type: ignore[misc, valid-type]
        """Idefics2 + ``score`` head; ``forward(**processor output)`` -> ``[B, 5]`` raw aspect scores."""

        _no_split_modules = ["Idefics2EncoderLayer", "MistralDecoderLayer", "Idefics2PerceiverLayer"]

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.num_labels = int(getattr(config, "num_labels", NUM_ASPECTS))
            self.model = Idefics2Model(config)
            self.score = nn.Linear(config.text_config.hidden_size, self.num_labels, bias=True)
            self.post_init()

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor | None = None,
            pixel_values: torch.Tensor | None = None,
            pixel_attention_mask: torch.Tensor | None = None,
        ) -> torch.Tensor:
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                pixel_values=pixel_values,
                pixel_attention_mask=pixel_attention_mask,
                use_cache=False,
            )
            hidden = out.last_hidden_state
            idx = pooled_index(input_ids, getattr(self.config, "pad_token_id", None)).to(hidden.device)
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            return self.score(hidden[rows, idx])

    return VideoScoreRegression


_CLASS: Any = None


def videoscore_class() -> Any:
    global _CLASS
    if _CLASS is None:
        _CLASS = build_videoscore_class()
    return _CLASS
