"""Backbones that choose their own frames declare them (``Backbone.frame_windows``): a streamed video then
holds only the rows of windows still to run, whatever its length, and every run (streamed or decoded whole)
hands the backbone a ``DeclaredFrames`` that refuses an undeclared row, so the two paths give the same rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pytest

from aigve.backbones.base import Extractor, Scorer, ScorerInput, run_windows, window_groups
from aigve.backbones.registry import build_extractor, register_extractor
from aigve.data.dataset import Dataset
from aigve.engine.feed import make_feed
from aigve.errors import MetricInputError
from aigve.metrics.base import FeatureRequest, MetricSpec, VideoMetric
from aigve.metrics.catalog import all_specs, get_metric_class, register_metric, unregister_metric
from aigve.types import DeclaredFrames, Entry
from aigve.video import write_video
from aigve.video.decode import FrameChunk
from aigve.video.sampling import ALL_FRAMES
from tests.conftest import per_video_table, run_engine, smooth_clip, two_output_spec
from tests.video.video_media import Media


# ------------------------------------------------------------------------ DeclaredFrames
def test_declared_frames_index_like_the_whole_array() -> None:
    frames = np.arange(10 * 2 * 3 * 3, dtype=np.uint8).reshape(10, 2, 3, 3)
    rows = [0, 2, 3, 9]
    views = [
        DeclaredFrames.whole(frames, rows, "b"),
        DeclaredFrames.kept(frames[rows], rows, 10, "b"),
    ]
    for v in views:
        assert len(v) == 10 and v.shape == frames.shape and v.dtype == np.uint8 and v.ndim == 4
        assert v.rows == rows
        np.testing.assert_array_equal(v[3], frames[3])
        np.testing.assert_array_equal(v[-1], frames[-1])
        np.testing.assert_array_equal(v[[9, 0, 0, 2]], frames[[9, 0, 0, 2]])  # repeats, any order
        np.testing.assert_array_equal(v[np.array([[0, 2], [3, 9]])], frames[np.array([[0, 2], [3, 9]])])
        np.testing.assert_array_equal(v[2:4], frames[2:4])
        np.testing.assert_array_equal(v[[0, 2], 1], frames[[0, 2], 1])
        np.testing.assert_array_equal(v[3, 0, 1], frames[3, 0, 1])
        for bad in (1, [0, 1], slice(0, 3), slice(None, None, 2)):
            with pytest.raises(IndexError, match=r"^b read row\(s\) \[\d"):
                v[bad]
        with pytest.raises(IndexError, match="did not declare"):
            np.asarray(v)  # the whole clip was not declared
        with pytest.raises(IndexError, match="out of range"):
            v[[10]]
    np.testing.assert_array_equal(np.asarray(DeclaredFrames.whole(frames, range(10))), frames)


# ------------------------------------------------------------------------ test backbones
def _local_windows(t: int) -> list[tuple[int, ...]]:
    """Overlapping windows of 4 rows every 3 (clamped: the last repeats), then one reading (0, last)."""
    wins = [tuple(min(s + j, t - 1) for j in range(4)) for s in range(0, t, 3)]
    return [*wins, (0, t - 1)]


def _window_value(frames: Any, w: Sequence[int]) -> float:
    x = frames[list(w)].astype(np.float64)
    return float((x.reshape(len(w), -1).mean(axis=1) * np.arange(1, len(w) + 1)).sum())


@register_extractor
class LocalWindows(Extractor):
    """One row per window of ``_local_windows``, two windows per call."""

    name: ClassVar[str] = "test_fw_local"
    kind = "clip"
    neural = False
    calls: ClassVar[list[tuple[int, int]]] = []

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        if num_frames < 2:
            raise MetricInputError(f"test_fw_local needs 2 frames, got {num_frames}")
        return list(_local_windows(num_frames))

    def windows_per_call(self, height: int, width: int) -> int:
        return 2

    def extract_windows(self, frames: DeclaredFrames, fps: float | None, lo: int, hi: int) -> np.ndarray:
        self.calls.append((lo, hi))
        wins = _local_windows(len(frames))
        return np.array([[_window_value(frames, wins[i]), fps or 0] for i in range(lo, hi)])

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        return run_windows(self, frames, fps)


def _middle(t: int, n: int = 4) -> list[int]:
    cuts = np.linspace(0, t, n + 1).astype(int)
    return [
        min(int((a + b - 1) // 2), t - 1) if b > a else min(int(a), t - 1)
        for a, b in zip(cuts, cuts[1:], strict=False)
    ]


@register_extractor
class MiddleClip(Extractor):
    """One window: 4 middle frames, read together (the rows of a ViCLIP-like frame choice)."""

    name: ClassVar[str] = "test_fw_middle"
    kind = "clip"
    neural = False
    sloppy: ClassVar[bool] = False  # also reads the last row, which it does not declare

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        return [_middle(num_frames)]

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        rows = _middle(len(frames)) + ([len(frames) - 1] if self.sloppy else [])
        return np.array([[_window_value(frames, rows)]])


@register_extractor
class MiddleScorer(Scorer):
    """A scorer reading frames that declares its 4 middle frames."""

    name: ClassVar[str] = "test_fw_scorer"
    input: ClassVar[Literal["frames", "features"]] = "frames"
    columns: ClassVar[tuple[str, ...]] = ("value",)
    neural = False

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        return [_middle(num_frames)]

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        return [np.array([[_window_value(it.data, _middle(len(it.data)))]]) for it in items]


def _metric(name: str, backbone: str) -> type[VideoMetric]:
    class M(VideoMetric):
        spec = two_output_spec(name, backbone)

        def requests(self) -> list[FeatureRequest]:
            return [FeatureRequest("x", backbone, ALL_FRAMES)]

        def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
            f = np.asarray(feats["x"], dtype=np.float64)
            return {name: float(f[:, 0].sum()), f"{name}_rows": float(len(f))}

    return M


METRICS = {
    "test_fwm_local": "test_fw_local",
    "test_fwm_middle": "test_fw_middle",
    "test_fwm_score": "test_fw_scorer",
}


@pytest.fixture(autouse=True)
def _metrics():  # type: ignore[no-untyped-def]
    for name, backbone in METRICS.items():
        register_metric(_metric(name, backbone))
    yield
    for name in METRICS:
        unregister_metric(name)
    MiddleClip.sloppy = False


def _run(ds: Dataset, **kw: Any):  # type: ignore[no-untyped-def]
    return run_engine(ds, list(METRICS), **kw)


@pytest.fixture
def videos(tmp_path: Path) -> Dataset:
    media = Media(tmp_path)
    paths = [
        write_video(tmp_path / "a.mp4", smooth_clip(t=23, h=48, w=64, seed=1), fps=8),
        write_video(tmp_path / "b.mp4", smooth_clip(t=5, h=40, w=40, seed=2), fps=10),
        write_video(
            tmp_path / "one.mp4", smooth_clip(t=1, h=40, w=40, seed=3), fps=10
        ),  # too short for local
        media.cut(media.clip("long.mkv", t=30), 0.5, "cut.mkv"),  # declares more frames than it holds
    ]
    return Dataset("w", [Entry(id=p.stem, generated=p) for p in paths])


def test_streamed_equals_whole_and_both_equal_the_formula(videos: Dataset) -> None:
    whole = _run(videos, stream_above_mib=None)
    streamed = _run(videos, stream_above_mib=0, stream_chunk_mib=0.01)
    single = _run(videos, stream_above_mib=None, batch_videos=False, num_workers=0)
    pd.testing.assert_frame_equal(per_video_table(streamed), per_video_table(whole), check_exact=True)
    pd.testing.assert_frame_equal(per_video_table(single), per_video_table(whole), check_exact=True)
    # the one-frame video: a per-video error for the backbone that refuses it, the others scored
    failed = whole.per_video.dropna(subset=["error"])
    assert set(zip(failed["video_id"], failed["metric"], strict=True)) == {("one", "test_fwm_local")}
    assert all("one.mp4: test_fw_local needs 2 frames, got 1" in e for e in failed["error"])
    assert whole.per_video["value"].notna().sum() == len(whole.per_video) - 2
    # the values are the formula on the decoded frames (a: 23 frames, 9 local windows)
    from aigve.video import decode_video

    frames = decode_video(videos.entries[0].generated).frames
    t = len(frames)
    table = whole.per_video.set_index(["video_id", "output"])["value"]
    want_local = sum(_window_value(frames, w) for w in _local_windows(t))
    assert table[("a", "test_fwm_local")] == pytest.approx(want_local, rel=1e-12)
    assert table[("a", "test_fwm_local_rows")] == len(_local_windows(t))
    want_middle = _window_value(frames, _middle(t))
    assert table[("a", "test_fwm_middle")] == pytest.approx(want_middle, rel=1e-12)
    assert table[("a", "test_fwm_score")] == pytest.approx(want_middle, rel=1e-12)


def test_reading_an_undeclared_row_is_a_per_video_error_in_both_paths(videos: Dataset) -> None:
    MiddleClip.sloppy = True
    for kw in ({"stream_above_mib": None}, {"stream_above_mib": 0, "stream_chunk_mib": 0.01}):
        table = _run(videos, **kw).per_video
        errs = table.query("metric == 'test_fwm_middle'").dropna(subset=["error"])
        assert sorted(set(errs["video_id"])) == ["a", "b", "cut"], kw  # one.mp4's last row is declared
        last = {"a": 22, "b": 4, "cut": 13}
        for vid, e in zip(errs["video_id"], errs["error"], strict=True):
            assert f"test_fw_middle read row(s) [{last[vid]}]" in e and "did not declare" in e
        ok = table.query("metric == 'test_fwm_local'").dropna(subset=["value"])
        assert set(ok["video_id"]) == {"a", "b", "cut"}


def _feed_peak(backbone: Any, t: int, chunk: int = 7, side: int = 8) -> tuple[int, np.ndarray]:
    feed = make_feed(backbone, list(range(t)), 10.0)
    rng = np.random.default_rng(t)
    frames = rng.integers(0, 255, (t, side, side, 3), dtype=np.uint8)
    for start in range(0, t, chunk):
        feed.add(FrameChunk(start, frames[start : start + chunk]))
    out = feed.finish()
    want = run_windows(backbone, frames, 10.0) if isinstance(backbone, Extractor) else None
    if want is not None:
        np.testing.assert_array_equal(out, want)
    return feed.peak_held, frames  # type: ignore[attr-defined]


def test_a_streamed_feed_holds_a_bounded_number_of_frames() -> None:
    """The held frames do not grow with the length: local windows hold about one group, a one-window
    backbone its own choice (4 rows), whatever the clip's length."""
    local = LocalWindows()
    peaks = [_feed_peak(local, t)[0] for t in (40, 400, 4000)]
    # frame 0 (kept for the last window), a group's 7 rows and one 7-frame chunk's worth
    assert max(peaks) <= 1 + 7 + 7 and peaks[1] == peaks[2]
    assert [_feed_peak(MiddleClip(), t)[0] for t in (40, 4000)] == [4, 4]
    peak, frames = _feed_peak(MiddleScorer(), 4000)
    assert peak == 4


