"""Throughput and CUDA-vs-CPU parity per metric family, on generated videos of realistic sizes (issue #18).

For each metric family and video size it prints one row: videos/s and frames/s end to end (``aigve.evaluate``:
decode, models, metrics; the one-off loading of the networks left out), the model-only rate (frames divided by the time spent inside the backbones'
``extract``/``score`` calls of that same run: the limit the models set), the decode-only rate (the same videos
decoded alone), the GPU memory peak, and the parity of every metric's value between CUDA and the CPU on a small
subset (relative difference, within the tolerance of the precision in use).

The networks are the real architectures with seeded random weights (``aigve.weights.random_init``: saved as
safetensors and loaded through the normal loader): speed depends on shapes, not weight values, and the values
are NOT the standard metrics. The videos are generated here (a textured pattern in motion, H.264): 5 s at 480p
(24 fps) and 720p (30 fps). Nothing but the project's own install is needed.

    PYTHONPATH=src:. .venv/bin/python benchmarks/gpu_check.py                  # CUDA machine: < 8 minutes
    PYTHONPATH=src:. .venv/bin/python benchmarks/gpu_check.py --precision bf16
    PYTHONPATH=src:. .venv/bin/python benchmarks/gpu_check.py --smoke          # tiny, CPU (CI smoke test)

Without CUDA it says so and runs the CPU path (no parity column then).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Family:
    name: str
    metrics: tuple[str, ...]
    backbones: tuple[str, ...]  # that get random weights
    real: bool = False  # needs a real set


FAMILIES = (
    Family("classic (efficientnet_lite0)", ("flicker", "frame_consistency"), ("efficientnet_lite0",)),
    Family("distribution (fid_inception)", ("fid", "is"), ("fid_inception",), real=True),
    Family("distribution (i3d)", ("fvd",), ("i3d_kinetics400",), real=True),
    Family("vl_similarity (clip ViT-B/32)", ("clipsim", "cliptemp"), ("clip",)),
)


@dataclass(frozen=True)
class Size:
    name: str
    width: int
    height: int
    fps: float
    seconds: float

    @property
    def frames(self) -> int:
        return int(round(self.fps * self.seconds))


FULL_SIZES = (Size("480p", 854, 480, 24.0, 5.0), Size("720p", 1280, 720, 30.0, 5.0))
SMOKE_SIZES = (Size("smoke", 64, 48, 8.0, 0.5),)

#: parity tolerance (relative difference of a metric's value, CUDA vs CPU) per precision; set-level Fréchet
#: distances on the small parity subset amplify feature differences (few samples, near-singular covariances)
PARITY_RTOL = {"fp32": 1e-3, "bf16": 3e-2, "fp16": 1e-2}
PARITY_RTOL_SET = {"fp32": 5e-2, "bf16": 2e-1, "fp16": 1e-1}
SET_METRICS = {"fid", "kid", "fvd"}


@dataclass
class Row:
    family: str
    size: str
    videos: int = 0
    frames: int = 0
    e2e_s: float = math.nan
    model_s: float = math.nan
    decode_s: float = math.nan
    mem_gib: float | None = None
    parity: str = "n/a"
    notes: list[str] = field(default_factory=list)


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
    return np.kron(small, np.ones((16, 16, 1), dtype=np.uint8))


def make_video(path: Path, size: Size, seed: int) -> Path:
    """A coarse random texture drifting diagonally, with a slow brightness wave: compresses like real footage."""
    from aigve.video.encode import write_video

    tex = _texture(size.height + 64, size.width + 64, seed)
    frames = np.empty((size.frames, size.height, size.width, 3), dtype=np.uint8)
    for i in range(size.frames):
        dy, dx = (2 * i) % 64, (3 * i) % 64
        f = tex[dy : dy + size.height, dx : dx + size.width].astype(np.int16)
        frames[i] = np.clip(f + int(20 * math.sin(i / 6.0)), 0, 255).astype(np.uint8)
    return write_video(path, frames, fps=size.fps)


def make_sets(root: Path, size: Size, n: int) -> tuple[Path, Path, Path]:
    gen, real = root / size.name / "generated", root / size.name / "real"
    gen.mkdir(parents=True, exist_ok=True)
    real.mkdir(parents=True, exist_ok=True)
    prompts = {}
    for i in range(n):
        make_video(gen / f"v{i:03d}.mp4", size, seed=i)
        make_video(real / f"v{i:03d}.mp4", size, seed=1000 + i)
        prompts[f"v{i:03d}"] = f"a textured surface drifting slowly, take {i}"
    pfile = root / size.name / "prompts.json"
    pfile.write_text(json.dumps(prompts))
    return gen, real, pfile


def options_for(family: Family, weights_dir: Path, small: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(backbone_options, metric_options) that give the family's networks random weights."""
    from aigve.weights.random_init import random_weights_options

    backbone_options: dict[str, Any] = {}
    metric_options: dict[str, Any] = {}
    for b in family.backbones:
        opts = random_weights_options(b, weights_dir, small=small)
        if b == "clip":  # the clip metrics' own `model` option would win over a backbone option
            for m in family.metrics:
                metric_options[m] = dict(opts)
        else:
            backbone_options[b] = opts
    if small and "is" in family.metrics:  # a handful of frames cannot form IS's 10 splits
        metric_options["is"] = {"splits": 1}
    return backbone_options, metric_options


