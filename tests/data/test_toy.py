"""The ``toy`` dataset: local copy, download from a local HTTP server, hash and network failures."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from aigve.data import load_builtin
from aigve.data.toy import (
    DEFAULT_BASE_URL,
    TOY_FILES,
    ensure_toy,
    file_url,
    load_toy,
    verify_toy_dir,
)
from aigve.errors import DatasetError

from .conftest import touch

# a fake toy copy: names with spaces and commas like the real ones
FAKE = {
    "annotations/evaluate.json": b'{"metainfo": {"length": 1}, "data_list": [{"prompt_gt": "a beach, calm", '
    b'"video_path_pd": "A beach, calm-0.mp4", "video_path_gt": "A beach, calm-0.mp4"}]}',
    "evaluate/A beach, calm-0.mp4": b"not really a video",
}
FAKE_FILES = {k: hashlib.sha256(v).hexdigest() for k, v in FAKE.items()}


def _fake_tree(root: Path, content: dict[str, bytes] = FAKE) -> Path:
    for rel, data in content.items():
        touch(root, rel, content=data)
    return root


@pytest.fixture
def no_local_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIGVE_TOY_DIR", raising=False)


def test_embedded_table_matches_shipped_sums(toy_dir: Path) -> None:
    """Port-drift check: the table embedded in the package equals the SHA256SUMS shipped with the copy."""
    sums = {}
    for line in (toy_dir / "SHA256SUMS").read_text().splitlines():
        h, name = line.split("  ", 1)
        sums[name if name.startswith("annotations/") else f"evaluate/{name}"] = h
    assert sums == TOY_FILES


def test_local_copy(toy_dir: Path) -> None:
    ds = load_toy()
    assert ds.name == "toy" and len(ds) == 11
    assert ds.root == toy_dir / "evaluate"
    assert ds.missing_files() == []
    assert ds.source == f"builtin:toy:{toy_dir}"
    assert load_builtin("toy").ids == ds.ids


def test_local_copy_mismatch_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_tree(tmp_path / "copy")
    assert verify_toy_dir(root, FAKE_FILES) == root
    (root / "evaluate" / "A beach, calm-0.mp4").write_bytes(b"tampered")
    with pytest.raises(DatasetError) as exc:
        verify_toy_dir(root, FAKE_FILES)
    msg = str(exc.value)
    assert "A beach, calm-0.mp4: sha256 mismatch" in msg and FAKE_FILES["evaluate/A beach, calm-0.mp4"] in msg
    # with the real table, a copy missing its files names them and says what to do
    monkeypatch.setenv("AIGVE_TOY_DIR", str(root))
    with pytest.raises(DatasetError) as exc:
        ensure_toy()
    msg = str(exc.value)
    assert "annotations/evaluate.json: sha256 mismatch" in msg
    assert "Claude Monet style-0.mp4: missing" in msg and "AIGVE_TOY_DIR" in msg


def test_file_url_quotes_names() -> None:
    url = file_url(DEFAULT_BASE_URL, "evaluate/A beach, calm-0.mp4")
    assert url == (
        "https://raw.githubusercontent.com/ShaneXiangH/AIGVE_Tool/8916406b8783030c1e7145279eebdc4cf29264c4/"
        "aigve/data/toy/evaluate/A%20beach%2C%20calm-0.mp4"
    )


def test_download_from_served_copy(no_local_copy: None, tmp_path: Path, file_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    srv = file_server(_fake_tree(tmp_path / "upstream"))
    monkeypatch.setenv("AIGVE_TOY_BASE_URL", srv.url)
    cache = tmp_path / "cache"
    root = ensure_toy(cache, files=FAKE_FILES)
    assert root == cache / "datasets" / "toy"
    for rel, data in FAKE.items():
        assert (root / rel).read_bytes() == data
    assert sorted(srv.requests) == ["/annotations/evaluate.json", "/evaluate/A%20beach%2C%20calm-0.mp4"]
    assert not list(root.rglob("*.part"))
    # second call: verified from the cache, no request
    ensure_toy(cache, files=FAKE_FILES)
    assert len(srv.requests) == 2
    # a corrupted cached file is fetched again, only that one
    (root / "annotations" / "evaluate.json").write_bytes(b"{}")
    ensure_toy(cache, files=FAKE_FILES)
    assert srv.requests[2:] == ["/annotations/evaluate.json"]


def test_download_hash_mismatch(no_local_copy: None, tmp_path: Path, file_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bad = dict(FAKE)
    bad["evaluate/A beach, calm-0.mp4"] = b"something else"
    srv = file_server(_fake_tree(tmp_path / "upstream", bad))
    monkeypatch.setenv("AIGVE_TOY_BASE_URL", srv.url + "/")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError) as exc:
        ensure_toy(cache, files=FAKE_FILES)
    msg = str(exc.value)
    assert (
        "could not fetch 1 of 2" in msg and "evaluate/A beach, calm-0.mp4" in msg and "sha256 mismatch" in msg
    )
    assert "AIGVE_TOY_DIR" in msg
    toy = cache / "datasets" / "toy"
    assert not (toy / "evaluate" / "A beach, calm-0.mp4").exists()  # nothing unverified kept
    assert list(toy.rglob("*.part")) == []
    assert (toy / "annotations" / "evaluate.json").is_file()  # the good file stays


def test_download_not_found(no_local_copy: None, tmp_path: Path, file_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    srv = file_server(
        _fake_tree(tmp_path / "upstream", {"annotations/evaluate.json": FAKE["annotations/evaluate.json"]})
    )
    monkeypatch.setenv("AIGVE_TOY_BASE_URL", srv.url)
    with pytest.raises(DatasetError, match="HTTP 404"):
        ensure_toy(tmp_path / "cache", files=FAKE_FILES)


def test_connection_refused(no_local_copy: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    monkeypatch.setenv("AIGVE_TOY_BASE_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(DatasetError) as exc:
        ensure_toy(tmp_path / "cache", files=FAKE_FILES, timeout=5)
    msg = str(exc.value)
    assert "could not fetch 2 of 2" in msg
    assert "annotations/evaluate.json" in msg and "A beach, calm-0.mp4" in msg
    assert "refused" in msg.lower() and "set AIGVE_TOY_DIR" in msg


def test_full_download_of_real_copy(toy_dir: Path, tmp_path: Path, file_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The upstream layout (annotations/ + evaluate/ under the base URL) with the real files and hashes."""
    srv = file_server(toy_dir)
    monkeypatch.delenv("AIGVE_TOY_DIR")
    monkeypatch.setenv("AIGVE_TOY_BASE_URL", srv.url)
    ds = load_toy(tmp_path / "cache")
    assert len(ds) == 11 and ds.missing_files() == []
    assert len(srv.requests) == len(TOY_FILES)
