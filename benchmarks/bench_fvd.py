"""FVD: aigve's engine (``fvd`` metric, no cache) vs cd-fvd 0.1.1 on the same videos and I3D weights.

Both sides read the same small H.264 clips (``--n`` generated and ``--n`` real, 16+ frames), take the
first 16 frames, and use the *same* seeded random I3D weights file (cd-fvd loads it through its
``ckpt_path``; aigve through ``--metric-option fvd.weights``), so the two FVD values must agree.

Timed per side, end to end from the video files:
- aigve: ``Engine(...).run()`` with a run-private cache (nothing reused between repeats): model load,
  decoding (PyAV), sampling, I3D on each clip, statistics, Fréchet distance;
- cd-fvd: decoding the same files with PyAV to ``[B, 16, H, W, 3]`` uint8 arrays (its API takes
  arrays; its folder loader would pick random clips), ``cdfvd(model="i3d", ckpt_path=..., n_real="full",
  n_fake="full")`` and ``compute_fvd(real, fake)`` (batches of 16 clips, unfused I3D, scipy sqrtm).

Repeats alternate the two sides (A B A B ...) so background load hits both; the report gives the
median of each side and the ratio aigve / cd-fvd.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_fvd.py --n 16 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_clip(t: int, seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(t):
        base = 128 + 100 * np.sin((xx + (seed % 7 + 1) * i) / (6 + seed % 5)) * np.cos((yy - i) / 9)
        frame = np.stack([base, np.roll(base, 5 * (seed % 4), axis=1), 255 - base], axis=-1)
        frames.append(frame + rng.normal(0, 5, frame.shape))
    return np.clip(frames, 0, 255).astype(np.uint8)


def decode_first(path: Path, n: int) -> np.ndarray:
    import av

    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    while len(out) < n:
        out.append(out[-1])
    return np.stack(out)


def run_aigve(gens: list[Path], reals: list[Path], weights: Path, frames: int) -> tuple[float, float]:
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.types import Entry

    ds = Dataset("bench", [Entry(id=p.stem, generated=p) for p in gens], extra_reals=list(reals))
    cfg = RunConfig(
        metrics=["fvd"],
        metric_options={"fvd": {"frames": frames, "weights": str(weights)}},
        progress=False,
        bootstrap=0,
    )
    t0 = time.perf_counter()
    res = Engine(ds, cfg).run()
    dt = time.perf_counter() - t0
    agg = res.aggregates["fvd"]
    if agg.error:
        raise RuntimeError(agg.error)
    return dt, float(agg.outputs["fvd"].value)  # type: ignore[arg-type]


def run_cdfvd(gens: list[Path], reals: list[Path], weights: Path, frames: int) -> tuple[float, float]:
    from cdfvd import fvd as cdfvd_mod

    t0 = time.perf_counter()
    fake = np.stack([decode_first(p, frames) for p in gens])
    real = np.stack([decode_first(p, frames) for p in reals])
    ev = cdfvd_mod.cdfvd(model="i3d", ckpt_path=str(weights), n_real="full", n_fake="full", device="cpu")
    value = float(ev.compute_fvd(real, fake))
    return time.perf_counter() - t0, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="videos per side")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from aigve.backbones.nets.i3d import random_state_dict
    from aigve.video.encode import write_video

    with tempfile.TemporaryDirectory(prefix="bench-fvd-") as tmp:
        root = Path(tmp)
        weights = root / "i3d_random.pt"
        torch.save(random_state_dict(seed=0), weights)
        gens = [write_video(root / f"gen{i:02d}.mp4", make_clip(args.frames + 4, i)) for i in range(args.n)]
        reals = [
            write_video(root / f"real{i:02d}.mp4", make_clip(args.frames + 4, 100 + i)) for i in range(args.n)
        ]
        times: dict[str, list[float]] = {"aigve": [], "cd-fvd": []}
        values: dict[str, float] = {}
        for r in range(args.repeats):
            order = (("aigve", run_aigve), ("cd-fvd", run_cdfvd))
            for name, fn in order if r % 2 == 0 else order[::-1]:
                dt, v = fn(gens, reals, weights, args.frames)
                times[name].append(dt)
                values[name] = v
                print(f"repeat {r} {name}: {dt:.2f} s, FVD {v:.6f}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    rel = abs(values["aigve"] - values["cd-fvd"]) / abs(values["cd-fvd"])
    print(
        f"\nvideos: {args.n} generated + {args.n} real, {args.frames} frames, 224 px; torch threads "
        f"{torch.get_num_threads()}\n"
        f"aigve  median {med['aigve']:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['aigve'])})\n"
        f"cd-fvd median {med['cd-fvd']:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['cd-fvd'])})\n"
        f"ratio aigve/cd-fvd: {med['aigve'] / med['cd-fvd']:.2f}x\n"
        f"FVD aigve {values['aigve']:.6f}  cd-fvd {values['cd-fvd']:.6f}  relative difference {rel:.2e}"
    )


if __name__ == "__main__":
    main()
