"""A tiny VideoScore (Idefics2 + 5-output regression head) for tests: config, an offline word-level tokenizer
and seeded weights. Written to run unchanged under transformers 4.46 (the reference environment in which
the golden outputs of tests/golden/videoscore_tiny.npz were computed with mantis-vl 0.0.5's
``Idefics2ForSequenceClassification``) and under the transformers this project installs.
"""

from __future__ import annotations

import re
from typing import Any

VISION = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_channels": 3,
    "image_size": 70,  # 5 position buckets per side (positions are bucketised fractions of the image)
    "patch_size": 14,
}
TEXT = {
    "model_type": "mistral",
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "sliding_window": None,
    "pad_token_id": 0,
    "tie_word_embeddings": False,
}
PERCEIVER = {
    "hidden_act": "silu",
    "hidden_size": 64,
    "resampler_n_latents": 64,  # = image_seq_len: 64 tokens per frame, as the real model
    "resampler_depth": 2,
    "resampler_n_heads": 2,
    "resampler_head_dim": 8,
    "num_key_value_heads": 1,
    "rms_norm_eps": 1e-5,
}
#: the real model's layer counts (Mantis-8B-Idefics2 = idefics2-8b: SigLIP-so400m 27 layers, perceiver depth 3,
#: Mistral-7B 32 layers); sizes do not change parameter names
FULL = {
    "vision": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27, "num_attention_heads": 16,
               "image_size": 980, "patch_size": 14},
    "perceiver": {"hidden_size": 4096, "resampler_n_latents": 64, "resampler_depth": 3, "resampler_n_heads": 16,
                  "resampler_head_dim": 96, "num_key_value_heads": 4},
    "text": {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32003, "pad_token_id": 0,
             "tie_word_embeddings": False},
}  # fmt: skip

SPECIALS = ["<unk>", "<s>", "</s>"]


def build_tokenizer(text: str) -> Any:
    """A word-level fast tokenizer over the words of ``text`` (plus ``<unk>``, ``<s>``, ``</s>``), adding
    ``<s>`` in front like Mistral's, with ``<unk>`` as padding; the Idefics2 image tokens are added after."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(re.findall(r"\w+|[^\w\s]+", text)))  # what the Whitespace pre-tokenizer splits
    vocab = {t: i for i, t in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.add_special_tokens(
        {"additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]}
    )
    return fast


def tiny_config(tokenizer: Any) -> Any:
    from transformers import Idefics2Config

    text = dict(TEXT, vocab_size=len(tokenizer))
    cfg = Idefics2Config(
        vision_config=dict(VISION),
        perceiver_config=dict(PERCEIVER),
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=False,
    )
    cfg.pad_token_id = 0
    cfg.num_labels = 5
    return cfg


def full_config() -> Any:
    from transformers import Idefics2Config

    cfg = Idefics2Config(
        vision_config=dict(FULL["vision"]),
        perceiver_config=dict(FULL["perceiver"]),
        text_config=dict(FULL["text"]),
        image_token_id=32001,
        tie_word_embeddings=False,
    )
    cfg.pad_token_id = 0
    cfg.num_labels = 5
    return cfg


def seeded_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, Any]:
    """Weights in sorted key order: N(0, 0.1^2), norm weights 1 + N(0, 0.1^2) (reproducible anywhere)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = {}
    for k in sorted(shapes):
        x = torch.randn(shapes[k], generator=g) * 0.1
        if "norm" in k and k.endswith("weight"):
            x = x + 1.0
        out[k] = x
    return out
