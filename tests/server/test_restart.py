"""Jobs survive a server crash: the running job is re-queued and resumes, the queued one runs."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.server.conftest import ServerProc, reference_flicker, wait_job, write_clip

pytestmark = pytest.mark.slow


def _row(state_dir: Path, job_id: str) -> tuple:
    with sqlite3.connect(state_dir / "jobs.db") as db:
        return db.execute(
            "SELECT status, progress_done, progress_total, attempts FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()


def test_restart_with_jobs_queued_and_running(tmp_path: Path) -> None:
    slow = [write_clip(tmp_path / "slow" / f"s{i:02d}.mp4", 500 + i, t=24, h=128, w=128) for i in range(16)]
    quick = [write_clip(tmp_path / "quick" / f"q{i}.mp4", 600 + i) for i in range(2)]
    state = tmp_path / "state"
    first = ServerProc(state, [tmp_path], workers=1).start()
    try:
        with first.client() as c:
            body = {"metrics": ["flicker", "motion"], "bootstrap": 0}
            run_id = c.post("/v1/jobs", json={"dataset": {"path": "slow"}, **body}).json()["job_id"]
            queued_id = c.post("/v1/jobs", json={"dataset": {"path": "quick"}, **body}).json()["job_id"]
            deadline = time.time() + 60
            while time.time() < deadline:
                j = c.get(f"/v1/jobs/{run_id}").json()
                if j["progress"]["done"] >= 2 or j["status"] != "queued" and j["status"] != "running":
                    break
                time.sleep(0.02)
        assert j["status"] == "running", j
        first.stop(signal.SIGKILL)  # a crash: no graceful shutdown; its worker dies with it
    finally:
        first.stop()
    status, done_before, total, attempts = _row(state, run_id)
    assert (status, attempts) == ("running", 1) and 2 <= done_before < total == 16
    assert _row(state, queued_id)[0] == "queued"
    journal = state / "jobs" / run_id / "out" / "journal.jsonl"
    assert journal.is_file()

    second = ServerProc(state, [tmp_path], workers=1).start()
    try:
        with second.client() as c:
            j = wait_job(c, run_id, timeout=120)
            q = wait_job(c, queued_id, timeout=60)
            assert j["status"] == "succeeded", j
            assert q["status"] == "succeeded", q
            assert j["attempts"] == 2
            res = c.get(f"/v1/jobs/{run_id}/results").json()
            # the re-run found the features of the videos done before the crash in the shared cache
            assert res["provenance"]["resumed"] is True
            assert res["provenance"]["cache"]["hits"] >= done_before
            for job_id, paths in ((run_id, slow), (queued_id, quick)):
                rows = c.get(f"/v1/jobs/{job_id}/per_video").json()["rows"]
                got = {r["video_id"]: r["value"] for r in rows if r["output"] == "flicker"}
                assert got == pytest.approx({p.stem: reference_flicker(p) for p in paths}, rel=1e-9)
                assert sum(1 for r in rows if r["output"] == "motion") == len(paths)  # no duplicates
    finally:
        second.stop()
