"""The ``demo`` dataset: small procedural videos with known distortions, made locally in a few seconds.

Four "real" scenes (256x256, 32 frames at 16 fps, H.264 crf 18), each smooth and natural-looking:

- ``shapes``: textured shapes drifting over a colour gradient;
- ``pan``: a camera panning across a fractal, terrain-like texture;
- ``pinwheel``: a coloured pinwheel with rings, rotating steadily;
- ``ball``: a shaded ball bouncing on a floor, with its shadow.

For each scene, one generated video per distortion: ``clean`` (the real clip itself), ``noise`` (gaussian,
sigma 12/255), ``blur`` (gaussian, sigma 2 px), ``flicker`` (per-frame brightness jumps of up to +-35 %),
``frozen`` (the first frame repeated), ``shuffled`` (frames in a random order). Entry id
``<scene>_<distortion>``, real = the scene's clean clip; ``extra`` has ``scene``, ``distortion`` and
``model`` (= distortion, so the per-model summary compares distortions).

Everything derives from ``DEMO_SEED``, so the files are identical on every machine with the same encoder;
``generate_demo`` rewrites them only when a file is missing or the version stamp differs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aigve.data.annotation import read_annotation, write_annotation
from aigve.data.dataset import Dataset
from aigve.types import Entry

DEMO_VERSION = 2  # 2: encoded without x264's macroblock tree (reproducible bytes)
DEMO_SEED = 20240611
SIZE = 256
NUM_FRAMES = 32
FPS = 16.0
CRF = 18
SCENES: tuple[str, ...] = ("shapes", "pan", "pinwheel", "ball")
DISTORTIONS: tuple[str, ...] = ("clean", "noise", "blur", "flicker", "frozen", "shuffled")
PROMPTS: dict[str, str] = {
    "shapes": "colourful textured shapes drifting slowly across a soft gradient background",
    "pan": "a slow camera pan across a rocky, mossy natural landscape seen from above",
    "pinwheel": "a colourful pinwheel with concentric rings rotating steadily",
    "ball": "a red ball bouncing on a grey floor, casting a soft shadow",
}
STAMP_FILE = "demo_stamp.json"


def _grid() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return yy, xx


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    return np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)


def _smoothstep(edge: float, x: np.ndarray) -> np.ndarray:
    """Anti-aliased inside-mask: 1 inside (x < -edge), 0 outside, linear over ~2 px."""
    return np.clip(0.5 - x / (2 * edge), 0.0, 1.0)


def _scene_shapes(rng: np.random.Generator) -> np.ndarray:
    yy, xx = _grid()
    top = np.array([0.25, 0.45, 0.80], np.float32)
    bottom = np.array([0.95, 0.75, 0.55], np.float32)
    t_y = (yy / (SIZE - 1))[..., None]
    bg = top * (1 - t_y) + bottom * t_y
    shapes: list[dict[str, Any]] = []
    for k in range(3):
        shapes.append(
            {
                "kind": k % 2,  # 0 disc, 1 rounded square
                "r": float(rng.uniform(28, 44)),
                "p0": rng.uniform(60, 196, size=2).astype(np.float32),
                "v": rng.uniform(-2.2, 2.2, size=2).astype(np.float32),
                "col": rng.uniform(0.15, 0.95, size=3).astype(np.float32),
                "freq": float(rng.uniform(0.15, 0.35)),
            }
        )
    out = np.empty((NUM_FRAMES, SIZE, SIZE, 3), np.float32)
    for t in range(NUM_FRAMES):
        img = bg.copy()
        for s in shapes:
            cy, cx = s["p0"] + s["v"] * t
            dy, dx = yy - cy, xx - cx
            if s["kind"] == 0:
                dist = np.sqrt(dy * dy + dx * dx) - s["r"]
            else:
                dist = np.maximum(np.abs(dy), np.abs(dx)) - s["r"]
            mask = _smoothstep(1.0, dist)[..., None]
            stripes = 0.75 + 0.25 * np.sin(s["freq"] * (dx + 0.6 * dy))[..., None]
            img = img * (1 - mask) + (s["col"] * stripes) * mask
        out[t] = img
    return out


def _fractal(rng: np.random.Generator, h: int, w: int, beta: float = 2.2) -> np.ndarray:
    """Gaussian noise with a 1/f^beta power spectrum, normalised to [0, 1]."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    spec = (rng.standard_normal((h, w // 2 + 1)) + 1j * rng.standard_normal((h, w // 2 + 1))) / f ** (
        beta / 2
    )
    spec[0, 0] = 0.0
    field = np.fft.irfft2(spec, s=(h, w))
    field = (field - field.min()) / (field.max() - field.min())
    return field.astype(np.float32)


