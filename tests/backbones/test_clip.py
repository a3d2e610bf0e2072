"""``clip`` backbone and the CLIP-family scores against their reference computations (random weights, offline).

All checks here run with *random* weights: tiny models of the real architectures (transformers ``CLIPModel``,
OpenCLIP ``CLIP``) built from small configurations, saved to a local directory and loaded through our loader.
The real checkpoints cannot be downloaded in CI.

References and tolerances:
- image embeddings: transformers' ``CLIPModel.get_image_features`` on the saved ``CLIPProcessor``'s pixels,
  1e-5 absolute;
- ``clipsim``: torchmetrics' ``CLIPScore`` (per frame: 100 * max(cos, 0); per video: torchmetrics clamps the
  mean, = 100 * max(mean cos, 0)), 1e-5 relative on the 0-100 scale and 1e-5 absolute on the cosine.
  torchmetrics 1.9 calls ``get_image_features`` expecting a tensor (transformers 4 API); under transformers 5 the
  model is wrapped so those two calls return ``.pooler_output`` — torchmetrics' preprocessing, normalisation
  and scoring are untouched;
- ``pickscore``: the PickScore model card's formula (processor with truncation to 77 tokens, normalised
  embeddings, ``logit_scale.exp() * text @ image.T``), 1e-5 relative;
- OpenCLIP: ``open_clip.create_model_and_transforms`` + ``get_tokenizer`` + ``encode_image/encode_text``, 1e-5.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from aigve.backbones.clip import ClipExtractor, hf_snapshot_dir, image_text_cosine, model_spec  # noqa: E402
from aigve.errors import UsageError, WeightsError  # noqa: E402
from aigve.metrics.vl_similarity import ClipSim, PickScore  # noqa: E402
from aigve.types import Entry  # noqa: E402
from aigve.weights import get_weight_spec  # noqa: E402
from tests.backbones.staged import build_scorer, staged_score  # noqa: E402
from tests.backbones.vl_tiny import (  # noqa: E402
    make_clip_processor,
    make_tiny_clip,
    make_tiny_open_clip,
    random_frames,
)

PROMPT = "a red car on the mat"
LONG_PROMPT = " ".join(["the cat sat on the red mat"] * 30)  # ~210 tokens > 77
UNICODE_PROMPT = "Größe: ein 猫 auf der Matte — ça va? 🚗"


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip", seed=0)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return random_frames(5, seed=1)


@pytest.fixture(scope="module")
def ext(clip_dir: Path) -> ClipExtractor:
    """The extractor the metrics below use (same options -> the same loaded model)."""
    e = ClipExtractor(**ClipSim(weights=str(clip_dir)).extractor_options())
    e.ensure_loaded()
    return e


@pytest.fixture(scope="module")
def reference(clip_dir: Path) -> tuple[object, object]:
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(str(clip_dir), local_files_only=True).eval()
    proc = CLIPProcessor.from_pretrained(str(clip_dir), local_files_only=True, backend="pil")
    return model, proc


def _pooled(x: object) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else x.pooler_output  # type: ignore[attr-defined]


class _TensorFeatures(torch.nn.Module):
    """transformers-4 style ``get_*_features`` (tensors) around a transformers-5 ``CLIPModel``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config

    def get_image_features(self, *args: object, **kwargs: object) -> torch.Tensor:
        return _pooled(self.inner.get_image_features(*args, **kwargs))

    def get_text_features(self, *args: object, **kwargs: object) -> torch.Tensor:
        return _pooled(self.inner.get_text_features(*args, **kwargs))


def _torchmetrics_clipscore(model: object, proc: object, images: np.ndarray, text: str) -> float:
    from torchmetrics.multimodal.clip_score import CLIPScore

    wrapped = _TensorFeatures(model)  # type: ignore[arg-type]
    metric = CLIPScore(model_name_or_path=lambda: (wrapped, proc))
    with torch.inference_mode():
        metric.update([torch.from_numpy(f).permute(2, 0, 1) for f in images], [text] * len(images))
        return float(metric.compute())


def _entry(prompt: str | None = PROMPT) -> Entry:
    return Entry(id="v0", generated=Path("v0.mp4"), prompt=prompt)


# -- image embeddings -----------------------------------------------------------------------------------
def test_image_embeddings_match_transformers(
    ext: ClipExtractor, frames: np.ndarray, reference: tuple
) -> None:
    model, proc = reference
    ours = ext.extract(frames)
    with torch.inference_mode():
        pix = proc(images=list(frames), return_tensors="pt")["pixel_values"]
        ref = _pooled(model.get_image_features(pixel_values=pix)).numpy()
    assert ours.shape == (len(frames), 16) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    ident = ext.identity()
    assert ident["extractor"] == "clip" and ident["options"]["model"] == "clip_vit_b32"
    assert isinstance(ident["weights_sha256"], str) and len(ident["weights_sha256"]) == 64


