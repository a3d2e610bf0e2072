"""Seconds per video for ``lightvqa`` (real size) and ``videoscore`` (tiny config) on CPU, and a cost model of
VideoScore at the real size (vision tokens per frame, decoder length, forward FLOPs).

No real checkpoint can be downloaded here: Light-VQA runs with seeded random weights of the released layout
(Swin-S + head, SlowFast R50: same shapes, same FLOPs); VideoScore's 8B model cannot run on this CPU, so its
timing uses the tiny test configuration (tests/backbones/videoscore_tiny.py) — the pipeline (decode, frame
choice, PIL image processing, tokenising, forward) is the real one, the network is not — and the cost model
gives what the real network does per video. Command::

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_multi_aspect.py [VIDEO ...] [--skip-lightvqa]

Result in benchmarks/RESULTS.md (section "Multi-aspect judges and Light-VQA").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

TOY_DIR = Path(
    os.environ.get("AIGVE_TOY_DIR", Path(__file__).resolve().parents[1] / ".." / "shared/data/aigve_toy")
)

# VideoScore-v1.1 = Mantis-8B-Idefics2: SigLIP-so400m vision tower, perceiver (64 latents), Mistral-7B
VISION = {"layers": 27, "hidden": 1152, "mlp": 4304, "patch": 14}
PERCEIVER = {"layers": 3, "latents": 64, "hidden": 4096, "heads": 16, "head_dim": 96, "kv_heads": 4}
DECODER = {"layers": 32, "hidden": 4096, "mlp": 14336, "heads": 32, "kv_heads": 8, "head_dim": 128}


def resized(h: int, w: int, shortest: int = 378, longest: int = 980) -> tuple[int, int]:
    """Idefics2's resize rule (no splitting): shrink so the longer side is <= 980, then each side >= 378."""
    aspect = w / h
    if w >= h and w > longest:
        w, h = longest, int(longest / aspect)
    elif h > w and h > longest:
        h, w = longest, int(longest * aspect)
    return max(h, shortest), max(w, shortest)


def vision_flops(tokens: int) -> float:
    v = VISION
    per_tok = 2 * (4 * v["hidden"] ** 2 + 2 * v["hidden"] * v["mlp"])  # projections + MLP, multiply-adds x 2
    attn = 2 * 2 * tokens * v["hidden"]  # QK^T and AV per token
    return v["layers"] * tokens * (per_tok + attn)


def decoder_flops(length: int) -> float:
    d = DECODER
    kv = d["kv_heads"] * d["head_dim"]
    per_tok = 2 * (2 * d["hidden"] ** 2 + 2 * d["hidden"] * kv + 3 * d["hidden"] * d["mlp"])
    attn = 2 * 2 * (length / 2) * d["heads"] * d["head_dim"]  # causal: half the keys on average
    return d["layers"] * length * (per_tok + attn)


def cost_model(prompt_tokens: int) -> None:
    from aigve.backbones.videoscore import frame_indices

    print(
        f"\nVideoScore-v1.1 cost model (prompt + template ~{prompt_tokens} text tokens, 64 latents per frame)"
    )
    print(
        "| video | frames read | resized frame | patches/frame | decoder tokens | vision TFLOP | decoder TFLOP |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, t, h, w in (
        ("16 f 512x512 (AIGVE toy)", 16, 512, 512),
        ("49 f 480x848", 49, 480, 848),
        ("120 f 720x1280", 120, 720, 1280),
        ("240 f 1080x1920", 240, 1080, 1920),
    ):
        n = len(frame_indices(t))
        rh, rw = resized(h, w)
        patches = (rh // VISION["patch"]) * (rw // VISION["patch"])
        length = prompt_tokens + n * (64 + 2 + 1)  # 64 latents + 2 boundary tokens + the space after each
        print(
            f"| {name} | {n} | {rh}x{rw} | {patches} | {length} | {n * vision_flops(patches) / 1e12:.1f} "
            f"| {decoder_flops(length) / 1e12:.1f} |"
        )


def bench_lightvqa(video: Path) -> None:
    import torch

    from aigve.backbones.base import ScorerInput
    from aigve.backbones.lightvqa import LightVQAHeadScorer, LightVQASpatialExtractor
    from aigve.backbones.nets.lightvqa import LightVQANet, ours_to_upstream
    from aigve.backbones.nets.slowfast import SlowFastR50
    from aigve.backbones.registry import build_extractor
    from aigve.video.decode import decode_video
    from aigve.video.sampling import Window
    from tests.backbones.test_slowfast import seeded_state

    tmp = Path(tempfile.mkdtemp())
    lv, sf = tmp / "lightvqa.pth", tmp / "SLOWFAST_8x8_R50.pyth"
    torch.manual_seed(0)
    torch.save(ours_to_upstream(LightVQANet().state_dict()), lv)  # the authors' layout, random init
    torch.save({"model_state": seeded_state(SlowFastR50().state_dict(), 0)}, sf)
    spatial = build_extractor("lightvqa_spatial", weights=str(lv))
    motion = build_extractor("slowfast_r50", weights=str(sf))
    assert isinstance(spatial, LightVQASpatialExtractor)
    spatial.ensure_loaded()
    motion.ensure_loaded()
    head = LightVQAHeadScorer(weights=str(lv), slowfast_weights=str(sf))
    head.bind_upstream(spatial, "spatial")
    head.bind_upstream(motion, "motion")
    head.ensure_loaded()
    t0 = time.perf_counter()
    clip = decode_video(video, Window())
    t1 = time.perf_counter()
    s = spatial.extract(clip.frames, clip.fps)
    b = build_extractor("lightvqa_brightness").extract(clip.frames, clip.fps)
    t2 = time.perf_counter()
    m = motion.extract(clip.frames, clip.fps)
    t3 = time.perf_counter()
    q = head.score([ScorerInput(video.stem, s, None, {}, {"spatial": s, "motion": m, "brightness": b})])[0]
    t4 = time.perf_counter()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| video | frames | decode s | Swin-S + hand features (8 x 512x960) + consistency s | SlowFast s | head s "
          "| total s | score (random weights) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {video.name[:40]} | {len(clip.frames)} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t3 - t2:.2f} | {t4 - t3:.3f} "
        f"| {t4 - t0:.2f} | {float(q[0, 0]):.3f} |"
    )


