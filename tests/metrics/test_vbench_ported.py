"""The ported VBench dimensions through the engine (tiny random networks, loaded through the weights loader):
one decode, the values the backbones give on the decoded frames directly, one ViCLIP pass shared by
temporal_style and overall_consistency, per-video errors that lose no other result, and the dimensions that
are not provided say why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from aigve.errors import UsageError
from aigve.metrics.catalog import UNAVAILABLE, get_metric_class
from aigve.types import Entry
from tests.conftest import smooth_clip

pytest.importorskip("open_clip")
pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from aigve.backbones.nets import amt, umt, viclip

    d = tmp_path_factory.mktemp("vbench_weights")
    torch.save({"state_dict": amt.random_state_dict(seed=3)}, d / "amt.pth")
    torch.save({"model": viclip.random_state_dict(viclip.CONFIGS["tiny_test"], seed=4)}, d / "viclip.pth")
    torch.save(umt.random_state_dict(umt.CONFIGS["tiny_test"], seed=6), d / "umt.pth")
    return {k: str(d / f"{k}.pth") for k in ("amt", "viclip", "umt")}


@pytest.mark.slow
def test_engine_runs_the_ported_dimensions(weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigve.backbones.amt import AMTSmoothnessExtractor
    from aigve.backbones.umt import UMTActionScorer, UMTKineticsExtractor
    from aigve.backbones.viclip import ViCLIPScorer
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.video.decode import decode_video
    from aigve.video.encode import write_video

    calls: list[int] = []
    real_score = ViCLIPScorer.score
    monkeypatch.setattr(
        ViCLIPScorer, "score", lambda self, items: calls.append(len(items)) or real_score(self, items)
    )
    a = write_video(tmp_path / "a.mp4", smooth_clip(t=9, h=128, w=144, seed=5, speed=3.0), fps=8)
    b = write_video(tmp_path / "b.mp4", smooth_clip(t=6, h=128, w=144, seed=7, speed=1.0), fps=8)
    entries = [Entry("a", a, prompt="A person is riding a bike"), Entry("b", b, prompt="a dog in the snow")]
    options = {
        "vbench_motion_smoothness": {"weights": weights["amt"]},
        "vbench_temporal_style": {"weights": weights["viclip"], "config": "tiny_test"},
        "vbench_overall_consistency": {"weights": weights["viclip"], "config": "tiny_test"},
        "vbench_human_action": {"weights": weights["umt"], "config": "tiny_test"},
    }
    cfg = RunConfig(metrics=list(options), metric_options=options, bootstrap=0, progress=False)
    res = Engine(Dataset("t", entries), cfg).run()
    rec = {(r.video_id, r.metric): r for r in res.records}

    # one ViCLIP scoring for both dimensions (each video once)
    assert sum(calls) == 2
    for e in entries:
        clip = decode_video(e.generated)
        amt = AMTSmoothnessExtractor(weights=weights["amt"]).extract(clip.frames)
        got = rec[(e.id, "vbench_motion_smoothness")]
        assert got.error is None and got.value == pytest.approx((255 - amt.mean()) / 255, abs=1e-9)
        vic = ViCLIPScorer(config="tiny_test", weights=weights["viclip"])
        cos = vic.embed_videos([vic.prepare(clip.frames)]) @ vic.embed_texts([e.prompt or ""]).T
        for dim in ("temporal_style", "overall_consistency"):
            r = rec[(e.id, f"vbench_{dim}")]
            assert r.error is None and r.value == pytest.approx(float(cos[0, 0]), abs=1e-6)
    # human action: a verdict for the video with a Kinetics prompt, an error naming what is needed for the other
    ha = rec[("a", "vbench_human_action")]
    probs = UMTKineticsExtractor(config="tiny_test", weights=weights["umt"]).extract(decode_video(a).frames)
    from aigve.backbones.base import ScorerInput

    want = UMTActionScorer().score([ScorerInput("a", probs, None, {"prompt": entries[0].prompt or ""})])[0]
    assert ha.error is None and ha.value == want[0, 0]
    bad = rec[("b", "vbench_human_action")]
    assert bad.value is None and "Kinetics-400" in str(bad.error)


@pytest.mark.parametrize(
    "dim", ["scene", "object_class", "multiple_objects", "color", "spatial_relationship"]
)
def test_unported_dimensions_say_why(dim: str) -> None:
    assert f"vbench_{dim}" in UNAVAILABLE
    with pytest.raises(UsageError, match="Tag2Text" if dim == "scene" else "GRiT"):
        get_metric_class(f"vbench_{dim}")


def test_motion_smoothness_formula() -> None:
    from aigve.metrics.vbench_ported import VBenchMotionSmoothness, motion_smoothness_score

    res = np.array([[10.0], [20.0], [30.0]])
    assert motion_smoothness_score(res) == pytest.approx((255 - 20) / 255)
    out = VBenchMotionSmoothness().score(Entry("x", Path("x.mp4")), {"residuals": res})
    assert out == {"vbench_motion_smoothness": pytest.approx(235 / 255)}


def _streamed_and_whole(
    options: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backbones: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-video tables of ``options``' metrics on two videos at 16 fps, streamed two frames a chunk, and
    decoded whole (four windows a call: several groups for AMT-S); ``backbones`` were streamed through
    their frame windows."""
    import aigve.engine.execute as execute
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.video.encode import write_video

    feeds: set[tuple[str, str]] = set()
    real_make_feed = execute.make_feed

    def make_feed(backbone, rows, fps):  # type: ignore[no-untyped-def]
        feed = real_make_feed(backbone, rows, fps)
        feeds.add((backbone.name, type(feed).__name__))
        return feed

    monkeypatch.setattr(execute, "make_feed", make_feed)

    a = write_video(tmp_path / "a.mp4", smooth_clip(t=13, h=128, w=144, seed=5, speed=3.0), fps=16)
    b = write_video(tmp_path / "b.mp4", smooth_clip(t=10, h=128, w=144, seed=7, speed=1.0), fps=16)
    entries = [Entry("a", a, prompt="A person is riding a bike"), Entry("b", b, prompt="a dog in the snow")]

    def run(**kw):  # type: ignore[no-untyped-def]
        cfg = RunConfig(
            metrics=list(options), metric_options=options, bootstrap=0, set_bootstrap=0, progress=False,
            cache_dir=None, batch_size=4, **kw,
        )  # fmt: skip
        table = Engine(Dataset("t", entries), cfg).run().per_video
        return table.sort_values(["video_id", "metric", "output"]).reset_index(drop=True)

    streamed = run(stream_above_mib=0, stream_chunk_mib=0.12)  # 2 frames a chunk
    assert {(b, "_WindowsFeed") for b in backbones} <= feeds, feeds
    return streamed, run(stream_above_mib=None)


