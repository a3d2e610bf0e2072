"""The jobs API end to end against a real server: lifecycle, results, concurrency, cancellation.

Result values are checked against the flicker formula computed here from independently decoded
frames (relative tolerance 1e-9), so a job that scored the wrong files or mixed up jobs fails.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.server.conftest import REPO, ServerProc, reference_flicker, toy_dir_or_none, wait_job, write_clip


def _flicker_by_id(rows: list[dict]) -> dict[str, float]:
    return {r["video_id"]: r["value"] for r in rows if r["metric"] == "flicker" and r["output"] == "flicker"}


def test_healthz_is_open_and_reports_environment(server: ServerProc) -> None:
    import httpx

    h = httpx.get(server.url + "/healthz").json()
    assert h["status"] == "ok"
    assert h["workers"] == {"configured": 2, "alive": 2}
    for k in ("aigve", "torch", "cuda_available", "device_count", "queue_depth", "python"):
        assert k in h
    assert h["cuda_available"] is False and h["device_count"] == 0  # this machine has no GPU
    assert "cwd" not in h and str(server.state_dir) not in json.dumps(h)


def test_metrics_catalogue(server: ServerProc) -> None:
    with server.client() as c:
        cat = c.get("/v1/metrics").json()
    names = {m["name"]: m for m in cat["metrics"]}
    assert {"flicker", "motion"} <= set(names)
    assert names["flicker"]["family"] == "classic" and names["flicker"]["available"] is True
    assert "classic" in cat["categories"]


@pytest.mark.toy
def test_toy_dataset_lifecycle(server: ServerProc) -> None:
    """Path job on the toy set (first 8 frames): 202 -> running -> succeeded; results, per_video (csv/json), artifacts,
    report; values equal the flicker formula; then DELETE removes the job."""
    toy = toy_dir_or_none()
    if toy is None:
        pytest.skip("AIGVE toy dataset not found (set AIGVE_TOY_DIR)")
    with server.client() as c:
        r = c.post(
            "/v1/jobs", json={"dataset": {"path": str(toy)}, "metrics": ["flicker", "motion"], "max_len": 8}
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        seen = set()
        deadline = time.time() + 90
        while time.time() < deadline:
            j = c.get(f"/v1/jobs/{job_id}").json()
            seen.add(j["status"])
            if j["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.05)
        assert j["status"] == "succeeded", j
        assert j["progress"] == {"done": 11, "total": 11, "fraction": 1.0}
        assert seen & {"queued", "running"}
        assert set(j["summary"]["metrics"]) == {"flicker", "motion"}

        res = c.get(f"/v1/jobs/{job_id}/results").json()
        assert res["n_videos"] == 11 and res["metrics"]["flicker"]["n_errors"] == 0
        rows = c.get(f"/v1/jobs/{job_id}/per_video").json()["rows"]
        got = _flicker_by_id(rows)
        ann = json.loads((toy / "annotations" / "evaluate.json").read_text())
        assert len(got) == 11
        for item in ann["data_list"]:
            vid = Path(item["video_path_pd"]).stem
            ref = reference_flicker(toy / "evaluate" / item["video_path_pd"], max_len=8)
            assert got[vid] == pytest.approx(ref, rel=1e-9)
        mean = sum(got.values()) / len(got)
        assert j["summary"]["metrics"]["flicker"]["value"] == pytest.approx(mean, rel=1e-12)

        text = c.get(f"/v1/jobs/{job_id}/per_video", params={"format": "csv"}).text
        csv_rows = list(csv.DictReader(io.StringIO(text)))
        assert len(csv_rows) == len(rows)
        assert str(toy) not in text and str(server.state_dir) not in text  # no server folders leak

        arts = c.get(f"/v1/jobs/{job_id}/artifacts").json()["artifacts"]
        by_name = {a["name"]: a["json"] for a in arts}
        assert set(by_name) == {"flicker_results.json", "motion_results.json"}
        assert by_name["flicker_results.json"]["FLICKER_Mean_Score"] == pytest.approx(mean, rel=1e-12)

        rep = c.get(f"/v1/jobs/{job_id}/report")
        assert rep.status_code == 200 and rep.headers["content-type"].startswith("text/html")
        assert "<table id='aggregates'>" in rep.text and "flicker" in rep.text
        assert "<script" not in rep.text

        assert c.delete(f"/v1/jobs/{job_id}").json()["status"] == "deleted"
        assert c.get(f"/v1/jobs/{job_id}").status_code == 404
        assert not (server.state_dir / "jobs" / job_id).exists()


def test_upload_pairs_by_suffix_and_results_not_ready(server: ServerProc, tmp_path: Path) -> None:
    files = [
        write_clip(tmp_path / n, i) for i, n in enumerate(["a.mp4", "a_synthetic.mp4", "b_generated.mp4"])
    ]
    with server.client() as c:
        up = c.post("/v1/uploads", files=[("videos", (f.name, f.read_bytes(), "video/mp4")) for f in files])
        assert up.status_code == 201, up.text
        d = up.json()["dataset"]
        assert d["entries"] == 2 and d["pairs"] == 1 and d["extra_reals"] == 0
        job = c.post(
            "/v1/jobs", json={"dataset": {"upload_id": up.json()["upload_id"]}, "metrics": ["flicker"]}
        )
        job_id = job.json()["job_id"]
        early = c.get(f"/v1/jobs/{job_id}/results")
        assert early.status_code in (200, 409)
        j = wait_job(c, job_id)
        assert j["status"] == "succeeded"
        got = _flicker_by_id(c.get(f"/v1/jobs/{job_id}/per_video").json()["rows"])
        assert got == pytest.approx(
            {"a_synthetic": reference_flicker(files[1]), "b_generated": reference_flicker(files[2])}, rel=1e-9
        )


def test_twenty_concurrent_jobs_are_each_right(server: ServerProc, tmp_path: Path) -> None:
    """20 jobs with different clips, submitted at once from 20 threads: each job's per-video values
    are those of its own files."""
    jobs_in = []
    for j in range(20):
        names = [f"j{j:02d}_a.mp4", f"j{j:02d}_b.mp4"]
        paths = [write_clip(tmp_path / f"set{j}" / n, 100 + 2 * j + k) for k, n in enumerate(names)]
        jobs_in.append(paths)
    expected = [{p.stem: reference_flicker(p) for p in paths} for paths in jobs_in]
    assert len({round(v, 9) for e in expected for v in e.values()}) == 40  # all inputs differ

    def submit(paths: list[Path]) -> str:
        with server.client() as c:
            up = c.post(
                "/v1/uploads", files=[("videos", (p.name, p.read_bytes(), "video/mp4")) for p in paths]
            )
            assert up.status_code == 201, up.text
            r = c.post(
                "/v1/jobs", json={"dataset": {"upload_id": up.json()["upload_id"]}, "metrics": ["flicker"]}
            )
            assert r.status_code == 202, r.text
            return r.json()["job_id"]

    with ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(submit, jobs_in))
    assert len(set(ids)) == 20
    with server.client() as c:
        for job_id, exp in zip(ids, expected, strict=True):
            j = wait_job(c, job_id, timeout=120)
            assert j["status"] == "succeeded", j
            got = _flicker_by_id(c.get(f"/v1/jobs/{job_id}/per_video").json()["rows"])
            assert got == pytest.approx(exp, rel=1e-9)


def test_cancel_queued_and_running(server: ServerProc, tmp_path: Path) -> None:
    """Cancelling: a running job stops between videos (202 then 'cancelled', files removed); a queued
    job is cancelled at once (200)."""
    paths = [write_clip(tmp_path / f"c{i:02d}.mp4", 300 + i, t=24, h=128, w=128) for i in range(25)]
    with server.client() as c:
        up = c.post(
            "/v1/uploads", files=[("videos", (p.name, p.read_bytes(), "video/mp4")) for p in paths]
        ).json()
        body = {"dataset": {"upload_id": up["upload_id"]}, "metrics": ["flicker", "motion"]}
        ids = [c.post("/v1/jobs", json=body).json()["job_id"] for _ in range(3)]  # 2 workers: the 3rd waits
        deadline = time.time() + 60
        running = None
        while time.time() < deadline and running is None:
            for job_id in ids:
                j = c.get(f"/v1/jobs/{job_id}").json()
                if j["status"] == "running" and j["progress"]["done"] >= 1:
                    running = job_id
                    break
            time.sleep(0.05)
        assert running is not None
        queued = [i for i in ids if c.get(f"/v1/jobs/{i}").json()["status"] == "queued"]
        r = c.delete(f"/v1/jobs/{running}")
        assert r.status_code == 202 and r.json()["status"] == "cancelling"
        j = wait_job(c, running, timeout=60)
        assert j["status"] == "cancelled"
        assert j["progress"]["done"] < 25
        assert not (server.state_dir / "jobs" / running).exists()
        for q in queued:
            r = c.delete(f"/v1/jobs/{q}")
            if r.status_code == 200:
                assert r.json()["status"] == "cancelled"
                assert c.get(f"/v1/jobs/{q}").json()["status"] == "cancelled"
        for job_id in ids:  # leave nothing running for the other tests
            if c.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running"):
                assert c.delete(f"/v1/jobs/{job_id}").status_code in (200, 202)
                assert wait_job(c, job_id, timeout=60)["status"] in ("cancelled", "succeeded")


def test_workers_were_never_replaced(server: ServerProc) -> None:
    """Worker processes live across jobs (models stay loaded): none died or was respawned during the
    tests above (a worker started from a short-lived thread once got killed by its parent-death
    signal when that thread ended)."""
    import httpx

    assert "starting a new one" not in server.log.read_text()
    assert httpx.get(server.url + "/healthz").json()["workers"]["alive"] == 2
    with server.client() as c:
        jobs = c.get("/v1/jobs", params={"limit": 500}).json()["jobs"]
    assert jobs and all(j["attempts"] <= 1 for j in jobs)


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_client_command_logs_http_requests_only_at_debug(server: ServerProc, level: str) -> None:
    """`aigve client` talks to the server (its health line is printed), then stops on the missing
    dataset flags; httpx's per-request INFO line appears only with --log-level DEBUG."""
    env = {
        **os.environ,
        "AIGVE_API_TOKEN": server.token or "",
        "PYTHONPATH": str(REPO / "src"),
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "aigve", "--log-level", level, "client", "--base-url", server.url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr  # usage error: no --upload-dir/--input-dir
    assert f"server {server.url}: aigve" in proc.stdout  # a request was made
    assert "--upload-dir" in proc.stderr
    assert ("HTTP Request" in proc.stderr) is (level == "DEBUG"), proc.stderr
