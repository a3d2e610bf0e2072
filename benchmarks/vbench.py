"""VBench's own code path vs aigve on the same dimensions, in one run.

Dimensions: subject_consistency (DINO ViT-B/16), background_consistency (CLIP ViT-B/32), temporal_flickering, and
optionally clipsim on all frames with VBench's preprocessing (sharing the background CLIP forward pass).

- **VBench**: the ``vbench==0.1.5`` wheel's ``compute_subject_consistency``, ``compute_background_consistency`` and
  ``compute_temporal_flickering`` called in sequence, as ``VBench.evaluate`` does (each decodes every video again:
  decord for the networks, OpenCV for flickering; DINO runs one frame at a time). Its imports (decord, openai-clip,
  easydict, setuptools for pkg_resources) and the DINO hub repository are not aigve dependencies: install them into a
  throwaway folder and pass it with ``--vbench-path`` (see the command below); nothing is committed.
- **aigve**: one ``Engine`` run of ``vbench_subject_consistency``, ``vbench_background_consistency`` and
  ``vbench_temporal_flickering``: one decode per video, batched forwards, a fresh (empty) feature cache.

Same frames (synthetic videos written once), same random weights in the real architectures: DINO's
``dino_vitb16`` built from the hub repository with ``torch.manual_seed(0)`` (VBench's ``torch.hub.load`` with
``pretrained=False`` under the same seed builds the same weights; aigve loads their saved state dict), and an
OpenAI-CLIP ViT-B/32 with seeded random weights saved as a state dict that ``clip.load(path)`` builds, converted to
a transformers ``CLIPModel`` snapshot for aigve. Model loading is timed on both sides (each side loads once per run).
The values of both sides are printed: they differ only by decoding (decord/OpenCV vs PyAV, the same FFmpeg
decoder with possibly different YUV->RGB conversion).

Run (setup once, then the benchmark)::

    pip download vbench==0.1.5 --no-deps -d /tmp/vbwheel && unzip -q -o /tmp/vbwheel/vbench-0.1.5-*.whl -d /tmp/vbench_ref
    pip install --target /tmp/vbench_site --no-deps decord==0.6.0 openai-clip easydict ftfy "setuptools<70"
    # DINO hub repository files (hubconf.py, vision_transformer.py, utils.py of facebookresearch/dino) in /tmp/dino_repo
    PYTHONPATH=src:. .venv/bin/python benchmarks/vbench.py --vbench-path /tmp/vbench_ref:/tmp/vbench_site \\
        --dino-repo /tmp/dino_repo --videos 4 --frames 16 --size 240x320
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DIMS = ("subject_consistency", "background_consistency", "temporal_flickering")


def openai_clip_to_hf(sd: dict[str, torch.Tensor], hf_model: Any) -> dict[str, torch.Tensor]:
    """OpenAI CLIP state dict -> transformers ``CLIPModel`` state dict (same architecture)."""
    out: dict[str, torch.Tensor] = {}

    def blocks(prefix_o: str, prefix_h: str, n: int) -> None:
        for i in range(n):
            o, h = f"{prefix_o}.resblocks.{i}.", f"{prefix_h}.layers.{i}."
            q, k, v = sd[o + "attn.in_proj_weight"].chunk(3)
            qb, kb, vb = sd[o + "attn.in_proj_bias"].chunk(3)
            for name, w, b in (("q", q, qb), ("k", k, kb), ("v", v, vb)):
                out[h + f"self_attn.{name}_proj.weight"], out[h + f"self_attn.{name}_proj.bias"] = w, b
            pairs = {
                "attn.out_proj": "self_attn.out_proj",
                "ln_1": "layer_norm1",
                "ln_2": "layer_norm2",
                "mlp.c_fc": "mlp.fc1",
                "mlp.c_proj": "mlp.fc2",
            }
            for a, b2 in pairs.items():
                out[h + b2 + ".weight"], out[h + b2 + ".bias"] = sd[o + a + ".weight"], sd[o + a + ".bias"]

    nv = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
    nt = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    blocks("visual.transformer", "vision_model.encoder", nv)
    blocks("transformer", "text_model.encoder", nt)
    out["vision_model.embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    out["vision_model.embeddings.class_embedding"] = sd["visual.class_embedding"]
    out["vision_model.embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    for a, b in (
        ("visual.ln_pre", "vision_model.pre_layrnorm"),
        ("visual.ln_post", "vision_model.post_layernorm"),
    ):
        out[b + ".weight"], out[b + ".bias"] = sd[a + ".weight"], sd[a + ".bias"]
    out["visual_projection.weight"] = sd["visual.proj"].t().contiguous()
    out["text_model.embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    out["text_model.embeddings.position_embedding.weight"] = sd["positional_embedding"]
    out["text_model.final_layer_norm.weight"] = sd["ln_final.weight"]
    out["text_model.final_layer_norm.bias"] = sd["ln_final.bias"]
    out["text_projection.weight"] = sd["text_projection"].t().contiguous()
    out["logit_scale"] = sd["logit_scale"]
    for k, v in hf_model.state_dict().items():  # buffers (position ids)
        out.setdefault(k, v)
    return out


def make_weights(root: Path, dino_repo: str) -> tuple[Path, Path, Path]:
    """(DINO state dict for aigve, OpenAI CLIP state dict for VBench, transformers snapshot dir for aigve)."""
    import clip.model as cm
    from transformers import CLIPConfig, CLIPModel

    from tests.backbones.vl_tiny import make_clip_processor

    torch.manual_seed(0)
    dino = torch.hub.load(dino_repo, "dino_vitb16", source="local", pretrained=False)
    dino_p = root / "dino_vitb16_random.pth"
    torch.save(dino.state_dict(), dino_p)
    torch.manual_seed(1)
    oc = cm.CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12)
    oc_p = root / "ViT-B-32-random.pt"
    # a TorchScript archive like OpenAI's ViT-B-32.pt: clip.load(path) reads a plain state dict only after a failed
    # torch.jit.load has consumed the file handle (openai-clip 1.0.1), so the archive format is what works
    import clip

    traced = torch.jit.trace(
        oc.eval(), (torch.zeros(1, 3, 224, 224), clip.tokenize(["a"])), check_trace=False
    )
    torch.jit.save(traced, str(oc_p))
    hf = CLIPModel(CLIPConfig())  # openai/clip-vit-base-patch32's shapes
    hf.load_state_dict(openai_clip_to_hf(oc.state_dict(), hf), strict=True)
    hf_dir = root / "clip_hf"
    hf.save_pretrained(hf_dir)
    make_clip_processor(hf_dir, 224)
    return dino_p, oc_p, hf_dir


def make_videos(root: Path, n: int, t: int, h: int, w: int) -> list[tuple[str, Path]]:
    from aigve.video.encode import write_video

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        base = rng.integers(0, 256, (h + 4 * t, w + 4 * t, 3)).astype(np.float32)
        base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1) + np.roll(base, 2, 0)) / 4
        frames = np.stack([base[2 * k : 2 * k + h, k : k + w] for k in range(t)]).astype(np.uint8)
        prompt = f"synthetic video {i}"
        out.append((prompt, write_video(root / f"{prompt}-0.mp4", frames, fps=8.0)))
    return out


def run_vbench(videos: list[tuple[str, Path]], root: Path, dino_repo: str, clip_p: Path) -> dict[str, float]:
    from vbench.background_consistency import compute_background_consistency
    from vbench.subject_consistency import compute_subject_consistency
    from vbench.temporal_flickering import compute_temporal_flickering

    info = [{"prompt_en": p, "dimension": list(DIMS), "video_list": [str(v)]} for p, v in videos]
    jf = root / "full_info.json"
    jf.write_text(json.dumps(info))
    out = {}
    torch.manual_seed(0)  # torch.hub.load(pretrained=False) then builds the same DINO weights as make_weights
    sub = {
        "repo_or_dir": dino_repo,
        "source": "local",
        "model": "dino_vitb16",
        "pretrained": False,
        "read_frame": False,
    }
    out["subject_consistency"] = compute_subject_consistency(str(jf), "cpu", sub)[0]
    out["background_consistency"] = compute_background_consistency(str(jf), "cpu", [str(clip_p), False])[0]
    out["temporal_flickering"] = compute_temporal_flickering(str(jf), "cpu", [])[0]
    return out


def run_aigve(videos: list[tuple[str, Path]], root: Path, dino_p: Path, hf_dir: Path, clipsim: bool) -> dict:
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.types import Entry
    from aigve.vbench.suite import dimension_values

    ds = Dataset(name="bench", entries=[Entry(p, v, prompt=p) for p, v in videos])
    metrics = [f"vbench_{d}" for d in DIMS] + (["clipsim"] if clipsim else [])
    opts: dict[str, dict[str, Any]] = {
        "vbench_subject_consistency": {"weights": str(dino_p)},
        "vbench_background_consistency": {"weights": str(hf_dir)},
        "clipsim": {"weights": str(hf_dir), "num_frames": "all", "image_backend": "vbench"},
    }
    with tempfile.TemporaryDirectory(dir=root) as cache:
        cfg = RunConfig(
            metrics=metrics, metric_options=opts, cache_dir=Path(cache), bootstrap=0, progress=False
        )
        res = Engine(ds, cfg).run()
    if res.exit_code != 0:
        raise RuntimeError(f"aigve run failed: {res.errors} {[a.error for a in res.aggregates.values()]}")
    return dimension_values(res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--vbench-path", required=True, help="os.pathsep-separated folders holding vbench + its imports"
    )
    ap.add_argument(
        "--dino-repo", required=True, help="folder with DINO's hubconf.py, vision_transformer.py, utils.py"
    )
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", default="240x320")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--clipsim", action="store_true", help="also run clipsim (all frames, vbench preprocessing)"
    )
    args = ap.parse_args()
    for p in reversed(args.vbench_path.split(os.pathsep)):
        sys.path.insert(0, p)
    h, w = (int(x) for x in args.size.split("x"))
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dino_p, clip_p, hf_dir = make_weights(root, args.dino_repo)
        videos = make_videos(root, args.videos, args.frames, h, w)
        tv, ta = [], []
        for r in range(args.repeats):
            order = ("vbench", "aigve") if r % 2 == 0 else ("aigve", "vbench")
            for who in order:
                t0 = time.perf_counter()
                if who == "vbench":
                    vals_v = run_vbench(videos, root, args.dino_repo, clip_p)
                    tv.append(time.perf_counter() - t0)
                else:
                    vals_a = run_aigve(videos, root, dino_p, hf_dir, args.clipsim)
                    ta.append(time.perf_counter() - t0)
    bv, ba = min(tv), min(ta)
    print(f"videos={args.videos} frames={args.frames} size={h}x{w} threads={torch.get_num_threads()}")
    print(f"| side | time (best of {args.repeats}) | " + " | ".join(DIMS) + " |")
    print("|---|---|" + "---|" * len(DIMS))
    print(f"| VBench 0.1.5 code | {bv:.1f} s | " + " | ".join(f"{vals_v[d]:.6f}" for d in DIMS) + " |")
    extra = " (+ clipsim)" if args.clipsim else ""
    print(f"| aigve{extra} | {ba:.1f} s | " + " | ".join(f"{vals_a[d]:.6f}" for d in DIMS) + " |")
    print(f"ratio aigve / VBench = {ba / bv:.2f}x")


if __name__ == "__main__":
    main()
