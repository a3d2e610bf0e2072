"""Peak memory of decoding one long high-resolution video: ``aigve.video.decode_video`` against the plain
PyAV pattern (``frame.to_ndarray`` per frame into a list, then ``np.stack``), in one run.

Each side decodes the same generated 1080p clip in its own fresh Python process (so neither inherits the
other's heap) and reports its peak resident set size (``ru_maxrss``) and wall time. The frames are
identical on both sides (checked by a checksum). Lower is better; the ratio is ours / peer.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_decode_memory.py                 # 240 frames
    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_decode_memory.py --frames 120 --repeats 1

Writes a markdown snippet (command + table) to ``benchmarks/results_decode_memory.md``.
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
import json, resource, sys, time, zlib
from pathlib import Path
import numpy as np
path, side = Path(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
if side == "aigve":
    from aigve.video import decode_video
    frames = decode_video(path).frames
else:
    import av
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)])
wall = time.perf_counter() - t0
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peak_mib": peak_mib, "wall_s": wall, "shape": list(frames.shape),
                  "crc": zlib.crc32(frames[:: max(1, len(frames) // 8)].tobytes())}))
"""


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    """A 1080p clip of a few distinct frames repeated (cheap to encode, full size to decode)."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    base = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(frames):
            for pkt in s.encode(av.VideoFrame.from_ndarray(base[i % 4], format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def measure(path: Path, side: str) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), side], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=240, help="frames in the generated clip (default 240: 8 s)")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--repeats", type=int, default=2, help="runs per side, alternating who goes first")
    ap.add_argument("--out", default=str(HERE / "results_decode_memory.md"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "long1080.mp4"
        make_clip(clip, args.frames, args.width, args.height)
        runs: dict[str, list[dict[str, float]]] = {"aigve": [], "peer": []}
        for r in range(args.repeats):
            for side in ("aigve", "peer") if r % 2 == 0 else ("peer", "aigve"):
                runs[side].append(measure(clip, side))
    a, p = runs["aigve"], runs["peer"]
    assert a[0]["shape"] == p[0]["shape"] and a[0]["crc"] == p[0]["crc"], (
        "the two sides decoded different frames"
    )
    peak = {k: min(x["peak_mib"] for x in v) for k, v in runs.items()}
    wall = {k: min(x["wall_s"] for x in v) for k, v in runs.items()}
    frame_mib = args.width * args.height * 3 / 2**20
    t, h, w, _ = a[0]["shape"]
    lines = [
        "# Decode peak memory: aigve vs PyAV list + np.stack",
        "",
        f"Command: `PYTHONPATH=src:. .venv/bin/python benchmarks/bench_decode_memory.py --frames {args.frames} "
        f"--repeats {args.repeats}`",
        f"Clip: {t} frames of {w}x{h} (one decoded frame = {frame_mib:.1f} MiB, all frames = "
        f"{t * frame_mib:.0f} MiB). {platform.machine()}, Python {platform.python_version()}; best of "
        f"{args.repeats} fresh processes per side, interleaved.",
        "",
        "| side | peak RSS (MiB) | wall (s) |",
        "|---|--:|--:|",
        f"| aigve `decode_video` | {peak['aigve']:.0f} | {wall['aigve']:.2f} |",
        f"| peer: PyAV `to_ndarray` list + `np.stack` | {peak['peer']:.0f} | {wall['peer']:.2f} |",
        "",
        f"Ratio aigve / peer: peak memory **{peak['aigve'] / peak['peer']:.2f}**, wall time "
        f"**{wall['aigve'] / wall['peer']:.2f}** (identical frames, checked).",
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
