"""Streaming long videos through the extractors and batching frame extractors across videos: the values are
the same as decoding each video whole and extracting one video at a time (exactly: same rows, same forward
passes for streaming; for batching EfficientNet-Lite0's rows do not depend on the batch they are in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pytest

import aigve.video.decode as dec
from aigve.backbones.base import Extractor, Scorer, ScorerInput
from aigve.backbones.registry import register_extractor
from aigve.data.dataset import Dataset
from aigve.engine import Engine, RunConfig
from aigve.metrics.base import FeatureRequest, VideoMetric
from aigve.metrics.catalog import register_metric, unregister_metric
from aigve.types import Entry
from aigve.video import write_video
from aigve.video.sampling import Sampler
from tests.conftest import per_video_table, run_engine, smooth_clip, two_output_spec
from tests.video.video_media import Media


@register_extractor
class OrderedClipSum(Extractor):
    """A clip extractor whose one row depends on every frame and their order: [1, 3]."""

    name: ClassVar[str] = "test_tp_clip"
    kind = "clip"

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        w = np.arange(1, len(frames) + 1, dtype=np.float64)[:, None]
        return (frames.reshape(len(frames), -1, 3).mean(axis=1) * w).sum(axis=0, keepdims=True) + (fps or 0)


@register_extractor
class FrameMeanScorer(Scorer):
    """A scorer reading frames: each sampled frame's mean, times its position. [K, 1]."""

    name: ClassVar[str] = "test_tp_scorer"
    input: ClassVar[Literal["frames", "features"]] = "frames"
    columns: ClassVar[tuple[str, ...]] = ("value",)

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        return [
            it.data.reshape(len(it.data), -1).mean(axis=1, keepdims=True)
            * np.arange(1, len(it.data) + 1)[:, None]
            for it in items
        ]


class _TestMetric(VideoMetric):
    extractor: ClassVar[str]

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("x", self.extractor, Sampler("uniform", n=5, pad="repeat_last"))]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        f = np.asarray(feats["x"], dtype=np.float64)
        return {self.spec.name: float(f.sum()), f"{self.spec.name}_rows": float(len(f))}


_spec = two_output_spec


class ClipMetric(_TestMetric):
    spec = _spec("test_tp_clipm", "test_tp_clip")
    extractor = "test_tp_clip"


class ScorerMetric(_TestMetric):
    spec = _spec("test_tp_scorem", "test_tp_scorer")
    extractor = "test_tp_scorer"


@pytest.fixture(autouse=True)
def _metrics():  # type: ignore[no-untyped-def]
    register_metric(ClipMetric)
    register_metric(ScorerMetric)
    yield
    unregister_metric("test_tp_clipm")
    unregister_metric("test_tp_scorem")


STREAMED = ["flicker", "freeze", "blur_effect", "frame_consistency", "test_tp_clipm", "test_tp_scorem"]


def _run(ds: Dataset, tmp: Path, metrics: list[str], **kw: Any):  # type: ignore[no-untyped-def]
    return run_engine(ds, metrics, **kw)


@pytest.fixture
def streaming_set(tmp_path: Path) -> Dataset:
    media = Media(tmp_path)
    paths = [
        write_video(tmp_path / "a.mp4", smooth_clip(t=12, h=48, w=64, seed=1), fps=8),
        write_video(tmp_path / "b.mp4", smooth_clip(t=3, h=40, w=40, seed=2), fps=10),
        media.cut(media.clip("long.mkv", t=30), 0.5, "cut.mkv"),  # declares more frames than it holds
        media.rotated_clip("rot.mp4", 90)[0],
    ]
    return Dataset("s", [Entry(id=p.stem, generated=p) for p in paths])


def test_streamed_values_equal_the_whole_window(streaming_set: Dataset, tmp_path: Path) -> None:
    whole = _run(streaming_set, tmp_path, STREAMED, stream_above_mib=None, batch_size=4)
    streamed = _run(
        streaming_set, tmp_path, STREAMED, stream_above_mib=0, stream_chunk_mib=0.02, batch_size=4
    )
    assert whole.exit_code == 0 and not whole.errors
    assert len(whole.per_video) == len(STREAMED) * 2 * 4
    pd.testing.assert_frame_equal(per_video_table(streamed), per_video_table(whole), check_exact=True)
    assert streamed.video_warnings == whole.video_warnings and whole.video_warnings  # the cut file's warning
    # with and without the chunk prefetch thread, and with decode threads
    again = _run(
        streaming_set,
        tmp_path,
        STREAMED,
        stream_above_mib=0,
        stream_chunk_mib=0.05,
        stream_prefetch=0,
        num_workers=2,
    )
    pd.testing.assert_frame_equal(per_video_table(again), per_video_table(whole), check_exact=True)


def test_a_mis_declared_length_is_read_again(streaming_set: Dataset, tmp_path: Path, monkeypatch) -> None:
    opened: list[str] = []
    orig = dec.FrameStream.__init__

    def counting(self, path, *a, **kw):  # type: ignore[no-untyped-def]
        opened.append(Path(path).name)
        orig(self, path, *a, **kw)

    monkeypatch.setattr(dec.FrameStream, "__init__", counting)
    _run(streaming_set, tmp_path, ["test_tp_clipm"], stream_above_mib=0, stream_chunk_mib=0.02)
    # uniform rows depend on the length: the cut file (fewer frames than declared) is read twice
    assert sorted(opened) == ["a.mp4", "b.mp4", "cut.mkv", "cut.mkv", "rot.mp4"]
    opened.clear()
    _run(streaming_set, tmp_path, ["flicker"], stream_above_mib=0, stream_chunk_mib=0.02)
    assert sorted(opened) == ["a.mp4", "b.mp4", "cut.mkv", "rot.mp4"]  # "all" rows do not depend on it


