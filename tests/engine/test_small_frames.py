"""A video whose frames are far smaller than a backbone's input (issue #16): scored, with a per-video warning
naming the backbone and its metrics, also when the scores come from the cache; a backbone that runs at the
native size (no ``input_side``) gives none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aigve.data.dataset import Dataset
from aigve.engine import Engine, RunConfig
from aigve.engine.execute import SMALL_FRAME_FACTOR
from aigve.types import Entry
from tests.conftest import smooth_clip


def _run(ds: Dataset, cache: Path, metrics: list[str]) -> Any:
    return Engine(ds, RunConfig(metrics=metrics, cache_dir=cache, bootstrap=0)).run()


def _dataset(make_video) -> Dataset:  # noqa: ANN001
    strip = make_video("strip.mp4", smooth_clip(4, h=16, w=160, seed=1))  # 16 px << 224 / 4
    normal = make_video("normal.mp4", smooth_clip(4, h=64, w=64, seed=2))  # 64 px >= 224 / 4
    return Dataset("small", [Entry(id="strip", generated=strip), Entry(id="normal", generated=normal)])


def test_small_frames_warn_per_video_and_the_warning_survives_the_cache(make_video, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    ds = _dataset(make_video)
    for attempt in ("decoded", "from cache"):
        res = _run(ds, tmp_path / "cache", ["frame_consistency"])
        df = res.per_video
        if df["error"].notna().any():
            pytest.skip(f"frame_consistency cannot run here: {df['error'].dropna().iloc[0]}")
        strip = df[df.video_id == "strip"]
        assert strip["value"].notna().all(), attempt  # still scored
        text = strip["warning"].iloc[0]
        assert "frames are 16 px on the shorter side" in text, attempt
        assert f"1/{SMALL_FRAME_FACTOR} of the 224-px input of efficientnet_lite0 (frame_consistency)" in text
        assert "upscaled about 14x" in text
        assert df[df.video_id == "normal"]["warning"].isna().all(), attempt
        rows = res.to_dict()["video_warnings"]
        assert [w["video_id"] for w in rows] == ["strip"], attempt
        assert "efficientnet_lite0" in rows[0]["warning"]
        assert res.exit_code == 0  # a warning, not a failure


def test_a_backbone_at_native_size_gives_no_small_frame_warning(make_video, tmp_path: Path) -> None:
    ds = _dataset(make_video)
    res = _run(ds, tmp_path / "cache", ["flicker"])  # frame_absdiff: no input_side
    df = res.per_video
    assert df["value"].notna().all()
    assert df["warning"].isna().all()
    assert res.video_warnings == []


def test_input_sides_of_the_image_backbones() -> None:
    from aigve.backbones.registry import get_extractor_class

    sides = {
        "efficientnet_lite0": 224,
        "fid_inception": 299,
        "frame_absdiff": None,
        "vgg16_meanstd": None,
    }
    for name, side in sides.items():
        assert get_extractor_class(name).input_side == side, name
