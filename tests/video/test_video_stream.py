"""FrameStream: the frames of decode_video, chunk by chunk, with a bounded number held at once."""

from __future__ import annotations

import numpy as np
import pytest

import aigve.video.decode as dec
from aigve.errors import DecodeError, UsageError
from aigve.video import FrameStream, decode_video
from aigve.video.decode import MAX_REORDER, estimate_window
from aigve.video.sampling import Window
from tests.video.video_media import Media


def _streamed(path, window: Window = Window(), chunk: int = 4, **kw):  # type: ignore[no-untyped-def]
    stream = FrameStream(path, window, chunk=chunk, **kw)
    chunks = list(stream)
    starts = [c.start for c in chunks]
    assert starts == list(np.cumsum([0] + [len(c.frames) for c in chunks[:-1]]))
    return stream, np.concatenate([c.frames for c in chunks])


@pytest.mark.parametrize("chunk", [1, 3, 8, 64])
@pytest.mark.parametrize("window", [Window(), Window(max_len=11), Window(max_seconds=0.7)])
def test_stream_equals_decode(media: Media, chunk: int, window: Window) -> None:
    path = media.clip("c.mp4", t=40)
    clip = decode_video(path, window)
    stream, frames = _streamed(path, window, chunk)
    assert np.array_equal(frames, clip.frames)
    assert stream.info == clip.info and stream.fps == clip.fps and stream.num_frames == clip.num_frames


@pytest.mark.parametrize("kind", ["mkv", "faststart-mp4"])
def test_stream_of_a_truncated_file_equals_decode(media: Media, kind: str) -> None:
    """The tail a truncated stream drops as out of sequence is held back, never handed out."""
    src = media.clip("full.mkv", t=40) if kind == "mkv" else media.faststart_clip(t=40)
    cut = media.cut(src, 0.5)
    clip = decode_video(cut)
    stream, frames = _streamed(cut, chunk=2)
    assert np.array_equal(frames, clip.frames)
    assert stream.info == clip.info and stream.info.warnings and stream.num_frames == clip.num_frames


@pytest.mark.parametrize("degrees", [90, 180])
def test_stream_applies_rotation(media: Media, degrees: int) -> None:
    path, _ = media.rotated_clip(f"rot{degrees}.mp4", degrees)
    clip = decode_video(path)
    stream, frames = _streamed(path, chunk=1)
    assert np.array_equal(frames, clip.frames) and stream.info == clip.info


def test_stream_without_declared_rate_estimates_it_like_decode(media: Media) -> None:
    pts_ms = [0, 40, 80, 120, 160, 200]
    path = media.timed_clip("norate.mkv", pts_ms, rate=None)
    clip = decode_video(path, Window(fps_fallback=25))
    stream, frames = _streamed(path, Window(fps_fallback=25), chunk=2)
    assert np.array_equal(frames, clip.frames) and stream.fps == clip.fps == 25


def test_stream_holds_a_bounded_number_of_frames(media: Media, monkeypatch: pytest.MonkeyPatch) -> None:
    path = media.clip("long.mp4", t=80)
    most = {"held": 0}
    orig = dec._ChunkStore.append

    def append(self, frame):  # type: ignore[no-untyped-def]
        orig(self, frame)
        most["held"] = max(most["held"], len(self._pending))

    monkeypatch.setattr(dec._ChunkStore, "append", append)
    for _ in FrameStream(path, chunk=4):
        pass
    assert most["held"] <= 4 + MAX_REORDER + 1 < 80


def test_stream_errors_like_decode(media: Media) -> None:
    with pytest.raises(DecodeError):
        list(FrameStream(media.random_bytes()))
    with pytest.raises(DecodeError):  # no frame decodes: raised when the stream ends
        list(FrameStream(media.cut(media.clip(t=40), 0.5)))
    with pytest.raises(UsageError):
        FrameStream(media.clip("c.mp4"), chunk=0)
    stream = FrameStream(media.clip("d.mp4"))
    list(stream)
    with pytest.raises(UsageError):  # read once
        list(stream)


def test_estimate_window_reads_the_container(media: Media) -> None:
    path = media.clip("c.mp4", t=40)
    clip = decode_video(path)
    est = estimate_window(path)
    assert (est.frames, est.fps, est.height, est.width) == (40, clip.fps, *clip.frames.shape[1:3])
    assert est.nbytes == clip.frames.nbytes
    assert estimate_window(path, Window(max_len=7)).frames == 7
    assert (
        estimate_window(path, Window(max_seconds=0.5)).frames
        == decode_video(path, Window(max_seconds=0.5)).num_frames
    )


def test_stream_of_a_file_with_no_decodable_frame_raises_at_the_end(media: Media) -> None:
    path = media.zeroed_payload(media.clip(t=20))
    with pytest.raises(DecodeError) as exc:
        list(FrameStream(path))
    assert exc.value.reason == pytest.raises(DecodeError, decode_video, path).value.reason
