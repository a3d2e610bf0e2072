"""Seconds per video for ``simplevqa`` on CPU at its default input sizes, split into decoding and networks.

Real checkpoints cannot be downloaded here, so the networks carry seeded random weights of the released
layouts (same shapes, same FLOPs). Command::

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_nn_vqa.py [VIDEO ...] [--threads N]  # default: first toy video

Result in benchmarks/results_nn_vqa.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

TOY_DIR = Path(__file__).resolve().parents[1] / ".." / "shared/data/aigve_toy"


def bench(videos: list[Path]) -> None:
    """Print one table row per video: decode, spatial network, SlowFast and head seconds."""
    import torch

    from aigve.backbones.base import ScorerInput
    from aigve.backbones.nets.simplevqa import SimpleVQANet
    from aigve.backbones.nets.slowfast import SlowFastR50
    from aigve.backbones.registry import build_extractor
    from aigve.metrics.catalog import get_metric_class
    from aigve.types import Entry
    from aigve.video.decode import decode_video
    from aigve.video.sampling import Window
    from tests.backbones.test_slowfast import seeded_state  # needs the repo root on PYTHONPATH

    tmp = Path(tempfile.mkdtemp())
    os.environ.setdefault("AIGVE_CACHE_DIR", str(tmp / "cache"))
    svqa, sf = tmp / "UGC_BVQA_model.pth", tmp / "SLOWFAST_8x8_R50.pyth"
    torch.save({"module." + k: v for k, v in seeded_state(SimpleVQANet().state_dict(), 3).items()}, svqa)
    torch.save({"model_state": seeded_state(SlowFastR50().state_dict(), 0)}, sf)
    spatial = build_extractor("simplevqa_spatial", weights=str(svqa))
    motion = build_extractor("slowfast_r50", weights=str(sf))
    spatial.ensure_loaded()
    motion.ensure_loaded()
    metric = get_metric_class("simplevqa")(weights=str(svqa), slowfast_weights=str(sf))
    (req,) = metric.effective_requests()
    head = build_extractor(
        req.extractor, **dict(req.options)
    )  # the simplevqa_head scorer, as the engine builds it
    head.bind_upstream(spatial, "spatial")
    head.bind_upstream(motion, "motion")
    head.ensure_loaded()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| video | frames | seconds | decode s | spatial s | motion s | head s | total s |")
    print("|---|---|---|---|---|---|---|---|")
    for v in videos:
        t0 = time.perf_counter()
        clip = decode_video(v, Window())
        t1 = time.perf_counter()
        s = spatial.extract(clip.frames, clip.fps)
        t2 = time.perf_counter()
        m = motion.extract(clip.frames, clip.fps)
        t3 = time.perf_counter()
        (q,) = head.score([ScorerInput(v.stem, s, clip.fps, {}, {"spatial": s, "motion": m})])
        metric.score(Entry(v.stem, v), {req.role: q})
        t4 = time.perf_counter()
        print(
            f"| {v.name} | {clip.num_frames} | {s.shape[0]} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t3 - t2:.2f} | "
            f"{t4 - t3:.3f} | {t4 - t0:.2f} |"
        )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark (no arguments: the first AIGVE toy video)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "videos",
        nargs="*",
        type=Path,
        help="videos to time (default: the first .mp4 of $AIGVE_TOY_DIR, else ../shared/data/aigve_toy)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = ap.parse_args(argv)
    videos = list(args.videos)
    if not videos:
        toy = Path(os.environ.get("AIGVE_TOY_DIR", TOY_DIR))
        videos = sorted(toy.rglob("*.mp4"))[:1]
        if not videos:
            ap.error(f"no videos given and no .mp4 under {toy}: pass VIDEO paths or set AIGVE_TOY_DIR")
    missing = [v for v in videos if not v.is_file()]
    if missing:
        ap.error(f"video not found: {missing[0]}")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    bench(videos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
