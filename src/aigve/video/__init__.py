"""Video input: decoding (PyAV), integrity checks, frame sampling and test-video writing."""

from __future__ import annotations

from aigve.video.check import PROBLEM_SEVERITY, CheckReport, check_many, check_video
from aigve.video.decode import THREAD_TYPES, FrameChunk, FrameStream, decode_video, iter_decoded, probe_video
from aigve.video.encode import write_video
from aigve.video.sampling import ALL_FRAMES, PROTOCOLS, Sampler, Window

__all__ = [
    "ALL_FRAMES",
    "PROBLEM_SEVERITY",
    "PROTOCOLS",
    "THREAD_TYPES",
    "CheckReport",
    "FrameChunk",
    "FrameStream",
    "Sampler",
    "Window",
    "check_many",
    "check_video",
    "decode_video",
    "iter_decoded",
    "probe_video",
    "write_video",
]
