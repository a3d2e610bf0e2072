"""Per-video reductions of the frame-to-frame values: temporal flickering (VBench), frozen frames (FFmpeg's
``freezedetect`` criterion) and motion magnitude.

The per-pair values come from the ``frame_absdiff`` and ``optical_flow`` extractors, whose pixel
operations (and their description) are in :mod:`aigve.backbones.pixel_ops.temporal`.
"""

from __future__ import annotations

import numpy as np


def flicker_scores(pair_diffs: np.ndarray) -> tuple[float, float]:
    """``(flicker, flicker_vbench)`` from per-pair mean absolute differences (needs at least one pair):
    ``flicker = mean(pair_diffs)`` (0-255, lower = steadier), ``flicker_vbench = (255 - flicker) / 255``."""
    d = np.asarray(pair_diffs, dtype=np.float64).reshape(-1)
    if d.size == 0:
        raise ValueError("flicker needs at least one frame pair (2 frames)")
    x = float(d.mean())
    return x, (255.0 - x) / 255.0


def motion_scores(pair_mags: np.ndarray) -> tuple[float, float]:
    """``(motion, motion_norm)``: means over pairs of the two columns of ``pair_flow_magnitude``."""
    m = np.asarray(pair_mags, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] < 2:
        raise ValueError(f"motion needs at least one frame pair as [K>=1, 2] magnitudes, got shape {m.shape}")
    return float(m[:, 0].mean()), float(m[:, 1].mean())


#: FFmpeg ``freezedetect``'s default noise tolerance, -60 dB = 0.001 of the full scale: a pair of frames whose
#: mean absolute difference is at most this fraction of 255 counts as frozen
FREEZE_NOISE = 0.001


def freeze_scores(pair_diffs: np.ndarray, noise: float = FREEZE_NOISE) -> tuple[float, float]:
    """``(freeze, freeze_longest)`` from per-pair mean absolute differences (0-255; needs a pair).

    A pair is frozen when its mean absolute difference is at most ``noise * 255`` (FFmpeg ``freezedetect``'s
    test of the mean absolute frame difference against its noise tolerance, -60 dB by default). ``freeze`` is the
    share of frozen pairs, ``freeze_longest`` the longest run of consecutive frozen pairs as a share of
    all pairs (1 = the whole clip is one still picture)."""
    d = np.asarray(pair_diffs, dtype=np.float64).reshape(-1)
    if d.size == 0:
        raise ValueError("freeze needs at least one frame pair (2 frames)")
    if not 0.0 < noise < 1.0:
        raise ValueError(f"freeze: noise must be in (0, 1), got {noise}")
    frozen = d <= noise * 255.0
    longest = run = 0
    for f in frozen:
        run = run + 1 if f else 0
        longest = max(longest, run)
    return float(frozen.mean()), longest / d.size