def bench_videoscore(videos: list[Path]) -> int:
    import torch
    from safetensors.torch import save_file

    from aigve.backbones.base import ScorerInput
    from aigve.backbones.nets.videoscore import videoscore_class
    from aigve.backbones.videoscore import REGRESSION_QUERY_PROMPT, VideoScoreScorer
    from aigve.video.decode import decode_video
    from aigve.video.sampling import Window
    from tests.backbones.videoscore_tiny import build_tokenizer, seeded_state, tiny_config

    prompt = "A beautiful coastal beach in spring, waves lapping on sand"
    tok = build_tokenizer(REGRESSION_QUERY_PROMPT.format(text_prompt=prompt))
    cfg = tiny_config(tok)
    d = Path(tempfile.mkdtemp()) / "VideoScore-tiny"
    shapes = {k: tuple(v.shape) for k, v in videoscore_class()(cfg).state_dict().items()}
    cfg.save_pretrained(d)
    tok.save_pretrained(d)
    save_file(seeded_state(shapes), str(d / "model.safetensors"))
    scorer = VideoScoreScorer(weights=str(d))
    scorer.ensure_loaded()
    print("\nVideoScore, tiny config (vision 32-d x 2 layers, perceiver 2 layers, decoder 64-d x 2 layers)")
    print(
        "| video | frames read | decode s | score s (PIL processing + tokenising + tiny forward) | tokens |"
    )
    print("|---|---|---|---|---|")
    text_tokens = 0
    for v in videos:
        t0 = time.perf_counter()
        clip = decode_video(v, Window())
        t1 = time.perf_counter()
        out = scorer.score([ScorerInput(v.stem, clip.frames, clip.fps, {"prompt": prompt})])[0]
        t2 = time.perf_counter()
        n = min(len(clip.frames), 48)
        enc = tok(
            REGRESSION_QUERY_PROMPT.format(text_prompt=prompt), add_special_tokens=True
        )  # the text part only
        text_tokens = len(enc["input_ids"])
        assert out.shape == (1, 5) and torch.isfinite(torch.from_numpy(out)).all()
        print(f"| {v.name[:40]} | {n} | {t1 - t0:.2f} | {t2 - t1:.2f} | {text_tokens} + {n} x 67 |")
    return text_tokens


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="*", type=Path)
    ap.add_argument("--skip-lightvqa", action="store_true")
    args = ap.parse_args(argv)
    videos = args.videos or sorted((TOY_DIR / "evaluate").glob("*.mp4"))[:1]
    if not videos:
        print("no video given and the toy set is not at ../shared/data/aigve_toy", file=sys.stderr)
        return 2
    os.environ.setdefault("AIGVE_CACHE_DIR", tempfile.mkdtemp())
    os.environ.setdefault("AIGVE_OFFLINE", "1")
    if not args.skip_lightvqa:
        bench_lightvqa(videos[0])
    words = bench_videoscore(videos)
    # the word-level test tokenizer undercounts Mistral's BPE; 1.2x is a typical English ratio
    cost_model(int(round(words * 1.2)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
