"""The benchmark scripts run with the command their docs give (``PYTHONPATH=src:.``, some import test
helpers from ``tests.``), and ``--help`` prints usage without starting a benchmark."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
DOCUMENTED = "PYTHONPATH=src:. .venv/bin/python benchmarks/"

pytestmark = pytest.mark.skipif(not BENCH.is_dir(), reason="no benchmarks/ beside the package")


def _docs() -> list[Path]:
    return sorted([*BENCH.glob("*.md"), *BENCH.glob("bench_*.py")])


def test_every_documented_command_uses_the_repo_root_on_pythonpath() -> None:
    bad = []
    for path in _docs():
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in re.finditer(r"(\S*python) benchmarks/", line):
                start = line[: m.start()]
                pythonpath = re.findall(r"PYTHONPATH=(\S+)", start)
                ok = m.group(1) == ".venv/bin/python" and pythonpath and pythonpath[-1].startswith("src:.")
                if not ok:
                    bad.append(f"{path.name}:{no}: {line.strip()}")
    assert not bad, "\n".join(bad)
    assert DOCUMENTED + "<script>" in (BENCH / "RESULTS.md").read_text(encoding="utf-8")


def _help(script: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    return subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_of_every_bench_script() -> None:
    scripts = sorted(BENCH.glob("bench_*.py"))
    assert scripts
    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores: several import torch
        done = dict(zip([s.name for s in scripts], pool.map(_help, scripts), strict=True))
    for name, proc in done.items():
        assert proc.returncode == 0, f"{name} --help: {proc.stderr[-2000:]}"
        assert proc.stdout.lstrip().startswith("usage:"), f"{name} --help printed {proc.stdout[:200]!r}"
        assert "| video |" not in proc.stdout  # no benchmark table
