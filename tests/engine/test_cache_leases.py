"""Per-video leases in a shared feature cache: two workers on one cache compute each video's features once,
with equal results; a crashed holder's lease expires and is taken over."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from aigve.engine.cache import FeatureCache

N_VIDEOS = 6


def _counting_extract(counter: Path, delay: float):  # noqa: ANN202 - a replacement for ClassicExtractor.extract
    from aigve.backbones.classic import FrameAbsDiff

    real = FrameAbsDiff.extract

    def extract(self, frames, fps=None):  # noqa: ANN001, ANN202
        with open(counter, "a", encoding="utf-8") as f:  # one line per computation, from any process
            f.write(f"{os.getpid()}\n")
        time.sleep(delay)  # long enough for the two workers to overlap
        return real(self, frames, fps)

    return extract


def _worker(videos: str, cache: str, counter: str, out: str, ttl: float, start: object) -> None:
    from aigve import evaluate
    from aigve.backbones.classic import FrameAbsDiff
    from aigve.engine import cache as cache_mod

    FrameAbsDiff.extract = _counting_extract(Path(counter), 0.15)  # type: ignore[method-assign]
    cache_mod.LEASE_TTL = ttl
    start.wait(60)  # type: ignore[attr-defined]  # both imported: start together
    res = evaluate(videos, ["flicker"], cache_dir=cache, bootstrap=0, report=False)
    per_video = {r.video_id: r.value for r in res.records}
    Path(out).write_text(json.dumps({"values": per_video, "cache": res.provenance["cache"]}))


@pytest.fixture
def videos(make_video, tmp_path: Path) -> Path:
    from tests.conftest import smooth_clip

    for i in range(N_VIDEOS):
        make_video(f"v/{i}.mp4", smooth_clip(6, h=32, w=32, seed=i))
    return tmp_path / "v"


def a_busy_or_b_busy(outs: list[Path]) -> bool:
    """At least one worker found a lease held by the other (they overlapped)."""
    return sum(json.loads(o.read_text())["cache"]["leases_busy"] for o in outs) > 0


def _classic_name() -> None:
    from aigve.backbones.classic import FrameAbsDiff

    assert FrameAbsDiff.name == "frame_absdiff"


def test_two_processes_compute_each_video_once(videos: Path, tmp_path: Path) -> None:
    _classic_name()
    ctx = mp.get_context("spawn")
    counter = tmp_path / "count.txt"
    outs = [tmp_path / f"out{i}.json" for i in range(2)]
    start = ctx.Barrier(2)
    procs = [
        ctx.Process(
            target=_worker, args=(str(videos), str(tmp_path / "cache"), str(counter), str(o), 60.0, start)
        )
        for o in outs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = counter.read_text().split()
    assert len(lines) == N_VIDEOS  # every video's features computed exactly once over both runs
    assert len(set(lines)) == 2  # ... and the work was shared: each worker computed some videos
    assert a_busy_or_b_busy(outs)
    a, b = (json.loads(o.read_text()) for o in outs)
    assert a["values"] == b["values"] and len(a["values"]) == N_VIDEOS
    assert all(v is not None for v in a["values"].values())
    assert a["cache"]["misses"] + b["cache"]["misses"] >= N_VIDEOS
    assert not list((tmp_path / "cache" / "leases").glob("*.lease"))  # all released


def test_lease_is_exclusive_and_released(tmp_path: Path) -> None:
    a, b = FeatureCache(tmp_path), FeatureCache(tmp_path)
    lease = a.try_lease("k" * 64)
    assert lease is not None
    assert b.try_lease("k" * 64) is None and b.leases_busy == 1 and b.lease_held("k" * 64)
    assert a.try_lease("k" * 64) is lease  # the holder asking again gets its own lease
    lease.release()
    assert not a.lease_held("k" * 64)
    again = b.try_lease("k" * 64)
    assert again is not None
    b.close()
    assert not b.lease_held("k" * 64)  # close releases what is held
    a.close()


def test_heartbeat_keeps_a_working_holder_lease(tmp_path: Path) -> None:
    a, b = FeatureCache(tmp_path, lease_ttl=0.4), FeatureCache(tmp_path, lease_ttl=0.4)
    assert a.try_lease("h" * 64) is not None
    time.sleep(1.2)  # three lifetimes: renewed meanwhile, so not taken over
    assert b.try_lease("h" * 64) is None and b.lease_takeovers == 0
    a.close()
    b.close()


def _hold_forever(root: str, ready: str) -> None:
    c = FeatureCache(root, lease_ttl=0.5)
    assert c.try_lease("z" * 64) is not None
    Path(ready).write_text("held")
    time.sleep(600)


def test_a_killed_holder_lease_is_taken_over_after_expiry(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    ready = tmp_path / "ready"
    p = ctx.Process(target=_hold_forever, args=(str(tmp_path), str(ready)))
    p.start()
    try:
        t0 = time.monotonic()
        while not ready.exists():
            assert time.monotonic() - t0 < 60 and p.is_alive()
            time.sleep(0.05)
        c = FeatureCache(tmp_path, lease_ttl=0.5)
        time.sleep(0.8)  # the holder is alive and renewing: still held
        assert c.try_lease("z" * 64) is None
        assert p.pid is not None
        os.kill(p.pid, signal.SIGKILL)  # crash: no release, no more renewals
        p.join(10)
        t_kill = time.monotonic()
        lease = c.wait_lease("z" * 64, poll=0.05, timeout=10)
        assert lease is not None and c.lease_takeovers == 1
        # within one lifetime (plus polling); on this host at once, as its process is gone (tests below)
        assert time.monotonic() - t_kill <= 0.5 + 0.5
        lease.release()
        c.close()
    finally:
        if p.is_alive():
            p.kill()
            p.join(5)


def test_engine_takes_over_a_dead_workers_lease(videos: Path, tmp_path: Path) -> None:
    """A lease left by a crashed run (expired) does not stop a later run; a live one delays it until expiry."""
    from aigve import evaluate
    from aigve.engine import cache as cache_mod

    first = evaluate(videos, ["flicker"], bootstrap=0, report=False)
    root = tmp_path / "cache"
    (root / "leases").mkdir(parents=True)
    # a lease per video as a crashed worker leaves them: the engine's key for each video
    from aigve.engine.cache import feature_key
    from aigve.paths import file_sha256
    from aigve.video.sampling import Window

    for i in range(N_VIDEOS):
        key = feature_key(
            file_sha256(videos / f"{i}.mp4"), {"lease": "video", "version": 1}, "-", Window().id
        )
        expires = time.time() + (0.8 if i == 0 else -5.0)  # the first one still live for a moment
        (root / "leases" / f"{key}.lease").write_text(json.dumps({"owner": "dead:1:x", "expires": expires}))
    old = cache_mod.LEASE_TTL
    try:
        cache_mod.LEASE_TTL = 0.5
        res = evaluate(videos, ["flicker"], cache_dir=root, bootstrap=0, report=False)
    finally:
        cache_mod.LEASE_TTL = old
    assert res.exit_code == 0
    assert res.provenance["cache"]["lease_takeovers"] == N_VIDEOS
    assert [r.video_id for r in res.records] == [r.video_id for r in first.records]  # input order kept
    np.testing.assert_allclose(
        [r.value for r in res.records], [r.value for r in first.records], rtol=0, atol=0
    )


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def _lease_file(root: Path, key: str, body: dict[str, object]) -> None:
    (root / "leases").mkdir(parents=True, exist_ok=True)
    (root / "leases" / f"{key}.lease").write_text(json.dumps(body))


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    """A worker killed mid-run (e.g. a Ray actor) left its lease: a worker on the same host sees that the
    holder's process is gone and takes over without waiting for the lease to expire."""
    import subprocess
    import sys

    key = "d" * 64
    code = (
        "import sys; from aigve.engine.cache import FeatureCache; "
        f"c = FeatureCache(sys.argv[1], lease_ttl=600.0); assert c.try_lease({key!r}) is not None"
    )  # exits holding the lease: no release, no close
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=os.environ.copy())
    left = json.loads((tmp_path / "leases" / f"{key}.lease").read_text())
    assert left["pid"] != os.getpid() and left["expires"] > time.time() + 500  # far from expiry
    c = FeatureCache(tmp_path, lease_ttl=600.0)
    t0 = time.monotonic()
    lease = c.try_lease(key)
    assert lease is not None and c.lease_takeovers == 1 and c.leases_busy == 0
    assert time.monotonic() - t0 < 5.0
    assert json.loads(lease.path.read_text())["owner"] == c.owner
    c.close()


