"""Fréchet distance at D=2048: aigve's sqrtm-free version vs pytorch-fid's (scipy.linalg.sqrtm), one run.

Also measures how well covariances from streaming sums match ``np.cov`` (with and without the shift
``GaussianStats`` uses). Writes a markdown snippet with the command and the table.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_frechet.py [--repeats 3] [--threads N] [--out benchmarks/results_frechet.md]

``--threads N`` caps the BLAS/LAPACK threads of both implementations (set before numpy is imported);
on a shared, oversubscribed machine 1 thread gives steadier numbers. Needs ``pytorch-fid==0.3.0``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

if "--threads" in sys.argv:  # must happen before numpy/scipy load their BLAS
    _n = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _n

import numpy as np  # noqa: E402
import scipy  # noqa: E402

from aigve.metrics.functional.frechet import frechet_distance  # noqa: E402
from aigve.metrics.functional.gaussian import GaussianStats  # noqa: E402


def relu_features(rng: np.random.Generator, n: int, d: int, scale: float, bias: float) -> np.ndarray:
    """Pooled-ReLU-like features: 256 latent factors + noise, rectified (mean ~0.3-0.6, correlated)."""
    w = rng.standard_normal((256, d)) / 16
    x = rng.standard_normal((n, 256)) @ w + 0.3 * rng.standard_normal((n, d))
    return np.maximum(scale * x + bias, 0.0)


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def cov_from_sums_errors(rng: np.random.Generator, d: int) -> list[tuple[str, float, float, float]]:
    rows = []
    for offset in (0.0, 1e2, 1e4):
        x = relu_features(rng, 5000, d, 1.0, 0.2) + offset
        ref = np.cov(x, rowvar=False)  # two-pass: centres first
        scale = np.abs(ref).max()
        s, o = x.sum(axis=0), x.T @ x
        naive = (o - np.outer(s, s) / len(x)) / (len(x) - 1)
        st = GaussianStats(d)
        for i in range(0, len(x), 500):
            st.update(x[i : i + 500])
        rows.append(
            (
                f"{x.mean():.3g}",
                float(np.abs(naive - ref).max() / scale),
                float(np.abs(st.cov - ref).max() / scale),
                offset,
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: library default)")
    ap.add_argument("--out", default="benchmarks/results_frechet.md")
    args = ap.parse_args()

    try:
        from pytorch_fid.fid_score import calculate_frechet_distance
    except ImportError:
        sys.exit("needs the reference: pip install pytorch-fid==0.3.0")
    warnings.filterwarnings("ignore", message="The `disp` argument is deprecated")

    rng = np.random.default_rng(0)
    d = args.dim
    x1 = relu_features(rng, args.samples, d, 1.0, 0.2)
    x2 = relu_features(rng, args.samples, d, 1.1, 0.15)
    mu1, s1 = x1.mean(axis=0), np.cov(x1, rowvar=False)
    mu2, s2 = x2.mean(axis=0), np.cov(x2, rowvar=False)

    ours_t, ref_t = [], []
    ours_v = ref_v = float("nan")
    frechet_distance(mu1, s1, mu2, s2)  # warm-up (LAPACK/BLAS threads)
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        t, ours_v = timed(lambda: frechet_distance(mu1, s1, mu2, s2))
        ours_t.append(t)
        t, ref_v = timed(lambda: float(calculate_frechet_distance(mu1, s1, mu2, s2)))
        ref_t.append(t)
    mo, mr = statistics.median(ours_t), statistics.median(ref_t)
    abs_diff = abs(ours_v - ref_v)
    rel_diff = abs_diff / abs(ref_v)

    cov_rows = cov_from_sums_errors(np.random.default_rng(1), d)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cmd = "PYTHONPATH=src:. .venv/bin/python benchmarks/bench_frechet.py " + " ".join(sys.argv[1:])
    lines = [
        "# Fréchet distance benchmark",
        "",
        f"Command: `{cmd.strip()}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), load average {load:.1f} at start of the run; "
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
        f"BLAS threads: {args.threads or 'library default'}.",
        f"Inputs: D={d}, mean and unbiased covariance of {args.samples} pooled-ReLU-like feature rows per set "
        f"(mean ≈ {x1.mean():.2f}); {args.repeats} interleaved repeats, median.",
        "",
        "| implementation | median time (s) | all times (s) | FID |",
        "|---|---|---|---|",
        f"| aigve `frechet_distance` (Cholesky + trmm + syrk + syevr) | {mo:.3f} | "
        f"{', '.join(f'{t:.2f}' for t in ours_t)} | {ours_v:.10f} |",
        f"| pytorch-fid 0.3.0 `calculate_frechet_distance` (scipy sqrtm) | {mr:.3f} | "
        f"{', '.join(f'{t:.2f}' for t in ref_t)} | {ref_v:.10f} |",
        "",
        f"Speed-up: **{mr / mo:.1f}x** (goal ≥ 10x). Difference: abs {abs_diff:.3g}, relative {rel_diff:.3g} "
        f"(goal ≤ 1e-6).",
        "",
        "## Covariance from sums",
        "",
        f"Max entry error of the covariance vs `np.cov` (two-pass), relative to the largest entry; D={d}, "
        "5000 rows in batches of 500. 'naive' = Σxxᵀ - n μμᵀ in float64; 'shifted' = `GaussianStats` "
        "(sums of x - first batch's mean).",
        "",
        "| feature offset | mean feature | naive | shifted (GaussianStats) |",
        "|---|---|---|---|",
    ]
    for mean_s, naive_e, ours_e, offset in cov_rows:
        lines.append(f"| {offset:g} | {mean_s} | {naive_e:.2e} | {ours_e:.2e} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
