"""``--decode-device cuda``: torchcodec on the GPU, CPU decoding per video when that is not possible.

torchcodec's decoding itself is not run here: its PyPI wheel (0.17.0) is a CUDA build (it links libtorch_cuda and
libcudart) and needs FFmpeg's shared libraries, neither of which this CPU-only environment has. What is tested:
the fallback (forced unavailability, and the real one on a machine without CUDA) gives the CPU decoder's frames and
a warning; the window logic around torchcodec's frame batches (frame count, --max-len, --max-seconds by
timestamps, fps) is checked against the CPU decoder with a stand-in decoder that serves the CPU frames through
torchcodec's interface (``metadata``, ``get_frames_in_range`` -> ``data``, ``pts_seconds``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from aigve.errors import UsageError
from aigve.video import gpu_decode
from aigve.video.decode import decode_video
from aigve.video.sampling import Window
from tests.conftest import smooth_clip


class _FakeTorchcodec:
    """torchcodec's ``VideoDecoder`` interface over the CPU decoder's frames of a file."""

    def __init__(self, path: Path, fps: float) -> None:
        clip = decode_video(path)
        self.frames = torch.from_numpy(clip.frames)
        self.fps = fps
        self.metadata = SimpleNamespace(
            average_fps=clip.info.fps,
            num_frames=len(clip.frames),
            duration_seconds=clip.info.duration,
            codec=clip.info.codec,
            rotation=None,
        )

    def get_frames_in_range(self, start: int, stop: int) -> Any:
        pts = torch.arange(start, stop, dtype=torch.float64) / self.fps
        return SimpleNamespace(data=self.frames[start:stop], pts_seconds=pts)


@pytest.fixture
def video(make_video) -> Path:
    return make_video("v.mp4", smooth_clip(20, h=48, w=64, seed=3), fps=10.0)


@pytest.mark.parametrize(
    "window",
    [Window(), Window(max_len=7), Window(max_seconds=1.05), Window(max_seconds=0.5, max_len=9)],
    ids=["all", "max_len", "max_seconds", "both"],
)
def test_torchcodec_path_keeps_the_cpu_window(video: Path, window: Window, monkeypatch) -> None:
    monkeypatch.setattr(gpu_decode, "_open_decoder", lambda path, device: _FakeTorchcodec(path, 10.0))
    ref = decode_video(video, window)
    got = gpu_decode.decode_video_torchcodec(video, window, "cuda")
    assert got.frames.shape == ref.frames.shape and got.indices == ref.indices
    assert got.fps == ref.fps and got.info.decoded_frames == ref.info.decoded_frames
    np.testing.assert_array_equal(got.frames, ref.frames)


def test_forced_unavailability_falls_back_to_the_cpu_with_a_warning(
    video: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unavailable(path: Path, device: str) -> Any:
        raise gpu_decode.GpuDecodeUnavailable("NVDEC is busy")

    monkeypatch.setattr(gpu_decode, "_open_decoder", unavailable)
    with caplog.at_level(logging.WARNING):
        clip, warning = gpu_decode.decode_on(video, Window(max_len=5), "cuda")
    assert warning is not None and "decoded on the CPU" in warning and "NVDEC is busy" in warning
    assert any("NVDEC is busy" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(clip.frames, decode_video(video, Window(max_len=5)).frames)


def test_rotated_or_failing_videos_fall_back(video: Path, monkeypatch) -> None:
    fake = _FakeTorchcodec(video, 10.0)
    fake.metadata.rotation = 90
    monkeypatch.setattr(gpu_decode, "_open_decoder", lambda path, device: fake)
    clip, warning = gpu_decode.decode_on(video, Window(), "cuda")
    assert warning is not None and "rotated" in warning and clip.num_frames == 20

    def broken(start: int, stop: int) -> Any:
        raise RuntimeError("invalid data found when processing input")

    fake.metadata.rotation = None
    fake.get_frames_in_range = broken  # type: ignore[method-assign]
    clip, warning = gpu_decode.decode_on(video, Window(), "cuda")
    assert warning is not None and "invalid data" in warning and clip.num_frames == 20


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback where CUDA is missing")
def test_engine_without_cuda_decodes_on_the_cpu_and_says_so(make_video, tmp_path: Path) -> None:
    from aigve import evaluate

    for i in range(2):
        make_video(f"d/{i}.mp4", smooth_clip(6, h=32, w=32, seed=i))
    kw: dict[str, Any] = {"use_cache": False, "bootstrap": 0, "report": False}
    ref = evaluate(tmp_path / "d", ["flicker"], **kw)
    res = evaluate(tmp_path / "d", ["flicker"], decode_device="cuda", **kw)
    assert res.exit_code == 0 and res.value("flicker") == ref.value("flicker")
    assert res.provenance["decode_device"] == "cuda" and res.provenance["decode_fallbacks"] == 2
    with pytest.raises(UsageError, match="decode device"):
        evaluate(tmp_path / "d", ["flicker"], decode_device="gpu", **kw)