def test_only_a_dead_holder_of_this_host_and_pid_namespace_is_taken_over_early(tmp_path: Path) -> None:
    import socket

    from aigve.engine.cache import _pid_namespace

    host, ns, dead, future = socket.gethostname(), _pid_namespace(), _dead_pid(), time.time() + 600
    c = FeatureCache(tmp_path, lease_ttl=600.0)
    cases = {
        "alive here": {"owner": f"{host}:{os.getppid()}:a", "pid": os.getppid(), "pidns": ns},
        "other host": {"owner": f"elsewhere:{dead}:b", "pid": dead, "pidns": ns},
        "other pid namespace": {"owner": f"{host}:{dead}:c", "pid": dead, "pidns": "pid:[1]"},
        "old lease, no namespace": {"owner": f"{host}:{dead}:d", "pid": dead},
    }
    if ns is None:  # no /proc: the namespace cannot tell the last two apart from this one
        del cases["other pid namespace"], cases["old lease, no namespace"]
    for i, body in enumerate(cases.values()):
        key = f"{i}" * 64
        _lease_file(tmp_path, key, {**body, "expires": future})
        assert c.try_lease(key) is None  # held until it expires
    assert c.leases_busy == len(cases) and c.lease_takeovers == 0
    dead_here = "e" * 64
    _lease_file(
        tmp_path, dead_here, {"owner": f"{host}:{dead}:e", "pid": dead, "pidns": ns, "expires": future}
    )
    assert c.try_lease(dead_here) is not None and c.lease_takeovers == 1
    c.close()
