"""Security against the real server: token, paths held to the data roots, upload limits and content,
the compat endpoints' refusals, and no server paths or traces in error bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import ServerProc, wait_job, write_clip

PROTECTED = [
    ("GET", "/v1/metrics"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/" + "0" * 32),
    ("POST", "/v1/jobs"),
    ("POST", "/v1/uploads"),
    ("DELETE", "/v1/jobs/" + "0" * 32),
    ("GET", "/help"),
    ("POST", "/run"),
    ("POST", "/run_upload"),
    ("GET", "/openapi.json"),
]


def _no_leak(server: ServerProc, body: str) -> None:
    assert "Traceback" not in body
    for p in (server.state_dir, *server.data_roots):
        assert str(p) not in body
    assert "/tmp/" not in body


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_401_without_or_with_wrong_token(server: ServerProc, method: str, path: str) -> None:
    r = httpx.request(method, server.url + path)
    assert r.status_code == 401
    assert r.headers.get("www-authenticate") == "Bearer"
    r = httpx.request(method, server.url + path, headers={"Authorization": "Bearer wrong-token-123456789"})
    assert r.status_code == 401


def test_basic_auth_with_token_as_password(server: ServerProc) -> None:
    """What ``requests`` sends for http://user:TOKEN@host — how the original client passes a token."""
    good = base64.b64encode(f"aigve:{server.token}".encode()).decode()
    bad = base64.b64encode(b"aigve:nope").decode()
    assert httpx.get(server.url + "/v1/jobs", headers={"Authorization": f"Basic {good}"}).status_code == 200
    assert httpx.get(server.url + "/v1/jobs", headers={"Authorization": f"Basic {bad}"}).status_code == 401


@pytest.mark.parametrize(
    ("path", "codes"),
    [
        ("../outside", {422}),
        ("paired/../../outside", {422}),
        ("..", {422}),
        ("/etc", {403}),
        ("/", {403}),
        ("escape", {403}),  # a symlink inside the root pointing outside it
        ("escape/secret.mp4", {403, 422}),
        ("does-not-exist", {404}),
    ],
)
def test_paths_outside_the_roots_are_refused(server: ServerProc, path: str, codes: set[int]) -> None:
    with server.client() as c:
        r = c.post("/v1/jobs", json={"dataset": {"path": path}, "metrics": ["flicker"]})
        assert r.status_code in codes, r.text
        _no_leak(server, r.text)
        r = c.post("/run", json={"input_dir": path, "metrics": "flicker", "compute": True})
        assert r.status_code in codes, r.text
        _no_leak(server, r.text)


def test_absolute_path_of_the_outside_folder_and_annotation_escape(
    server: ServerProc, server_data: dict[str, Path]
) -> None:
    outside = server_data["outside"]
    root = server_data["root"]
    ann_dir = root / "ann-escape"
    (ann_dir / "annotations").mkdir(parents=True, exist_ok=True)
    rel = Path("..") / ".." / ".." / "outside" / "secret.mp4"  # from ann-escape/evaluate/ out of the root
    (ann_dir / "annotations" / "evaluate.json").write_text(
        json.dumps({"metainfo": {}, "data_list": [{"video_path_pd": str(rel), "prompt_gt": "x"}]})
    )
    with server.client() as c:
        assert (
            c.post("/v1/jobs", json={"dataset": {"path": str(outside)}, "metrics": ["flicker"]}).status_code
            == 403
        )
        r = c.post("/v1/jobs", json={"dataset": {"path": "ann-escape"}, "metrics": ["flicker"]})
        assert r.status_code == 403, r.text
        _no_leak(server, r.text)
        ok = c.post("/v1/jobs", json={"dataset": {"path": str(root / "paired")}, "metrics": ["flicker"]})
        assert ok.status_code == 202  # an absolute path inside a root is fine
        assert wait_job(c, ok.json()["job_id"])["status"] == "succeeded"