def test_streamed_video_that_cannot_decode_gets_its_error(tmp_path: Path) -> None:
    media = Media(tmp_path)
    good = write_video(tmp_path / "good.mp4", smooth_clip(t=6), fps=8)
    bad = media.cut(media.clip("bad.mp4", t=40), 0.5, "bad_cut.mp4")  # no index: nothing decodes
    ds = Dataset("s", [Entry(id="good", generated=good), Entry(id="bad", generated=bad)])
    whole = _run(ds, tmp_path, ["flicker"], stream_above_mib=None)
    streamed = _run(ds, tmp_path, ["flicker"], stream_above_mib=0)
    assert [e["video_id"] for e in streamed.errors] == ["bad"]
    assert streamed.errors == whole.errors
    pd.testing.assert_frame_equal(per_video_table(streamed), per_video_table(whole), check_exact=True)


# ------------------------------------------------------------------------ across videos
@pytest.fixture
def many(tmp_path: Path) -> Dataset:
    entries = []
    for i in range(6):
        h, w = (48, 64) if i % 3 else (40, 40)  # two frame sizes: batched per size
        gen = write_video(tmp_path / f"g{i}.mp4", smooth_clip(t=3 + i % 3, h=h, w=w, seed=i), fps=8)
        real = write_video(tmp_path / f"r{i}.mp4", smooth_clip(t=4, h=h, w=w, seed=50 + i), fps=8)
        entries.append(Entry(id=f"v{i}", generated=gen, real=real))
    return Dataset("many", entries)


def _counting_efficientnet(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    from aigve.backbones.efficientnet_lite0 import EfficientNetLite0Extractor

    calls: list[int] = []
    orig = EfficientNetLite0Extractor.extract

    def counting(self, frames, fps=None):  # type: ignore[no-untyped-def]
        calls.append(len(frames))
        return orig(self, frames, fps)

    monkeypatch.setattr(EfficientNetLite0Extractor, "extract", counting)
    return calls


BATCHED = ["frame_consistency", "fid", "flicker"]
FID = {"fid": {"backbone": "efficientnet_lite0", "frames": 3}}


def test_batched_across_videos_equals_one_at_a_time(many: Dataset, tmp_path: Path, monkeypatch) -> None:
    calls = _counting_efficientnet(monkeypatch)
    one = _run(many, tmp_path, BATCHED, metric_options=FID, batch_videos=False, batch_size=8)
    one_calls = list(calls)
    calls.clear()
    batched = _run(
        many, tmp_path, BATCHED, metric_options=FID, batch_videos=True, batch_size=8, num_workers=2
    )
    assert one.exit_code == 0 and not one.errors
    pd.testing.assert_frame_equal(per_video_table(batched), per_video_table(one), check_exact=True)
    assert batched.value("fid") == one.value("fid")
    assert sum(calls) == sum(one_calls)  # the same frames, each extracted once
    assert len(calls) < len(one_calls)  # in fewer, fuller calls
    assert max(calls) > max(one_calls)


def test_a_corrupt_video_among_batched_ones_gets_its_error(many: Dataset, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    entries = list(many.entries)
    entries.insert(2, Entry(id="bad", generated=bad))
    ds = Dataset("with-bad", entries)
    one = _run(ds, tmp_path, ["frame_consistency"], batch_videos=False)
    batched = _run(ds, tmp_path, ["frame_consistency"], batch_videos=True, num_workers=2)
    assert [e["video_id"] for e in batched.errors] == ["bad"] and batched.errors == one.errors
    pd.testing.assert_frame_equal(per_video_table(batched), per_video_table(one), check_exact=True)
    good = batched.per_video[batched.per_video.video_id != "bad"]
    assert good.value.notna().all() and good.error.isna().all()


def test_an_extractor_failing_on_one_video_fails_only_that_video(
    many: Dataset, tmp_path: Path, monkeypatch
) -> None:
    """A batched call that raises falls back to one video at a time, so each video gets its own outcome."""
    from aigve.backbones.efficientnet_lite0 import EfficientNetLite0Extractor

    orig = EfficientNetLite0Extractor.extract
    v0 = dec.decode_video(many.entries[0].generated).frames[0]

    def picky(self, frames, fps=None):  # type: ignore[no-untyped-def]
        if frames.shape[1:] == v0.shape and any(np.array_equal(f, v0) for f in frames):
            raise RuntimeError("boom")  # v0's frames alone, or any batch holding them
        return orig(self, frames, fps)

    monkeypatch.setattr(EfficientNetLite0Extractor, "extract", picky)
    res = _run(many, tmp_path, ["frame_consistency"], batch_videos=True)
    failed = sorted({e for e in res.per_video[res.per_video.error.notna()].video_id})
    assert failed == ["v0"]
    assert "boom" in res.per_video[res.per_video.video_id == "v0"].error.iloc[0]


def test_resume_after_a_kill_with_batching(many: Dataset, tmp_path: Path) -> None:
    class _Kill(Exception):
        pass

    def kill_after_three(done: int, total: int) -> None:
        if done == 3:
            raise _Kill

    full = _run(many, tmp_path, ["frame_consistency", "flicker"])
    out = tmp_path / "out"
    cfg = RunConfig(metrics=["frame_consistency", "flicker"], out_dir=out, bootstrap=0)
    with pytest.raises(_Kill):
        Engine(many, cfg, progress=kill_after_three).run()
    cfg = RunConfig(metrics=["frame_consistency", "flicker"], out_dir=out, bootstrap=0, resume=True)
    resumed = Engine(many, cfg).run()
    pd.testing.assert_frame_equal(per_video_table(resumed), per_video_table(full), check_exact=True)
