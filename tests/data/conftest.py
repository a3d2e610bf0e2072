"""Fixtures for the dataset tests: placeholder video files and a local HTTP file server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def touch(folder: Path, *names: str, content: bytes | None = None) -> list[Path]:
    """Create files (placeholder bytes unless given) and return their paths. Loaders never decode, so
    placeholders stand in for videos wherever only the file's existence matters."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        p = folder / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if content is not None else f"video:{n}".encode())
        out.append(p)
    return out


class _Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        server_self = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a: object, **kw: object) -> None:
                super().__init__(*a, directory=str(server_self.root), **kw)  # type: ignore[arg-type]

            def do_GET(self) -> None:  # noqa: N802
                server_self.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def file_server() -> Iterator[Callable[[Path], _Server]]:
    """Start ``http.server`` on 127.0.0.1 (free port) serving a folder; stopped after the test."""
    servers: list[_Server] = []

    def start(root: Path) -> _Server:
        s = _Server(root)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()
