"""A tiny Qwen2-VL / Qwen2.5-VL with seeded random weights and an offline tokenizer, saved in the
``save_pretrained`` layout (what the local judge loads from a directory).

The tokenizer is a byte-level BPE built here (the 256 byte symbols, a few merges so that ``Yes``/``No`` are
single tokens, and the Qwen chat and vision special tokens); the chat template writes the Qwen2-VL chat
format (``<|im_start|>user\\n<|vision_start|><|image_pad|><|vision_end|>question<|im_end|>\\n<|im_start|>
assistant\\n``). The image processor is Qwen2-VL's with default settings and a small pixel budget.
"""

from __future__ import annotations

from pathlib import Path

import torch

SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
WORDS = ["Yes", "No", "yes", "no", "Does", "this", "figure", "show", "Please", "answer", "or", "cat", "dog"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes (byte-level BPE's base alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return [chr(c) for c in chars]


def build_tokenizer(out: Path) -> None:
    """tokenizer.json + tokenizer_config.json of a tiny byte-level BPE with Qwen's specials."""
    from transformers import Qwen2Tokenizer

    vocab: dict[str, int] = {}
    for s in _byte_symbols():
        vocab.setdefault(s, len(vocab))
    merges: list[tuple[str, str]] = []
    for w in WORDS:
        cur = w[0]
        for ch in w[1:]:
            merges.append((cur, ch))
            cur = cur + ch
            vocab.setdefault(cur, len(vocab))
    out.mkdir(parents=True, exist_ok=True)
    uniq = list(dict.fromkeys(merges))
    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=uniq,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    tok.save_pretrained(out)


def build_tiny_qwen(out: Path, *, family: str = "qwen2_vl", seed: int = 0) -> Path:
    """Save a tiny ``family`` model ("qwen2_vl" or "qwen2_5_vl"), its tokenizer and processor in ``out``."""
    from transformers import AutoTokenizer, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    out = Path(out)
    build_tokenizer(out)
    tok = AutoTokenizer.from_pretrained(out)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    vocab_size = len(tok)
    text = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "initializer_range": 0.3,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    common = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": False,
    }
    torch.manual_seed(seed)
    if family == "qwen2_vl":
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

        vision = {"depth": 2, "embed_dim": 32, "hidden_size": 32, "num_heads": 4, "mlp_ratio": 2}
        config = Qwen2VLConfig(text_config=text, vision_config=vision, **common)
        model = Qwen2VLForConditionalGeneration(config)
        proc_cls = Qwen2VLProcessor
    elif family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

        vision = {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 4,
            "out_hidden_size": 32,
            "fullatt_block_indexes": [1],
            "window_size": 56,
        }
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)  # type: ignore[assignment]
        model = Qwen2_5_VLForConditionalGeneration(config)  # type: ignore[assignment]
        proc_cls = Qwen2_5_VLProcessor  # type: ignore[assignment]
    else:
        raise ValueError(family)
    model.eval()
    model.save_pretrained(out)
    pixels = {"min_pixels": 28 * 28, "max_pixels": 56 * 56}
    processor = proc_cls(
        image_processor=Qwen2VLImageProcessor(**pixels),
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    return out