def test_batch_size_independence_and_determinism(
    clip_dir: Path, ext: ClipExtractor, frames: np.ndarray
) -> None:
    out = {}
    for bs in (1, 2, 32):
        ext.batch_size = bs
        out[bs] = ext.extract(frames)
    np.testing.assert_allclose(out[1], out[2], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out[1], out[32], atol=1e-5, rtol=0)
    fresh = ClipExtractor(weights=str(clip_dir), batch_size=32)  # a second load of the same files
    np.testing.assert_array_equal(out[32], fresh.extract(frames))


# -- clipsim vs torchmetrics ----------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", [PROMPT, UNICODE_PROMPT])
def test_clipsim_matches_torchmetrics(
    clip_dir: Path, frames: np.ndarray, reference: tuple, prompt: str
) -> None:
    model, proc = reference
    metric = ClipSim(weights=str(clip_dir))
    feats = ClipExtractor(**metric.extractor_options()).extract(frames)
    out = staged_score(metric, _entry(prompt), feats)
    per_frame = [_torchmetrics_clipscore(model, proc, frames[i : i + 1], prompt) for i in range(len(frames))]
    # Hessel's per-image clamp, averaged over frames
    assert out["clipscore"] == pytest.approx(float(np.mean(per_frame)), rel=1e-5, abs=1e-5)
    # torchmetrics over the whole video clamps the mean: 100 * max(mean cos, 0)
    whole = _torchmetrics_clipscore(model, proc, frames, prompt)
    assert 100 * max(out["clip_cosine"], 0.0) == pytest.approx(whole, rel=1e-5, abs=1e-5)
    if whole > 0:
        assert out["clip_cosine"] == pytest.approx(whole / 100, abs=1e-5)
    assert out["prompt_truncated"] == 0.0
    assert -1 <= out["clip_cosine"] <= 1 and 0 <= out["clipscore"] <= 100


def test_clipsim_frames_with_negative_cosine_use_the_per_frame_clamp(clip_dir: Path) -> None:
    """A frame set mixing signs: clipscore = mean(100 max(cos, 0)) != 100 max(mean cos, 0)."""
    metric = ClipSim(weights=str(clip_dir))
    txt = build_scorer(metric).handle.encode_text([PROMPT])[0][0]
    img = np.stack([txt, -txt, 0.5 * txt]).astype(np.float32)  # cos = 1, -1, 1
    out = staged_score(metric, _entry(), img)
    assert out["clip_cosine"] == pytest.approx(1 / 3, abs=1e-6)
    assert out["clipscore"] == pytest.approx(200 / 3, abs=1e-4)


def test_long_prompt_is_truncated_with_a_flag(clip_dir: Path, frames: np.ndarray, reference: tuple) -> None:
    model, proc = reference
    metric = ClipSim(weights=str(clip_dir))
    img = ClipExtractor(**metric.extractor_options()).extract(frames)
    out = staged_score(metric, _entry(LONG_PROMPT), img)
    assert out["prompt_truncated"] == 1.0
    tok = proc.tokenizer([LONG_PROMPT], truncation=True, max_length=77, return_tensors="pt")
    assert tok["input_ids"].shape[1] == 77 and int(tok["input_ids"][0, -1]) == proc.tokenizer.eos_token_id
    with torch.inference_mode():
        t = _pooled(model.get_text_features(**tok))[0].numpy()
    assert out["clip_cosine"] == pytest.approx(float(image_text_cosine(img, t).mean()), abs=1e-5)
    # a prompt of exactly the context length is not flagged
    short = build_scorer(metric).handle
    n = len(proc.tokenizer(PROMPT)["input_ids"])
    assert not short.encode_text([PROMPT])[1][0] and n < 77


