"""check_video / check_many on good and bad files."""

from __future__ import annotations

import json

import pytest

from aigve.video import PROBLEM_SEVERITY, check_many, check_video
from tests.video.video_media import Media, toy_dir


def _without_small(codes: list[str]) -> list[str]:
    """Problem codes other than small_frames (most test clips are below NIQE's 194-px minimum)."""
    return [c for c in codes if c != "small_frames"]


def test_good_clip(media: Media) -> None:
    path = media.clip(t=20, h=200, w=208, fps=8)  # large enough for every metric's size limit
    r = check_video(path)
    assert r.readable and r.ok
    assert (r.frames, r.fps, r.width, r.height, r.codec) == (20, 8.0, 208, 200, "h264")
    assert r.duration == pytest.approx(2.5)
    assert r.size_bytes == path.stat().st_size
    assert r.declared_frames == 20
    assert r.problems == []


def test_to_dict_is_json_ready(media: Media) -> None:
    r = check_video(media.clip())
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) >= {"path", "readable", "frames", "fps", "width", "height", "codec", "duration"}
    assert {"size_bytes", "problems", "ok"} <= set(d)
    assert d["ok"] is True


def test_odd_dimensions_is_a_warning(media: Media) -> None:
    r = check_video(media.clip("odd.mp4", t=4, h=17, w=33, codec="mpeg4"))
    assert _without_small(r.codes) == ["odd_dimensions"] and "33x17" in r.problems[0]
    assert r.ok


def test_single_frame(media: Media) -> None:
    r = check_video(media.clip("one.mp4", t=1))
    assert _without_small(r.codes) == ["single_frame"] and r.ok and r.frames == 1


def test_variable_frame_rate(media: Media) -> None:
    vfr = check_video(media.timed_clip("vfr.mkv", [0, 40, 80, 200, 240, 500, 540, 580, 1000]))
    assert "variable_frame_rate" in vfr.codes and vfr.ok
    assert "40.0 ms to 420.0 ms" in vfr.problems[vfr.codes.index("variable_frame_rate")]
    cfr = check_video(media.timed_clip("cfr.mkv", [i * 40 for i in range(9)]))
    assert "variable_frame_rate" not in cfr.codes


def test_missing_fps(media: Media) -> None:
    r = check_video(media.timed_clip("norate.mkv", [0], rate=None))
    assert "missing_fps" in r.codes and r.fps is None


@pytest.mark.parametrize("kind", ["mkv", "faststart-mp4"])
def test_truncated(media: Media, kind: str) -> None:
    src = media.clip("full.mkv", t=40) if kind == "mkv" else media.faststart_clip(t=40)
    r = check_video(media.cut(src, 0.5))
    assert r.readable and not r.ok
    assert "truncated" in r.codes and "frame_count_mismatch" not in r.codes
    assert 0 < r.frames < 40


def test_frame_count_mismatch(media: Media) -> None:
    """AVI stores variable frame rate as a 1 ms tick grid with dropped ticks: it declares ticks."""
    r = check_video(media.timed_clip("vfr.avi", [0, 40, 80, 200, 240, 500, 540, 580, 1000, 1040]))
    assert r.declared_frames is not None and r.declared_frames > r.frames == 10
    assert "frame_count_mismatch" in r.codes and "truncated" not in r.codes


def test_zero_frames(media: Media) -> None:
    r = check_video(media.zeroed_payload(media.clip(t=20)))
    assert not r.readable and not r.ok and r.frames == 0
    assert r.codes == ["zero_frames"]


@pytest.mark.parametrize("make", ["missing", "empty", "random_bytes", "text_file", "audio_only", "cut_mp4"])
def test_unreadable(media: Media, make: str) -> None:
    if make == "missing":
        path = media.root / "nope.mp4"
    elif make == "cut_mp4":
        path = media.cut(media.clip(t=40), 0.5)
    else:
        path = getattr(media, make)()
    r = check_video(path)
    assert not r.readable and not r.ok
    assert r.codes == ["unreadable"] and r.frames == 0
    assert r.size_bytes == (path.stat().st_size if path.exists() else None)


def test_check_many_order_and_workers(media: Media) -> None:
    paths = [media.clip("a.mp4", t=3), media.text_file(), media.clip("b.mp4", t=5, h=17, w=33, codec="mpeg4")]
    serial = check_many(paths, 0)
    assert [r.path for r in serial] == [str(p) for p in paths]
    assert [r.to_dict() for r in check_many(paths, 2)] == [r.to_dict() for r in serial]
    assert [r.ok for r in serial] == [True, False, True]
    assert [_without_small(r.codes) for r in serial] == [[], ["unreadable"], ["odd_dimensions"]]
    assert all(code in PROBLEM_SEVERITY for r in serial for code in r.codes)


@pytest.mark.toy
def test_toy_dataset_is_clean() -> None:
    root = toy_dir()
    if root is None:
        pytest.skip("AIGVE toy dataset not found (set AIGVE_TOY_DIR)")
    for r in check_many(sorted(root.rglob("*.mp4")), 2):
        assert r.ok and r.problems == [], r
        assert (r.frames, r.width, r.height, r.fps) == (16, 512, 512, 8.0)
