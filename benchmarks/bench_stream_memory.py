"""Peak memory of a run on one long 1080p video vs a short one, at default settings: streaming keeps it flat.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_stream_memory.py                  # 5 s vs 60 s
    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_stream_memory.py --long 30 --metrics flicker
    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_stream_memory.py --metrics simplevqa --random-weights

Generates two 1920x1080 30 fps videos (a few distinct frames repeated: cheap to encode, full size to decode),
then runs ``evaluate`` on each in a fresh Python process (no cache, default settings: the long one is streamed
through the extractors in chunks) and reports that process's peak resident set size (``ru_maxrss``). Optionally
(``--whole``) the short video again with streaming off, to show what holding the decoded window costs. Goal:
peak(long) <= 1.2 x peak(short). Writes (or replaces) its section, one per metric set, in
``benchmarks/results_stream_memory.md``.

``--random-weights`` (for ``simplevqa``, whose backbones choose their own frames: one key frame and one 32-frame
clip per second, declared as frame windows): its checkpoints cannot be downloaded here, so they are written with
seeded random weights in the released layouts (same shapes, same memory, meaningless scores) and passed as the
metric's options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from aigve.api import evaluate
from aigve.data.dataset import Dataset
from aigve.types import Entry
path, metrics, stream = Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3] == "1"
options = json.loads(sys.argv[4])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ds = Dataset("mem", [Entry(id=path.stem, generated=path)])
if not stream:  # the whole-window path, for reference
    from aigve.engine.execute import Engine
    Engine._stream_plan = lambda self, *args, **kwargs: None
t0 = time.perf_counter()
res = evaluate(ds, metrics, metric_options=options, use_cache=False, bootstrap=0, set_bootstrap=0, report=False)
wall = time.perf_counter() - t0
vals = {f"{r.metric}.{r.output}": r.value for r in res.records}
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "before_mib": before / 1024, "wall_s": wall, "values": vals,
                  "errors": [e["error"] for e in res.errors]}))
"""


def make_video(path: Path, seconds: float, fps: int = 30, width: int = 1920, height: int = 1080) -> Path:
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    base = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(int(round(seconds * fps))):
            for pkt in s.encode(av.VideoFrame.from_ndarray(base[(i // 3) % 4], format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def random_weights(folder: Path) -> dict[str, dict[str, str]]:
    """SimpleVQA's two checkpoints with seeded random weights in the released layouts, as metric options."""
    import torch

    from aigve.backbones.nets.simplevqa import SimpleVQANet
    from aigve.backbones.nets.slowfast import SlowFastR50
    from tests.backbones.test_slowfast import seeded_state  # needs the repo root on PYTHONPATH

    svqa, sf = folder / "UGC_BVQA_model.pth", folder / "SLOWFAST_8x8_R50.pyth"
    torch.save({"module." + k: v for k, v in seeded_state(SimpleVQANet().state_dict(), 3).items()}, svqa)
    torch.save({"model_state": seeded_state(SlowFastR50().state_dict(), 0)}, sf)
    return {"simplevqa": {"weights": str(svqa), "slowfast_weights": str(sf)}}


def measure(path: Path, metrics: str, stream: bool = True, options: dict | None = None) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), metrics, "1" if stream else "0", json.dumps(options or {})],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", type=float, default=5.0, help="seconds of the short video (default 5)")
    ap.add_argument("--long", type=float, default=60.0, help="seconds of the long video (default 60)")
    ap.add_argument("--metrics", default="flicker,freeze,frame_consistency")
    ap.add_argument("--whole", action="store_true", help="also the short video with streaming off")
    ap.add_argument("--random-weights", action="store_true", help="seeded random SimpleVQA checkpoints")
    ap.add_argument("--out", default=str(HERE / "results_stream_memory.md"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        opts = random_weights(Path(tmp)) if a.random_weights else {}
        short = make_video(Path(tmp) / "short.mp4", a.short)
        long = make_video(Path(tmp) / "long.mp4", a.long)
        rows = [
            ("short", a.short, True, measure(short, a.metrics, options=opts)),
            ("long", a.long, True, measure(long, a.metrics, options=opts)),
        ]
        if a.whole:
            rows.append(("short", a.short, False, measure(short, a.metrics, stream=False, options=opts)))
    for _, _, _, r in rows:
        assert not r["errors"], r["errors"]
    ratio = rows[1][3]["peak_mib"] / rows[0][3]["peak_mib"]
    frame_mib = 1920 * 1080 * 3 / 2**20
    cmd = f"PYTHONPATH=src:. .venv/bin/python benchmarks/bench_stream_memory.py --short {a.short:g} --long {a.long:g}"
    cmd += f" --metrics {a.metrics}" + (" --whole" if a.whole else "")
    cmd += " --random-weights" if a.random_weights else ""
    heading = f"## Peak memory: a long 1080p video vs a short one, `{a.metrics}`"
    lines = [
        heading,
        "",
        f"Command: `{cmd}`",
        f"Videos: 1920x1080, 30 fps, H.264 (one decoded frame = {frame_mib:.1f} MiB). Metrics `{a.metrics}` at",
        "default settings (no `--max-seconds`), no cache, one fresh process per row; peak RSS of that process.",
        *(
            ["Seeded random weights in the released SimpleVQA/SlowFast layouts (scores meaningless)."]
            if a.random_weights
            else []
        ),
        f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores shared with other jobs.",
        "",
        "| video | frames | decoded window (MiB) | streamed | peak RSS (MiB) | RSS before the run (MiB) | wall (s) |",
        "|---|--:|--:|---|--:|--:|--:|",
    ]
    for name, secs, stream, r in rows:
        n = int(round(secs * 30))
        lines.append(
            f"| {name} ({secs:g} s) | {n} | {n * frame_mib:.0f} | {'yes' if stream else 'no (whole window)'} | "
            f"{r['peak_mib']:.0f} | {r['before_mib']:.0f} | {r['wall_s']:.1f} |"
        )
    lines += ["", f"Peak ratio {a.long:g} s / {a.short:g} s: **{ratio:.3f}** (goal ≤ 1.2).", ""]
    text = "\n".join(lines)
    print(text)
    print(json.dumps({k: r["values"] for k, _, _, r in rows[:2]}, indent=1))
    out = Path(a.out)
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    sections = ["## " + sec.removeprefix("## ").rstrip() for sec in old.split("\n## ") if sec.strip()]
    kept = [sec for sec in sections if not sec.startswith(heading)]
    out.write_text("\n\n".join([*kept, text.rstrip()]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
