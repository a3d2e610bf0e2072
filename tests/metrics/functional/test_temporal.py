"""Flicker and motion maths against independent computations on crafted clips.

Tolerances: flicker is exact integer arithmetic (compared to a float64 NumPy mean at 1e-12, to VBench's
float32 formulation at 1e-5 relative); optical flow on a rigidly translated texture recovers the shift
to within 2 % (DIS and Farneback, measured worst case 0.4 %), a frozen clip gives < 0.01 px/frame.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from aigve.backbones.pixel_ops.temporal import (
    FLOW_MIN_SIDE,
    check_flow_options,
    check_flow_size,
    pair_absdiff,
    pair_flow_magnitude,
)
from aigve.errors import MetricInputError, UsageError
from aigve.metrics.functional.temporal import flicker_scores, motion_scores

cv2 = pytest.importorskip("cv2")


def texture(h: int = 200, w: int = 600, seed: int = 0) -> np.ndarray:
    """Smooth random texture (blurred noise, contrast stretched): trackable everywhere."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip((big - big.mean()) * 4 + 128, 0, 255).astype(np.uint8)


def translated(dx: int, dy: int = 0, t: int = 8, h: int = 128, w: int = 160) -> np.ndarray:
    """Windows of a larger texture moving by (dx, dy) px per frame: the content moves by (-dx, -dy)."""
    big = texture()
    return np.stack([big[20 + i * dy : 20 + i * dy + h, 10 + i * dx : 10 + i * dx + w] for i in range(t)])


# ------------------------------------------------------------------------------------------ flicker
def test_absdiff_matches_float_mean() -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (6, 37, 53, 3), dtype=np.uint8)
    ref = [np.mean(np.abs(frames[i + 1].astype(np.float64) - frames[i].astype(np.float64))) for i in range(5)]
    np.testing.assert_allclose(pair_absdiff(frames), ref, rtol=1e-12, atol=0)


def test_absdiff_matches_vbench_formulation() -> None:
    """VBench: BGR frames, float32 cv2.absdiff, np.mean over H, W, C; mean over pairs; (255 - x) / 255."""
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (5, 48, 64, 3), dtype=np.uint8)
    bgr = [f[..., ::-1] for f in frames]
    maes = [
        np.mean(cv2.absdiff(np.array(a, np.float32), np.array(b, np.float32)))
        for a, b in zip(bgr[:-1], bgr[1:], strict=True)
    ]
    vb = (255.0 - float(np.mean(maes))) / 255.0
    fl, fv = flicker_scores(pair_absdiff(frames))
    assert fv == pytest.approx(vb, rel=1e-5)
    assert fl == pytest.approx(float(np.mean(maes)), rel=1e-5)


def test_constant_clip_has_zero_flicker() -> None:
    frames = np.full((5, 16, 16, 3), 77, dtype=np.uint8)
    assert flicker_scores(pair_absdiff(frames)) == (0.0, 1.0)


def test_black_white_alternation_is_255() -> None:
    frames = np.zeros((6, 16, 16, 3), dtype=np.uint8)
    frames[1::2] = 255
    assert flicker_scores(pair_absdiff(frames)) == (255.0, 0.0)


def test_single_frame_gives_no_pairs() -> None:
    one = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    assert pair_absdiff(one).shape == (0,)
    assert pair_flow_magnitude(one).shape == (0, 2)
    with pytest.raises(ValueError):
        flicker_scores(pair_absdiff(one))
    with pytest.raises(ValueError):
        motion_scores(pair_flow_magnitude(one))


def test_bad_frames_rejected() -> None:
    with pytest.raises(ValueError):
        pair_absdiff(np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError):
        pair_absdiff(np.zeros((3, 8, 8, 3), dtype=np.float32))