def decode_only(paths: list[Path], decode_device: str) -> tuple[int, float]:
    from aigve.video.gpu_decode import decode_on
    from aigve.video.sampling import Window

    frames = 0
    t0 = time.perf_counter()
    for p in paths:
        clip, _ = decode_on(p, Window(), decode_device)
        frames += clip.num_frames
    return frames, time.perf_counter() - t0


def run_eval(
    family: Family,
    gen: Path,
    real: Path,
    prompts: Path,
    device: str,
    args: argparse.Namespace,
    bo: dict[str, Any],
    mo: dict[str, Any],
    max_len: int | None = None,
    limit: int | None = None,
) -> Any:
    from aigve import evaluate
    from aigve.data.dataset import Dataset
    from aigve.data.load import load_dataset

    ds: Dataset = load_dataset(generated=gen, real=real if family.real else None, prompts=prompts)
    if limit is not None:
        ds.entries = ds.entries[:limit]
    return evaluate(
        ds,
        list(family.metrics),
        backbone_options=bo,
        metric_options=mo,
        device=device,
        precision=args.precision,
        decode_device=args.decode_device if device != "cpu" else "cpu",
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        max_len=max_len,
        use_cache=False,
        bootstrap=0,
        set_bootstrap=0,
        report=False,
    )


def _values(res: Any) -> dict[str, float | None]:
    return {f"{m}.{o}": v.value for m, agg in res.aggregates.items() for o, v in agg.outputs.items()}


def parity(family: Family, sets: tuple[Path, Path, Path], args: argparse.Namespace, bo: Any, mo: Any) -> str:
    """Every output of the family's metrics on a small subset, CUDA vs CPU: the worst relative difference."""
    gen, real, prompts = sets
    # set metrics compare distributions: twice the videos (a Fréchet distance of 2 samples is degenerate)
    n = args.parity_videos * (2 if family.real else 1)
    kw: dict[str, Any] = {"max_len": args.parity_frames, "limit": n}
    on_gpu = _values(run_eval(family, gen, real, prompts, "cuda", args, bo, mo, **kw))
    on_cpu = _values(run_eval(family, gen, real, prompts, "cpu", args, bo, mo, **kw))
    worst, where, ok = 0.0, "", True
    for k, a in on_cpu.items():
        b = on_gpu.get(k)
        if a is None or b is None:
            if (a is None) != (b is None):
                return f"FAIL {k}: {a} vs {b}"
            continue
        rel = abs(a - b) / max(abs(a), 1e-6)
        tol = (PARITY_RTOL_SET if k.split(".")[0] in SET_METRICS else PARITY_RTOL)[args.precision]
        ok &= rel <= tol
        if rel >= worst:
            worst, where = rel, k
    return f"{'ok' if ok else 'FAIL'} max rel {worst:.1e} ({where})"


def measure(family: Family, size: Size, sets: tuple[Path, Path, Path], args: argparse.Namespace) -> Row:
    import torch

    gen, real, prompts = sets
    cuda = args.device.startswith("cuda")
    row = Row(family.name, size.name)
    bo, mo = options_for(family, args.weights_dir, small=args.smoke)
    paths = sorted(gen.glob("*.mp4")) + (sorted(real.glob("*.mp4")) if family.real else [])
    row.frames, row.decode_s = decode_only(paths, args.decode_device if cuda else "cpu")
    row.videos = len(paths)
    if not args.smoke:  # warm-up: file cache, kernels, cuDNN autotuning
        run_eval(family, gen, real, prompts, args.device, args, bo, mo, max_len=4, limit=1)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    res = run_eval(family, gen, real, prompts, args.device, args, bo, mo)
    if cuda:
        torch.cuda.synchronize()
        row.mem_gib = torch.cuda.max_memory_allocated() / 2**30
    timings = res.provenance.get("timings_seconds", {})
    # steady state: the one-off loading of the networks (a file read, the same in every run) is left out
    row.e2e_s = time.perf_counter() - t0 - sum(v for k, v in timings.items() if k.startswith("load:"))
    row.model_s = sum(v for k, v in timings.items() if k.startswith(("extract:", "score:")))
    failed = [f"{m}: {a.error}" for m, a in res.aggregates.items() if a.error] + [
        str(e.get("error")) for e in res.errors
    ]
    row.notes += failed[:2]
    if res.provenance.get("decode_fallbacks"):
        row.notes.append(
            f"{res.provenance['decode_fallbacks']} videos decoded on the CPU (GPU decode fell back)"
        )
    if cuda and not args.no_parity:
        row.parity = parity(family, sets, args, bo, mo)
    return row


