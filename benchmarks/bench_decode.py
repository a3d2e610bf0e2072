"""Decode throughput of ``aigve.video.decode_video`` against a plain PyAV loop, in one run.

The peer decodes the same files the same way (first video stream, ``thread_type="AUTO"``,
``frame.to_ndarray(format="rgb24")`` per frame into a list) with nothing else around it; ours
additionally validates the file, tracks timestamps and the window, checks for truncation and
stacks the frames into one ``[T, H, W, 3]`` array. The two are interleaved per repeat (alternating who goes
first) so drift in machine load hits both alike; best-of, median and the median per-repeat paired
ratio are reported.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_decode.py            # toy set if present
    PYTHONPATH=src .venv/bin/python benchmarks/bench_decode.py --generated --clips 8

Writes a markdown snippet (command + table) to ``benchmarks/results_decode.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from aigve.video import decode_video, iter_decoded, write_video
from aigve.video.sampling import Window

HERE = Path(__file__).resolve().parent


def toy_paths() -> list[Path]:
    env = os.environ.get("AIGVE_TOY_DIR")
    root = Path(env) if env else HERE.parent.parent / "shared" / "data" / "aigve_toy"
    return sorted(root.rglob("*.mp4")) if root.is_dir() else []


def generated_paths(root: Path, n: int, t: int = 16, size: int = 512) -> list[Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for k in range(n):
        phase = rng.integers(0, 255, 3)
        frames = np.empty((t, size, size, 3), np.uint8)
        for i in range(t):
            frames[i, ..., 0] = (xx + 3 * i + phase[0]) % 256
            frames[i, ..., 1] = (yy + 5 * i + phase[1]) % 256
            frames[i, ..., 2] = ((xx ^ yy) + 7 * i + phase[2]) % 256
        out.append(write_video(root / f"gen_{k:02d}.mp4", frames, fps=8))
    return out


def raw_pyav(path: Path) -> int:
    """The peer: a plain PyAV decode loop to rgb24 ndarrays."""
    arrays = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            arrays.append(frame.to_ndarray(format="rgb24"))
    return len(arrays)


def ours(path: Path) -> int:
    return decode_video(path).num_frames


def timed(fn: Callable[[Path], int], paths: list[Path]) -> tuple[float, int]:
    t0 = time.perf_counter()
    frames = sum(fn(p) for p in paths)
    return time.perf_counter() - t0, frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", action="store_true", help="use generated clips even if the toy set exists")
    ap.add_argument("--clips", type=int, default=11, help="number of generated clips (default 11)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--workers", type=int, default=2, help="also time iter_decoded with this many workers")
    ap.add_argument("--out", type=Path, default=HERE / "results_decode.md")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        paths = [] if args.generated else toy_paths()
        source = f"AIGVE toy set ({len(paths)} clips)"
        if not paths:
            paths = generated_paths(Path(tmp), args.clips)
            source = f"{len(paths)} generated clips (16 frames, 512x512, H.264 crf 18, 8 fps)"
        # warm-up (file cache, codec init) for both
        timed(raw_pyav, paths)
        timed(ours, paths)
        runs: dict[str, list[float]] = {"raw": [], "ours": [], "iter": []}
        frames = {}
        pair = [("raw", raw_pyav), ("ours", ours)]
        for r in range(args.repeats):
            for name, fn in pair if r % 2 == 0 else pair[::-1]:  # alternate who goes first
                dt, n = timed(fn, paths)
                runs[name].append(dt)
                frames[name] = n
            t0 = time.perf_counter()
            n_iter = sum(c.num_frames for _, c in iter_decoded(paths, Window(), args.workers))  # type: ignore[union-attr]
            runs["iter"].append(time.perf_counter() - t0)
            frames["iter"] = n_iter
    assert frames["raw"] == frames["ours"] == frames["iter"], frames

    n = frames["raw"]
    best = {k: min(v) for k, v in runs.items()}
    med = {k: statistics.median(v) for k, v in runs.items()}
    ratio_best = best["ours"] / best["raw"]
    ratio_med = med["ours"] / med["raw"]
    # paired: each repeat's ours/raw time ratio (robust to load drift between repeats)
    ratio_paired = statistics.median(o / r for o, r in zip(runs["ours"], runs["raw"], strict=True))
    rows = [
        ("plain PyAV loop (peer)", best["raw"], med["raw"]),
        ("aigve decode_video", best["ours"], med["ours"]),
        (f"aigve iter_decoded, {args.workers} workers", best["iter"], med["iter"]),
    ]
    cmd = "PYTHONPATH=src .venv/bin/python benchmarks/bench_decode.py" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:]) if (argv or sys.argv[1:]) else ""
    )
    lines = [
        "## Video decoding throughput (`benchmarks/bench_decode.py`)",
        "",
        "```",
        cmd,
        "```",
        "",
        f"Input: {source}, {n} frames per pass; {args.repeats} interleaved repeats after a warm-up. "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"PyAV {av.__version__}; 1-min load average at the end {os.getloadavg()[0]:.1f} (other jobs shared "
        "the cores, so compare rows within this run only).",
        "",
        "| decoder | best frames/s | median frames/s | time ratio vs peer (best / median) |",
        "|---|---:|---:|---:|",
    ]
    for label, b, m in rows:
        lines.append(
            f"| {label} | {n / b:.0f} | {n / m:.0f} | {b / best['raw']:.3f} / {m / med['raw']:.3f} |"
        )
    lines += [
        "",
        f"decode_video overhead vs the plain PyAV loop: {100 * (ratio_best - 1):+.1f} % (best), "
        f"{100 * (ratio_med - 1):+.1f} % (median), {100 * (ratio_paired - 1):+.1f} % (median of per-repeat "
        "paired ratios); goal: within ~10 %.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
