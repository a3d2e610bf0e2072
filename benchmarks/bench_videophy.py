"""VideoPhy (``videophy``): seconds per video with the tiny test network, and a cost model at the real size.

1. **Tiny network** (tests/backbones/videophy_tiny.py: vision 32 wide on 56 px, abstractor 32 wide, LLaMA 64
   wide, two layers each; 32 frames, 64 + 64 queries, both questions): the scorer on the toy videos, split into
   decoding, frame preprocessing, vision encoder + abstractor, and the language model on the two prompts.
2. **Real size** (ViT-L/14 at 224 px x 32 frames, 6-layer abstractor, LLaMA-7B): what one video costs, from the
   shapes (tokens and FLOPs per stage) and from timing *one* layer of each stage at its real width with random
   weights on this CPU in float32, multiplied by the layer counts (a 7B model does not fit the budget of a test
   machine; the per-layer time is what scales).

Usage: ``PYTHONPATH=src:. .venv/bin/python benchmarks/bench_videophy.py [--repeats 3] [--videos 4]``
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aigve.backbones.base import ScorerInput
from aigve.backbones.nets.mplug_owl_video import (
    AbstractorLayer,
    LlamaLayer,
    MplugOwlVideoConfig,
    VisionLayer,
    rotary_cos_sin,
)
from aigve.backbones.videophy import COLUMNS, VideophyScorer, preprocess_frames
from aigve.video.decode import decode_video
from aigve.video.sampling import Sampler
from tests.backbones.videophy_tiny import write_tiny_snapshot

TOY = os.environ.get("AIGVE_TOY_DIR", "/work/shared/data/aigve_toy")


def _time(fn, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def tiny(repeats: int, n_videos: int) -> list[str]:
    paths = sorted(glob.glob(f"{TOY}/evaluate/*.mp4"))[:n_videos]
    snap = write_tiny_snapshot(Path(tempfile.mkdtemp()) / "snap")
    sc = VideophyScorer(weights=str(snap))
    sc.ensure_loaded()
    assert sc.handle is not None
    net, size = sc.handle.net, sc.handle.net.cfg.vision.image_size
    sampler = Sampler("segments", n=32)
    t_dec, t_pre, t_vis, t_lm, t_all = [], [], [], [], []
    for p in paths:
        t_dec.append(_time(lambda p=p: decode_video(Path(p)), repeats))
        clip = decode_video(Path(p)).frames
        frames = clip[sampler.select(len(clip))]
        t_pre.append(_time(lambda f=frames: preprocess_frames(f, size), repeats))
        px = preprocess_frames(frames, size)[None]
        with torch.inference_mode():
            t_vis.append(_time(lambda px=px: net.video_tokens(px), repeats))
            videos = net.video_tokens(px)
            prompts = sc.prompts("A beautiful coastal beach in spring, waves lapping on sand")
            flat = [prompts[c] for c in COLUMNS]
            t_lm.append(_time(lambda f=flat, v=videos: net.read_logits(f, v, [0, 0]), repeats))
        item = ScorerInput(
            "v", frames, None, {"prompt": "A beautiful coastal beach in spring, waves lapping on sand"}
        )
        t_all.append(_time(lambda item=item: sc.score([item]), repeats))
    med = statistics.median
    return [
        f"tiny network, {len(paths)} toy videos (16 frames of 512x512 each, sampled to 32), median of {repeats}:",
        "",
        "| stage | seconds per video |",
        "|---|---|",
        f"| decode (PyAV, whole clip) | {med(t_dec):.3f} |",
        f"| preprocess 32 frames to {size} px | {med(t_pre):.3f} |",
        f"| vision encoder + abstractor (32 frames -> 65 tokens) | {med(t_vis):.3f} |",
        f"| LLaMA on both prompts ({len(flat[0])} and {len(flat[1])} tokens) | {med(t_lm):.3f} |",
        f"| scorer end to end (both questions, decode excluded) | {med(t_all):.3f} |",
    ]


def real_size(repeats: int) -> list[str]:
    cfg = MplugOwlVideoConfig()
    v, a, t = cfg.vision, cfg.abstractor, cfg.text
    frames, per_frame = 32, cfg.patches_per_frame + 1
    vis_tokens = frames * per_frame
    queries = 2 * cfg.num_query_tokens
    keys = queries + vis_tokens
    # decoder length: BOS + template text + 65 video tokens (+ the caption for SA). The template's text is
    # about 57 LLaMA tokens for PC and about 60 + the caption for SA: an estimate from its words and LLaMA's
    # SentencePiece rules (the real tokenizer is not here); a 20-token caption is assumed
    len_pc, len_sa = 1 + 57 + cfg.video_tokens, 1 + 60 + cfg.video_tokens + 20
    torch.manual_seed(0)
    with torch.inference_mode():
        vl = VisionLayer(v).eval()
        x = torch.randn(1, frames, per_frame, v.hidden_size)
        t_vis = _time(lambda: vl(x), repeats)
        al = AbstractorLayer(a).eval()
        q = torch.randn(1, queries, a.hidden_size)
        kv = torch.randn(1, vis_tokens, a.encoder_hidden_size)
        t_abs = _time(lambda: al(q, kv), repeats)
        ll = LlamaLayer(t).eval()
        h = torch.randn(2, len_sa, t.hidden_size)
        cos, sin = rotary_cos_sin(len_sa, t.hidden_size // t.num_attention_heads, t.rope_theta, h.device)
        mask = torch.triu(torch.full((len_sa, len_sa), torch.finfo(h.dtype).min), diagonal=1)[None, None]
        t_llm = _time(lambda: ll(h, cos, sin, mask), repeats)
    d, da, dt = v.hidden_size, a.hidden_size, t.hidden_size
    f_vis = v.num_hidden_layers * (
        2 * vis_tokens * (12 * d * d) + 4 * frames * per_frame**2 * d + 2 * frames * (per_frame - 1) * d * d
    )
    f_abs = a.num_hidden_layers * (
        2 * keys * 2 * da * da + 2 * queries * (2 * da * da + 3 * da * a.mlp_hidden) + 4 * queries * keys * da
    )
    per_tok = 2 * (4 * dt * dt + 3 * dt * t.intermediate_size)
    f_llm = t.num_hidden_layers * (len_pc + len_sa) * per_tok + 2 * 2 * dt * t.vocab_size
    est_vis, est_abs, est_llm = (
        t_vis * v.num_hidden_layers,
        t_abs * a.num_hidden_layers,
        t_llm * t.num_hidden_layers,
    )
    total = est_vis + est_abs + est_llm
    return [
        "",
        "real size (ViT-L/14 224 px, 6-layer abstractor, LLaMA-7B), one video, both questions:",
        "",
        "| stage | tokens | GFLOPs | one layer, CPU fp32 (s) | x layers = CPU fp32 estimate (s) |",
        "|---|---|---|---|---|",
        f"| vision encoder | {frames} frames x {per_frame} = {vis_tokens} | {f_vis / 1e9:.0f} | {t_vis:.2f} | "
        f"{est_vis:.1f} ({v.num_hidden_layers} layers) |",
        f"| abstractor | {queries} queries x {keys} keys | {f_abs / 1e9:.0f} | {t_abs:.3f} | {est_abs:.1f} "
        f"({a.num_hidden_layers} layers) |",
        f"| LLaMA-7B | {len_pc} (PC) + ~{len_sa} (SA) | {f_llm / 1e9:.0f} | {t_llm:.2f} | {est_llm:.1f} "
        f"({t.num_hidden_layers} layers) |",
        f"| total | | {(f_vis + f_abs + f_llm) / 1e9:.0f} | | {total:.0f} |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--videos", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    print("\n".join(tiny(args.repeats, args.videos)))
    print("\n".join(real_size(args.repeats)))


if __name__ == "__main__":
    main()