# ------------------------------------------------------------------------------------------- motion
@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_translation_recovers_shift(method: str, k: int) -> None:
    mags = pair_flow_magnitude(translated(k), method)
    assert mags.shape == (7, 2)
    motion, _ = motion_scores(mags)
    assert motion == pytest.approx(k, rel=0.02)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_diagonal_translation_and_norm(method: str) -> None:
    frames = translated(2, 2)
    mags = pair_flow_magnitude(frames, method)
    motion, motion_norm = motion_scores(mags)
    assert motion == pytest.approx(2 * math.sqrt(2), rel=0.02)
    h, w = frames.shape[1:3]
    np.testing.assert_allclose(mags[:, 1], mags[:, 0] / math.hypot(h, w), rtol=1e-12)
    assert motion_norm == pytest.approx(motion / math.hypot(h, w), rel=1e-12)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_resize_keeps_original_pixel_units(method: str) -> None:
    """Flow on frames halved to a 64-px short side, vectors scaled back: still ~4 px/frame."""
    motion, _ = motion_scores(pair_flow_magnitude(translated(4), method, resize=64))
    assert motion == pytest.approx(4.0, rel=0.03)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_frozen_clip_has_no_motion(method: str) -> None:
    frames = np.repeat(translated(3)[:1], 6, axis=0)
    motion, motion_norm = motion_scores(pair_flow_magnitude(frames, method))
    assert 0.0 <= motion < 0.01
    assert motion_norm < 1e-4


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_is_deterministic(method: str) -> None:
    frames = translated(3)
    a = pair_flow_magnitude(frames, method)
    b = pair_flow_magnitude(frames, method)
    assert np.array_equal(a, b)


def test_flow_option_validation() -> None:
    check_flow_options("dis", None)
    check_flow_options("farneback", 128)
    for method, resize in [("raft", None), ("dis", 8), ("dis", 12.5), ("dis", True)]:
        with pytest.raises(UsageError):
            check_flow_options(method, resize)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ small frames
@pytest.mark.parametrize(("h", "w"), [(8, 8), (11, 40), (8, 200), (15, 64), (40, 7)])
def test_dis_rejects_frames_too_small_before_opencv(h: int, w: int) -> None:
    """OpenCV's DIS errors out, crashes the process (11x40, 15x64) or returns NaN flow (8x200) on these
    sizes; the check must run first and give our error instead."""
    frames = np.random.default_rng(0).integers(0, 255, (3, h, w, 3), dtype=np.uint8)
    with pytest.raises(MetricInputError) as exc:
        pair_flow_magnitude(frames, "dis")
    msg = str(exc.value)
    assert f"{w}x{h} px" in msg and "both sides >= 16 px" in msg
    assert "motion.resize=16" in msg and "farneback" in msg and "leave 'motion' out" in msg
    assert msg == msg.strip()  # one clean line: no trailing newline as OpenCV's messages have
    assert "OpenCV" not in msg


@pytest.mark.parametrize(("h", "w"), [(16, 16), (16, 300), (300, 16)])
def test_dis_at_the_limit_gives_finite_flow(h: int, w: int) -> None:
    frames = translated(1, t=3, h=h, w=w)
    mags = pair_flow_magnitude(frames, "dis")
    assert mags.shape == (2, 2) and np.all(np.isfinite(mags))


def test_small_frames_work_with_resize_or_farneback() -> None:
    frames = np.random.default_rng(1).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    assert np.all(np.isfinite(pair_flow_magnitude(frames, "dis", resize=16)))
    assert np.all(np.isfinite(pair_flow_magnitude(frames, "farneback")))
    assert FLOW_MIN_SIDE["farneback"] == 1


def test_check_flow_size_uses_the_computed_size() -> None:
    check_flow_size(8, 8, "dis", resize=16)  # flow computed on 16x16: fine
    check_flow_size(1, 1, "farneback")
    with pytest.raises(MetricInputError, match="12x15 px"):
        check_flow_size(15, 12, "dis")
    with pytest.raises(UsageError):
        check_flow_size(64, 64, "raft")
