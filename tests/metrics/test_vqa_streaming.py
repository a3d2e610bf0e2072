"""The NR-VQA backbones that choose their own frames inside a clip declare them
(:meth:`~aigve.backbones.base.Backbone.frame_windows`): ``simplevqa_spatial`` (a key frame per second),
``slowfast_r50`` (a 32-frame clip per second), ``dover`` (the rows of its two views) and ``lightvqa_spatial``
(8 key frames), while ``lightvqa_brightness`` reads every frame one group at a time. A video streamed in
chunks of two frames must give exactly the values of the same video decoded whole (where every backbone
gets a ``DeclaredFrames`` that refuses an undeclared row, so a missing declaration is an error, not a
changed number), and a streamed video's backbones hold a bounded number of frames.

Tiny configurations: seeded random weights loaded through the real loaders (SimpleVQA's ResNet-50, DOVER
reduced views, Light-VQA's tiny Swin); SlowFast is a stand-in with its interface (the clip cutting is what is
under test, not the network, which tests/backbones/test_slowfast.py checks)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import aigve.backbones.lightvqa as lv
import aigve.backbones.simplevqa as sv
import aigve.engine.execute as execute
from aigve.backbones.dover import sample_rows
from aigve.backbones.nets.lightvqa import LightVQANet
from aigve.backbones.nets.simplevqa import SimpleVQANet
from aigve.backbones.registry import build_extractor
from aigve.data.dataset import Dataset
from aigve.engine import Engine, RunConfig
from aigve.engine.feed import Feed
from aigve.types import Entry
from aigve.video.encode import write_video
from tests.backbones.test_slowfast import seeded_state
from tests.metrics.test_dover import SMALL, _seeded_state_dict
from tests.metrics.test_lightvqa import TINY, seeded_upstream_state

METRICS = ["simplevqa", "dover", "lightvqa"]


class _StubSlowFast(torch.nn.Module):
    """No parameters; SlowFastR50's ``pathways``/``pooled`` interface, rows that depend on every frame."""

    @staticmethod
    def pathways(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, :, ::4], x

    def pooled(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.arange(1, fast.shape[2] + 1, dtype=fast.dtype).view(1, 1, -1, 1, 1)
        f = (fast * w).mean((2, 3, 4)) / 100
        return slow.mean((2, 3, 4)).repeat(1, 683)[:, :2048] / 100, f.repeat(1, 86)[:, :256]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("vqa_ckpt")
    files = {k: d / n for k, n in (("svqa", "UGC_BVQA_model.pth"), ("sf", "SLOWFAST_8x8_R50.pyth"))}
    files |= {"dover": d / "DOVER.pth", "lv": d / "lightvqa.pth"}
    torch.save(seeded_state(SimpleVQANet().state_dict(), 3), files["svqa"])
    torch.save({"model_state": {}}, files["sf"])
    torch.save(_seeded_state_dict(0), files["dover"])
    torch.save(seeded_upstream_state()[0], files["lv"])
    return {k: str(v) for k, v in files.items()}


def _video(path: Path, t: int, h: int, w: int, fps: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [
        np.clip(
            xx[..., None] * 3 + 60 * np.sin(i / 2 + yy / 9.0)[..., None] + rng.normal(0, 20, (h, w, 3)),
            0,
            255,
        )
        for i in range(t)
    ]
    return write_video(path, np.stack(frames).astype(np.uint8), fps=fps)


def test_streamed_equals_whole(
    checkpoints: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setattr(lv, "LightVQANet", partial(LightVQANet, **TINY))
    monkeypatch.setattr(sv, "SlowFastR50", _StubSlowFast)
    feeds: list[tuple[str, str]] = []  # (backbone, feed) of every streamed request
    real_feed = execute.make_feed

    def spy(backbone: Any, rows: list[int], fps: float) -> Feed:
        feed = real_feed(backbone, rows, fps)
        feeds.append((backbone.name, type(feed).__name__))
        return feed

    monkeypatch.setattr(execute, "make_feed", spy)
    ds = Dataset(
        "vqa",
        [  # 37 frames at 8 fps: 4 seconds, 4 brightness frames per slot; 20 at 4 fps: 5 seconds, 2 per slot
            Entry("a", _video(tmp_path / "a.mp4", 37, 48, 64, 8, 1)),
            Entry("b", _video(tmp_path / "b.mp4", 20, 40, 56, 4, 2)),
        ],
    )
    sf = {"slowfast_weights": checkpoints["sf"]}
    opts = {
        "simplevqa": {"weights": checkpoints["svqa"], **sf},
        "dover": {"weights": checkpoints["dover"], **SMALL},
        "lightvqa": {"weights": checkpoints["lv"], **sf},
    }

    def run(**kw: Any) -> pd.DataFrame:
        cfg = RunConfig(
            metrics=METRICS,
            metric_options=opts,
            cache_dir=None,
            bootstrap=0,
            set_bootstrap=0,
            batch_size=4,  # one key frame / one clip per forward pass, brightness in groups of 4
            progress=False,
            **kw,
        )
        table = Engine(ds, cfg).run().per_video
        return table.sort_values(["video_id", "metric", "output"]).reset_index(drop=True)

    whole = run(stream_above_mib=None)
    assert not feeds
    streamed = run(stream_above_mib=0, stream_chunk_mib=0.02)  # two 48x64 frames per chunk
    assert whole["error"].isna().all(), whole["error"].dropna().tolist()
    assert len(whole) == 2 * 5 and whole["value"].notna().all()
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    assert set(feeds) == {
        ("simplevqa_spatial", "_WindowsFeed"),
        ("slowfast_r50", "_WindowsFeed"),
        ("dover", "_WindowsFeed"),
        ("lightvqa_spatial", "_WindowsFeed"),
        ("lightvqa_brightness", "_FramesFeed"),
    }


def test_declared_windows_are_bounded_and_are_the_rows_read() -> None:
    """What each one declares for a 2-minute video at 30 fps: windows whose groups hold a bounded number of
    rows (not the video), and the rows the formulas of the module docstrings pick."""
    t, fps = 3600, 30.0
    svs = build_extractor("simplevqa_spatial", batch_size=32)
    assert svs.frame_windows(t, fps) == [[30 * i] for i in range(120)]
    assert svs.windows_per_call(1080, 1920) == 8
    sfr = build_extractor("slowfast_r50", batch_size=64)
    wins = sfr.frame_windows(t, fps)
    assert wins is not None and len(wins) == 120 and sfr.windows_per_call(1080, 1920) == 2
    assert list(wins[0]) == list(range(32)) and list(wins[-1]) == [min(3570 + j, t - 1) for j in range(32)]
    dover = build_extractor("dover", seed=3, **SMALL)
    (win,) = dover.frame_windows(t, fps)
    tech, aes, _ = sample_rows(t, dover.config, seed=3)
    assert list(win) == [*tech, *aes] and len(win) == 2 * 8 + 8
    spatial = build_extractor("lightvqa_spatial", key_frames="strided")
    assert spatial.frame_windows(t, fps) == [[450 * i for i in range(8)]]
    assert build_extractor("lightvqa_brightness").frame_windows(t, fps) is None  # per frame, streamed by kind
