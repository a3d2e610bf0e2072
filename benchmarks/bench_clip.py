"""clipsim + cliptemp together (one CLIP image forward per frame) vs the two computed separately.

Separately = torchmetrics' ``CLIPScore`` per video (its own image + text forward) plus a per-frame loop of
``CLIPModel.get_image_features`` for the consecutive-frame cosine (what a user of the two references runs).
Both sides use the same model, the same processor and the same decoded frames (decoding is not timed).

The model is the real ViT-B/32 architecture (``CLIPConfig()`` defaults = openai/clip-vit-base-patch32's shapes)
with *random* weights, saved to a temporary directory: the real checkpoint cannot be downloaded here; speed
depends on shapes, not on weight values. Values are checked equal: per video, torchmetrics' score (it clamps the
mean; its unclamped state ``score / n_samples`` is compared) vs ``100 * clip_cosine``, and the loop's consecutive cosine vs ``cliptemp``.

Run:  PYTHONPATH=src:. .venv/bin/python benchmarks/bench_clip.py [--videos DIR] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _pooled(x: object) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else x.pooler_output  # type: ignore[attr-defined]


class _TensorFeatures(torch.nn.Module):
    """transformers-4 style ``get_*_features`` for torchmetrics 1.9 (see tests/backbones/test_clip.py)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config = model, model.config

    def get_image_features(self, *a: object, **k: object) -> torch.Tensor:
        return _pooled(self.inner.get_image_features(*a, **k))

    def get_text_features(self, *a: object, **k: object) -> torch.Tensor:
        return _pooled(self.inner.get_text_features(*a, **k))


def build_model(root: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from tests.backbones.vl_tiny import clip_tokenizer

    tok = clip_tokenizer()
    cfg = CLIPConfig(
        text_config={
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.eos_token_id,
        }
    )
    torch.manual_seed(0)
    CLIPModel(cfg).eval().save_pretrained(root)
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tok).save_pretrained(root)
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--videos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/aigve_toy"
    )
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    from aigve.backbones.base import ScorerInput
    from aigve.backbones.clip import ClipExtractor, ClipTextScorer
    from aigve.metrics.vl_similarity import CLIP_ROLE, CLIP_TEXT_ROLE, ClipSim, ClipTemp
    from aigve.types import Entry
    from aigve.video.decode import decode_video

    paths = sorted(args.videos.rglob("*.mp4"))
    clips = [decode_video(p).frames for p in paths]
    prompts = [f"a video number {i} of a red car" for i in range(len(clips))]
    n_frames = sum(len(c) for c in clips)
    with tempfile.TemporaryDirectory() as tmp:
        d = build_model(Path(tmp) / "vitb32-random")
        metric_opts = {"weights": str(d), "num_frames": "all"}
        ext = ClipExtractor(**ClipSim(**metric_opts).extractor_options())
        ext.ensure_loaded()
        scorer = ClipTextScorer(**ClipSim(**metric_opts).extractor_options())
        scorer.bind_upstream(ext)  # as the engine does: one loaded CLIP for images and prompts
        scorer.ensure_loaded()
        model = CLIPModel.from_pretrained(str(d), local_files_only=True).eval()
        proc = CLIPProcessor.from_pretrained(str(d), local_files_only=True, backend="pil")
        wrapped = _TensorFeatures(model)

        def ours() -> list[tuple[float, float]]:
            out = []
            cs, ct = ClipSim(**metric_opts), ClipTemp(**metric_opts)
            for i, fr in enumerate(clips):
                e = Entry(str(i), paths[i], prompt=prompts[i])
                img = ext.extract(fr)  # one image forward pass serves both metrics
                (txt,) = scorer.score([ScorerInput(e.id, img, None, {"prompt": prompts[i]})])
                sim = cs.score(e, {CLIP_TEXT_ROLE: txt})["clip_cosine"]
                out.append((sim, ct.score(e, {CLIP_ROLE: img})["cliptemp"]))
            return out

        def separate() -> list[tuple[float, float]]:
            out = []
            for i, fr in enumerate(clips):
                with torch.inference_mode():
                    m = CLIPScore(model_name_or_path=lambda: (wrapped, proc))
                    m.update([torch.from_numpy(f).permute(2, 0, 1) for f in fr], [prompts[i]] * len(fr))
                    float(m.compute())  # the metric's value: max(mean, 0); compare its unclamped state
                    score = float(m.score / m.n_samples)
                    embs = []
                    for f in fr:  # per-frame loop for the temporal score
                        pix = proc(images=[f], return_tensors="pt")["pixel_values"]
                        embs.append(_pooled(model.get_image_features(pixel_values=pix))[0])
                    e = torch.stack(embs)
                    e = e / e.norm(dim=-1, keepdim=True)
                    temp = float((e[:-1] * e[1:]).sum(-1).mean())
                out.append((score, temp))
            return out

        ours()  # warm-up (text cache is per prompt: clear it so every timed run encodes each prompt once)
        times: dict[str, list[tuple[float, float]]] = {"ours": [], "separate": []}
        res: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.repeats):
            for name, fn in (("separate", separate), ("ours", ours)):
                ext.handle._text_cache.clear()
                w0, c0 = time.perf_counter(), time.process_time()
                res[name] = fn()
                times[name].append((time.perf_counter() - w0, time.process_time() - c0))
    diff_score = max(abs(100 * o[0] - s[0]) for o, s in zip(res["ours"], res["separate"], strict=True))
    diff_temp = max(abs(o[1] - s[1]) for o, s in zip(res["ours"], res["separate"], strict=True))
    best = {k: (min(t[0] for t in v), min(t[1] for t in v)) for k, v in times.items()}
    print(
        f"videos: {len(clips)} ({n_frames} frames) from {args.videos}; torch threads {torch.get_num_threads()}"
    )
    for k in ("separate", "ours"):
        print(f"{k:9s} best wall {best[k][0]:7.2f} s   best cpu {best[k][1]:7.2f} s")
    print(
        f"ratio ours/separate: wall {best['ours'][0] / best['separate'][0]:.3f}  "
        f"cpu {best['ours'][1] / best['separate'][1]:.3f}"
    )
    print(
        f"max |diff|: 100*clip_cosine vs torchmetrics' unclamped mean {diff_score:.2e}, cliptemp {diff_temp:.2e}"
    )
    print(
        f"clip_cosine range over videos: {min(o[0] for o in res['ours']):.4f} .. {max(o[0] for o in res['ours']):.4f}"
    )


if __name__ == "__main__":
    main()
