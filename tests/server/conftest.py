"""Fixtures for the server tests: real ``aigve serve`` processes on 127.0.0.1 and small test clips.

Every server binds 127.0.0.1 on a free port, gets ``--stop-after`` so it stops itself even if a test
run is killed, and is stopped by its fixture. Its worker processes die with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toy_dir_or_none() -> Path | None:
    env = os.environ.get("AIGVE_TOY_DIR")
    cands = [Path(env)] if env else []
    cands.append(REPO.parent / "shared" / "data" / "aigve_toy")
    for c in cands:
        if (c / "annotations" / "evaluate.json").is_file():
            return c
    return None


def clip(seed: int, t: int = 8, h: int = 64, w: int = 64, speed: float = 2.0) -> np.ndarray:
    """A textured pattern moving ``speed`` px/frame, plus seed-dependent brightness flicker."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h // 8 + 2, (w + int(speed * t)) // 8 + 2, 3)).astype(np.float32)
    big = np.kron(base, np.ones((8, 8, 1), dtype=np.float32))
    gains = 1.0 + 0.15 * rng.standard_normal(t)
    frames = [big[:h, int(round(i * speed)) : int(round(i * speed)) + w] * gains[i] for i in range(t)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def write_clip(path: Path, seed: int, **kw: Any) -> Path:
    from aigve.video.encode import write_video

    return write_video(path, clip(seed, **kw), fps=8.0)


def reference_flicker(path: Path, max_len: int | None = None) -> float:
    """VBench flicker by its formula: mean |frame[t+1] - frame[t]| over pixels, channels and pairs,
    on frames decoded independently of the server (PyAV, all frames)."""
    import av

    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float64)
    if max_len is not None:
        frames = frames[:max_len]
    return float(np.abs(np.diff(frames, axis=0)).mean())


class ServerProc:
    """One ``aigve serve`` subprocess."""

    def __init__(
        self,
        state_dir: Path,
        data_roots: list[Path],
        workers: int = 2,
        extra: list[str] | None = None,
        token: str | None = TOKEN,
    ) -> None:
        self.state_dir = state_dir
        self.data_roots = data_roots
        self.workers = workers
        self.extra = extra or []
        self.token = token
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = state_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self, timeout: float = 90.0) -> ServerProc:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
        env.pop("AIGVE_API_TOKEN", None)
        if self.token:
            env["AIGVE_API_TOKEN"] = self.token
        env.setdefault("OMP_NUM_THREADS", "1")
        cmd = [
            sys.executable,
            "-m",
            "aigve",
            "--log-level",
            "WARNING",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            "--workers",
            str(self.workers),
            "--device",
            "cpu",
            "--bootstrap",
            "0",
            "--stop-after",
            "600",
        ]
        for r in self.data_roots:
            cmd += ["--data-root", str(r)]
        cmd += self.extra
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._logf, stderr=subprocess.STDOUT, cwd=str(self.state_dir.parent)
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                h = httpx.get(self.url + "/healthz", timeout=2.0).json()
                if h["workers"]["alive"] >= self.workers:
                    return self
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not come up:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        self._logf.close()

    def client(self, **kw: Any) -> Any:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60.0, **kw)


def wait_job(c: Any, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = c.get(f"/v1/jobs/{job_id}").json()
        if j["status"] in ("succeeded", "failed", "cancelled"):
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {j}")


@pytest.fixture(scope="session")
def server_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A data root with small clips (a paired folder), plus an outside folder and a symlink escape."""
    base = tmp_path_factory.mktemp("server-data")
    root = base / "root"
    paired = root / "paired"
    write_clip(paired / "k1.mp4", 1)
    write_clip(paired / "k1_synthetic.mp4", 2)
    write_clip(paired / "k2_generated.mp4", 3)
    write_clip(paired / "k3.mp4", 4)
    outside = base / "outside"
    write_clip(outside / "secret.mp4", 5)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    return {"base": base, "root": root, "paired": paired, "outside": outside}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, server_data: dict[str, Path]) -> Iterator[ServerProc]:
    """The shared server: 2 workers, data roots = the test root (+ the toy set when present)."""
    roots = [server_data["root"]]
    toy = toy_dir_or_none()
    if toy is not None:
        roots.append(toy)
    srv = ServerProc(
        tmp_path_factory.mktemp("server-state") / "state",
        roots,
        workers=2,
        extra=["--max-file-mb", "1", "--max-upload-mb", "4", "--max-files", "30"],
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
