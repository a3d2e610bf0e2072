"""decode_video / probe_video on clips made by the tests (known frames, fps, sizes) and bad inputs."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest

from aigve.errors import DecodeError, UsageError
from aigve.types import Clip
from aigve.video import decode_video, probe_video, write_video
from aigve.video.sampling import Window
from tests.video.video_media import Media, moving_frames, toy_dir

# --------------------------------------------------------------------------- good clips


def test_probe_reads_container_without_decoding(media: Media) -> None:
    path = media.clip(t=20, h=64, w=48, fps=8)
    info = probe_video(path)
    assert info.path == str(path)
    assert info.fps == 8.0
    assert (info.width, info.height) == (48, 64)
    assert info.codec == "h264"
    assert info.container_frames == 20
    assert info.duration == pytest.approx(20 / 8)
    assert info.decoded_frames is None
    assert info.warnings == ()


def test_decode_known_clip(media: Media) -> None:
    path = media.clip(t=20, h=64, w=48, fps=8)
    clip = decode_video(path)
    assert isinstance(clip, Clip)
    assert clip.frames.shape == (20, 64, 48, 3) and clip.frames.dtype == np.uint8
    assert clip.frames.flags["C_CONTIGUOUS"]
    assert clip.fps == 8.0
    assert clip.indices == tuple(range(20))
    assert clip.info.decoded_frames == 20 and clip.info.container_frames == 20
    assert clip.info.warnings == ()
    # frames come back in presentation order: each is closest to the source frame at its index
    src = moving_frames(20, 64, 48).astype(np.int16)
    dec = clip.frames.astype(np.int16)
    err = np.abs(dec[:, None] - src[None]).mean(axis=(2, 3, 4))  # [decoded, source]
    assert (err.argmin(axis=1) == np.arange(20)).all()


@pytest.mark.parametrize("codec,pix_fmt", [("mpeg4", "yuv420p"), ("libx264", "yuv444p")])
def test_odd_size_17x33(media: Media, codec: str, pix_fmt: str) -> None:
    path = write_video(
        media.root / f"odd_{codec}.mp4", moving_frames(6, 17, 33), fps=25, codec=codec, pix_fmt=pix_fmt
    )
    clip = decode_video(path)
    assert clip.frames.shape == (6, 17, 33, 3)
    assert (clip.info.width, clip.info.height) == (33, 17)
    assert clip.fps == 25.0


def test_single_frame_clip(media: Media) -> None:
    clip = decode_video(media.clip("one.mp4", t=1))
    assert clip.frames.shape == (1, 64, 48, 3)
    assert clip.indices == (0,)
    assert clip.info.warnings == ()


@pytest.mark.parametrize("colour", [(200, 100, 50), (0, 0, 0), (255, 255, 255), (30, 220, 140)])
def test_flat_colour_fidelity(media: Media, colour: tuple[int, int, int]) -> None:
    """A flat colour survives RGB -> yuv420p H.264 (crf 18) -> RGB within 3 levels per pixel."""
    frames = np.empty((4, 32, 48, 3), np.uint8)
    frames[:] = colour
    clip = decode_video(write_video(media.root / "flat.mp4", frames, fps=8))
    diff = np.abs(clip.frames.astype(int) - np.array(colour))
    assert diff.max() <= 3


def test_matches_opencv_reference(media: Media) -> None:
    """Same frames as OpenCV's FFmpeg reader (an independent RGB conversion path): max diff <= 2."""
    cv2 = pytest.importorskip("cv2")
    path = media.clip(t=10, h=64, w=96)
    ours = decode_video(path).frames.astype(int)
    cap = cv2.VideoCapture(str(path))
    ref = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        ref.append(bgr[..., ::-1])
    cap.release()
    ref_arr = np.stack(ref).astype(int)
    assert ours.shape == ref_arr.shape
    assert np.abs(ours - ref_arr).max() <= 2


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotation_applied_like_opencv(media: Media, degrees: int) -> None:
    cv2 = pytest.importorskip("cv2")
    path, _ = media.rotated_clip(f"rot{degrees}.mp4", degrees)
    clip = decode_video(path)
    cap = cv2.VideoCapture(str(path))  # OpenCV applies the display matrix by default
    ok, bgr = cap.read()
    cap.release()
    assert ok
    ref = bgr[..., ::-1].astype(int)
    assert clip.frames.shape[1:] == ref.shape
    assert np.abs(clip.frames[0].astype(int) - ref).max() <= 2
    info = probe_video(path)
    assert (info.height, info.width) == ref.shape[:2] == (clip.info.height, clip.info.width)
    assert clip.frames.flags["C_CONTIGUOUS"]


def test_autorotate_off_keeps_coded_orientation(media: Media) -> None:
    path, img = media.rotated_clip("rot90.mp4", 90)
    clip = decode_video(path, autorotate=False)
    assert clip.frames.shape[1:3] == img.shape[:2]