# ------------------------------------------------------------------------ the zoo
def _reads_all_frames(backbone_cls: type) -> bool:
    """A backbone that, streamed without windows, would hold every sampled frame."""
    if issubclass(backbone_cls, Scorer):
        return getattr(backbone_cls, "input", "frames") == "frames"
    return getattr(backbone_cls, "kind", "frames") == "clip"


def test_no_metric_holds_a_whole_long_video() -> None:
    """Every request of the zoo that would hold all sampled frames of a streamed video (a clip extractor or a
    scorer reading frames) either samples a bounded number of frames or declares frame windows whose groups
    hold the same number of rows at 20 s and at 2 min (30 fps). Each metric also with every option that is
    off by default switched on (``vbench_temporal_flickering``'s ``static_filter`` adds ``vbench_raft_static``)."""
    unbounded = []
    for spec, options in _with_switches(all_specs()):
        try:
            metric = get_metric_class(spec.name)(**options)
        except Exception:  # noqa: BLE001 - metrics whose optional dependencies are missing
            continue
        for req in metric.requests():
            if req.sampler.n is not None:
                continue  # a bounded count of frames
            built = build_extractor(req.extractor, **dict(req.options))
            backbones = [built]
            if isinstance(built, Scorer):  # and the extractors whose features it reads, on the same frames
                backbones += [build_extractor(n, **dict(o)) for n, o in built.upstreams().values()]
            for backbone in backbones:
                if _reads_all_frames(type(backbone)):
                    widths = _widest_group(backbone)
                    if widths[0] != widths[1]:
                        unbounded.append((spec.name, backbone.name, widths))
    assert not unbounded