def _scene_pan(rng: np.random.Generator) -> np.ndarray:
    width = SIZE * 2
    height_map = _fractal(rng, SIZE, width, beta=2.4)
    detail = _fractal(rng, SIZE, width, beta=1.6)
    low = np.array([0.22, 0.30, 0.15], np.float32)  # moss
    mid = np.array([0.45, 0.40, 0.30], np.float32)  # earth
    high = np.array([0.80, 0.78, 0.74], np.float32)  # rock
    h = height_map[..., None]
    tex = np.where(h < 0.5, low + (mid - low) * (h / 0.5), mid + (high - mid) * ((h - 0.5) / 0.5))
    tex = tex * (0.8 + 0.4 * detail[..., None])
    speed = 3.3  # px per frame, sub-pixel so interpolation is exercised
    out = np.empty((NUM_FRAMES, SIZE, SIZE, 3), np.float32)
    for t in range(NUM_FRAMES):
        x0 = speed * t
        i0 = int(np.floor(x0))
        a = np.float32(x0 - i0)
        out[t] = (1 - a) * tex[:, i0 : i0 + SIZE] + a * tex[:, i0 + 1 : i0 + 1 + SIZE]
    return out


def _scene_pinwheel(rng: np.random.Generator) -> np.ndarray:
    yy, xx = _grid()
    c = (SIZE - 1) / 2.0
    dy, dx = yy - c, xx - c
    rad = np.sqrt(dy * dy + dx * dx)
    ang = np.arctan2(dy, dx)
    phase = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
    omega = 2 * np.pi / NUM_FRAMES * 0.75  # three quarters of a turn over the clip
    vignette = np.clip(1.15 - rad / (SIZE * 0.75), 0.0, 1.0)[..., None]
    out = np.empty((NUM_FRAMES, SIZE, SIZE, 3), np.float32)
    for t in range(NUM_FRAMES):
        a = ang - omega * t
        blades = 0.5 + 0.5 * np.sin(6 * a + 0.02 * rad)
        rings = 0.5 + 0.5 * np.cos(rad * 0.12)
        img = np.stack([0.5 + 0.5 * np.sin(a + phase[i]) for i in range(3)], -1)
        img = img * (0.55 + 0.45 * blades[..., None]) * (0.8 + 0.2 * rings[..., None])
        out[t] = img * vignette
    return out


def _scene_ball(rng: np.random.Generator) -> np.ndarray:
    yy, xx = _grid()
    floor_y = 200.0
    r = 26.0
    wall = np.array([0.70, 0.72, 0.78], np.float32) * (0.85 + 0.15 * (yy / SIZE))[..., None]
    floor = (
        np.array([0.45, 0.45, 0.47], np.float32)
        * (0.8 + 0.2 * ((yy - floor_y) / (SIZE - floor_y)))[..., None]
    )
    bg = np.where((yy >= floor_y)[..., None], floor, wall)
    g = 1.6  # px / frame^2
    apex = 70.0
    vx = float(rng.uniform(2.5, 3.5))
    x_start = 60.0
    period = 2 * np.sqrt(2 * (floor_y - r - apex) / g)
    out = np.empty((NUM_FRAMES, SIZE, SIZE, 3), np.float32)
    base_col = np.array([0.85, 0.15, 0.12], np.float32)
    for t in range(NUM_FRAMES):
        ph = (t % period) - period / 2
        cy = apex + 0.5 * g * ph * ph
        cx = x_start + vx * t
        height = floor_y - r - cy
        # soft shadow on the floor, smaller and lighter when the ball is high
        sh = np.exp(-(((xx - cx) / (r * (1.2 - height / 400))) ** 2 + ((yy - floor_y - 4) / 5.0) ** 2))
        img = bg * (1 - 0.45 * sh * (1 - height / 300))[..., None]
        dy, dx = yy - cy, xx - cx
        dist = np.sqrt(dy * dy + dx * dx)
        mask = _smoothstep(1.0, dist - r)[..., None]
        # Lambert shading from a light at the upper left
        nz = np.sqrt(np.clip(1 - (dist / r) ** 2, 0, 1))
        shade = np.clip((-0.5 * dx / r - 0.6 * dy / r + 0.6 * nz), 0.15, 1.0)[..., None]
        img = img * (1 - mask) + base_col * shade * mask
        out[t] = img
    return out


SCENE_MAKERS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "shapes": _scene_shapes,
    "pan": _scene_pan,
    "pinwheel": _scene_pinwheel,
    "ball": _scene_ball,
}


def make_scene(scene: str) -> np.ndarray:
    """The clean uint8 ``[T, H, W, 3]`` frames of one scene (deterministic)."""
    idx = SCENES.index(scene)
    rng = np.random.default_rng([DEMO_SEED, idx])
    return _to_uint8(SCENE_MAKERS[scene](rng))