def test_upload_limits_413(server: ServerProc, tmp_path: Path) -> None:
    big = b"\x00\x00\x00\x18ftypisom" + b"\x00" * (1024 * 1024 + 100)  # > --max-file-mb 1
    clip = write_clip(tmp_path / "ok.mp4", 1).read_bytes()
    with server.client() as c:
        r = c.post("/v1/uploads", files=[("videos", ("big.mp4", big, "video/mp4"))])
        assert r.status_code == 413, r.text
        many = [("videos", (f"v{i}.mp4", clip, "video/mp4")) for i in range(31)]  # > --max-files 30
        assert c.post("/v1/uploads", files=many).status_code == 413
        huge = [("videos", (f"h{i}.mp4", big[: 900 * 1024], "video/mp4")) for i in range(6)]  # body > 4 MB
        assert c.post("/v1/uploads", files=huge).status_code == 413
    assert not list((server.state_dir / "uploads").glob(".tmp-*"))  # refused uploads leave nothing behind


@pytest.mark.parametrize(
    ("name", "content", "codes"),
    [
        ("notes.mp4", b"this is plain text, not a video", {415}),
        ("image.mp4", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, {415}),
        ("script.webm", b"#!/bin/sh\necho hi\n", {415}),
        ("../evil.mp4", None, {201, 422}),  # directory part dropped, or refused
        (".hidden.mp4", None, {422}),
    ],
)
def test_non_video_uploads_refused(
    server: ServerProc, tmp_path: Path, name: str, content: bytes | None, codes: set[int]
) -> None:
    data = content if content is not None else write_clip(tmp_path / "x.mp4", 2).read_bytes()
    with server.client() as c:
        r = c.post("/v1/uploads", files=[("videos", (name, data, "video/mp4"))])
    assert r.status_code in codes, r.text
    if r.status_code == 201:
        assert [f["name"] for f in r.json()["files"]] == ["evil.mp4"]
    _no_leak(server, r.text)


def test_extension_is_not_trusted(server: ServerProc, tmp_path: Path) -> None:
    """An mp4 named .avi is stored as what it is."""
    data = write_clip(tmp_path / "x.mp4", 3).read_bytes()
    with server.client() as c:
        r = c.post("/v1/uploads", files=[("videos", ("clip.avi", data, "video/x-msvideo"))])
    assert r.status_code == 201
    assert r.json()["files"][0]["name"] == "clip.mp4" and r.json()["files"][0]["container"] == "mp4"


def test_compat_refusals(server: ServerProc, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "a.mp4", 4).read_bytes()
    with server.client() as c:
        r = c.post(
            "/run", json={"input_dir": "paired", "compute": True, "metrics": "flicker", "extra_args": ["--x"]}
        )
        assert r.status_code == 422 and "extra_args" in r.json()["detail"]
        r = c.post(
            "/run", json={"input_dir": "paired", "compute": True, "metrics": "flicker", "fvd_model": "/x.pt"}
        )
        assert r.status_code == 422 and "fvd_model" in r.json()["detail"]
        r = c.post(
            "/run",
            json={"input_dir": "paired", "compute": True, "metrics": "flicker", "stage_dataset": "../x"},
        )
        assert r.status_code == 422
        r = c.post("/run", json={"compute": True, "metrics": "flicker"})
        assert r.status_code == 422 and "input_dir" in r.json()["detail"]
        r = c.post("/run", json={"input_dir": "paired", "compute": True, "metrics": "no_such_metric"})
        assert r.status_code == 422 and "no_such_metric" in r.json()["detail"]
        r = c.post(
            "/run_upload",
            data={"metrics": "flicker", "extra_args": "--device=cuda"},
            files=[("videos", ("a.mp4", clip, "video/mp4"))],
        )
        assert r.status_code == 422 and "extra_args" in r.json()["detail"]
        r = c.post(
            "/run_upload", data={"metrics": "flicker"}, files=[("videos", ("a.txt", b"hello", "text/plain"))]
        )
        assert r.status_code == 415


def test_error_bodies_hold_no_paths_or_traces(server: ServerProc) -> None:
    with server.client() as c:
        for r in (
            c.post(
                "/v1/jobs", json={"dataset": {"path": "paired"}, "metrics": ["flicker"], "max_seconds": -1}
            ),
            c.post("/v1/jobs", json={"dataset": {"upload_id": "f" * 32}, "metrics": ["flicker"]}),
            c.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}),
            c.get("/v1/jobs/" + "a" * 32 + "/results"),
            c.get("/v1/jobs/not-an-id"),
        ):
            assert 400 <= r.status_code < 500, r.text
            _no_leak(server, r.text)
