"""DOVER on the CPU at its default input size: seconds per video, split into decoding, view sampling and the
two networks; optionally the authors' model on the same views for a speed ratio.

Input: the AIGVE toy videos (``$AIGVE_TOY_DIR`` or ``<repo>/../shared/data/aigve_toy``; 512x512, 16 frames),
or, if absent, a synthetic 512x512 16-frame H.264 clip. Default views (``dover.yml``): technical 3 clips x
32 frames of 7x7 fragments (224x224), aesthetic 1 clip x 32 frames at 224x224; a 16-frame video is looped
by the sampler. Weights: seeded random values (``DOVER.pth`` cannot be downloaded here); the cost does not
depend on the values.

With ``DOVER_REF_DIR`` pointing to a checkout of the authors' code (VQAssessment/DOVER, and ``timm`` +
``einops`` importable), their ``DOVER`` model runs on the same views, alternating with ours (A B A B) so
background load hits both; the report gives medians and the ratio ours / theirs.

    PYTHONPATH=src:. .venv/bin/python benchmarks/bench_dover.py --videos 1 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch


def _videos(n: int) -> list[Path]:
    toy = Path(
        os.environ.get("AIGVE_TOY_DIR", Path(__file__).resolve().parents[1] / ".." / "shared/data/aigve_toy")
    )
    found = sorted(toy.rglob("*.mp4")) if toy.exists() else []
    if found:
        return found[:n]
    from aigve.video.encode import write_video

    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp())
    frames = rng.integers(0, 256, (16, 512, 512, 3), dtype=np.uint8)
    return [write_video(tmp / "synthetic.mp4", frames)]


def _reference(state: dict[str, torch.Tensor]) -> torch.nn.Module | None:
    ref = os.environ.get("DOVER_REF_DIR")
    if not ref:
        return None
    sys.path.insert(0, ref)
    for name in ("decord", "skvideo", "skvideo.io"):
        stub = types.ModuleType(name)
        stub.VideoReader = stub.cpu = stub.gpu = None  # type: ignore[attr-defined]
        stub.bridge = types.SimpleNamespace(set_bridge=lambda *a, **k: None)  # type: ignore[attr-defined]
        sys.modules.setdefault(name, stub)
    sys.modules["skvideo"].io = sys.modules["skvideo.io"]  # type: ignore[attr-defined]
    import dover.models.evaluator as ev  # type: ignore[import-not-found]
    from dover.models.conv_backbone import convnext_3d_tiny  # type: ignore[import-not-found]

    ev.convnext_3d_tiny = lambda pretrained=True, **k: convnext_3d_tiny(pretrained=False, **k)
    model = ev.DOVER(
        backbone={"technical": {"type": "swin_tiny_grpb"}, "aesthetic": {"type": "conv_tiny"}},
        backbone_preserve_keys="technical,aesthetic",
        divide_head=True,
        vqa_head={"in_channels": 768, "hidden_channels": 64},
    ).eval()
    model.load_state_dict(state, strict=True)
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    from aigve.backbones.dover import ViewConfig, sample_views
    from aigve.backbones.nets.dover import DOVERNet
    from aigve.video.decode import decode_video
    from aigve.video.sampling import Window

    torch.manual_seed(0)
    ours = DOVERNet().eval()
    ref = _reference(ours.state_dict())
    rows: dict[str, list[float]] = {
        k: [] for k in ("decode", "views", "technical", "aesthetic", "total", "theirs")
    }
    for path in _videos(args.videos):
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            clip = decode_video(path, Window())
            t1 = time.perf_counter()
            v = sample_views(clip.frames, ViewConfig(), seed=0)
            t2 = time.perf_counter()
            with torch.inference_mode():
                t_score = ours.technical_map(v.technical).mean()
                t3 = time.perf_counter()
                a_score = ours.aesthetic_map(v.aesthetic).mean()
            t4 = time.perf_counter()
            for k, dt in zip(
                ("decode", "views", "technical", "aesthetic", "total"),
                (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0),
                strict=True,
            ):
                rows[k].append(dt)
            if ref is not None:
                s0 = time.perf_counter()
                with torch.no_grad():
                    res = ref({"technical": v.technical, "aesthetic": v.aesthetic})
                rows["theirs"].append(time.perf_counter() - s0 + (t2 - t0))
                diff = max(
                    abs(float(res[0].mean()) - float(t_score)), abs(float(res[1].mean()) - float(a_score))
                )
                print(f"{path.name}: |ours - theirs| = {diff:.3g}")
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    total = med["total"]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    print(f"videos {args.videos} x repeats {args.repeats}; median seconds per video:")
    for k in ("decode", "views", "technical", "aesthetic"):
        print(f"  {k:10s} {med[k]:8.2f} s  ({100 * med[k] / total:5.1f} %)")
    print(f"  {'total':10s} {total:8.2f} s")
    if "theirs" in med:
        print(
            f"  authors' model on the same views (+ the same decode/views): {med['theirs']:.2f} s; ours / theirs = {total / med['theirs']:.2f}"
        )


if __name__ == "__main__":
    main()