def distort(frames: np.ndarray, distortion: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one named distortion to uint8 ``[T, H, W, 3]`` frames."""
    from scipy.ndimage import gaussian_filter

    if distortion == "clean":
        return frames.copy()
    f = frames.astype(np.float32)
    if distortion == "noise":
        f = f + np.float32(12.0) * rng.standard_normal(size=f.shape, dtype=np.float32)
    elif distortion == "blur":
        f = gaussian_filter(f, sigma=(0, 2.0, 2.0, 0), mode="nearest")
    elif distortion == "flicker":
        gains = np.asarray(rng.uniform(0.65, 1.35, size=frames.shape[0]), dtype=np.float32)
        f = f * gains[:, None, None, None]
    elif distortion == "frozen":
        f = np.repeat(f[:1], frames.shape[0], axis=0)
    elif distortion == "shuffled":
        f = f[rng.permutation(frames.shape[0])]
    else:
        raise ValueError(f"unknown distortion '{distortion}', choose from {', '.join(DISTORTIONS)}")
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


def _stamp() -> dict[str, object]:
    return {
        "version": DEMO_VERSION,
        "seed": DEMO_SEED,
        "scenes": list(SCENES),
        "distortions": list(DISTORTIONS),
        "size": SIZE,
        "frames": NUM_FRAMES,
        "fps": FPS,
        "crf": CRF,
    }


def _expected_files(dst: Path) -> list[Path]:
    vdir = dst / "evaluate"
    files = [dst / "annotations" / "evaluate.json", dst / STAMP_FILE]
    files += [vdir / "real" / f"{s}.mp4" for s in SCENES]
    files += [vdir / f"{s}_{d}.mp4" for s in SCENES for d in DISTORTIONS]
    return files


def _is_current(dst: Path) -> bool:
    try:
        stamp = json.loads((dst / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp == _stamp() and all(p.is_file() for p in _expected_files(dst))


def demo_ready(dst: str | Path) -> bool:
    """True when ``dst`` holds the demo set this version generates (``aigve datasets list``)."""
    return _is_current(Path(dst))


def _dataset(dst: Path) -> Dataset:
    vdir = dst / "evaluate"
    entries = [
        Entry(
            id=f"{s}_{d}",
            generated=vdir / f"{s}_{d}.mp4",
            real=vdir / "real" / f"{s}.mp4",
            prompt=PROMPTS[s],
            extra={"scene": s, "distortion": d, "model": d},
        )
        for s in SCENES
        for d in DISTORTIONS
    ]
    return Dataset(
        name="demo",
        entries=entries,
        root=vdir,
        metainfo={
            "name": "demo",
            "description": (
                "aigve demo: 4 procedural 'real' scenes and, per scene, generated variants with known "
                "distortions (clean, noise, blur, flicker, frozen, shuffled); model = distortion"
            ),
            "version": DEMO_VERSION,
            "seed": DEMO_SEED,
            "length": len(entries),
        },
        source=f"builtin:demo:{dst}",
        hints={"group_by": "distortion"},
    )


def generate_demo(dst: str | Path, force: bool = False) -> Dataset:
    """Create (or reuse) the demo dataset under ``dst`` and return it.

    Layout: ``dst/evaluate/<scene>_<distortion>.mp4``, ``dst/evaluate/real/<scene>.mp4``,
    ``dst/annotations/evaluate.json`` (AIGVE format) and a version stamp. Regenerates only when a file is
    missing, the stamp differs, or ``force``; files are written to a temporary folder and moved into place.
    """
    from aigve.video.encode import write_video

    dst = Path(dst).absolute()
    if force or not _is_current(dst):
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".demo-", dir=dst.parent))
        try:
            vdir = tmp / "evaluate"
            for si, scene in enumerate(SCENES):
                frames = make_scene(scene)
                real = write_video(vdir / "real" / f"{scene}.mp4", frames, fps=FPS, crf=CRF)
                for di, dist in enumerate(DISTORTIONS):
                    out = vdir / f"{scene}_{dist}.mp4"
                    if dist == "clean":
                        shutil.copyfile(real, out)
                        continue
                    rng = np.random.default_rng([DEMO_SEED, si, di])
                    write_video(out, distort(frames, dist, rng), fps=FPS, crf=CRF)
            ds = _dataset(tmp)
            write_annotation(ds, tmp / "annotations" / "evaluate.json", vdir)
            (tmp / STAMP_FILE).write_text(json.dumps(_stamp(), indent=2) + "\n", encoding="utf-8")
            if not force and _is_current(dst):  # another process finished first: keep its copy
                return _finish(dst)
            for sub in ("evaluate", "annotations", STAMP_FILE):
                target = dst / sub
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists() or target.is_symlink():
                    target.unlink()
            dst.mkdir(parents=True, exist_ok=True)
            for sub in ("evaluate", "annotations", STAMP_FILE):
                os.replace(tmp / sub, dst / sub)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _finish(dst)


def _finish(dst: Path) -> Dataset:
    ds = read_annotation(dst / "annotations" / "evaluate.json", dst / "evaluate")
    ds.source = f"builtin:demo:{dst}"
    ds.hints = {"group_by": "distortion"}
    return ds
