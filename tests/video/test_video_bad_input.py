"""Inputs that are not videos, or not usable ones: symbolic links that lead nowhere, directories, still
images renamed to a video extension, frames too small for some metrics."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from aigve.backbones.pixel_ops.niqe import MIN_SIDE as NIQE_MIN_SIDE
from aigve.backbones.pixel_ops.temporal import FLOW_MIN_SIDE
from aigve.errors import DecodeError
from aigve.metrics.catalog import frame_size_limits
from aigve.video import check_video, decode_video, probe_video
from aigve.video.check import PROBLEM_SEVERITY
from aigve.video.decode import iter_decoded
from aigve.video.encode import write_video
from tests.video.video_media import Media, moving_frames

needs_symlinks = pytest.mark.skipif(
    sys.platform == "win32", reason="symbolic links need privileges on Windows"
)


def _all_entry_points(path: Path) -> list[str]:
    """The reason each public entry point gives for ``path`` (probe, decode, iter_decoded, check)."""
    reasons = []
    for fn in (probe_video, decode_video):
        with pytest.raises(DecodeError) as exc:
            fn(path)
        assert exc.value.path == str(path)
        reasons.append(exc.value.reason)
    [(_, res)] = list(iter_decoded([path]))
    assert isinstance(res, DecodeError)
    reasons.append(res.reason)
    r = check_video(path)
    assert not r.readable and not r.ok and r.codes == ["unreadable"]
    reasons.append(r.problems[0].removeprefix("unreadable: "))
    return reasons


# ---------------------------------------------------------------------------------- symbolic links
@needs_symlinks
def test_broken_symlink(tmp_path: Path) -> None:
    link = tmp_path / "v.mp4"
    os.symlink(tmp_path / "gone.mp4", link)
    for reason in _all_entry_points(link):
        assert reason.startswith("broken or looping symbolic link (-> ")
        assert "gone.mp4" in reason and "its target does not exist" in reason
    with pytest.raises(DecodeError) as exc:
        decode_video(link)
    assert "point the link at the real video file" in exc.value.fix
    assert "file not found" not in str(exc.value)


@needs_symlinks
def test_symlink_loop(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    os.symlink(b, a)
    os.symlink(a, b)
    for reason in _all_entry_points(a):
        assert reason.startswith(f"broken or looping symbolic link (-> {b})")
        assert "loop" in reason.split(":", 1)[1]


@needs_symlinks
def test_good_symlink_still_works(media: Media, tmp_path: Path) -> None:
    real = media.clip("real.mp4", t=3)
    link = tmp_path / "link.mp4"
    os.symlink(real, link)
    assert decode_video(link).num_frames == 3


def test_directory_keeps_its_message(tmp_path: Path) -> None:
    d = tmp_path / "d.mp4"
    d.mkdir()
    for reason in _all_entry_points(d):
        assert reason == "is a directory, not a video file"


# ---------------------------------------------------------------------------------- still images
def _save_image(path: Path, fmt: str) -> Path:
    from PIL import Image

    img = moving_frames(1, 32, 48)[0]
    Image.fromarray(img).save(path, format=fmt)
    return path


@pytest.mark.parametrize(
    ("fmt", "kind"), [("PNG", "png"), ("JPEG", "jpeg"), ("BMP", "bmp"), ("TIFF", "tiff"), ("WEBP", "webp")]
)
def test_image_renamed_to_mp4_is_rejected(tmp_path: Path, fmt: str, kind: str) -> None:
    pytest.importorskip("PIL")
    path = _save_image(tmp_path / f"still_{kind}.mp4", fmt)
    for reason in _all_entry_points(path):
        assert reason.startswith(f"is an image ({kind}), not a video"), reason
        assert ".mp4" in reason
    with pytest.raises(DecodeError) as exc:
        probe_video(path)
    assert "encode it as a video" in exc.value.fix


def test_image_with_its_own_extension_is_rejected(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    path = _save_image(tmp_path / "still.png", "PNG")  # FFmpeg's image2 demuxer
    with pytest.raises(DecodeError, match=r"is an image \(png\), not a video"):
        decode_video(path)


def test_real_mjpeg_avi_is_a_video(tmp_path: Path) -> None:
    """MJPEG frames in AVI are a video: the image codec alone does not make a still image."""
    frames = moving_frames(5, 32, 48)
    path = write_video(tmp_path / "mj.avi", frames, fps=8, codec="mjpeg", crf=None, pix_fmt="yuvj420p")
    clip = decode_video(path)
    assert clip.num_frames == 5 and clip.info.codec == "mjpeg"
    assert check_video(path).readable


def test_png_codec_inside_quicktime_is_a_video(tmp_path: Path) -> None:
    path = write_video(
        tmp_path / "png.mov", moving_frames(4, 32, 48), fps=8, codec="png", crf=None, pix_fmt="rgb24"
    )
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "png"
    clip = decode_video(path)
    assert clip.num_frames == 4
    assert np.array_equal(clip.frames, moving_frames(4, 32, 48))  # lossless


def test_one_frame_video_is_still_accepted(media: Media) -> None:
    r = check_video(media.clip("one.mp4", t=1))
    assert r.ok and "single_frame" in r.codes


# ---------------------------------------------------------------------------------- small frames
BACKBONE_OF = {"motion": "optical_flow", "niqe": "niqe_features"}


#: VBench backbones with a minimum side: torchvision's RAFT refuses < 128 px, AMT-S needs 113 px at scale 1,
#: DINO's 16-px patches
VBENCH_LIMITS = {
    "vbench_raft": (128, "vbench_dynamic_degree"),
    "amt_s": (113, "vbench_motion_smoothness"),
    "dino_vitb16": (16, "vbench_subject_consistency"),
}


def test_limits_come_from_the_backbones() -> None:
    """The backbones declare their minimum side; the catalogue says which metrics use them."""
    limits = {lim.name: lim for lim in frame_size_limits()}
    assert set(limits) == {"optical_flow", "niqe_features", "blur_effect_frames", *VBENCH_LIMITS}
    for name, (side, metric) in VBENCH_LIMITS.items():
        assert (limits[name].min_side, limits[name].used_by) == (side, (metric,))
    assert limits["blur_effect_frames"].min_side == 4 and limits["blur_effect_frames"].used_by == (
        "blur_effect",
    )
    assert limits["optical_flow"].min_side == FLOW_MIN_SIDE["dis"] == 16
    assert limits["optical_flow"].used_by == ("motion",)
    assert limits["niqe_features"].min_side == NIQE_MIN_SIDE == 194
    assert limits["niqe_features"].used_by == ("niqe",)
    assert PROBLEM_SEVERITY["small_frames"] == "warning"


@pytest.mark.parametrize(
    ("h", "w", "metrics"),
    [
        (8, 8, ["motion", "niqe"]),
        (64, 96, ["niqe"]),
        (14, 256, ["motion", "niqe"]),  # the short side decides
        (194, 200, []),
    ],
)
def test_small_frames_problem(tmp_path: Path, h: int, w: int, metrics: list[str]) -> None:
    path = write_video(tmp_path / "s.mp4", moving_frames(3, h, w), fps=8)
    limits = [lim for lim in frame_size_limits() if lim.name not in VBENCH_LIMITS]  # the classic ones here
    r = check_video(path, size_limits=limits)
    assert r.ok  # a warning: other metrics still work on the video
    small = [p for p in r.problems if p.startswith("small_frames:")]
    if not metrics:
        assert small == []
        return
    [msg] = small
    assert f"{w}x{h} px is too small for {', '.join(f'{BACKBONE_OF[m]} ({m})' for m in metrics)}" in msg
    need = {lim.name: lim.min_side for lim in limits}
    for m in metrics:
        assert f"{BACKBONE_OF[m]} needs both sides >= {need[BACKBONE_OF[m]]} px" in msg
    assert f"{', '.join(metrics)} will report an error" in msg and "leave them out" in msg
    assert "small_frames" not in check_video(path).codes  # no limits given: video/ knows no backbone


def test_unreadable_file_has_no_small_frames_problem(media: Media) -> None:
    assert check_video(media.empty()).codes == ["unreadable"]


def test_frame_store_grows_truncates_and_returns_tight_arrays() -> None:
    from aigve.video.decode import _FrameStore

    st = _FrameStore(2)  # the container under-declared its length
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(7)]
    for f in frames:
        st.append(f)
    assert len(st) == 7 and st[0].shape == (4, 6, 3) and int(st[-1][0, 0, 0]) == 6
    np.testing.assert_array_equal(st.array(), np.stack(frames))
    st.truncate(2)  # out-of-order tail dropped after damage
    out = st.array()
    np.testing.assert_array_equal(out, np.stack(frames[:2]))
    assert out.base is None or out.base.shape[0] == 2  # a tight copy, not a view of the big buffer


def test_out_of_memory_while_decoding_names_the_fix(make_video, monkeypatch: pytest.MonkeyPatch) -> None:
    import aigve.video.decode as dec
    from aigve.errors import DecodeError
    from tests.conftest import smooth_clip

    path = make_video("big.mp4", smooth_clip(6))

    def no_memory(self, frame):  # noqa: ANN001, ANN202
        raise MemoryError

    monkeypatch.setattr(dec._FrameStore, "append", no_memory)
    with pytest.raises(DecodeError, match="out of memory.*--max-seconds"):
        dec.decode_video(path)


def test_selecting_every_frame_does_not_copy_the_clip(make_video) -> None:
    from aigve.video.decode import decode_video
    from tests.conftest import smooth_clip

    clip = decode_video(make_video("c.mp4", smooth_clip(5)))
    assert clip.select(range(5)) is clip
    sub = clip.select([0, 0, 4])
    assert sub.frames.shape[0] == 3 and sub.indices == (0, 0, 4)
