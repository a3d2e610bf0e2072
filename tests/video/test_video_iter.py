"""iter_decoded: input order, determinism across worker counts, errors in place, bounded prefetch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import aigve.video.decode as decode_mod
from aigve.errors import DecodeError, UsageError
from aigve.types import Clip
from aigve.video import iter_decoded
from aigve.video.sampling import Window
from tests.video.video_media import Media


@pytest.fixture
def paths(media: Media) -> list[Path]:
    return [
        media.clip("a.mp4", t=6),
        media.clip("b.mp4", t=9, h=32, w=32),
        media.root / "missing.mp4",  # failing path in the middle
        media.clip("c.mkv", t=4, fps=25),
        media.text_file("d.mp4"),
        media.clip("e.mp4", t=12, h=16, w=16),
    ]


def _summary(results: list[tuple[int, Clip | DecodeError]]) -> list[tuple]:
    out = []
    for i, r in results:
        if isinstance(r, Clip):
            out.append((i, "clip", r.frames.shape, r.fps, r.indices, r.frames.tobytes()))
        else:
            out.append((i, "error", r.path, r.reason))
    return out


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
def test_order_errors_in_place_and_determinism(paths: list[Path], num_workers: int) -> None:
    window = Window(max_len=8)
    results = list(iter_decoded(paths, window, num_workers))
    assert [i for i, _ in results] == list(range(len(paths)))
    kinds = [type(r).__name__ for _, r in results]
    assert kinds == ["Clip", "Clip", "DecodeError", "Clip", "DecodeError", "Clip"]
    assert [r.num_frames for _, r in results if isinstance(r, Clip)] == [6, 8, 4, 8]
    err = results[2][1]
    assert isinstance(err, DecodeError) and str(paths[2]) in str(err)
    # identical to decoding in the calling thread
    assert _summary(results) == _summary(list(iter_decoded(paths, window, 0)))


def test_empty_input() -> None:
    assert list(iter_decoded([], Window(), 2)) == []


def test_negative_workers_rejected(paths: list[Path]) -> None:
    with pytest.raises(UsageError):
        list(iter_decoded(paths, Window(), -1))


def test_prefetch_is_bounded(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """With prefetch=2 at most 2 videos are decoded ahead of what the consumer has taken."""
    started: list[int] = []
    lock = threading.Lock()
    real = decode_mod._decode_or_error

    def tracking(path, window, thread_type):  # type: ignore[no-untyped-def]
        with lock:
            started.append(paths.index(Path(path)))
        return real(path, window, thread_type)

    monkeypatch.setattr(decode_mod, "_decode_or_error", tracking)
    for consumed, (i, _) in enumerate(iter_decoded(paths, Window(), num_workers=2, prefetch=2), start=1):
        assert i == consumed - 1
        time.sleep(0.05)  # a slow consumer: workers must not run ahead
        with lock:
            assert len(started) <= consumed + 2
    assert sorted(started) == list(range(len(paths)))


def test_early_stop_does_not_hang(paths: list[Path]) -> None:
    gen = iter_decoded(paths, Window(), num_workers=2)
    i, first = next(gen)
    assert i == 0 and isinstance(first, Clip)
    gen.close()  # cancels pending work and shuts the pool down


def test_frames_equal_direct_decode(paths: list[Path]) -> None:
    from aigve.video import decode_video

    for i, r in iter_decoded(paths, Window(), 2):
        if isinstance(r, Clip):
            assert np.array_equal(r.frames, decode_video(paths[i]).frames)
