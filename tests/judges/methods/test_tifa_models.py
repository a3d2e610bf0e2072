"""TIFA's local models: UnifiedQA (upstream ``tifascore/unifiedqa.py`` @ 8e37050f44ab4ee681e4251f3c8a9d4cc86e901e)
on a tiny seeded T5 compared with transformers' generate directly, and the default sentence encoder."""

from __future__ import annotations

import pytest
import torch

from aigve.judges.methods import tifa


def tiny_t5() -> tuple[object, object]:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    words = [
        "<pad>",
        "</s>",
        "<unk>",
        "(",
        ")",
        "a",
        "b",
        "c",
        "d",
        "is",
        "there",
        "an",
        "apple",
        "red",
        "table",
        "what",
        "color",
        "yes",
        "no",
        "\\n",
    ]
    vocab = {w: i for i, w in enumerate(words)}
    for i in range(40):
        vocab[f"w{i}"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    config = T5Config(
        vocab_size=len(vocab),
        d_model=16,
        d_ff=32,
        d_kv=8,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config).eval()
    return model, tokenizer


def direct(model: object, tokenizer: object, text: str) -> str:
    ids = tokenizer.encode(text, return_tensors="pt")  # type: ignore[attr-defined]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=30, do_sample=False, num_beams=1)  # type: ignore[attr-defined]
    return tokenizer.batch_decode(out, skip_special_tokens=True)[0]  # type: ignore[attr-defined]


def test_unifiedqa_equals_transformers_generate() -> None:
    model, tokenizer = tiny_t5()
    qa = tifa.UnifiedQA(model, tokenizer)
    q, ctx = "what color is the apple", "a red apple"
    mc_text = f"{q} \n {ctx} \n (A) red (B) table (C) yes (D) no "
    assert tifa.mc_choice_text(["red", "table", "yes", "no", "extra"]) == "(A) red (B) table (C) yes (D) no "
    assert qa.mcqa(q, ctx, ["red", "table", "yes", "no", "extra"]) == direct(model, tokenizer, mc_text)
    raw = direct(model, tokenizer, f"{q} \n {ctx}")
    assert raw.strip(), "tiny model should produce some tokens"
    expected = "".join(c for c in raw if c.isalnum() or c.isspace()).strip().lower()
    assert qa.qa(q, ctx) == expected
    assert qa.qa(q, ctx) == qa.qa(q, ctx)  # deterministic


@pytest.mark.slow
def test_default_embedder_maps_like_upstream_example() -> None:
    # upstream mc_sbert.py's own example: "pale green" among black/green/yellow/brown -> green
    mc, how = tifa.map_to_choice("pale green", ["black", "green", "yellow", "brown"], tifa.default_embedder())
    assert (mc, how) == ("green", "embedding")
    vec = tifa.default_embedder()(["a", "b"])
    assert vec.shape == (2, 384)
