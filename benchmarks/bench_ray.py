"""The Ray engine (``--engine ray``) against the local engine on this machine: throughput with 1 and 2 model
workers, Ray's fixed and per-task costs, and the dataset size at which Ray with 2 workers would break even.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_ray.py                      # about 12 minutes on 2 busy cores
    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_ray.py --decode-videos 8 --model-videos 4 --tiny-videos 8

One process is the driver of every run. It starts one local Ray (``--ray-cpus`` logical CPUs, default 3 on
this 2-core box, see below; loopback, no dashboard, a 256 MiB object store) and reuses it for all Ray runs, so the cluster start-up is timed once, on its own line;
every Ray run still starts its own model actors (a new process each, importing torch and loading the
backbones), which is part of each run's fixed cost. Three sets of generated videos:

- *decode-bound*: longer, larger videos scored with ``flicker`` (its backbone ``frame_absdiff`` is a mean of
  absolute pixel differences, so decoding is nearly all the work); ``frame_absdiff`` takes one video per call,
  so each video is its own Ray task;
- *model-bound*: small short videos, generated and real, scored with ``fid`` on the real Inception
  architecture with seeded random weights (``random_weights_options(..., small=True)``) loaded through the
  normal loader; the frames are resized to 299x299, so the network is nearly all the work; up to 8 videos per
  Ray task (the local engine's cross-video batch);
- *tiny*: very small videos with ``flicker``: almost no work per video, so Ray minus local per video is Ray's
  cost per task.

Each set runs on the local engine (``engine="local"``, its default two decode threads), Ray with 1 worker and
Ray with 2 workers, each with a fresh cache directory (a cold cache: every run decodes and extracts every
video), ``bootstrap=0``. Per-video values (``results.per_video``) and the aggregates must be the same as the
local run's. The sides run in ``--repeats`` rounds (default 2), the order reversed every other round, and each
side's best time is kept: the box is shared, and a burst of load on one side's turn would skew a ratio. Each
side also runs on the first video alone: that run's wall time is the side's fixed cost per
run (for Ray: planning, actor start, torch import, model load, Ray Data start and stop), and
``(T(N) - T(1)) / (N - 1)`` is its cost per further video. The break-even size solves
``a_ray + b_ray * (n - 1) = a_local + b_local * (n - 1)`` with ``a = T(1)``:
``n* = 1 + (a_ray - a_local) / (b_local - b_ray)``, which exists only
when Ray's cost per video is below the local engine's.

Why 3 logical CPUs on 2 cores: each model actor reserves 1 CPU (``ray_cpus_per_worker``) and each decode task
1 CPU (``ray_decode_cpus``). With ``num_cpus=2`` and ``ray_workers=2`` the two actors hold both CPUs, no decode
task is ever scheduled and the run waits forever (measured with Ray 2.60: no progress after 8 minutes on 3 tiny
videos). ``--ray-cpus 2`` reproduces that; the 2-worker side is then skipped rather than left hanging.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent

#: settings of every run besides the engine's (no bootstrap: the timing is the per-video work)
COMMON: dict[str, Any] = {"bootstrap": 0, "set_bootstrap": 0, "report": False}

#: the sides of each set: label -> ``evaluate`` keywords
SIDES: dict[str, dict[str, Any]] = {
    "local": {"engine": "local"},
    "ray, 1 worker": {"engine": "ray", "ray_workers": 1},
    "ray, 2 workers": {"engine": "ray", "ray_workers": 2},
}


def pattern(t: int, h: int, w: int, seed: int, speed: float = 2.0) -> np.ndarray:
    """A textured pattern translating by ``speed`` px/frame (the tests' ``smooth_clip``): compressible, with
    motion."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h // 8 + 2, (w + int(speed * t)) // 8 + 2, 3)).astype(np.float32)
    big = np.kron(base, np.ones((8, 8, 1), dtype=np.float32))
    frames = [big[:h, int(round(i * speed)) : int(round(i * speed)) + w] for i in range(t)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def make_set(root: Path, n: int, frames: int, size: int, real: bool) -> Any:
    """``n`` generated videos (and as many real ones when ``real``) as a dataset."""
    from aigve.data.dataset import Dataset
    from aigve.types import Entry
    from aigve.video import write_video

    gen, ref = root / "gen", root / "real"
    gen.mkdir(parents=True)
    entries = []
    for i in range(n):
        g = write_video(gen / f"v{i:03d}.mp4", pattern(frames, size, size, seed=i), fps=8)
        r = None
        if real:
            ref.mkdir(exist_ok=True)
            r = write_video(
                ref / f"v{i:03d}.mp4", pattern(frames, size, size, seed=1000 + i, speed=3.0), fps=8
            )
        entries.append(Entry(id=f"v{i:03d}", generated=g, real=r))
    return Dataset(root.name, entries)


def head(ds: Any, n: int) -> Any:
    return type(ds)(name=ds.name, entries=list(ds.entries[:n]), source=ds.source)


@dataclass
class Workload:
    name: str
    dataset: Any
    metrics: list[str]
    kwargs: dict[str, Any]
    what: str
    walls: dict[str, float] = field(default_factory=dict)  # side -> wall seconds on all videos
    walls1: dict[str, float] = field(default_factory=dict)  # side -> wall seconds on the first video
    groups: dict[str, int] = field(default_factory=dict)  # side -> Ray tasks (groups) of the full run
    same: dict[str, str] = field(default_factory=dict)  # side -> comparison with the local run
    rounds: dict[str, list[tuple[float, float]]] = field(
        default_factory=dict
    )  # side -> (T(1), T(N)) per round
    ref: Any = None  # the local run's results (the reference of the comparisons)

    @property
    def n(self) -> int:
        return len(self.dataset.entries)

    def fixed(self, side: str) -> float:
        return self.walls1[side]

    def break_even(self, side: str) -> float | None:
        """Videos at which ``side`` takes as long as the local engine: ``T(n) = T(1) + b * (n - 1)`` for
        both."""
        b_l, b_r = self.per_video("local"), self.per_video(side)
        if b_r >= b_l:
            return None
        return 1 + (self.fixed(side) - self.fixed("local")) / (b_l - b_r)

    def per_video(self, side: str) -> float:
        return (self.walls[side] - self.walls1[side]) / max(1, self.n - 1)


def aggregates(res: Any) -> dict[str, Any]:
    """Every aggregate value without provenance (timings and engine differ by design)."""
    return {m: {o: v.value for o, v in a.outputs.items()} for m, a in res.aggregates.items()}


def rel(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else float("inf")
    if a == b:
        return 0.0
    return abs(float(a) - float(b)) / max(1e-12, abs(float(a)))


def compare(ref: Any, got: Any) -> str:
    """How ``got`` matches the local run ``ref``: the per-video table (values compared exactly, then to a
    relative difference) and the aggregates."""
    p, q = ref.per_video, got.per_video
    if p.equals(q):
        pv = "per-video identical"
    elif p.drop(columns="value").equals(q.drop(columns="value")):
        worst = max((rel(x, y) for x, y in zip(p["value"], q["value"], strict=True)), default=0.0)
        pv = f"per-video equal to {worst:.1e} relative"
    else:
        pv = "PER-VIDEO ROWS DIFFER"
    a, b = aggregates(ref), aggregates(got)
    if a == b:
        return f"{pv}, aggregates identical"
    worst = max(rel(v, b.get(m, {}).get(o)) for m in a for o, v in a[m].items())
    return f"{pv}, aggregates equal to {worst:.1e} relative"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_side(w: Workload, side: str, cache_root: Path, n: int | None = None) -> tuple[float, Any]:
    from aigve import evaluate

    ds = w.dataset if n is None else head(w.dataset, n)
    cache = Path(tempfile.mkdtemp(prefix=f"{w.name}-", dir=cache_root))  # cold cache for every run
    try:
        wall, res = timed(
            lambda: evaluate(ds, w.metrics, cache_dir=cache, **COMMON, **w.kwargs, **SIDES[side])
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if res.errors or res.failed_videos:
        raise SystemExit(f"{w.name} / {side}: errors {res.errors} {res.failed_videos}")
    return wall, res


def start_ray(tmp: str, cpus: int) -> float:
    import ray

    from aigve.engine.ray_engine import local_settings

    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token file written to $HOME
    with local_settings():
        t, _ = timed(
            lambda: ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=256 * 2**20,
                _temp_dir=tmp,
            )
        )
    return t


def fmt_break_even(w: Workload, side: str) -> str:
    a_l, b_l = w.fixed("local"), w.per_video("local")
    a_r, b_r = w.fixed(side), w.per_video(side)
    n = w.break_even(side)
    if n is None:
        return f"none: Ray's {b_r:.3f} s per further video >= local's {b_l:.3f} s (Ray never catches up)"
    return f"n* = 1 + ({a_r:.2f} - {a_l:.2f}) / ({b_l:.3f} - {b_r:.3f}) = **{n:.0f} videos**"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decode-videos", type=int, default=24, help="videos of the decode-bound set (flicker)")
    ap.add_argument("--decode-frames", type=int, default=96)
    ap.add_argument("--decode-size", type=int, default=320, help="frame side in pixels")
    ap.add_argument(
        "--model-videos", type=int, default=16, help="generated (and as many real) videos for fid"
    )
    ap.add_argument("--model-frames", type=int, default=8)
    ap.add_argument("--model-size", type=int, default=64)
    ap.add_argument(
        "--tiny-videos", type=int, default=24, help="videos of the per-task overhead set (flicker)"
    )
    ap.add_argument(
        "--repeats", type=int, default=2, help="rounds, alternating the order of the sides; best time kept"
    )
    ap.add_argument(
        "--ray-cpus",
        type=int,
        default=3,
        help="logical CPUs of the local Ray (default 3: 2 model actors of 1 CPU each plus a 1-CPU decode task; "
        "with 2, a 2-worker run never schedules a decode task and hangs)",
    )
    ap.add_argument("--out", default=None, help="also write the markdown here")
    a = ap.parse_args()

    import ray
    import torch

    from aigve.weights.random_init import random_weights_options

    # a side whose actors would hold every CPU never gets a decode task scheduled (see the docstring)
    skipped = [s for s, kw in SIDES.items() if kw.get("ray_workers", 0) + 1 > a.ray_cpus and s != "local"]
    for s in skipped:
        del SIDES[s]
    load0 = os.getloadavg()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aigve-bench-ray-") as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        fid_opts = random_weights_options("fid_inception", tmp / "weights", small=True)
        sets = [
            Workload(
                "decode",
                make_set(tmp / "decode", a.decode_videos, a.decode_frames, a.decode_size, real=False),
                ["flicker"],
                {},
                f"decode-bound: {a.decode_videos} videos, {a.decode_frames} frames of {a.decode_size}², `flicker`",
            ),
            Workload(
                "model",
                make_set(tmp / "model", a.model_videos, a.model_frames, a.model_size, real=True),
                ["fid"],
                {"backbone_options": {"fid_inception": fid_opts}, "max_len": a.model_frames},
                f"model-bound: {a.model_videos} generated + {a.model_videos} real videos, {a.model_frames} frames "
                f"of {a.model_size}², `fid` (Inception, random weights, small config)",
            ),
            Workload(
                "tiny",
                make_set(tmp / "tiny", a.tiny_videos, 4, 32, real=False),
                ["flicker"],
                {},
                f"tiny (per-task cost): {a.tiny_videos} videos, 4 frames of 32², `flicker`",
            ),
        ]
        print(f"videos written in {time.perf_counter() - t0:.1f} s", flush=True)
        caches = tmp / "caches"
        caches.mkdir()
        # warm-up in the driver: imports and the first weight load are not any side's cost
        for w in sets:
            run_side(w, "local", caches, n=1)
        ray_tmp = tempfile.mkdtemp(prefix="aigve-rb-", dir="/tmp")  # short: Ray's unix socket paths
        try:
            t_init = start_ray(ray_tmp, a.ray_cpus)
            print(f"ray.init: {t_init:.2f} s", flush=True)
            # one Ray warm-up run: Ray Data's own actors and the first worker processes start here
            t_warm, _ = run_side(sets[2], "ray, 1 worker", caches, n=1)
            print(f"first Ray run (1 tiny video): {t_warm:.2f} s", flush=True)
            for r in range(a.repeats):
                order = list(SIDES) if r % 2 == 0 else list(SIDES)[::-1]  # round 0 runs the local side first
                for w in sets:
                    for side in order:
                        t1, _ = run_side(w, side, caches, n=1)
                        tn, res = run_side(w, side, caches)
                        w.rounds.setdefault(side, []).append((t1, tn))
                        w.walls1[side] = min(t1, w.walls1.get(side, t1))
                        w.walls[side] = min(tn, w.walls.get(side, tn))
                        if side == "local":
                            w.ref = w.ref or res
                        else:
                            w.groups[side] = int(res.provenance["engine"].get("groups", 0))
                            w.same[side] = compare(w.ref, res)
                        print(
                            f"round {r + 1} {w.name:7s} {side:15s} 1 video {t1:6.2f} s, {w.n} videos {tn:6.2f} s "
                            f"(load {os.getloadavg()[0]:.1f})  {w.same.get(side, '') if side != 'local' else ''}",
                            flush=True,
                        )
            t_stop, _ = timed(ray.shutdown)
        finally:
            if ray.is_initialized():
                ray.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)
    load1 = os.getloadavg()

    cmd = (
        f"PYTHONPATH=src:. .venv/bin/python benchmarks/bench_ray.py --decode-videos {a.decode_videos} "
        f"--decode-frames {a.decode_frames} --decode-size {a.decode_size} --model-videos {a.model_videos} "
        f"--model-frames {a.model_frames} --model-size {a.model_size} --tiny-videos {a.tiny_videos} "
        f"--ray-cpus {a.ray_cpus} --repeats {a.repeats}"
    )
    lines += [
        "## Ray engine vs local (`benchmarks/bench_ray.py`)",
        "",
        f"Command: `{cmd}`",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), no GPU, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads in the driver), Ray {ray.__version__}; load average "
        f"{load0[0]:.1f} / {load0[1]:.1f} / {load0[2]:.1f} (1/5/15 min) at the start, {load1[0]:.1f} / "
        f"{load1[1]:.1f} / {load1[2]:.1f} at the end. One Ray (`num_cpus={a.ray_cpus}`) for every Ray run; each run "
        f"has a cold cache. Best of {a.repeats} rounds per side (the order of the sides alternates between rounds); "
        "the last column lists every round's `T(1)` / `T(N)`.",
        "",
        f"- `ray.init` (local, once): **{t_init:.2f} s**; `ray.shutdown`: {t_stop:.2f} s; the first Ray run "
        f"after init (1 tiny video, warm-up, not in the table): {t_warm:.2f} s",
        "",
        "| set | engine | videos | wall s | videos/s | vs local (throughput) | Ray tasks | 1-video run s "
        "(fixed cost) | s per further video | values | rounds: T(1) / T(N) s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in sets:
        for side in SIDES:
            wall = w.walls[side]
            ratio = w.walls["local"] / wall
            lines.append(
                f"| {w.name} | {side} | {w.n} | {wall:.2f} | {w.n / wall:.2f} | {ratio:.2f}x | "
                f"{w.groups.get(side, '-')} | {w.fixed(side):.2f} | {w.per_video(side):.3f} | "
                f"{w.same.get(side, 'reference')} | "
                + ", ".join(f"{t1:.2f} / {tn:.2f}" for t1, tn in w.rounds[side])
                + " |"
            )
    lines += ["", "Sets:", ""] + [f"- {w.what}" for w in sets]
    tiny = sets[2]
    lines += [
        "",
        "### Ray's costs",
        "",
        "Per task (tiny set, one video per task; Ray minus local, seconds per further video):",
        "",
    ]
    for side in list(SIDES)[1:]:
        per_task = tiny.per_video(side) - tiny.per_video("local")
        lines.append(
            f"- {side}: {tiny.per_video(side):.3f} - {tiny.per_video('local'):.3f} = **{per_task:.3f} s per task**"
        )
    lines += ["", "Fixed cost per run (1-video run, Ray minus local):", ""]
    for w in sets:
        extra = ", ".join(f"{s}: +{w.fixed(s) - w.fixed('local'):.2f} s" for s in list(SIDES)[1:])
        lines.append(f"- {w.name}: local {w.fixed('local'):.2f} s; {extra}")
    lines += [
        "",
        "### Break-even dataset size (Ray with 2 workers = local)",
        "",
        "Each side's wall time modelled as `T(n) = a + b*(n - 1)` with `a = T(1)` (the 1-video run) and "
        "`b = (T(N) - T(1)) / (N - 1)`; Ray with 2 workers matches local at "
        "`n* = 1 + (a_ray - a_local) / (b_local - b_ray)` (only when `b_ray < b_local`).",
        "",
    ]
    for w in sets:
        if "ray, 2 workers" in SIDES:
            lines.append(f"- {w.name}: {fmt_break_even(w, 'ray, 2 workers')}")
    lines += [f"- skipped: {s} (needs more than --ray-cpus {a.ray_cpus} logical CPUs)" for s in skipped]
    text = "\n".join(lines)
    print()
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
