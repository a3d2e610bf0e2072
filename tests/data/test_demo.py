"""The procedural ``demo`` dataset: determinism, idempotence, contents and the known distortions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest

from aigve.data import load_builtin, load_dataset, read_annotation
from aigve.data.demo import DISTORTIONS, FPS, NUM_FRAMES, SCENES, SIZE, STAMP_FILE, generate_demo


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _frames(path: Path) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate)
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)]), fps


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "datasets" / "demo"
    generate_demo(root)
    return root


def test_deterministic_across_directories(demo_root: Path, tmp_path: Path) -> None:
    other = tmp_path / "demo2"
    generate_demo(other)
    a, b = _hashes(demo_root), _hashes(other)
    assert len(a) == 4 + 4 * 6 + 2  # reals, generated, annotation, stamp
    assert a == b


def test_idempotent_and_regenerates_on_stamp_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reuse/regenerate logic, on a tiny configuration (the stamp records size and length)."""
    import aigve.data.demo as demo

    monkeypatch.setattr(demo, "SIZE", 32)
    monkeypatch.setattr(demo, "NUM_FRAMES", 4)
    root = tmp_path / "tiny"
    generate_demo(root)
    first = _hashes(root)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    generate_demo(root)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before  # nothing rewritten

    (root / "evaluate" / "ball_noise.mp4").unlink()  # a missing file triggers regeneration
    generate_demo(root)
    assert _hashes(root) == first

    stamp = json.loads((root / STAMP_FILE).read_text())
    stamp["version"] = -1  # so does a stale stamp
    (root / STAMP_FILE).write_text(json.dumps(stamp))
    (root / "evaluate" / "junk.mp4").write_bytes(b"x")
    ds = generate_demo(root)
    assert _hashes(root) == first  # junk from an old version is gone with the old evaluate/
    assert len(ds) == 24 and ds.missing_files() == []
    frames, _ = _frames(root / "evaluate" / "real" / "pan.mp4")
    assert frames.shape == (4, 32, 32, 3)


def test_contents(demo_root: Path) -> None:
    ds = generate_demo(demo_root)
    assert ds.name == "demo" and ds.hints == {"group_by": "distortion"}
    assert ds.ids == [f"{s}_{d}" for s in SCENES for d in DISTORTIONS]
    for e in ds.entries:
        scene, dist = e.id.split("_")
        assert dict(e.extra) == {"scene": scene, "distortion": dist, "model": dist}
        assert e.real == demo_root / "evaluate" / "real" / f"{scene}.mp4"
        assert e.prompt and len(e.prompt) > 20
    assert "distortion" in ds.metainfo["description"]
    assert ds.missing_files() == []
    # the annotation file is a normal AIGVE file
    again = read_annotation(demo_root / "annotations" / "evaluate.json")
    assert again.ids == ds.ids
    total = sum(p.stat().st_size for p in demo_root.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024


def test_real_clips_format(demo_root: Path) -> None:
    for s in SCENES:
        frames, fps = _frames(demo_root / "evaluate" / "real" / f"{s}.mp4")
        assert frames.shape == (NUM_FRAMES, SIZE, SIZE, 3)
        assert fps == pytest.approx(FPS)
        # real motion: consecutive frames differ, but smoothly (mean abs difference well below noise level)
        d = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
        assert (d > 0.05).all() and d.max() < 20, (s, d)


@pytest.mark.parametrize("scene", SCENES)
def test_distortions_have_the_stated_effect(demo_root: Path, scene: str) -> None:
    v = demo_root / "evaluate"
    real, _ = _frames(v / "real" / f"{scene}.mp4")
    r = real.astype(np.float64)

    assert (v / f"{scene}_clean.mp4").read_bytes() == (v / "real" / f"{scene}.mp4").read_bytes()

    noise = _frames(v / f"{scene}_noise.mp4")[0].astype(np.float64)
    # gaussian sigma 12 before encoding; clipping at 0/255 and crf-18 coding lower it a little
    assert 7.0 < (noise - r).std() < 13.0

    def hf(x: np.ndarray) -> float:  # high-frequency energy: mean squared horizontal gradient
        return float((np.diff(x, axis=2) ** 2).mean())

    blur = _frames(v / f"{scene}_blur.mp4")[0].astype(np.float64)
    assert hf(blur) < 0.8 * hf(r)
    # against the reference operation applied to the decoded real clip (tolerance: crf-18 coding noise)
    from scipy.ndimage import gaussian_filter

    assert np.abs(blur - gaussian_filter(r, sigma=(0, 2.0, 2.0, 0), mode="nearest")).mean() < 1.5

    flicker = _frames(v / f"{scene}_flicker.mp4")[0].astype(np.float64)
    ratio = flicker.mean(axis=(1, 2, 3)) / r.mean(axis=(1, 2, 3))
    assert ratio.std() > 0.1  # per-frame brightness gains drawn from U(0.65, 1.35), clipped

    frozen = _frames(v / f"{scene}_frozen.mp4")[0].astype(np.float64)
    assert np.abs(frozen - r[0]).mean() < 2.0  # every frame is the first real frame
    # consecutive frames differ only by coding noise: x264 refines a static picture a little in the frames
    # after a key frame (measured: mean |diff| <= 0.08, 99.9th percentile <= 3, max <= 10 grey levels)
    d = np.abs(np.diff(frozen, axis=0))
    assert d.mean() < 0.25 and np.percentile(d, 99.9) <= 4 and d.max() <= 12

    shuffled = _frames(v / f"{scene}_shuffled.mp4")[0].astype(np.float64)
    # each shuffled frame is (up to coding noise) one of the real frames, and the order is permuted
    sub_s, sub_r = shuffled[:, ::4, ::4], r[:, ::4, ::4]  # subsampled: cheap and still distinctive
    mse = ((sub_s[:, None] - sub_r[None]) ** 2).mean(axis=(2, 3, 4))
    perm = mse.argmin(axis=1)
    assert sorted(perm.tolist()) == list(range(NUM_FRAMES))
    assert (perm != np.arange(NUM_FRAMES)).sum() > NUM_FRAMES // 2


def test_builtin_and_load_dataset(demo_root: Path) -> None:
    cache = demo_root.parent.parent
    ds = load_builtin("demo", cache)
    assert ds.root == demo_root / "evaluate" and len(ds) == 24
    assert load_dataset("demo", cache_dir=cache).ids == ds.ids