def test_streamed_videos_give_the_values_of_whole_ones(
    weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The VBench backbones that choose their frames (RAFT pairs at VBench's stride of 2 at 16 fps, and of the
    static filter; the 8 ViCLIP and 16 UMT middle frames) give exactly the same values on a streamed video as
    on the video decoded whole."""
    from torchvision.models.optical_flow import raft_large

    from aigve.backbones.vbench import VBenchRaftExtractor

    def fake_flow(self, a, b):  # RAFT itself is checked in tests/vbench/test_dynamic_degree.py
        d = (a.astype(np.float64) - b.astype(np.float64)).mean(axis=-1) / 10
        return np.stack([d, d[::-1]]).astype(np.float32)

    monkeypatch.setattr(VBenchRaftExtractor, "flow", fake_flow)
    torch.manual_seed(0)
    torch.save(raft_large(weights=None, progress=False).state_dict(), tmp_path / "raft.pth")
    raft = {"weights": str(tmp_path / "raft.pth")}
    options = {
        "vbench_temporal_style": {"weights": weights["viclip"], "config": "tiny_test"},
        "vbench_human_action": {"weights": weights["umt"], "config": "tiny_test"},
        "vbench_dynamic_degree": raft,
        "vbench_temporal_flickering": {**raft, "static_filter": True},
    }
    streamed, whole = _streamed_and_whole(
        options, tmp_path, monkeypatch, {"viclip", "umt_k400", "vbench_raft", "vbench_raft_static"}
    )
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    failed = whole.dropna(subset=["error"])
    assert set(zip(failed["video_id"], failed["metric"], strict=True)) == {("b", "vbench_human_action")}
    assert whole["value"].notna().sum() == len(whole) - len(failed) > 0
    flicker = whole.set_index(["video_id", "output"])["value"]
    assert flicker[("a", "vbench_temporal_flickering_static")] in (0.0, 1.0)


@pytest.mark.slow
def test_streamed_motion_smoothness_equals_whole(
    weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AMT-S's triplet windows, four a call (a: 6 predicted frames in two groups, b: 4 and its last odd frame
    unused), streamed two frames a chunk: exactly the values of the whole videos."""
    options = {"vbench_motion_smoothness": {"weights": weights["amt"]}}
    streamed, whole = _streamed_and_whole(options, tmp_path, monkeypatch, {"amt_s"})
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    assert whole["error"].isna().all() and whole["value"].notna().all()
