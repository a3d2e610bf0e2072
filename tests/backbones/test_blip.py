"""``blip`` backbone and ``blipsim`` against transformers' ``BlipForImageTextRetrieval`` (random weights, offline).

A tiny random BLIP retrieval model (the real architecture class from a small ``BlipConfig``, weights scaled up
so that image and text visibly interact) is saved with a locally built ``BlipProcessor`` and loaded through our
loader. References, per frame and prompt: ``model(**processor(images, text), use_itm_head=False).itm_score``
(ITC cosine) and ``softmax(model(..., use_itm_head=True).itm_score)[:, 1]`` (ITM probability). Tolerance 1e-5
absolute. The real ``Salesforce/blip-itm-base-coco`` weights were not available: every check uses random weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from aigve.backbones.blip import BlipExtractor  # noqa: E402
from aigve.errors import UsageError, WeightsError  # noqa: E402
from aigve.metrics.vl_similarity import BlipSim  # noqa: E402
from aigve.types import Entry  # noqa: E402
from tests.backbones.staged import build_scorer, staged_score  # noqa: E402
from tests.backbones.vl_tiny import make_tiny_blip, random_frames  # noqa: E402

PROMPTS = ["a red car on the mat", "Größe: ein 猫, ça va?", " ".join(["the cat sat on the mat"] * 12)]


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
def blip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import load_file, save_file

    d = make_tiny_blip(tmp_path_factory.mktemp("blip") / "tiny-blip", seed=0, max_pos=40)
    # random init (std 0.02) leaves cross-attention almost inert: scale the weights so ITM depends on the image
    sd = load_file(str(d / "model.safetensors"))
    g = torch.Generator().manual_seed(1)
    scaled = {
        k: (v + 0.15 * torch.randn(v.shape, generator=g)) if v.ndim == 2 and "embeddings" not in k else v
        for k, v in sd.items()
    }
    save_file(scaled, str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return random_frames(4, seed=2)


@pytest.fixture(scope="module")
def reference(blip_dir: Path) -> tuple[object, object]:
    from transformers import BlipForImageTextRetrieval, BlipProcessor

    model = BlipForImageTextRetrieval.from_pretrained(str(blip_dir), local_files_only=True).eval()
    proc = BlipProcessor.from_pretrained(str(blip_dir), local_files_only=True, backend="pil")
    return model, proc


def _ref_scores(reference: tuple, frames: np.ndarray, prompt: str) -> tuple[np.ndarray, np.ndarray]:
    model, proc = reference
    itc, itm = [], []
    with torch.inference_mode():
        for f in frames:
            inputs = proc(images=f, text=prompt, return_tensors="pt", truncation=True, max_length=40)
            itc.append(float(model(**inputs, use_itm_head=False).itm_score[0, 0]))
            itm.append(float(torch.softmax(model(**inputs, use_itm_head=True).itm_score, dim=1)[0, 1]))
    return np.array(itc), np.array(itm)


def _entry(prompt: str | None) -> Entry:
    return Entry(id="b0", generated=Path("b0.mp4"), prompt=prompt)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_blipsim_matches_transformers_retrieval(
    blip_dir: Path, frames: np.ndarray, reference: tuple, prompt: str
) -> None:
    ref_itc, ref_itm = _ref_scores(reference, frames, prompt)
    itc_metric = BlipSim(weights=str(blip_dir))
    itc_out = staged_score(
        itc_metric, _entry(prompt), BlipExtractor(**itc_metric.extractor_options()).extract(frames)
    )
    itm_metric = BlipSim(weights=str(blip_dir), itm=True)
    feats = BlipExtractor(**itm_metric.extractor_options()).extract(frames)
    itm_out = staged_score(itm_metric, _entry(prompt), feats)
    assert itc_out["blip_itc_cosine"] == pytest.approx(float(ref_itc.mean()), abs=1e-5)
    assert "blip_itm_probability" not in itc_out  # null unless itm=true
    assert itm_out["blip_itc_cosine"] == pytest.approx(float(ref_itc.mean()), abs=1e-5)
    assert itm_out["blip_itm_probability"] == pytest.approx(float(ref_itm.mean()), abs=1e-5)
    assert itc_out["prompt_truncated"] == (1.0 if len(prompt) > 100 else 0.0)


def test_itm_probability_per_frame_and_batch_independence(
    blip_dir: Path, frames: np.ndarray, reference: tuple
) -> None:
    _, ref_itm = _ref_scores(reference, frames, PROMPTS[0])
    assert np.ptp(ref_itm) > 1e-4  # the scaled model really looks at the image
    ext = BlipExtractor(weights=str(blip_dir), head="itm", image_backend="pil")
    outs = {}
    for bs in (1, 3, 32):
        ext.batch_size = bs
        outs[bs] = ext.extract(frames)
    np.testing.assert_allclose(outs[1], outs[3], atol=1e-5, rtol=0)
    np.testing.assert_allclose(outs[1], outs[32], atol=1e-5, rtol=0)
    h = ext.handle
    for bs in (1, 3):
        prob, trunc = h.itm_probability(outs[32], PROMPTS[0], batch_size=bs)
        np.testing.assert_allclose(prob, ref_itm, atol=1e-5, rtol=0)
        assert not trunc
    assert outs[32].shape == (len(frames), h.num_tokens * h.hidden)
    np.testing.assert_array_equal(outs[32], ext.extract(frames))  # deterministic


def test_errors(blip_dir: Path) -> None:
    with pytest.raises(WeightsError, match="aigve weights fetch blipsim"):
        BlipExtractor().load()  # nothing in the isolated cache
    with pytest.raises(UsageError, match="head must be"):
        BlipExtractor(head="both")
    with pytest.raises(UsageError, match="head must be"):
        build_scorer(BlipSim(weights=str(blip_dir)), head="both")
