"""Downloads against a tiny HTTP server the test starts on 127.0.0.1 (no outside network)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigve import weights as W
from aigve.errors import WeightsError

DATA = bytes(range(256)) * 300  # 76.8 kB: several read chunks are not needed, one is fine
OTHER = b"tampered" * 1000


class _Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        files, hits = self.files, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                hits.append(self.path)
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(W.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(W.ENV_WEIGHTS_DIR, str(tmp_path / "weights-env"))
    monkeypatch.delenv(W.ENV_MIRROR, raising=False)
    monkeypatch.delenv(W.ENV_OFFLINE, raising=False)
    monkeypatch.setattr(W.spec, "_EXTRA", {})
    return tmp_path / "cache" / "weights"


def spec(
    name: str = "dl", *, pinned: bool = True, size: int | None = len(DATA), urls: tuple[str, ...] = ()
) -> W.WeightSpec:
    s = W.WeightSpec(
        name=name,
        filename=f"{name}-weights.pth",
        urls=urls or ("https://weights.invalid/never-used.pth",),
        hash_kind="sha256" if pinned else "none",
        hash_value=hashlib.sha256(DATA).hexdigest() if pinned else None,
        size=size if pinned else None,
        license="test",
        source_page="https://example.org/",
        used_by=("dlmetric",),
    )
    W.register_weights(s, replace=True)
    return s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def no_partials(cache: Path) -> bool:
    return not list(cache.glob("*.part"))


def test_download_success_with_progress(env: Path, server: _Server) -> None:
    spec()
    server.files["/w.pth"] = DATA
    seen: list[tuple[int, int | None]] = []
    r = W.resolve_weights("dl", urls=[f"{server.base}/w.pth"], progress=lambda f, d, t: seen.append((d, t)))
    assert r.source == "download" and r.path == env / "dl-weights.pth"
    assert r.path.read_bytes() == DATA and r.sha256 == hashlib.sha256(DATA).hexdigest()
    assert seen[-1] == (len(DATA), len(DATA)) and no_partials(env)
    # second use comes from the cache, no new request
    n = len(server.hits)
    assert W.resolve_weights("dl", urls=[f"{server.base}/w.pth"]).source == "cache" and len(server.hits) == n


def test_mirror_env_var_is_tried_first(env: Path, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    spec()
    server.files["/mirror/dl-weights.pth"] = DATA
    monkeypatch.setenv(W.ENV_MIRROR, f"{server.base}/mirror/")
    r = W.resolve_weights("dl")  # the registry URL (weights.invalid) is never reached
    assert r.source == "download" and server.hits == ["/mirror/dl-weights.pth"]


def test_hash_mismatch_removes_file_and_names_digests(env: Path, server: _Server) -> None:
    spec(size=None)
    server.files["/w.pth"] = OTHER
    with pytest.raises(WeightsError) as e:
        W.resolve_weights("dl", urls=[f"{server.base}/w.pth"])
    msg = str(e.value)
    assert hashlib.sha256(DATA).hexdigest() in msg and hashlib.sha256(OTHER).hexdigest() in msg
    assert "removed" in msg and str(env / "dl-weights.pth") in msg
    assert not (env / "dl-weights.pth").exists() and no_partials(env)


def test_oversized_download_aborted(env: Path, server: _Server) -> None:
    spec(size=100)
    server.files["/w.pth"] = DATA
    with pytest.raises(WeightsError, match="more than the expected 100 bytes"):
        W.resolve_weights("dl", urls=[f"{server.base}/w.pth"])
    assert no_partials(env)


def test_connection_refused_says_where_to_put_the_file(env: Path) -> None:
    spec()
    url = f"http://127.0.0.1:{free_port()}/w.pth"
    with pytest.raises(WeightsError) as e:
        W.resolve_weights("dl", urls=[url], timeout=5)
    msg = str(e.value)
    assert msg.startswith(f"could not download dl-weights.pth for dlmetric (dl) from {url}: ")
    assert str(env / "dl-weights.pth") in msg and W.ENV_WEIGHTS_DIR in msg
    assert "--metric-option dlmetric.weights=PATH" in msg and "aigve weights verify dl" in msg
    assert no_partials(env)


def test_falls_back_to_next_url(env: Path, server: _Server) -> None:
    spec()
    server.files["/good.pth"] = DATA
    r = W.resolve_weights("dl", urls=[f"{server.base}/missing.pth", f"{server.base}/good.pth"])
    assert r.source == "download" and server.hits == ["/missing.pth", "/good.pth"]


def test_offline_env_never_connects(env: Path, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    spec()
    server.files["/w.pth"] = DATA
    monkeypatch.setenv(W.ENV_OFFLINE, "1")
    with pytest.raises(WeightsError, match=W.ENV_OFFLINE):
        W.resolve_weights("dl", urls=[f"{server.base}/w.pth"])
    assert server.hits == []


def test_unpinned_download_recorded_in_lock_then_changed_upstream(env: Path, server: _Server) -> None:
    spec(pinned=False)
    server.files["/w.pth"] = DATA
    url = [f"{server.base}/w.pth"]
    r = W.resolve_weights("dl", urls=url)
    assert any(W.TOFU_WARNING in w for w in r.warnings)
    assert json.loads(W.lock_path().read_text())["dl"]["sha256"] == hashlib.sha256(DATA).hexdigest()
    # upstream file changes: a forced re-download is refused against the lock
    server.files["/w.pth"] = OTHER
    with pytest.raises(WeightsError, match="update_lock"):
        W.resolve_weights("dl", urls=url, force_download=True)
    assert (env / "dl-weights.pth").read_bytes() == DATA  # the good copy was kept
    r = W.resolve_weights("dl", urls=url, force_download=True, update_lock=True)
    assert r.sha256 == hashlib.sha256(OTHER).hexdigest()


def test_fetch_reports_per_name(env: Path, server: _Server) -> None:
    spec()
    server.files["/w.pth"] = DATA
    res = W.fetch(["dl"], urls=[f"{server.base}/w.pth"]) + W.fetch(["simplevqa_ugc"])
    assert res[0].ok and res[0].source == "download" and res[0].path == env / "dl-weights.pth"
    assert not res[1].ok and "137XJdq3reNMJ9tkBNqKUYTY_dTlcwXc3" in (res[1].error or "")
    again = W.fetch(["dl"], urls=[f"{server.base}/w.pth"])
    assert again[0].ok and again[0].source == "cache"
    forced = W.fetch(["dl"], urls=[f"{server.base}/w.pth"], force=True)
    assert forced[0].source == "download"


def test_fetch_all_skips_manual_entries(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(W.ENV_OFFLINE, "1")  # nothing may be downloaded here
    res = {r.name: r for r in W.fetch()}
    assert res["simplevqa_ugc"].skipped and res["lightvqa_plus"].skipped and not res["simplevqa_ugc"].ok
    assert not res["fid_inception"].skipped and not res["fid_inception"].ok
    assert W.ENV_OFFLINE in (res["fid_inception"].error or "")


def test_download_hashes_while_streaming(env: Path, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pinned sha256 download is verified from the streamed digest: the file is not read back."""
    spec()
    server.files["/w.pth"] = DATA

    def boom(path: Path, keys: object) -> dict[str, str]:
        raise AssertionError(f"re-read {path}")

    monkeypatch.setattr(W.hashing, "_compute_digests", boom)
    r = W.resolve_weights("dl", urls=[f"{server.base}/w.pth"])
    assert r.sha256 == hashlib.sha256(DATA).hexdigest()
    assert W.resolve_weights("dl").source == "cache"  # digest cache filled from the download