def test_each_prompt_is_encoded_once(clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = build_scorer(ClipSim(weights=str(clip_dir))).handle
    calls: list[str] = []
    real = m._encode_one
    monkeypatch.setattr(m, "_encode_one", lambda t: calls.append(t) or real(t))
    prompt = "a prompt seen for the first time"
    for _ in range(3):
        m.encode_text([prompt])
    assert calls == [prompt]


def test_clipsim_reads_the_clip_text_scorer_on_the_clip_features(clip_dir: Path) -> None:
    """clipsim and pickscore ask for the clip_text scorer, whose upstream is the clip extractor with the same
    options cliptemp asks for: one image forward pass serves all three (the engine shares equal keys)."""
    from aigve.metrics.vl_similarity import ClipTemp

    (sim,) = ClipSim(weights=str(clip_dir)).effective_requests()
    (temp,) = ClipTemp(weights=str(clip_dir)).effective_requests()
    scorer = build_scorer(ClipSim(weights=str(clip_dir)))
    up_name, up_opts = scorer.upstream()
    assert sim.extractor == "clip_text" and temp.extractor == "clip" == up_name
    assert tuple(sorted(up_opts.items())) == temp.options


# -- pickscore vs the model card ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pickscore_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pick")
    model_dir = make_tiny_clip(root / "PickScore_v1", seed=5, logit_scale=3.2, with_processor=False)
    proc_dir = make_clip_processor(root / "CLIP-ViT-H-14-processor")
    return model_dir, proc_dir


@pytest.mark.parametrize("prompt", [PROMPT, LONG_PROMPT])
def test_pickscore_matches_model_card(
    pickscore_dirs: tuple[Path, Path], frames: np.ndarray, prompt: str
) -> None:
    from transformers import AutoModel, AutoProcessor

    model_dir, proc_dir = pickscore_dirs
    metric = PickScore(weights=str(model_dir), processor=str(proc_dir))
    img = ClipExtractor(**metric.extractor_options()).extract(frames)
    out = staged_score(metric, _entry(prompt), img)

    processor = AutoProcessor.from_pretrained(str(proc_dir), local_files_only=True, backend="pil")
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    with torch.inference_mode():
        image_inputs = processor(
            images=list(frames), padding=True, truncation=True, max_length=77, return_tensors="pt"
        )
        text_inputs = processor(
            text=prompt, padding=True, truncation=True, max_length=77, return_tensors="pt"
        )
        image_embs = _pooled(model.get_image_features(**image_inputs))
        image_embs = image_embs / torch.norm(image_embs, dim=-1, keepdim=True)
        text_embs = _pooled(model.get_text_features(**text_inputs))
        text_embs = text_embs / torch.norm(text_embs, dim=-1, keepdim=True)
        scores = model.logit_scale.exp() * (text_embs @ image_embs.T)[0]
        cos = (text_embs @ image_embs.T)[0]
    assert float(model.logit_scale.detach().exp()) == pytest.approx(np.exp(3.2), rel=1e-6)
    assert out["pickscore"] == pytest.approx(float(scores.mean()), rel=1e-5, abs=1e-5)
    assert out["pickscore_cosine"] == pytest.approx(float(cos.mean()), abs=1e-5)
    assert out["prompt_truncated"] == (1.0 if prompt == LONG_PROMPT else 0.0)


# -- OpenCLIP ---------------------------------------------------------------------------------------------
def test_open_clip_model_matches_open_clip(tmp_path: Path, frames: np.ndarray) -> None:
    open_clip = pytest.importorskip("open_clip")
    from PIL import Image

    d = make_tiny_open_clip(tmp_path / "oc", seed=3)
    metric = ClipSim(model="open_clip:tiny", weights=str(d))
    ext = ClipExtractor(**metric.extractor_options())
    img = ext.extract(frames)
    out = staged_score(metric, _entry(UNICODE_PROMPT), img)

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{d}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{d}")
    model.eval()
    with torch.inference_mode():
        ref_img = model.encode_image(torch.stack([preprocess(Image.fromarray(f)) for f in frames]))
        ref_txt = model.encode_text(tokenizer([UNICODE_PROMPT]))
    np.testing.assert_allclose(img, ref_img.numpy(), atol=1e-5, rtol=0)
    ri = ref_img / ref_img.norm(dim=-1, keepdim=True)
    rt = ref_txt / ref_txt.norm(dim=-1, keepdim=True)
    assert out["clip_cosine"] == pytest.approx(float((ri @ rt.T).mean()), abs=1e-5)
    assert build_scorer(ClipSim(model="open_clip:tiny", weights=str(d))).handle.logit_scale == pytest.approx(
        float(model.logit_scale.exp()), rel=1e-6
    )


# -- weights resolution -----------------------------------------------------------------------------------
def test_missing_weights_name_the_files_and_the_fetch_command() -> None:
    ext = ClipExtractor()  # default model, nothing in the (isolated) cache
    with pytest.raises(WeightsError) as e:
        ext.load()
    msg = str(e.value)
    spec = get_weight_spec("clip_vit_b32")
    assert str(hf_snapshot_dir(spec)) in msg and spec.revision in msg  # type: ignore[operator]
    assert "config.json" in msg and "pytorch_model.bin" in msg and "aigve weights fetch clipsim" in msg
    with pytest.raises(WeightsError, match="aigve weights fetch pickscore"):
        ClipExtractor(model="pickscore_v1").load()


def test_snapshot_in_the_cache_is_used_and_hash_checked(clip_dir: Path, frames: np.ndarray) -> None:
    import shutil

    spec = get_weight_spec("clip_vit_b32")
    snap = hf_snapshot_dir(spec)
    shutil.copytree(clip_dir, snap)
    try:
        a = ClipExtractor().extract(frames)  # no weights option: the pinned snapshot in the cache
        np.testing.assert_allclose(a, ClipExtractor(weights=str(clip_dir)).extract(frames), atol=0)
        # the registry's file present with another content: refused in the cache ...
        (snap / "pytorch_model.bin").write_bytes(b"not the published checkpoint")
        with pytest.raises(WeightsError, match="differs from the registry"):
            ClipExtractor().load()
    finally:
        shutil.rmtree(snap)


def test_bad_options_and_names() -> None:
    with pytest.raises(UsageError, match="unknown CLIP model"):
        ClipExtractor(model="nope")
    with pytest.raises(UsageError, match=r"backbone 'clip' has no option\(s\) \['colour'\]"):
        ClipExtractor(colour="red")
    assert model_spec("openai/clip-vit-large-patch14").name == "clip_vit_l14"
    assert model_spec("open_clip:ViT-B-32").arch == "ViT-B-32"
    with pytest.raises(WeightsError, match="not a directory"):
        ClipExtractor(weights="/nonexistent/dir").load()
