"""Set-level bootstrap CIs (issue #16): the metrics' resamplers vs recomputing the metric on restacked rows.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_set_bootstrap.py [--videos 100] [--frames 16] [--resamples 100] [--old-resamples 10] [--out benchmarks/results_set_bootstrap.md]

Both sides of every comparison get the same synthetic features and the same resample indices (the
engine's: ``bootstrap_set_metric`` with ``--seed``). "old" is what the engine did before: for each
resample, stack the rows of the drawn videos and call the metric's ``value_from_features`` (D x D
covariances, pivoted Cholesky, eigenvalues; ``kid`` on the stacked rows). "new" is
``bootstrap_set_metric(..., resampler=metric.bootstrap_resampler)``, what the engine does now.

Features (synthetic, the real dimensions): FID 2048-d Inception pool3 with ``--frames`` rows per video,
KID on the same rows with its defaults (subset_size 1000, 100 subsets), FVD 400-d I3D logits with one
clip row per video, fvd_videomae 1408-d with one row per video; plus the case the issue reported (FID on
1280-d EfficientNet-Lite0 features, 5 videos x 16 frames). A video's rows share a video-level component,
so frames of one video are correlated as in real clips. Where the old route is slow, it is timed on the
first ``--old-resamples`` resamples and scaled to ``--resamples`` (its cost per resample is flat); the
values of old and new are compared on those same resamples.

Share of a run: the forward passes of a default run at ``--videos`` videos per side are timed on this
machine with the real architectures (seeded random weights: speed does not depend on values) — FID
Inception-v3 on ``--frames`` frames at 299 px per video, the fused channels-last I3D on one 16x224x224
clip per video — and scaled to both sides. Decoding is left out, so the share printed is an upper bound.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigve.metrics.frame_distribution import FID, KID
from aigve.metrics.video_distribution import FVD, FVDVideoMAE
from aigve.results.stats import bootstrap_set_metric, resample_indices


def features(
    rng: np.random.Generator, videos: int, rows: int, dim: int, shift: float, relu: bool
) -> list[np.ndarray]:
    """Per-video ``[rows, dim]`` float32 blocks: 128 latent factors, a video-level component shared by
    its rows, row noise; rectified (pooled-ReLU-like) when ``relu``."""
    w = rng.standard_normal((128, dim)) / 12
    out = []
    for _ in range(videos):
        z = rng.standard_normal(128) + 0.5 * rng.standard_normal((rows, 128))
        x = z @ w + 0.3 * rng.standard_normal((rows, dim)) + shift
        out.append((np.maximum(x + 0.3, 0.0) if relu else 3.0 * x).astype(np.float32))
    return out


def value_fn(metric: Any) -> Callable[[np.ndarray, np.ndarray], float]:
    def fn(r: np.ndarray, g: np.ndarray) -> float:  # the engine's wrapper around value_from_features
        v = metric.value_from_features(r, g)
        return float("nan") if v is None else float(v)

    return fn


def compare(
    name: str,
    metric: Any,
    real: list[np.ndarray],
    gen: list[np.ndarray],
    resamples: int,
    old_resamples: int,
    seed: int,
) -> dict[str, Any]:
    fn = value_fn(metric)
    t0 = time.perf_counter()
    new = bootstrap_set_metric(
        fn,
        real,
        gen,
        resamples,
        seed=seed,
        method=metric.bootstrap_method,
        resampler=metric.bootstrap_resampler,
    )
    t_new = time.perf_counter() - t0
    # the resample indices bootstrap_set_metric drew; old and new on the first k of them
    rng = np.random.default_rng(seed)
    idx_r = resample_indices(len(real), resamples, rng)
    idx_g = resample_indices(len(gen), resamples, rng)
    k = min(old_resamples, resamples)
    fast = metric.bootstrap_resampler(real, gen)
    t0 = time.perf_counter()
    fn(np.concatenate(real), np.concatenate(gen))  # the estimate: fn on the full sets, in both
    t_estimate = time.perf_counter() - t0
    t0 = time.perf_counter()
    old_vals = [fn(np.concatenate([real[i] for i in ir]), np.concatenate([gen[j] for j in jg]))
                for ir, jg in zip(idx_r[:k], idx_g[:k], strict=True)]  # fmt: skip
    t_old_k = time.perf_counter() - t0
    new_vals = [fast(ir, jg) for ir, jg in zip(idx_r[:k], idx_g[:k], strict=True)]
    rel = max(abs(a - b) / abs(a) for a, b in zip(old_vals, new_vals, strict=True))
    t_old = t_estimate + t_old_k * resamples / k
    rows = sum(len(b) for b in real)
    print(
        f"{name}: old {t_old:.2f} s{' (scaled)' if k < resamples else ''}, new {t_new:.2f} s, rel {rel:.1e}"
    )
    return dict(name=name, rows=rows, dim=real[0].shape[1], old=t_old, scaled=k < resamples, k=k, new=t_new,
                rel=rel, ci=new)  # fmt: skip


def time_forward(videos: int, frames: int, repeats: int) -> dict[str, float]:
    """Seconds per video of the FID Inception forward (``frames`` frames) and of the I3D forward (one clip)."""
    from aigve.backbones.nets.fid_inception import FIDInceptionV3
    from aigve.backbones.nets.i3d import InceptionI3d

    torch.manual_seed(0)
    out = {}
    inc = FIDInceptionV3().eval()
    x = torch.rand(frames, 3, 299, 299)
    i3d = InceptionI3d().eval().fused().to(memory_format=torch.channels_last_3d)
    clip = (torch.rand(1, 3, 16, 224, 224) * 2 - 1).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        for name, net, inp in (("fid", inc, x), ("fvd", i3d, clip)):
            net(inp)  # warm-up
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                net(inp)
                best = min(best, time.perf_counter() - t0)
            out[name] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=100, help="videos per side")
    ap.add_argument(
        "--frames", type=int, default=16, help="FID/KID rows (frames) per video (the default sampler)"
    )
    ap.add_argument("--resamples", type=int, default=100, help="--set-bootstrap (default 100)")
    ap.add_argument("--old-resamples", type=int, default=10, help="old route timed on this many, then scaled")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="forward-pass timing repeats (best of)")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    v, f, r = a.videos, a.frames, a.resamples
    results = []
    # the case of the issue: 5 videos, EfficientNet-Lite0 (1280-d), 16 frames per video
    eff = FID(backbone="efficientnet_lite0")
    results.append(compare("fid, 5 videos x 16 frames, 1280-d (issue #16)", eff,
                           features(rng, 5, 16, 1280, 0.0, True), features(rng, 5, 16, 1280, 0.05, True),
                           r, r, a.seed))  # fmt: skip
    real, gen = features(rng, v, f, 2048, 0.0, True), features(rng, v, f, 2048, 0.05, True)
    results.append(
        compare(f"fid, {v} videos x {f} frames, 2048-d", FID(), real, gen, r, a.old_resamples, a.seed)
    )
    results.append(
        compare(f"kid, {v} videos x {f} frames, 2048-d", KID(), real, gen, r, a.old_resamples, a.seed)
    )
    del real, gen
    fvd_r, fvd_g = features(rng, v, 1, 400, 0.0, False), features(rng, v, 1, 400, 0.1, False)
    results.append(compare(f"fvd, {v} videos x 1 clip, 400-d", FVD(), fvd_r, fvd_g, r, r, a.seed))
    mae_r, mae_g = features(rng, v, 1, 1408, 0.0, False), features(rng, v, 1, 1408, 0.1, False)
    results.append(compare(f"fvd_videomae, {v} videos x 1 clip, 1408-d", FVDVideoMAE(), mae_r, mae_g, r,
                           a.old_resamples, a.seed))  # fmt: skip
    fwd = time_forward(v, f, a.repeats)
    run = {"fid": 2 * v * fwd["fid"], "fvd": 2 * v * fwd["fvd"]}
    print(
        f"forward per video: FID Inception {fwd['fid']:.2f} s ({f} frames), I3D {fwd['fvd']:.2f} s (1 clip)"
    )

    lines = [
        "## Set-level bootstrap CI: resamplers vs recomputing per resample (`benchmarks/bench_set_bootstrap.py`)",
        "",
        "Command: `PYTHONPATH=src:. .venv/bin/python benchmarks/bench_set_bootstrap.py "
        f"--videos {v} --frames {f} --resamples {r} --old-resamples {a.old_resamples}`",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, numpy/scipy BLAS default threads. "
        f"Synthetic features, same resample indices (seed {a.seed}) for old and new; "
        '"scaled": the old route was timed on the first k resamples and scaled to all.',
        "",
        "| set metric | rows per side | D | old (s) | new (s) | new / old | max rel. diff (k resamples) |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in results:
        old = f"{x['old']:.2f}" + (f" (scaled from {x['k']})" if x["scaled"] else "")
        lines.append(f"| {x['name']} | {x['rows']} | {x['dim']} | {old} | {x['new']:.2f} | "
                     f"{x['new'] / x['old']:.3f} | {x['rel']:.1e} ({x['k']}) |")  # fmt: skip
    lines += [
        "",
        f"Share of a default run at {v} videos per side spent in the set bootstrap ({r} resamples). Run = the "
        "forward passes timed here, scaled to both sides (decoding left out, so the share is an upper bound):",
        "",
        "| run | forward passes (s) | bootstrap old (s) | share old | bootstrap new (s) | share new |",
        "|---|---|---|---|---|---|",
    ]
    for key, idx, what in (("fid", 1, f"FID, {f} frames/video at 299 px (Inception-v3)"),
                           ("fvd", 3, "FVD, one 16x224x224 clip/video (fused I3D)")):  # fmt: skip
        b = results[idx]
        so, sn = b["old"] / (run[key] + b["old"]), b["new"] / (run[key] + b["new"])
        lines.append(
            f"| {what} | {run[key]:.1f} | {b['old']:.1f} | {so:.1%} | {b['new']:.1f} | **{sn:.1%}** |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
