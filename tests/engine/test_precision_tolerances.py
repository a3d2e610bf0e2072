"""bf16 vs fp32 per metric within the tolerances stated in docs/precision.md, on the real architectures with
seeded random weights (``aigve.weights.random_init``; the FID Inception's batch norms calibrated so activations
are O(1)), 5 generated and 5 real small videos. Slow on a CPU (bf16 convolutions have no fast CPU kernels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import smooth_clip

#: relative tolerance of each metric's value, bf16 vs fp32 (docs/precision.md)
TOLERANCE = {"fid": 5e-2, "kid": 1.5e-1, "is": 6e-2, "clipsim": 2e-2, "cliptemp": 1e-3}


@pytest.mark.slow
def test_bf16_within_the_stated_tolerance_per_metric(tmp_path: Path) -> None:
    pytest.importorskip("open_clip", reason="needs the 'vlsim' extra")
    from aigve import evaluate
    from aigve.data.memory import memory_dataset
    from aigve.weights.random_init import random_weights_options

    gen = np.stack([smooth_clip(4, 64, 64, seed=i) for i in range(5)])
    real = np.stack([smooth_clip(4, 64, 64, seed=100 + i, speed=4.0) for i in range(5)])
    ds = memory_dataset(gen, prompts=[f"a test video number {i}" for i in range(5)], real=real)
    clip = random_weights_options("clip", tmp_path)
    kw = {
        "backbone_options": {"fid_inception": random_weights_options("fid_inception", tmp_path)},
        "metric_options": {"clipsim": clip, "cliptemp": clip, "is": {"splits": 2}},
        "bootstrap": 0,
        "set_bootstrap": 0,
        "use_cache": False,
        "report": False,
    }
    values = {}
    for p in ("fp32", "bf16"):
        res = evaluate(ds, list(TOLERANCE), precision=p, **kw)
        assert res.exit_code == 0, res.errors
        values[p] = {m: a.value for m, a in res.aggregates.items()}
    for m, tol in TOLERANCE.items():
        a, b = values["fp32"][m], values["bf16"][m]
        assert a is not None and b is not None
        assert a != b, m  # the networks did run in bf16
        assert abs(a - b) <= tol * abs(a), (m, a, b)
