"""The downloaded built-ins without network: ``aigve_bench_toy`` against a small HTTP server the test starts
on 127.0.0.1 (Range requests, a corrupt file, a resumed partial download, a dead server), ``aigve_bench``
with the hub client replaced by fakes, and ``aigve datasets list|fetch``."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aigve.cli import main
from aigve.data import bench, bench_toy
from aigve.data.remote import RemoteFile, RemoteManifest, download_file, git_blob_sha1
from aigve.errors import DatasetError
from tests.conftest import smooth_clip


def blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class RangeServer:
    """Serves ``files`` (URL path -> bytes) and honours ``Range: bytes=N-``; records each request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        files, requests = self.files, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                rng = self.headers.get("Range")
                requests.append((self.path, rng))
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if rng:
                    m = re.fullmatch(r"bytes=(\d+)-", rng)
                    start = int(m.group(1)) if m else 0
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[RangeServer]:
    s = RangeServer()
    yield s
    s.close()


def toy_files(make_video: Any) -> dict[str, bytes]:  # noqa: ANN401
    """A small AIGVE-Bench-style set: the annotation with the nine aspects and two real videos."""
    items = []
    files: dict[str, bytes] = {}
    for i in range(2):
        p = make_video(f"src/videos/cogvideox_{i}.mp4", smooth_clip(6, seed=i))
        files[f"videos/cogvideox_{i}.mp4"] = p.read_bytes()
        item: dict[str, Any] = {"id": i, "prompt_gt": f"prompt {i}", "model": "cogvideox"}
        item.update({k: 1 + (i + j) % 5 for j, k in enumerate(bench.SCORE_FIELDS)})
        item["video_path_pd"] = f"cogvideox_{i}.mp4"
        items.append(item)
    files["annotations/train.json"] = json.dumps({"metainfo": {}, "data_list": items}).encode()
    return files


def manifest_for(files: dict[str, bytes], base: str, *, sizes: bool = True) -> RemoteManifest:
    return RemoteManifest(
        name="aigve_bench_toy",
        base_url=base,
        files=tuple(RemoteFile(k, blob_sha1(v), len(v) if sizes else None) for k, v in files.items()),
        license="test",
        source="https://example.org/upstream",
        extra={"repo": "owner/repo", "commit": "c0ffee", "folder": "data/AIGVE_Bench_toy"},
    )


