"""blur_effect: the formula against scikit-image's ``blur_effect`` (its reference), the extractor and metric
against the formula, options, small frames and sensitivity (a blurred frame scores higher)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aigve.backbones.pixel_ops import blur as F_blur
from aigve.backbones.registry import build_extractor
from aigve.errors import MetricInputError, UsageError
from aigve.metrics.catalog import get_metric_class, suite_members
from aigve.metrics.classic import BlurEffect
from aigve.types import Entry

ENTRY = Entry(id="v", generated=Path("v.mp4"))


def _frames(t: int = 3, h: int = 48, w: int = 61, seed: int = 0, sigma: float = 0.0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.uniform(0, 255, (t, h, w, 3)), (0, 1.0, 1.0, 0))
    base = np.clip((base - base.mean()) * 4 + 128, 0, 255)
    if sigma:
        base = gaussian_filter(base, (0, sigma, sigma, 0))
    return np.round(base).astype(np.uint8)


@pytest.mark.parametrize("sigma", [0.0, 1.0, 3.0])
@pytest.mark.parametrize("h_size", [3, 11, 20])
def test_equals_scikit_image_blur_effect(sigma: float, h_size: int) -> None:
    skm = pytest.importorskip("skimage.measure")
    frames = _frames(sigma=sigma)
    ours = F_blur.blur_effect_rgb(frames, h_size)
    ref = np.array([skm.blur_effect(f, h_size=h_size, channel_axis=-1) for f in frames])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)
    axes = F_blur.blur_effect_axes(F_blur.grey(frames[0]), h_size)
    ref_axes = skm.blur_effect(frames[0], h_size=h_size, channel_axis=-1, reduce_func=None)
    np.testing.assert_allclose(axes, ref_axes, rtol=1e-12, atol=0)


def test_definition_on_flat_sharp_and_smooth_images() -> None:
    """A flat image has no variation to lose (every derivative is clipped to eps): blur 1. A 2-px checkerboard
    loses nearly all of its variation to the 11-tap re-blur (sharp, near 0); a linear ramp keeps all of it
    (the box filter leaves a ramp unchanged away from the borders): blur near 1 along x, 1 along y (flat)."""
    assert F_blur.blur_effect(np.full((16, 16), 0.5)) == pytest.approx(1.0)
    yy, xx = np.mgrid[0:32, 0:32]
    checker = ((yy // 2 + xx // 2) % 2).astype(np.float64)
    b0, b1 = F_blur.blur_effect_axes(checker)
    assert b0 == pytest.approx(b1) and b0 < 0.15
    assert F_blur.blur_effect(checker) == max(b0, b1)
    along_y, along_x = F_blur.blur_effect_axes(xx / 31.0)
    assert along_y == pytest.approx(1.0) and along_x > 0.85  # x: only the reflected borders lose a little


def test_blurring_raises_the_blur_effect() -> None:
    sharp = F_blur.blur_effect_rgb(_frames())
    blurred = F_blur.blur_effect_rgb(_frames(sigma=2.0))
    assert np.all(blurred > sharp + 0.1)
    assert np.all((sharp >= 0) & (blurred <= 1))


def test_catalogue_row() -> None:
    assert get_metric_class("blur_effect") is BlurEffect
    spec = BlurEffect.spec
    assert spec.higher_is_better is False and spec.primary.range == (0.0, 1.0)
    assert "Crété-Roffet" in spec.citation and spec.backbone == "blur_effect_frames"
    assert "blur_effect" in suite_members("offline")


def test_extractor_and_metric_follow_the_formula() -> None:
    frames = _frames(t=5)
    metric = BlurEffect(h_size=7)
    (req,) = metric.effective_requests()
    assert req.extractor == "blur_effect_frames" and dict(req.options) == {"h_size": 7}
    ext = build_extractor(req.extractor, batch_size=2, **dict(req.options))
    feats = ext.extract(frames)
    expected = F_blur.blur_effect_rgb(frames, 7)
    np.testing.assert_array_equal(feats[:, 0], expected)
    assert ext.identity()["options"] == {"h_size": 7}
    out = metric.score(ENTRY, {"blur": feats})
    assert out == {"blur_effect": float(expected.mean()), "blur_effect_max": float(expected.max())}


@pytest.mark.parametrize("bad", [1, 0, 2.5, "11", True])
def test_bad_h_size_is_a_usage_error(bad: object) -> None:
    with pytest.raises(UsageError, match="h_size"):
        BlurEffect(h_size=bad)
    with pytest.raises(UsageError, match="h_size"):
        build_extractor("blur_effect_frames", h_size=bad)


def test_tiny_frames_are_a_per_video_error() -> None:
    ext = build_extractor("blur_effect_frames")
    with pytest.raises(MetricInputError, match="at least 4x4"):
        ext.extract(np.zeros((2, 3, 40, 3), np.uint8))
    with pytest.raises(MetricInputError, match="no frames"):
        BlurEffect().score(ENTRY, {"blur": np.zeros((0, 1))})
