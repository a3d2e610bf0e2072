"""Engine overhead: pure backbone forward time vs an end-to-end aigve run on the same videos.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_engine.py [--videos 24] [--frames 32] [--size 256] [--out benchmarks/results_engine.md]

Peer: the backbone itself (EfficientNet-Lite0, the ``frame_consistency`` metric's extractor) called
directly on frames that were decoded beforehand (decode not timed). The end-to-end run decodes,
samples, extracts, scores and aggregates with no feature cache. The ratio forward / end-to-end says
how much of the run is the network (1.0 = no overhead at all; decoding is the main remainder).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from aigve.backbones.registry import build_extractor
from aigve.data.dataset import Dataset
from aigve.engine import Engine, RunConfig
from aigve.types import Entry
from aigve.video.decode import decode_video
from aigve.video.encode import write_video


def make_clips(root: Path, n: int, t: int, size: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        base = rng.integers(0, 255, size=(size // 16 + 2, (size + 2 * t) // 16 + 2, 3)).astype(np.float32)
        big = np.kron(base, np.ones((16, 16, 1), dtype=np.float32))
        frames = np.stack([big[:size, 2 * k : 2 * k + size] for k in range(t)]).astype(np.uint8)
        paths.append(write_video(root / f"clip{i:03d}.mp4", frames, fps=16))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results_engine.md")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_clips(Path(tmp), a.videos, a.frames, a.size)
        ds = Dataset("bench", [Entry(id=p.stem, generated=p) for p in paths])
        ext = build_extractor("efficientnet_lite0", device="cpu", batch_size=32)
        ext.ensure_loaded()
        clips = [decode_video(p).frames for p in paths]
        ext.extract(clips[0])  # warm-up
        fwd, e2e, e2e_w = [], [], []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for f in clips:
                ext.extract(f)
            fwd.append(time.perf_counter() - t0)
            for workers, acc in ((0, e2e), (2, e2e_w)):
                cfg = RunConfig(
                    metrics=["frame_consistency"], cache_dir=None, bootstrap=0, num_workers=workers
                )
                t0 = time.perf_counter()
                Engine(ds, cfg).run()
                acc.append(time.perf_counter() - t0)
    f, e, ew = statistics.median(fwd), statistics.median(e2e), statistics.median(e2e_w)
    lines = [
        "## Engine overhead (`benchmarks/bench_engine.py`)",
        "",
        f"Command: `PYTHONPATH=src:. .venv/bin/python benchmarks/bench_engine.py --videos {a.videos} --frames {a.frames} --size {a.size}`",
        f"({a.videos} H.264 clips, {a.frames} frames of {a.size}x{a.size}; metric `frame_consistency`; CPU, 2 threads;"
        f" median of {a.repeats})",
        "",
        "| what | seconds | backbone forward / this |",
        "|---|---|---|",
        f"| backbone forward only (frames pre-decoded) | {f:.2f} | 1.00 |",
        f"| aigve end-to-end, --num-workers 0 | {e:.2f} | {f / e:.2f} |",
        f"| aigve end-to-end, --num-workers 2 | {ew:.2f} | {f / ew:.2f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(a.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