@pytest.fixture
def fake_toy(
    make_video: Any,  # noqa: ANN401
    server: RangeServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> tuple[dict[str, bytes], RemoteManifest]:
    files = toy_files(make_video)
    for k, v in files.items():
        server.files[f"/toy/{k}"] = v
    m = manifest_for(files, f"{server.base}/toy")
    monkeypatch.setattr(bench_toy, "manifest", lambda: m)
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(bench_toy.ENV_DIR, raising=False)
    monkeypatch.delenv(bench_toy.ENV_BASE_URL, raising=False)
    return files, m


# ------------------------------------------------------------------------------------ the committed manifest
def test_committed_manifest_pins_the_upstream_tree() -> None:
    bench_toy.manifest.cache_clear()
    m = bench_toy.manifest()
    assert m.extra["commit"] == "8916406b8783030c1e7145279eebdc4cf29264c4"
    assert m.base_url.startswith("https://raw.githubusercontent.com/ShaneXiangH/AIGVE_Tool/8916406b")
    paths = [f.path for f in m.files]
    assert paths[0] == "annotations/train.json" and len(paths) == len(set(paths)) == 11
    assert all(re.fullmatch(r"videos/cogvideox_\d+\.mp4", p) for p in paths[1:])
    assert all(re.fullmatch(r"[0-9a-f]{40}", f.git_sha1) for f in m.files)
    ann = m.files[0]
    assert (ann.size, ann.git_sha1) == (9941, "66b4a8c0b2d523232525493e84282fc62e237c84")


def test_git_blob_sha1_is_gits_object_id(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello\n")
    assert git_blob_sha1(p) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"
    try:
        out = subprocess.run(["git", "hash-object", str(p)], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return
    assert out.stdout.strip() == git_blob_sha1(p)


# ------------------------------------------------------------------------------------ aigve_bench_toy
def test_first_use_downloads_verifies_and_loads(fake_toy: Any, server: RangeServer, tmp_path: Path) -> None:  # noqa: ANN401
    files, _ = fake_toy
    from aigve.data.dataset import load_dataset

    ds = load_dataset("aigve_bench_toy")
    assert ds.name == "aigve_bench_toy" and len(ds.entries) == 2
    e = ds.entries[0]
    assert e.extra["technical_quality"] == 1.0 and e.extra["model"] == "cogvideox"
    assert ds.hints["human_scores"] == list(bench.SCORE_FIELDS)
    root = tmp_path / "cache" / "datasets" / "aigve_bench_toy"
    for k, v in files.items():
        assert (root / k).read_bytes() == v
    assert not list(root.rglob("*.part"))
    n = len(server.requests)
    load_dataset("aigve_bench_toy")  # verified copy: nothing fetched again
    assert len(server.requests) == n


def test_corrupt_download_is_a_clear_error_and_removed(
    fake_toy: Any, server: RangeServer, tmp_path: Path
) -> None:  # noqa: ANN401
    files, m = fake_toy
    server.files["/toy/videos/cogvideox_1.mp4"] = b"\0" * len(files["videos/cogvideox_1.mp4"])
    with pytest.raises(DatasetError) as e:
        bench_toy.ensure_bench_toy()
    msg = str(e.value)
    want = next(f.git_sha1 for f in m.files if f.path == "videos/cogvideox_1.mp4")
    assert "videos/cogvideox_1.mp4" in msg and "corrupt" in msg and want in msg
    assert blob_sha1(b"\0" * len(files["videos/cogvideox_1.mp4"])) in msg
    root = tmp_path / "cache" / "datasets" / "aigve_bench_toy"
    assert not (root / "videos" / "cogvideox_1.mp4").exists() and not list(root.rglob("*.part"))
    assert (root / "videos" / "cogvideox_0.mp4").is_file()  # the good files are kept
    server.files["/toy/videos/cogvideox_1.mp4"] = files["videos/cogvideox_1.mp4"]  # fixed upstream
    assert bench_toy.ensure_bench_toy() == root


def test_partial_download_is_resumed_with_a_range_request(
    fake_toy: Any,  # noqa: ANN401
    server: RangeServer,
    tmp_path: Path,
) -> None:
    files, m = fake_toy
    rel = "videos/cogvideox_0.mp4"
    data = files[rel]
    root = tmp_path / "cache" / "datasets" / "aigve_bench_toy"
    part = root / (rel + ".part")
    part.parent.mkdir(parents=True)
    half = len(data) // 2
    part.write_bytes(data[:half])  # an interrupted earlier attempt
    bench_toy.ensure_bench_toy()
    assert (root / rel).read_bytes() == data and not part.exists()
    assert (f"/toy/{rel}", f"bytes={half}-") in server.requests
    assert sum(1 for p, _ in server.requests if p == f"/toy/{rel}") == 1  # only the tail was fetched


def test_resume_from_a_server_ignoring_ranges_starts_over(tmp_path: Path) -> None:
    data = b"0123456789" * 100
    src = tmp_path / "srv" / "f.bin"
    src.parent.mkdir()
    src.write_bytes(data)
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir()
    (tmp_path / "out" / "f.bin.part").write_bytes(data[:300])
    f = RemoteFile("f.bin", blob_sha1(data), len(data))
    download_file(src.as_uri(), dest, f)  # file:// answers without ranges: the whole file, written afresh
    assert dest.read_bytes() == data


def test_unknown_sizes_still_verify_by_blob_sha1(
    make_video: Any, server: RangeServer, tmp_path: Path
) -> None:  # noqa: ANN401
    files = toy_files(make_video)
    for k, v in files.items():
        server.files[f"/t/{k}"] = v
    m = manifest_for(files, f"{server.base}/t", sizes=False)
    root = tmp_path / "nosize"
    bench_toy.ensure_files(m, root)
    assert all((root / k).read_bytes() == v for k, v in files.items())
    server.files["/t/annotations/train.json"] = b"{}"
    (root / "annotations" / "train.json").unlink()
    with pytest.raises(DatasetError, match="corrupt"):
        bench_toy.ensure_files(m, root)


def test_offline_error_says_what_to_download_and_where(
    fake_toy: Any,  # noqa: ANN401
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(bench_toy.ENV_BASE_URL, f"http://127.0.0.1:{port}/gone")
    with pytest.raises(DatasetError) as e:
        bench_toy.ensure_bench_toy(timeout=5)
    msg = str(e.value)
    root = tmp_path / "cache" / "datasets" / "aigve_bench_toy"
    assert "could not fetch 3 of 3 file(s)" in msg and "annotations/train.json" in msg
    assert f"put it at {root}" in msg and "data/AIGVE_Bench_toy" in msg and "c0ffee" in msg
    assert bench_toy.ENV_DIR in msg


def test_local_copy_env_is_verified(fake_toy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # noqa: ANN401
    files, _ = fake_toy
    local = tmp_path / "local"
    for k, v in files.items():
        (local / k).parent.mkdir(parents=True, exist_ok=True)
        (local / k).write_bytes(v)
    monkeypatch.setenv(bench_toy.ENV_DIR, str(local))
    assert bench_toy.ensure_bench_toy() == local
    (local / "videos" / "cogvideox_0.mp4").write_bytes(b"x")
    with pytest.raises(DatasetError, match="cogvideox_0.mp4"):
        bench_toy.ensure_bench_toy()


def test_datasets_list_and_fetch_commands(
    fake_toy: Any,  # noqa: ANN401
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert main(["datasets", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"demo", "toy", "aigve_bench_toy", "aigve_bench"}
    for r in rows.values():
        assert r["license"] and r["source"] and r["size"] and isinstance(r["present"], bool)
    assert rows["aigve_bench_toy"]["present"] is False
    assert rows["aigve_bench"]["source"] == "https://huggingface.co/datasets/xiaoliux/AIGVE-Bench"
    assert main(["datasets", "fetch", "aigve_bench_toy"]) == 0
    assert "aigve_bench_toy: ok" in capsys.readouterr().out
    assert main(["datasets", "list", "aigve_bench_toy", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["present"] is True and row["path"] == str(tmp_path / "cache" / "datasets" / "aigve_bench_toy")
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert any("aigve_bench_toy" in line and "yes —" in line for line in out.splitlines())


# ------------------------------------------------------------------------------------ aigve_bench (hub)
@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_video: Any) -> dict[str, Any]:  # noqa: ANN401
    """Replace the hub client: ``listing`` is what the hub says, ``served`` what a download writes."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub

    vid = make_video("hub/videos/cogvideox_0.mp4", smooth_clip(6)).read_bytes()
    header = ["id", "prompt", "model", *bench.ASPECT_TITLES, "video_path_pd"]
    row = ["7", "a prompt", "cogvideox", *[str(1 + i % 5) for i in range(9)], "cogvideox_0.mp4"]
    csv_text = ",".join(f'"{h}"' for h in header) + "\n" + ",".join(row) + "\n"
    served = {"AIGVE-Bench1.0.csv": csv_text.encode(), "videos/cogvideox_0.mp4": vid}
    state: dict[str, Any] = {"served": served, "calls": [], "fail": None}

    def listing() -> list[Any]:
        out = []
        for k, v in served.items():
            lfs = {"sha256": hashlib.sha256(v).hexdigest()} if k.endswith(".mp4") else None
            out.append(SimpleNamespace(path=k, size=len(v), blob_id=blob_sha1(v), lfs=lfs))
        return out

    class FakeApi:
        def __init__(self, endpoint: str | None = None) -> None:
            state["endpoint"] = endpoint

        def list_repo_tree(self, repo: str, **kw: Any) -> list[Any]:  # noqa: ANN401
            if state["fail"]:
                raise state["fail"]
            return state.get("listing") or listing()

    def fake_snapshot(repo: str, *, local_dir: Path, **kw: Any) -> str:  # noqa: ANN401
        state["calls"].append((repo, kw.get("repo_type")))
        for k, v in state["served"].items():
            (Path(local_dir) / k).parent.mkdir(parents=True, exist_ok=True)
            (Path(local_dir) / k).write_bytes(v)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(bench.ENV_DIR, raising=False)
    state["root"] = tmp_path / "cache" / "datasets" / "aigve_bench"
    return state


def test_bench_fetch_then_load_with_aspects_by_title(fake_hub: dict[str, Any]) -> None:
    root = bench.fetch_bench()
    assert root == fake_hub["root"] and fake_hub["calls"] == [("xiaoliux/AIGVE-Bench", "dataset")]
    from aigve.data.dataset import load_dataset

    ds = load_dataset("aigve_bench")
    (e,) = ds.entries
    assert e.id == "cogvideox_0" and e.prompt == "a prompt" and e.extra["prompt_id"] == 7
    assert [e.extra[k] for k in bench.SCORE_FIELDS] == [float(1 + i % 5) for i in range(9)]


def test_bench_fetch_names_files_that_do_not_match_the_hub(fake_hub: dict[str, Any]) -> None:
    fake_hub["listing"] = [
        SimpleNamespace(
            path="videos/cogvideox_0.mp4",
            size=len(fake_hub["served"]["videos/cogvideox_0.mp4"]),
            blob_id="0" * 40,
            lfs={"sha256": "f" * 64},
        )
    ]
    with pytest.raises(DatasetError) as e:
        bench.fetch_bench()
    assert "cogvideox_0.mp4" in str(e.value) and "f" * 64 in str(e.value)


def test_bench_fetch_offline_says_what_to_download_and_where(fake_hub: dict[str, Any]) -> None:
    fake_hub["fail"] = OSError("Network is unreachable")
    with pytest.raises(DatasetError) as e:
        bench.fetch_bench()
    msg = str(e.value)
    assert "Network is unreachable" in msg and "huggingface-cli download xiaoliux/AIGVE-Bench" in msg
    assert str(fake_hub["root"]) in msg and bench.ENV_DIR in msg


def test_bench_missing_error_points_at_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv(bench.ENV_DIR, raising=False)
    with pytest.raises(DatasetError, match="aigve datasets fetch aigve_bench"):
        bench.load_bench()


def test_aspect_field_accepts_titles_and_ids() -> None:
    assert bench.aspect_field("Technical Quality") == "technical_quality"
    assert bench.aspect_field("Element Presence") == "element_presentence"
    assert bench.aspect_field("Action/Interaction Quality") == "action_quality"
    assert bench.aspect_field("overall") == "overall"
    assert bench.aspect_field("sharpness") is None


# ------------------------------------------------------------------------------------ correlate by aspect
def test_correlate_uses_bench_aspects_by_name(
    fake_toy: Any,  # noqa: ANN401
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    argv = ["run", "aigve_bench_toy", "--metrics", "flicker", "--out", str(out), "--quiet", "--no-report"]
    assert main(argv) == 0
    capsys.readouterr()
    base = ["correlate", str(out), "--bootstrap", "20", "--json"]
    assert main([*base, "--human", "aigve_bench_toy", "--aspects", "Technical Quality,overall"]) == 0
    rows = json.loads(capsys.readouterr().out)["correlations"]
    assert {r["aspect"] for r in rows} == {"technical_quality", "overall"}
    assert {r["n"] for r in rows} == {2}
    assert main([*base, "--aspects", "Element Presence"]) == 0  # the scores the run's dataset carries
    rows = json.loads(capsys.readouterr().out)["correlations"]
    assert {r["aspect"] for r in rows} == {"element_presentence"}
    assert main([*base, "--aspects", "tecnical_quality"]) == 2
    assert "did you mean `technical_quality`?" in capsys.readouterr().err


def test_datasets_fetch_aigve_bench_command(
    fake_hub: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["datasets", "fetch", "aigve_bench", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row == {"name": "aigve_bench", "ok": True, "path": str(fake_hub["root"])}
    assert main(["datasets", "list", "aigve_bench", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["present"] is True
    fake_hub["fail"] = OSError("Network is unreachable")
    assert main(["datasets", "fetch", "aigve_bench"]) == 3
    assert "huggingface-cli download" in capsys.readouterr().out
