"""Shared pieces of the distributed tests: small videos, random-weight backbones, Ray settings, /proc probes.

Ray is imported at module level on purpose: without the ``distributed`` extra these tests fail at collection
(an ImportError), they are not skipped, so CI cannot pass without exercising them.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray  # noqa: F401  (see the module docstring)

from aigve.data.dataset import Dataset
from aigve.data.folders import from_folders
from aigve.video import write_video
from tests.conftest import smooth_clip

#: settings of every Ray these tests start besides ``ray_engine.local_settings`` (loopback, no usage reports):
#: no token file written to $HOME
RAY_TEST_ENV = {"RAY_AUTH_MODE": "disabled"}

METRICS = ["fid", "kid", "flicker"]


@pytest.fixture(scope="session")
def ray_env(ray_tmp: Path) -> Iterator[None]:
    env = {**RAY_TEST_ENV, "RAY_TMPDIR": str(ray_tmp)}  # Ray's files (sessions, cluster address) go here
    (ray_tmp / "ray").mkdir(exist_ok=True)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def ray_tmp() -> Iterator[Path]:
    """A short directory for Ray's sockets (AF_UNIX paths are limited to about 107 bytes)."""
    tmp = Path(tempfile.mkdtemp(prefix="aigve-rt-", dir="/tmp"))
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five generated and five real small videos (paired by name), and a folder with the same plus a file that
    is not a video and an empty one."""
    root = tmp_path_factory.mktemp("ray-videos")
    for sub in ("gen", "real", "bad"):
        (root / sub).mkdir()
    for i in range(5):
        write_video(root / "gen" / f"v{i}.mp4", smooth_clip(4, 48, 48, seed=i), fps=8)
        write_video(root / "real" / f"v{i}.mp4", smooth_clip(4, 48, 48, seed=100 + i, speed=4.0), fps=8)
        shutil.copy(root / "gen" / f"v{i}.mp4", root / "bad" / f"v{i}.mp4")
    (root / "bad" / "notes.mp4").write_text("this is not a video\n")
    (root / "bad" / "empty.mp4").write_bytes(b"")
    return root


@pytest.fixture(scope="session")
def dataset(videos: Path) -> Dataset:
    return from_folders(videos / "gen", videos / "real")


@pytest.fixture(scope="session")
def run_kwargs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``evaluate`` settings of every run here: random FID Inception weights through the normal loader, two
    frames per video, two videos per group, decoding in the calling thread (same thread counts as a worker)."""
    from aigve.weights.random_init import random_weights_options

    wdir = tmp_path_factory.mktemp("ray-weights")
    return {
        "backbone_options": {"fid_inception": random_weights_options("fid_inception", wdir, small=True)},
        "max_len": 2,
        "batch_size": 2,
        "bootstrap": 50,
        "set_bootstrap": 20,
        "num_workers": 0,
        "report": False,
    }


@pytest.fixture(scope="session")
def local_run(dataset: Dataset, run_kwargs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The local engine's results on ``dataset`` and its cache directory: what every Ray run must equal."""
    cache = tmp_path_factory.mktemp("cache-local")
    return run_local(dataset, cache, run_kwargs), cache


def run_local(dataset: Any, cache: Path | str, run_kwargs: dict[str, Any], **kw: Any) -> Any:
    """The local engine with one torch thread, as each Ray worker runs (bitwise parity needs equal threads)."""
    import torch

    from aigve import evaluate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return evaluate(dataset, METRICS, cache_dir=cache, **run_kwargs, **kw)
    finally:
        torch.set_num_threads(threads)


def aggregates(results: Any) -> dict[str, Any]:
    """Every aggregate value and CI, without provenance (timings, engine) that differ by design."""
    return {m: {o: v.to_dict() for o, v in a.outputs.items()} for m, a in results.aggregates.items()}


def cache_arrays(cache: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p) for p in sorted((cache / "features").rglob("*.npy"))}


def listening_sockets() -> set[tuple[str, int]]:
    """(local address, port) of every listening TCP socket on this machine, from /proc."""
    out: set[tuple[str, int]] = set()
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state != "0A":  # LISTEN
                continue
            addr, port = local.split(":")
            out.add((_addr(addr, width), int(port, 16)))
    return out


def _addr(hexaddr: str, width: int) -> str:
    raw = bytes.fromhex(hexaddr)
    if width == 8:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
    flat = b"".join(words)
    if flat[:12] == b"\x00" * 10 + b"\xff\xff":
        return ".".join(str(b) for b in flat[12:])  # IPv4-mapped
    return ":".join(flat[i : i + 2].hex() for i in range(0, 16, 2))


def is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "0000:0000:0000:0000:0000:0000:0000:0001"


def worker_pids() -> list[int]:
    """Processes of the run's model actors on this process's Ray (children of its raylet; Ray names them
    after the class in their process title). Other Rays on the machine are not looked at."""
    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "_GroupWorker" in cmd and ppid == raylet:
            pids.append(int(proc.name))
    return pids


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
