"""Seconds per video for ``gstvqa`` on CPU at its default input size (full frame resolution, every frame),
split into decoding, the VGG16 mean/std features and the GSTVQA temporal head.

The released checkpoints cannot be downloaded on the build machine, so the networks carry seeded random
weights (the same architectures; speed does not depend on the values). Wall and CPU time
(``time.process_time``, all threads) are both reported; CPU time is less sensitive to other jobs.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_nn_video_gstvqa.py            # AIGVE toy set if present
    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_nn_video_gstvqa.py --videos 3 --threads 2

Writes ``benchmarks/results_gstvqa.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aigve.backbones.gstvqa import gstvqa_raw_scores
from aigve.video.decode import decode_video
from tests.backbones.test_gstvqa import _extractor, seeded_clip, seeded_net


def _toy_videos(n: int) -> list[Path]:
    root = Path(
        os.environ.get("AIGVE_TOY_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "aigve_toy")
    )
    vids = sorted(root.rglob("*.mp4")) if root.exists() else []
    if vids:
        return vids[:n]
    from aigve.video.encode import write_video

    tmp = Path(tempfile.mkdtemp())
    return [write_video(tmp / f"g{i}.mp4", seeded_clip(seed=i, t=16, h=512, w=512), fps=8) for i in range(n)]


def _timed(fn):  # noqa: ANN001, ANN202
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results_gstvqa.md")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ext = _extractor(batch_size=32)
    net = seeded_net()
    rows = []
    for path in _toy_videos(args.videos):
        clip, dw, dc = _timed(lambda p=path: decode_video(p))
        feats, vw, vc = _timed(lambda c=clip: ext.extract(c.frames))
        _, hw, hc = _timed(lambda f=feats: gstvqa_raw_scores(net, [f]))
        t, h, w = clip.frames.shape[:3]
        rows.append((path.name, t, f"{w}x{h}", dw, dc, vw, vc, hw, hc))
    tot_w = [r[3] + r[5] + r[7] for r in rows]
    lines = [
        "# gstvqa: seconds per video on CPU",
        "",
        f"Command: `PYTHONPATH=src:. .venv/bin/python benchmarks/bench_nn_video_gstvqa.py --videos {args.videos} "
        f"--threads {args.threads}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {args.threads} threads; seeded random weights (same architectures as the "
        "released checkpoints). Default input size: every frame at full resolution (no resize), as GSTVQA "
        "was trained.",
        "",
        "| video | frames | size | decode s (cpu) | VGG16 mean/std s (cpu) | GSTVQA head s (cpu) | total s | "
        "decode share | network share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, t, size, dw, dc, vw, vc, hw, hc), tw in zip(rows, tot_w, strict=True):
        lines.append(
            f"| {name} | {t} | {size} | {dw:.3f} ({dc:.3f}) | {vw:.2f} ({vc:.2f}) | {hw:.3f} ({hc:.3f}) | "
            f"{tw:.2f} | {dw / tw:.1%} | {(vw + hw) / tw:.1%} |"
        )
    per_frame = [r[5] / r[1] for r in rows]
    lines += [
        "",
        f"Median seconds per video: {statistics.median(tot_w):.2f}; VGG16 per frame: "
        f"{statistics.median(per_frame):.3f} s; the GSTVQA head is negligible (the network share is the VGG pass).",
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    assert np.isfinite(tot_w).all()


if __name__ == "__main__":
    main()
