"""Per-video reductions of the frame-to-frame values: temporal flickering (VBench) and motion magnitude.

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
