"""Seconds per video for the ported VBench dimensions on CPU, against VBench's own code where it can run, and the
real-size cost of the ViT-L networks.

- ``vbench_motion_smoothness``: AMT-S at its real size (it is small: ~3M parameters) with seeded random weights
  (same shapes, same FLOPs), ours (``amt_s`` extractor) vs VBench's ``MotionSmoothness.motion_score`` on the
  same frames (written as PNGs: its image-folder path).
- ``vbench_temporal_style`` + ``vbench_overall_consistency``: ViCLIP in the tiny test configuration (the real
  pipeline: 8 middle frames, clip_transform, tokenizer; a 2-layer 32-d network): ours scores both dimensions
  from one pass; VBench runs its two functions (two passes), with its frame reader fed the same frames.
- ``vbench_human_action``: UMT in the tiny configuration (16 middle frames, cv2 resize, crop; 2-layer 32-d).
- cost model: forward FLOPs per video of the real ViCLIP ViT-L/14 (2049 tokens) and UMT ViT-L/16 (3136 tokens).

VBench's side needs ``AIGVE_VBENCH_SRC`` (see tests/backbones/vbench_ref.py); without it only ours is timed.
Command::

    AIGVE_VBENCH_SRC=/tmp/vb/src AIGVE_VBENCH_DEPS=/tmp/vb/deps PYTHONPATH=src:. .venv/bin/python \\
        benchmarks/bench_vbench_ported.py [VIDEO]

Result in benchmarks/RESULTS.md (section "Ported VBench dimensions").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

TOY_DIR = Path(
    os.environ.get("AIGVE_TOY_DIR", Path(__file__).resolve().parents[1] / ".." / "shared/data/aigve_toy")
)


def vit_flops(tokens: int, width: int, layers: int) -> float:
    """Matrix products (2 per multiply-add) and attention scores of a ViT forward pass."""
    per_tok = 2 * (4 * width**2 + 8 * width**2)
    attn = 2 * 2 * tokens * width
    return layers * tokens * (per_tok + attn)


def _t(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video", nargs="?", default=None)
    args = ap.parse_args()
    import numpy as np
    import torch

    from aigve.backbones.amt import AMTSmoothnessExtractor
    from aigve.backbones.nets import amt, umt, viclip
    from aigve.backbones.umt import UMTKineticsExtractor
    from aigve.backbones.viclip import ViCLIPScorer
    from aigve.video.decode import decode_video

    torch.set_num_threads(2)
    path = Path(args.video) if args.video else sorted(TOY_DIR.glob("**/*.mp4"))[0]
    t_dec, clip = _t(lambda: decode_video(path))
    frames = clip.frames
    print(
        f"video {path.name}: {frames.shape[0]} frames {frames.shape[1]}x{frames.shape[2]}, decode {t_dec:.2f} s"
    )
    tmp = Path(tempfile.mkdtemp())
    torch.save({"state_dict": amt.random_state_dict(seed=3)}, tmp / "amt.pth")
    vstate = viclip.random_state_dict(viclip.CONFIGS["tiny_test"], seed=4)
    torch.save({"model": vstate}, tmp / "viclip.pth")
    torch.save(umt.random_state_dict(umt.CONFIGS["tiny_test"], seed=6), tmp / "umt.pth")
    have_ref = bool(os.environ.get("AIGVE_VBENCH_SRC"))
    rows = []

    ext = AMTSmoothnessExtractor(weights=str(tmp / "amt.pth"))
    ext.ensure_loaded()
    t_ours, res = _t(lambda: ext.extract(frames))
    ours_ms = (255 - res.mean()) / 255
    ref_txt = "—"
    if have_ref:
        import cv2

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.backbones.test_amt import _reference_net, _vbench_score  # noqa: F401

        (tmp / "png").mkdir()
        t_ref, ref_ms = _t(lambda: _vbench_score(amt.random_state_dict(seed=3), frames, tmp / "png"))
        del cv2
        ref_txt = f"{t_ref:.2f} s (score {ref_ms:.6f})"
    rows.append(("motion_smoothness (AMT-S, real size)", f"{t_ours:.2f} s (score {ours_ms:.6f})", ref_txt))

    prompts = "A person is dancing, in cyberpunk style"
    sc = ViCLIPScorer(config="tiny_test", weights=str(tmp / "viclip.pth"))
    sc.ensure_loaded()
    from aigve.backbones.base import ScorerInput

    t_ours, out = _t(lambda: sc.score([ScorerInput("v", frames, clip.fps, {"prompt": prompts})]))
    ref_txt = "—"
    if have_ref:
        from tests.backbones.test_viclip import _vbench_dimension

        def both():  # type: ignore[no-untyped-def]
            a = _vbench_dimension("temporal_style", vstate, [frames], [prompts])
            b = _vbench_dimension("overall_consistency", vstate, [frames], [prompts])
            return a + b

        t_ref, vals = _t(both)
        ref_txt = f"{t_ref:.2f} s (scores {vals[0]:.6f}, {vals[1]:.6f})"
    rows.append(
        (
            "temporal_style + overall_consistency (ViCLIP tiny)",
            f"{t_ours:.2f} s (score {out[0][0, 0]:.6f})",
            ref_txt,
        )
    )

    ue = UMTKineticsExtractor(config="tiny_test", weights=str(tmp / "umt.pth"))
    ue.ensure_loaded()
    t_ours, probs = _t(lambda: ue.extract(frames))
    rows.append(("human_action (UMT tiny)", f"{t_ours:.2f} s (max p {float(np.max(probs)):.4f})", "—"))

    print("| dimension | aigve | VBench's code |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    vic = vit_flops(1 + 256 * 8, 1024, 24) + vit_flops(32, 768, 12)
    um = vit_flops(16 * 196, 1024, 24)
    print(f"real ViCLIP ViT-L/14 (8 x 256 patches + class, text 32 tokens): {vic / 1e12:.2f} TFLOP per video")
    print(f"real UMT ViT-L/16 (16 x 196 tokens): {um / 1e12:.2f} TFLOP per video")


if __name__ == "__main__":
    main()
