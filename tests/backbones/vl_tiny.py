"""Test helpers: tiny random CLIP / PickScore / BLIP / OpenCLIP models saved to local directories, offline.

Each builder makes the real architecture class (transformers ``CLIPModel`` / ``BlipForImageTextRetrieval``,
an OpenCLIP ``CLIP``) from a small configuration with seeded random weights, and saves it with a processor
that is built locally (byte-level BPE vocabulary for CLIP, a small WordPiece vocabulary for BLIP), in the
same layout as a hub snapshot. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

SPECIAL_WORDS = ("a", "cat", "dog", "the", "on", "red", "car", "sat", "mat", "video", "of")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode map (so every byte has a vocabulary symbol)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def clip_tokenizer() -> Any:
    """A CLIP BPE tokenizer over all 256 byte symbols plus a few merges (any text, no unknown tokens)."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    merges = [("c", "a"), ("ca", "t</w>"), ("t", "h"), ("th", "e</w>"), ("o", "n</w>")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges)


def _clip_config(
    vocab_size: int, bos: int, eos: int, max_pos: int, image_size: int, logit_scale: float
) -> Any:
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": max_pos,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
        logit_scale_init_value=logit_scale,
    )


def make_tiny_clip(
    root: Path,
    seed: int = 0,
    *,
    image_size: int = 32,
    max_pos: int = 77,
    logit_scale: float = 2.6592,
    with_processor: bool = True,
) -> Path:
    """Save a tiny random ``CLIPModel`` (+ ``CLIPProcessor`` unless ``with_processor=False``) into ``root``."""
    from transformers import CLIPModel

    tok = clip_tokenizer()
    cfg = _clip_config(len(tok), tok.bos_token_id, tok.eos_token_id, max_pos, image_size, logit_scale)
    torch.manual_seed(seed)
    model = CLIPModel(cfg).eval()
    root.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(root)
    if with_processor:
        make_clip_processor(root, image_size)
    return root


def make_clip_processor(root: Path, image_size: int = 32) -> Path:
    """Save a CLIP processor (shorter side -> ``image_size`` bicubic, centre crop, CLIP mean/std)."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    ip = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    root.mkdir(parents=True, exist_ok=True)
    CLIPProcessor(image_processor=ip, tokenizer=clip_tokenizer()).save_pretrained(root)
    return root


def make_tiny_blip(root: Path, seed: int = 0, *, image_size: int = 32, max_pos: int = 40) -> Path:
    """Save a tiny random ``BlipForImageTextRetrieval`` with a ``BlipProcessor`` into ``root``."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForImageTextRetrieval,
        BlipImageProcessor,
        BlipProcessor,
    )

    vocab: dict[str, int] = {}
    for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *SPECIAL_WORDS, ",", ".", "!", "猫", "ß"):
        vocab.setdefault(t, len(vocab))
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault("##" + c, len(vocab))
    tok = BertTokenizer(vocab=vocab)
    cfg = BlipConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "encoder_hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": max_pos,
            "pad_token_id": vocab["[PAD]"],
            "bos_token_id": vocab["[CLS]"],
            "sep_token_id": vocab["[SEP]"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
        image_text_hidden_size=16,
    )
    torch.manual_seed(seed)
    model = BlipForImageTextRetrieval(cfg).eval()
    root.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(root)
    ip = BlipImageProcessor(size={"height": image_size, "width": image_size})
    BlipProcessor(image_processor=ip, tokenizer=tok).save_pretrained(root)
    return root


OPEN_CLIP_TINY = {
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    },
}


def make_tiny_open_clip(root: Path, seed: int = 0) -> Path:
    """Save a tiny random OpenCLIP model in OpenCLIP's ``local-dir:`` layout (config + checkpoint)."""
    import open_clip

    root.mkdir(parents=True, exist_ok=True)
    (root / "open_clip_config.json").write_text(json.dumps(OPEN_CLIP_TINY), encoding="utf-8")
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{root}", load_weights=False)
    torch.save(model.state_dict(), root / "open_clip_pytorch_model.bin")
    return root


def random_frames(n: int, seed: int, h: int = 40, w: int = 56) -> np.ndarray:
    """Smooth-ish random uint8 ``[n, h, w, 3]`` frames (low-res noise upsampled)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    big = np.repeat(np.repeat(small, 8, axis=1), 8, axis=2)[:, :h, :w]
    noise = rng.normal(0, 12, size=big.shape)
    return np.clip(big + noise, 0, 255).astype(np.uint8)