def _with_switches(specs: Sequence[MetricSpec]) -> list[tuple[MetricSpec, dict[str, Any]]]:
    """Each spec with its defaults, then once per boolean option that is off by default, switched on."""
    out: list[tuple[MetricSpec, dict[str, Any]]] = []
    for spec in specs:
        out.append((spec, {}))
        out += [(spec, {k: True}) for k, v in (spec.options or {}).items() if v is False]
    return out


def test_switched_on_options_are_checked_too() -> None:
    pairs = _with_switches(all_specs())
    assert (get_metric_class("vbench_temporal_flickering").spec, {"static_filter": True}) in pairs
    metric = get_metric_class("vbench_temporal_flickering")(static_filter=True)
    assert "vbench_raft_static" in [r.extractor for r in metric.requests()]


def _widest_group(backbone: Any) -> list[int]:
    """The most rows one group of its windows reads, at 20 s and 2 min of 30 fps 1080p (all if no windows).
    Rows are counted with their repeats: an upper bound of the frames a group holds that does not move with
    the length when a backbone's random draws happen to pick a row twice (DOVER's two views)."""
    widest = []
    for t in (600, 3600):
        wins = backbone.frame_windows(t, 30.0)
        if wins is None:
            widest.append(t)
            continue
        groups = window_groups(backbone, wins, 1080, 1920)
        widest.append(max(sum(len(wins[i]) for i in g) for g in groups))
    return widest
