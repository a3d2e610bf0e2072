"""Peak memory of a run at 100 vs 1000 videos (small clips): the engine's memory must stay flat.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_memory.py [--small 100] [--large 1000]

Each size runs in a fresh subprocess (`flicker` + `fid` on EfficientNet-Lite0, one frame per video
for FID, no cache); the peak resident set size of that process is reported. FID keeps float64
sufficient statistics, per-video metrics keep one small record per video, so peak memory should
barely move with the number of videos. Goal: within 10%.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys
from pathlib import Path
import numpy as np
from aigve.api import evaluate
from aigve.data.dataset import Dataset
from aigve.types import Entry
from aigve.video.encode import write_video
n, root = int(sys.argv[1]), Path(sys.argv[2])
rng = np.random.default_rng(0)
paths = []
for i in range(n):
    f = rng.integers(0, 255, size=(4, 32, 32, 3), dtype=np.uint8)
    paths.append(write_video(root / f"v{i:05d}.mp4", f, fps=8))
ds = Dataset("mem", [Entry(id=p.stem, generated=p, real=paths[(i + 1) % n]) for i, p in enumerate(paths)])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = evaluate(ds, ["flicker", "fid"], use_cache=False, bootstrap=0, set_bootstrap=0,
               metric_options={"fid": {"backbone": "efficientnet_lite0", "frames": 1}})
print(json.dumps({"n": n, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "before_run_kb": before, "fid": res.value("fid")}))
"""


def run(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), tmp], capture_output=True, text=True, check=True
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=1000)
    ap.add_argument("--out", default="benchmarks/results_memory.md")
    a = ap.parse_args()
    s, l_ = run(a.small), run(a.large)
    ratio = l_["peak_kb"] / s["peak_kb"]
    text = "\n".join(
        [
            "## Peak memory vs number of videos (`benchmarks/bench_memory.py`)",
            "",
            f"Command: `PYTHONPATH=src:. .venv/bin/python benchmarks/bench_memory.py --small {a.small} --large {a.large}`",
            "(`flicker` + `fid` on EfficientNet-Lite0, 4-frame 32x32 clips, fresh process per size, no cache)",
            "",
            "| videos | peak RSS (MiB) | RSS before the run (MiB) |",
            "|---|---|---|",
            f"| {s['n']} | {s['peak_kb'] / 1024:.0f} | {s['before_run_kb'] / 1024:.0f} |",
            f"| {l_['n']} | {l_['peak_kb'] / 1024:.0f} | {l_['before_run_kb'] / 1024:.0f} |",
            "",
            f"Peak ratio {a.large} / {a.small} videos: **{ratio:.3f}** (goal ≤ 1.10).",
            "",
        ]
    )
    print(text)
    Path(a.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
