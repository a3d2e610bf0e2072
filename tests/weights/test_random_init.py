"""Random weights in the real architectures (benchmarks, precision tests): a safetensors file the backbone loads
through the normal loader, strictly, with batch norms calibrated so activations stay O(1)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from aigve.backbones.registry import build_extractor
from aigve.errors import UsageError
from aigve.paths import file_sha256
from aigve.weights.random_init import random_backbones, random_weights_file, random_weights_options


def test_efficientnet_random_weights_load_through_the_normal_loader(tmp_path: Path) -> None:
    opts = random_weights_options("efficientnet_lite0", tmp_path, seed=1, small=True)
    path = Path(opts["weights"])
    assert path.suffix == ".safetensors" and path.name == "efficientnet_lite0-random-1-small.safetensors"
    assert random_weights_file("efficientnet_lite0", tmp_path, seed=1, small=True) == path  # reused
    logging.disable(logging.WARNING)  # "differ from the registry": expected for a random file
    try:
        ext = build_extractor("efficientnet_lite0", device="cpu", batch_size=4, **opts)
        ext.ensure_loaded()
    finally:
        logging.disable(logging.NOTSET)
    assert ext.weights_sha256() == file_sha256(path)
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    feats = ext.extract(frames)
    assert feats.shape == (2, 1280) and np.isfinite(feats).all()
    assert 1e-2 < np.abs(feats).max() < 1e3  # calibrated batch norms: features neither vanish nor blow up


def test_unknown_backbone_is_a_usage_error(tmp_path: Path) -> None:
    assert {"fid_inception", "i3d_kinetics400", "efficientnet_lite0", "clip"} <= set(random_backbones())
    with pytest.raises(UsageError, match="no random-weights builder"):
        random_weights_file("dover", tmp_path)