def test_thread_types_give_identical_frames(media: Media) -> None:
    path = media.clip(t=12)
    ref = decode_video(path, thread_type="NONE").frames
    for tt in ("AUTO", "FRAME", "SLICE"):
        assert np.array_equal(decode_video(path, thread_type=tt).frames, ref)
    with pytest.raises(UsageError):
        decode_video(path, thread_type="MANY")


def test_decode_is_deterministic(media: Media) -> None:
    path = media.clip(t=12)
    a, b = decode_video(path), decode_video(path)
    assert np.array_equal(a.frames, b.frames) and a.indices == b.indices and a.info == b.info


# --------------------------------------------------------------------------- windows


def test_window_max_len(media: Media) -> None:
    path = media.clip(t=20)
    full = decode_video(path)
    clip = decode_video(path, Window(max_len=5))
    assert clip.num_frames == 5 and clip.indices == (0, 1, 2, 3, 4)
    assert clip.info.decoded_frames == 5
    assert np.array_equal(clip.frames, full.frames[:5])
    assert decode_video(path, Window(max_len=100)).num_frames == 20


@pytest.mark.parametrize(
    "fps,seconds,expected",
    [
        (8, 0.5, 4),  # frames at 0, .125, .25, .375 (0.5 itself is outside)
        (8, 0.3, 3),  # 0, .125, .25
        (8, 1.0, 8),
        (8, 100.0, 30),  # whole clip
        (25, 0.5, 13),  # 0, 0.04, ..., 0.48
        (25, 1.0, 25),
        (25, 0.03, 1),  # less than a frame period still keeps the first frame
    ],
)
def test_window_max_seconds_cfr(media: Media, fps: int, seconds: float, expected: int) -> None:
    path = media.clip(f"c{fps}.mp4", t=30, fps=fps)
    clip = decode_video(path, Window(max_seconds=seconds))
    assert clip.num_frames == expected
    # agrees with the run-level formula used where there are no timestamps
    assert min(30, Window(max_seconds=seconds).frame_limit(fps)) == expected
    assert clip.fps == fps


def test_window_max_len_and_seconds_take_the_smaller(media: Media) -> None:
    path = media.clip(t=30, fps=25)
    assert decode_video(path, Window(max_len=5, max_seconds=1.0)).num_frames == 5
    assert decode_video(path, Window(max_len=20, max_seconds=0.2)).num_frames == 5


def test_window_stops_before_damage(media: Media) -> None:
    """Frames past the window are never decoded: damage after it goes unnoticed."""
    path = media.cut(media.clip("long.mkv", t=40), 0.5)
    assert decode_video(path).info.warnings  # decoding to the end finds the damage
    clip = decode_video(path, Window(max_len=5))
    assert clip.num_frames == 5 and clip.info.warnings == ()


def test_variable_frame_rate_uses_timestamps(media: Media) -> None:
    pts_ms = [0, 40, 80, 200, 240, 500, 540, 580, 1000, 1040, 1500, 1540]
    path = media.timed_clip("vfr.mkv", pts_ms)
    clip = decode_video(path)
    assert clip.num_frames == 12
    for seconds in (0.5, 0.55, 1.0, 1.2, 1.6):
        expected = sum(t < seconds * 1000 for t in pts_ms)
        got = decode_video(path, Window(max_seconds=seconds))
        assert got.num_frames == expected, seconds
        assert np.array_equal(got.frames, clip.frames[:expected])
    # by index/fps the declared 24 fps would have kept 12 frames for 0.5 s, not 5
    assert Window(max_seconds=0.5).frame_limit(clip.fps) != 5


def test_no_timestamps_uses_index_over_fps(media: Media) -> None:
    path = media.raw_h264(t=40)
    with av.open(str(path)) as c:  # precondition: this file really has no timestamps
        assert all(f.pts is None for f in c.decode(video=0))
    full = decode_video(path)
    clip = decode_video(path, Window(max_seconds=0.5))
    assert clip.num_frames == math.ceil(0.5 * full.fps)
    assert np.array_equal(clip.frames, full.frames[: clip.num_frames])


def test_fps_fallback_only_without_container_fps(media: Media) -> None:
    path = media.timed_clip("norate.mkv", [0], rate=None)
    assert probe_video(path).fps is None
    with pytest.raises(DecodeError) as exc:
        decode_video(path)
    assert str(path) in str(exc.value) and "--fps" in str(exc.value)
    clip = decode_video(path, Window(fps_fallback=12.0))
    assert clip.fps == 12.0 and clip.num_frames == 1
    # a container rate always wins over the fallback
    cfr = media.clip(t=20, fps=8)
    clip = decode_video(cfr, Window(max_seconds=1.0, fps_fallback=30.0))
    assert clip.fps == 8.0 and clip.num_frames == 8


