"""``docs/tensor-metrics.md`` stays true: its worked example runs (its asserts are the check), its DDP script
runs as two gloo processes, and its class table is the catalogue's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOC = REPO / "docs" / "tensor-metrics.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)


def test_the_worked_example_runs() -> None:
    example = python_blocks()[0]
    assert "from aigve.metrics import FID, Flicker" in example
    exec(compile(example, str(DOC), "exec"), {"__name__": "aigve_doc_tensor_metrics"})


def test_the_class_table_is_the_catalogue() -> None:
    from aigve.metrics.tensor import CLASS_NAMES

    rows = re.findall(r"\| `(\w+)` \| `(\w+)` \|", DOC.read_text(encoding="utf-8"))
    assert dict(rows) == CLASS_NAMES


@pytest.mark.slow
def test_the_ddp_script_runs_on_two_gloo_processes(tmp_path: Path) -> None:
    script = python_blocks()[1]
    assert "mp.spawn" in script
    path = tmp_path / "ddp_flicker.py"
    path.write_text(script, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
