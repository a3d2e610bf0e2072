"""Decode throughput of ``aigve.video.decode_video`` against a plain PyAV loop, in one run.

The peer decodes the same files the same way (first video stream, ``thread_type="AUTO"``,
``frame.to_ndarray(format="rgb24")`` per frame into a list) with nothing else around it; ours
additionally validates the file, tracks timestamps and the window, checks for truncation and
writes the frames into one preallocated ``[T, H, W, 3]`` array (the "peer + np.stack" row shows what
gathering the frames into one array costs in the plain pattern; peak memory is in
``bench_decode_memory.py``).
CPU time (``time.process_time``, all threads) is reported beside wall time because it is far less
sensitive to other jobs sharing the machine. The two are interleaved per repeat (alternating who goes
first) so drift in machine load hits both alike; best-of, median and the median per-repeat paired
ratio are reported.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_decode.py            # toy set if present
    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_decode.py --generated --clips 8

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


def raw_pyav_stacked(path: Path) -> int:
    """The peer plus the one copy any [T, H, W, 3] result needs (``np.stack``)."""
    arrays = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            arrays.append(frame.to_ndarray(format="rgb24"))
    return int(np.stack(arrays).shape[0])


def iter_pass(paths: list[Path], workers: int) -> int:
    return sum(
        c.num_frames for _, c in iter_decoded(paths, Window(), workers) if not isinstance(c, Exception)
    )


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the whole process incl. threads, frames)."""
    w0, c0 = time.perf_counter(), time.process_time()
    frames = fn()
    return time.perf_counter() - w0, time.process_time() - c0, frames


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
        variants: dict[str, Callable[[], int]] = {
            "raw": lambda: sum(raw_pyav(p) for p in paths),
            "raw_stack": lambda: sum(raw_pyav_stacked(p) for p in paths),
            "ours": lambda: sum(ours(p) for p in paths),
            "iter": lambda: iter_pass(paths, args.workers),
        }
        for fn in variants.values():  # warm-up (file cache, codec init)
            fn()
        wall: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        frames: dict[str, int] = {}
        order = list(variants)
        for r in range(args.repeats):
            for name in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
                dt, ct, n_frames = timed(variants[name])
                wall[name].append(dt)
                cpu[name].append(ct)
                frames[name] = n_frames
    assert len(set(frames.values())) == 1, frames

    n = frames["raw"]

    def paired(key: str, runs: dict[str, list[float]]) -> float:
        """Median over repeats of this variant's time / the peer's time in the same repeat."""
        return statistics.median(a / b for a, b in zip(runs[key], runs["raw"], strict=True))

    labels = {
        "raw": "plain PyAV loop (peer)",
        "raw_stack": "plain PyAV loop + np.stack",
        "ours": "aigve decode_video",
        "iter": f"aigve iter_decoded, {args.workers} workers",
    }
    cmd = "PYTHONPATH=src:. .venv/bin/python benchmarks/bench_decode.py" + (
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
        "| decoder | best frames/s (wall) | median frames/s (wall) | median CPU s / pass "
        "| wall time ratio vs peer | CPU time ratio vs peer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in labels.items():
        lines.append(
            f"| {label} | {n / min(wall[key]):.0f} | {n / statistics.median(wall[key]):.0f} "
            f"| {statistics.median(cpu[key]):.3f} | {paired(key, wall):.3f} | {paired(key, cpu):.3f} |"
        )
    lines += [
        "",
        "Ratios are medians of per-repeat paired ratios (robust to load drift between repeats). "
        f"decode_video overhead vs the plain PyAV loop: {100 * (paired('ours', wall) - 1):+.1f} % wall, "
        f"{100 * (paired('ours', cpu) - 1):+.1f} % CPU (best-of wall: "
        f"{100 * (min(wall['ours']) / min(wall['raw']) - 1):+.1f} %); goal: within ~10 %.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