# --------------------------------------------------------------------------- bad inputs


def _decode_error(path: Path) -> DecodeError:
    with pytest.raises(DecodeError) as exc:
        decode_video(path)
    err = exc.value
    assert err.path == str(path)
    assert str(path) in str(err)
    assert err.fix
    return err


def test_missing_file(media: Media) -> None:
    assert "not found" in _decode_error(media.root / "nope.mp4").reason


def test_directory(media: Media) -> None:
    assert "directory" in _decode_error(media.root).reason


def test_zero_byte_file(media: Media) -> None:
    assert "empty (0 bytes)" in _decode_error(media.empty()).reason


def test_random_bytes_named_mp4(media: Media) -> None:
    assert "not a video container" in _decode_error(media.random_bytes()).reason


def test_text_file(media: Media) -> None:
    assert "text file" in _decode_error(media.text_file()).reason


def test_audio_only(media: Media) -> None:
    reason = _decode_error(media.audio_only()).reason
    assert "no video stream" in reason and "audio" in reason


def test_zero_decodable_frames(media: Media) -> None:
    path = media.zeroed_payload(media.clip(t=20))
    reason = _decode_error(path).reason
    assert "no frame could be decoded" in reason and "20" in reason


def test_truncated_mp4_without_index(media: Media) -> None:
    """A default mp4 keeps its index at the end: cut at 50 % nothing is decodable -> DecodeError."""
    path = media.cut(media.clip(t=40), 0.5)
    assert "truncated" in _decode_error(path).reason


@pytest.mark.parametrize("kind", ["mkv", "faststart-mp4"])
def test_truncated_returns_leading_frames_with_warning(media: Media, kind: str) -> None:
    src = media.clip("full.mkv", t=40) if kind == "mkv" else media.faststart_clip(t=40)
    full = decode_video(src)
    clip = decode_video(media.cut(src, 0.5))
    n = clip.num_frames
    assert 0 < n < 40
    assert clip.info.decoded_frames == n
    assert len(clip.info.warnings) == 1
    assert clip.info.warnings[0].startswith(f"truncated: decoding stopped after {n} frames: ")
    assert np.array_equal(clip.frames, full.frames[:n])


@pytest.mark.parametrize("make", ["missing", "empty", "random_bytes", "text_file", "audio_only"])
def test_probe_bad_inputs_raise_decode_error(media: Media, make: str) -> None:
    path = media.root / "nope.mp4" if make == "missing" else getattr(media, make)()
    with pytest.raises(DecodeError) as exc:
        probe_video(path)
    assert str(path) in str(exc.value)


# --------------------------------------------------------------------------- toy dataset


@pytest.mark.toy
def test_toy_dataset_decodes() -> None:
    root = toy_dir()
    if root is None:
        pytest.skip("AIGVE toy dataset not found (set AIGVE_TOY_DIR)")
    paths = sorted(root.rglob("*.mp4"))
    assert len(paths) == 11
    for path in paths:
        clip = decode_video(path)
        assert clip.frames.shape == (16, 512, 512, 3), path
        assert clip.fps == 8.0
        assert clip.info.warnings == ()


@pytest.mark.parametrize("kind", ["mp4", "faststart-mp4", "mkv"])
def test_damaged_files_never_leak_raw_errors(media: Media, kind: str) -> None:
    """Cuts at many points and corrupted bytes: the outcome is a Clip or a DecodeError, nothing else."""
    src = media.faststart_clip(t=24) if kind == "faststart-mp4" else media.clip(f"src.{kind}", t=24)
    data = src.read_bytes()
    rng = np.random.default_rng(0)
    variants = {f"cut{f}": data[: int(len(data) * f)] for f in (0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.999)}
    for k in range(4):
        buf = bytearray(data)
        pos = rng.integers(len(buf) // 4, len(buf), 64)
        for p in pos:
            buf[p] = int(rng.integers(0, 256))
        variants[f"noise{k}"] = bytes(buf)
    for name, blob in variants.items():
        path = media.root / f"{name}.{kind.split('-')[-1]}"
        path.write_bytes(blob)
        try:
            clip = decode_video(path)
        except DecodeError as err:
            assert str(path) in str(err)
        else:
            assert clip.num_frames >= 1 and clip.frames.shape[1:] == (64, 48, 3)
            assert clip.info.decoded_frames == clip.num_frames


def test_unknown_codec(media: Media) -> None:
    """A stream whose codec tag nobody knows (here 'avc1' overwritten with 'zzzz' in the index)."""
    src = media.clip(t=4)
    data = src.read_bytes()
    stsd = data.index(b"stsd")  # sample description: its first entry's format tag follows
    tag = data.index(b"avc1", stsd)
    path = media.root / "unknown_codec.mp4"
    path.write_bytes(data[:tag] + b"zzzz" + data[tag + 4 :])
    assert "no usable decoder" in _decode_error(path).reason