def _rate(n: float, s: float) -> str:
    return f"{n / s:.1f}" if s and s > 0 and not math.isnan(s) else "-"


def print_table(rows: list[Row], header: str) -> None:
    cols = (
        "family",
        "size",
        "videos/s",
        "frames/s e2e",
        "frames/s model-only",
        "frames/s decode-only",
        "GPU mem peak GiB",
        "parity CUDA vs CPU",
    )
    print(header)
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = (
            r.family,
            r.size,
            _rate(r.videos, r.e2e_s),
            _rate(r.frames, r.e2e_s),
            _rate(r.frames, r.model_s),
            _rate(r.frames, r.decode_s),
            "-" if r.mem_gib is None else f"{r.mem_gib:.2f}",
            r.parity,
        )
        print("| " + " | ".join(cells) + " |")
    for r in rows:
        for n in r.notes:
            print(f"note: {r.family} {r.size}: {n}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny videos on the CPU (CI smoke test)")
    ap.add_argument("--videos", type=int, default=None, help="videos per set and size (default 8; smoke 2)")
    ap.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    ap.add_argument("--decode-device", dest="decode_device", default="cpu", help="cpu or cuda (torchcodec)")
    ap.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    ap.add_argument("--num-workers", dest="num_workers", type=int, default=4)
    ap.add_argument("--families", default=None, help="comma-separated substrings of family names")
    ap.add_argument("--sizes", default=None, help="comma-separated: 480p,720p")
    ap.add_argument("--parity-videos", dest="parity_videos", type=int, default=2)
    ap.add_argument("--parity-frames", dest="parity_frames", type=int, default=16)
    ap.add_argument("--no-parity", dest="no_parity", action="store_true")
    ap.add_argument(
        "--workdir", type=Path, default=None, help="where videos and random weights go (temp dir)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("aigve").setLevel(logging.ERROR)

    import torch

    t_start = time.perf_counter()
    if args.smoke:
        args.device = "cpu"
        sizes = SMOKE_SIZES
        n = args.videos or 2
        args.num_workers = 0
        print("smoke run: tiny videos on the CPU (no throughput meaning)")
    else:
        sizes = FULL_SIZES
        n = args.videos or 8
        if torch.cuda.is_available():
            args.device = "cuda"
            print(
                f"device: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
            )
        else:
            args.device = "cpu"
            print("CUDA is not available here: running the CPU path (no GPU memory, no parity column)")
    if args.sizes:
        want = {s.strip() for s in args.sizes.split(",")}
        sizes = tuple(s for s in sizes if s.name in want)
    fams = FAMILIES
    if args.families:
        keys = [k.strip() for k in args.families.split(",")]
        fams = tuple(f for f in FAMILIES if any(k in f.name for k in keys))
    with tempfile.TemporaryDirectory(prefix="aigve-gpu-check-") as tmp:
        root = args.workdir or Path(tmp)
        args.weights_dir = root / "weights"
        rows: list[Row] = []
        for size in sizes:
            t0 = time.perf_counter()
            sets = make_sets(root / "videos", size, n)
            print(
                f"{size.name}: {n} + {n} videos of {size.frames} frames made in {time.perf_counter() - t0:.1f} s"
            )
            for fam in fams:
                try:
                    rows.append(measure(fam, size, sets, args))
                except Exception as exc:  # one family failing must not lose the others' rows
                    rows.append(Row(fam.name, size.name, notes=[f"failed: {type(exc).__name__}: {exc}"]))
                print(f"  {fam.name}: done at {time.perf_counter() - t_start:.0f} s", flush=True)
        header = (
            f"\naigve gpu_check — device {args.device}, precision {args.precision}, decode on "
            f"{args.decode_device if args.device != 'cpu' else 'cpu'}, batch {args.batch_size}, "
            f"{args.num_workers} decode workers; random weights (values are not the standard metrics); "
            f"{time.perf_counter() - t_start:.0f} s in all\n"
        )
        print_table(rows, header)
    failed = any(r.parity.startswith("FAIL") or any(n.startswith("failed") for n in r.notes) for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
