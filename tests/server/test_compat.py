"""The original API's endpoints and clients: /help, /run, /run_upload, what the original
``scripts/call_aigve_api.py`` sends, plus ``aigve.client.Client`` and ``aigve client``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.server.conftest import REPO, ServerProc, reference_flicker, write_clip


def test_help(server: ServerProc) -> None:
    with server.client() as c:
        h = c.get("/help").json()
    assert h["returncode"] == 0 and "--max-seconds" in h["stdout"] and "cdfvd_all_flavors" in h["stdout"]


def test_run_on_a_data_root_folder(server: ServerProc, server_data: dict[str, Path]) -> None:
    """The original /run body (field names as the original client sends them)."""
    payload = {
        "input_dir": "paired",
        "stage_dataset": "/app/out/staged",  # accepted, never written
        "compute": True,
        "categories": "",
        "metrics": "flicker",
        "generated_suffixes": "synthetic,generated",
        "max_seconds": 8.0,
        "fps": 25.0,
        "use_cpu": True,
        "cdfvd_resolution": 128,
        "cdfvd_sequence_length": 16,
        "cdfvd_all_flavors": True,
    }
    with server.client() as c:
        r = c.post("/run", json=payload)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= {"cmd", "returncode", "stdout", "stderr", "artifacts"}
    assert out["returncode"] == 0, out
    assert [a["name"] for a in out["artifacts"]] == ["flicker_results.json"]
    res = out["artifacts"][0]["json"]
    paired = server_data["paired"]
    by_id = {v["video_id"]: v for v in res["video_results"]}
    # k1_synthetic pairs with k1; k2_generated has no real video; k3 is an extra real one
    assert set(by_id) == {"k1_synthetic", "k2_generated"}
    assert by_id["k1_synthetic"]["video_path_gt"] == "k1.mp4"
    assert by_id["k2_generated"]["flicker"] == pytest.approx(
        reference_flicker(paired / "k2_generated.mp4"), rel=1e-9
    )
    assert "stage_dataset ignored" in out["stdout"]
    assert not Path("/app/out/staged").exists()


def test_run_compute_false_returns_the_annotation(server: ServerProc) -> None:
    with server.client() as c:
        out = c.post("/run", json={"input_dir": "paired", "metrics": "flicker"}).json()
    assert out["returncode"] == 0 and out["artifacts"][0]["name"] == "evaluate.json"
    items = out["artifacts"][0]["json"]["data_list"]
    assert sorted(i["video_path_pd"] for i in items) == ["k1_synthetic.mp4", "k2_generated.mp4"]


def test_run_maps_cdfvd_fields_as_the_command_line_does(server: ServerProc) -> None:
    """``use_cdfvd`` + ``cdfvd_resolution=256`` through ``/run``: the same note as ``aigve run --use-cdfvd
    --cdfvd-resolution 256`` (the resolution is not a metric option; see tests/cli/test_legacy.py)."""
    from aigve.cli.legacy import cdfvd_options

    payload = {"input_dir": "paired", "metrics": "flicker", "compute": False, "use_cdfvd": True}
    payload |= {"cdfvd_model": "videomae", "cdfvd_resolution": 256, "cdfvd_all_flavors": False}
    with server.client() as c:
        out = c.post("/run", json=payload).json()
    assert out["returncode"] == 0, out
    notes = [line.removeprefix("note: ") for line in out["stdout"].splitlines() if line.startswith("note: ")]
    assert notes == list(cdfvd_options("videomae", 256, 16).notes)


def test_run_upload_with_the_original_clients_form(server: ServerProc, tmp_path: Path) -> None:
    """Five videos (any number is accepted), the exact form fields of the original client, through
    ``requests`` with the token in the URL (how the unchanged original client authenticates)."""
    names = ["10.mp4", "10_synthetic.mp4", "11.mp4", "11_generated.mp4", "12_synthetic.mp4"]
    paths = [write_clip(tmp_path / n, 40 + i) for i, n in enumerate(names)]
    form = {
        "compute": True,
        "categories": "classic",
        "generated_suffixes": "synthetic,generated",
        "fps": 25.0,
        "pad": False,
        "max_seconds": 8.0,
        "use_cpu": True,
        "metrics": "flicker",
        "cdfvd_resolution": 224,
        "cdfvd_sequence_length": 16,
        "cdfvd_all_flavors": True,
    }
    url = server.url.replace("http://", f"http://aigve:{server.token}@") + "/run_upload"
    handles = [open(p, "rb") for p in paths]
    try:
        files = [
            ("videos", (p.name, h, "application/octet-stream")) for p, h in zip(paths, handles, strict=True)
        ]
        r = requests.post(url, data=form, files=files, timeout=120)
    finally:
        for h in handles:
            h.close()
    assert r.status_code == 200, r.text
    out = r.json()
    arts = {a["name"]: a["json"] for a in out["artifacts"]}
    assert {"flicker_results.json", "motion_results.json"} <= set(arts)  # metrics + the classic category
    vids = {v["video_id"]: v for v in arts["flicker_results.json"]["video_results"]}
    assert set(vids) == {"10_synthetic", "11_generated", "12_synthetic"}
    assert vids["10_synthetic"]["video_path_gt"] == "10.mp4" and vids["12_synthetic"]["video_path_gt"] is None
    for p in paths[1::2] + [paths[4]]:
        assert vids[p.stem]["flicker"] == pytest.approx(reference_flicker(p), rel=1e-9)


ORIGINAL = os.environ.get("AIGVE_ORIGINAL_CLIENT")


@pytest.mark.skipif(
    not ORIGINAL, reason="set AIGVE_ORIGINAL_CLIENT to the original scripts/call_aigve_api.py"
)
def test_original_client_unchanged(server: ServerProc, tmp_path: Path) -> None:  # pragma: no cover - optional
    a = write_clip(tmp_path / "up" / "7.mp4", 70)
    b = write_clip(tmp_path / "up" / "7_synthetic.mp4", 71)
    url = server.url.replace("http://", f"http://aigve:{server.token}@")
    cmd = [
        sys.executable,
        str(ORIGINAL),
        "--base-url",
        url,
        "--upload-files",
        str(a),
        str(b),
        "--categories",
        "classic",
        "--metrics",
        "flicker",
        "--save-dir",
        str(tmp_path / "saved"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    # 'classic' also brings niqe, which cannot score 64x64 clips (exit 3 = some metric failed)
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    saved = json.loads((tmp_path / "saved" / "flicker_results.json").read_text())
    assert saved["video_results"][0]["flicker"] == pytest.approx(reference_flicker(b), rel=1e-9)


def test_python_client(server: ServerProc, tmp_path: Path) -> None:
    from aigve.client import ApiClientError, Client

    paths = [write_clip(tmp_path / "v" / f"p{i}.mp4", 80 + i) for i in range(2)]
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"p0": "a red ball", "p1": "a blue cube"}))
    with Client(server.url, token=server.token) as c:
        assert c.health()["status"] == "ok"
        assert "flicker" in {m["name"] for m in c.metrics()}
        up = c.upload(paths, prompts)
        job = c.submit(up["upload_id"], metrics=["flicker"], max_len=6)
        final = c.wait(job, poll=0.1, timeout=60)
        assert final["status"] == "succeeded"
        rows = c.per_video(job)
        assert {r["prompt"] for r in rows} == {"a red ball", "a blue cube"}
        got = {r["video_id"]: r["value"] for r in rows if r["output"] == "flicker"}
        assert got == pytest.approx({p.stem: reference_flicker(p, max_len=6) for p in paths}, rel=1e-9)
        saved = c.save(job, tmp_path / "out")
        assert {p.name for p in saved} == {
            "flicker_results.json",
            "results.json",
            "per_video.csv",
            "report.html",
        }
        with pytest.raises(ApiClientError) as e:
            c.submit({"path": "../x"}, metrics=["flicker"])
        assert e.value.status == 422
    with Client(server.url, token="wrong-token-0123456789") as bad, pytest.raises(ApiClientError) as e:
        bad.metrics()
    assert e.value.status == 401


def test_aigve_client_command(server: ServerProc, tmp_path: Path) -> None:
    paths = [write_clip(tmp_path / "d" / n, 90 + i) for i, n in enumerate(["5.mp4", "5_synthetic.mp4"])]
    env = {**os.environ, "AIGVE_API_TOKEN": server.token or "", "PYTHONPATH": str(REPO / "src")}
    cmd = [
        sys.executable,
        "-m",
        "aigve",
        "client",
        "--base-url",
        server.url,
        "--upload-dir",
        str(tmp_path / "d"),
        "--metrics",
        "flicker",
        "--max-seconds",
        "8",
        "--fps",
        "25",
        "--save-dir",
        str(tmp_path / "saved"),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = json.loads((tmp_path / "saved" / "flicker_results.json").read_text())
    (row,) = saved["video_results"]
    assert row["video_id"] == "5_synthetic" and row["video_path_gt"] == "5.mp4"
    assert row["flicker"] == pytest.approx(reference_flicker(paths[1]), rel=1e-9)


def test_run_naming_lightvqa_plus_says_why_it_is_unavailable(server: ServerProc) -> None:
    with server.client() as c:
        r = c.post("/run", json={"input_dir": "paired", "metrics": "lightvqa+", "compute": True})
    assert r.status_code == 422
    assert "Light-VQA+" in r.text and "not published" in r.text
