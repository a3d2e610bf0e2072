"""The blur effect (Crété-Roffet et al. 2007), as scikit-image's ``skimage.measure.blur_effect`` computes it.

Crété-Roffet, Dolmière, Ladret & Nicolas, "The blur effect: perception and estimation with a new
no-reference perceptual blur metric", Proc. SPIE 6492, Human Vision and Electronic Imaging XII (2007).

Idea: blurring a sharp image destroys much of its neighbouring-pixel variation, blurring an already blurred
image destroys little. For each axis ``a`` of the grey image ``F``:

- ``B = uniform_filter1d(F, h_size, axis=a)`` (the re-blurred image; 11 taps by default);
- ``D_F = |d_a F|``, ``D_B = |d_a B|`` (derivatives along ``a``), each clipped below at machine epsilon;
- ``V = max(0, D_F - D_B)`` (the variation the re-blur removed);
- ``b_a = |sum D_F - sum V| / sum D_F`` over the interior ``[2 : n - 1]`` of every axis.

The blur effect is ``max_a b_a``, in ``[0, 1]``: 0 = sharp, 1 = maximally blurred. The paper takes the
derivative as a first difference and re-blurs with 9 taps; this module follows scikit-image 0.26 exactly
(the derivative is the Sobel operator ``[1, 0, -1]`` along ``a`` smoothed by ``[1/4, 1/2, 1/4]`` along
the other axis, ``reflect`` borders; ``h_size`` = 11; grey = ``0.2125 R + 0.7154 G + 0.0721 B`` on values
scaled to [0, 1], scikit-image's ``rgb2gray``), so values can be checked against ``blur_effect``.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from aigve.errors import UsageError

DEFAULT_H_SIZE = 11
#: scikit-image's ``rgb2gray`` weights (ITU-R BT.709 luma)
GREY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], dtype=np.float64)
_EPS = np.spacing(np.float64(1))
_SMOOTH = np.array([0.25, 0.5, 0.25])
_EDGE = np.array([1.0, 0.0, -1.0])


def grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 ``[..., H, W, 3]`` RGB -> float64 grey in [0, 1] (scikit-image's ``rgb2gray``)."""
    return (np.asarray(rgb, dtype=np.float64) / 255.0) @ GREY_WEIGHTS


def _sobel_abs(img: np.ndarray, axis: int) -> np.ndarray:
    other = 1 - axis
    d = ndi.correlate1d(img, _EDGE, axis=axis, mode="reflect")
    return np.abs(ndi.correlate1d(d, _SMOOTH, axis=other, mode="reflect"))


def blur_effect_axes(image: np.ndarray, h_size: int = DEFAULT_H_SIZE) -> list[float]:
    """Per-axis blur ``[b_0, b_1]`` of a 2-D float grey image (see the module docstring)."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"blur effect: expected a 2-D grey image, got shape {img.shape}")
    interior = tuple(slice(2, n - 1) for n in img.shape)
    out = []
    for axis in (0, 1):
        reblurred = ndi.uniform_filter1d(img, h_size, axis=axis)
        d_f = np.maximum(_EPS, _sobel_abs(img, axis))
        d_b = np.maximum(_EPS, _sobel_abs(reblurred, axis))
        v = np.maximum(0.0, d_f - d_b)
        s_f = float(np.sum(d_f[interior]))
        s_v = float(np.sum(v[interior]))
        out.append(abs(s_f - s_v) / s_f)
    return out


def blur_effect(image: np.ndarray, h_size: int = DEFAULT_H_SIZE) -> float:
    """Blur effect of one 2-D grey image in [0, 1] (max over the two axes)."""
    return max(blur_effect_axes(image, h_size))


def blur_effect_rgb(frames: np.ndarray, h_size: int = DEFAULT_H_SIZE) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` RGB frames -> float64 ``[T]`` blur effect of each frame."""
    return np.array([blur_effect(grey(f), h_size) for f in np.asarray(frames)], dtype=np.float64)


def check_h_size(h_size: object) -> None:
    """``h_size`` must be an int >= 2 (a 1-tap re-blur removes nothing)."""
    if isinstance(h_size, bool) or not isinstance(h_size, int) or h_size < 2:
        raise UsageError(f"blur_effect: h_size must be an integer >= 2, got {h_size!r}")
