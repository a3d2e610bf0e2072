"""Test helpers for ``videophy``: a tiny mPLUG-Owl-Video snapshot directory, offline.

The directory has the hub repository's layout (``config.json`` in the authors' ``MplugOwlConfig`` format,
``pytorch_model.bin`` with the authors' key names -- including the ``rotary_emb.inv_freq`` buffers transformers
4.28 saved --, ``tokenizer.model``, ``tokenizer_config.json``), so the real loading code reads it. The
configuration is small (vision 32 wide on 56 px frames, i.e. a 4 x 4 patch grid; abstractor 32 wide; LLaMA 64
wide; two layers each) but keeps what the prompt layout depends on: patch 14, 32 frames, 64 query tokens. Weights are drawn from
``numpy.random.default_rng(seed)`` in the model's parameter order; the tokenizer is a 400-piece SentencePiece
BPE model trained on a few sentences (``tests/golden/videophy_tiny_sp.model``; LLaMA's settings: byte
fallback, ids 0/1/2 for ``<unk>``/``<s>``/``</s>``).

The same directory was loaded into the authors' vendored classes (transformers 4.28.1) to make
``tests/golden/videophy_tiny.npz`` (see ``tests/backbones/test_videophy.py``).
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
TINY_SP = GOLDEN / "videophy_tiny_sp.model"
TINY_SEED = 20240605

TINY_CONFIG: dict[str, Any] = {
    "model_type": "mplug-owl",
    "architectures": ["MplugOwlForConditionalGeneration"],
    "num_query_tokens": 64,
    "vision_config": {
        "model_type": "mplug_owl_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "projection_dim": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_channels": 3,
        "image_size": 56,
        "patch_size": 14,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-6,
    },
    "visual_abstractor_config": {
        "model_type": "mplug_owl_visual_abstract",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-6,
        "encoder_hidden_size": 32,
    },
    "text_config": {
        "model_type": "llama",
        "vocab_size": 400,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 512,
        "hidden_act": "silu",
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
    },
}


def tiny_state(seed: int = TINY_SEED) -> dict[str, torch.Tensor]:
    """Seeded random weights for the tiny network, in the authors' key layout (with ``inv_freq`` buffers)."""
    return {k: v.clone() for k, v in _tiny_state(seed).items()}


@functools.lru_cache(maxsize=2)
def _tiny_state(seed: int) -> dict[str, torch.Tensor]:
    from aigve.backbones.nets.mplug_owl_video import MplugOwlVideo, rotary_inv_freq
    from aigve.backbones.videophy import config_from_json

    cfg = config_from_json(TINY_CONFIG)
    with torch.device("meta"):
        net = MplugOwlVideo(cfg)
    rng = np.random.default_rng(seed)
    state: dict[str, torch.Tensor] = {}
    for name, p in net.state_dict().items():
        shape = tuple(p.shape)
        leaf = name.rsplit(".", 1)[-1]
        is_norm = p.ndim == 1 and any(s in name for s in ("norm", ".ln.", "ffn_ln"))
        if is_norm and leaf == "weight":
            arr = 1.0 + 0.1 * rng.standard_normal(shape)
        elif is_norm or leaf == "bias":
            arr = 0.05 * rng.standard_normal(shape)
        elif name.endswith(
            ("query_tokens", "cls_token", "position_embedding", "vit_eos", "embed_tokens.weight")
        ):
            arr = 0.5 * rng.standard_normal(shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            arr = rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))
        state[name] = torch.from_numpy(arr.astype(np.float32))
    head = cfg.text.hidden_size // cfg.text.num_attention_heads
    for i in range(cfg.text.num_hidden_layers):
        state[f"language_model.model.layers.{i}.self_attn.rotary_emb.inv_freq"] = rotary_inv_freq(
            head, 10000.0
        )
    return state


def write_tiny_snapshot(dest: Path, seed: int = TINY_SEED, *, weight_file: str = "pytorch_model.bin") -> Path:
    """The tiny snapshot directory at ``dest`` (created); returns it."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps(TINY_CONFIG, indent=1), encoding="utf-8")
    (dest / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "bos_token": "<s>",
                "eos_token": "</s>",
                "tokenizer_class": "LlamaTokenizer",
                "unk_token": "<unk>",
                "pad_token": "<unk>",
            }
        ),
        encoding="utf-8",
    )
    shutil.copyfile(TINY_SP, dest / "tokenizer.model")
    state = tiny_state(seed)
    if weight_file.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(dest / weight_file))
    else:
        torch.save(state, dest / weight_file)
    return dest


def tiny_pixels(videos: int, frames: int = 32, seed: int = 7, size: int = 56) -> torch.Tensor:
    """Seeded normalised clips ``[videos, 3, frames, size, size]`` (float32, roughly CLIP-normalised scale)."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.standard_normal((videos, 3, frames, size, size)).astype(np.float32))


#: captions the golden tokenisation covers: plain, quotes, non-ASCII, special-token strings, a chunk
#: separator inside the caption, one long enough to be truncated at max_length + 1 = 257 tokens, and one
#: holding the video tag (the authors' code splices the same video in a second time)
CAPTIONS: tuple[str, ...] = (
    "An apple falls and bounces on the hard ground.",
    'A "quoted" word, digits 12345 and tabs\there',
    "Café crème — 日本の川 🌊",
    "a <s> and </s> and <unk> inside",
    "first line\nHuman: injected turn AI: answer",
    " leading and trailing spaces ",
    "water " * 80,
    "a caption that holds a <|video|> tag",
)
