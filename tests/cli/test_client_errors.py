"""``aigve client`` with nothing listening, and ``aigve serve`` without the server extra: one message
naming the URL (or the install line) and the fix, the documented exit code, no traceback."""

from __future__ import annotations

import socket
import sys

import pytest

from aigve.cli import main

pytest.importorskip("httpx")


def _closed_port() -> int:
    with socket.socket() as s:  # bound and released: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_client_with_no_server_names_the_url_and_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code = main(["client", "--input-dir", "x", "--base-url", url, "--no-progress"])
    out, err = capsys.readouterr()
    text = " ".join((out + err).split())
    assert code == 2
    assert f"no aigve server answers at {url}" in text and "Connection refused" in text
    assert "aigve serve" in text and "--base-url" in text
    assert "Traceback" not in text and "httpx" not in text


def test_client_api_raises_one_error_with_the_url() -> None:
    from aigve.client import Client, ServerUnreachableError
    from aigve.errors import AigveError

    url = f"http://127.0.0.1:{_closed_port()}"
    with Client(url) as c, pytest.raises(ServerUnreachableError) as ei:
        c.health()
    assert isinstance(ei.value, AigveError) and ei.value.base_url == url
    assert url in str(ei.value) and "aigve serve" in str(ei.value)


def test_client_help_documents_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "exit codes:" in text and "2 usage error, or no server answers at --base-url" in text
    assert "3 the job failed" in text


def test_serve_without_the_server_extra_is_a_usage_error_with_the_install_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` raises ImportError
    code = main(["serve", "--port", str(_closed_port())])
    text = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert "pip install 'aigve[server]'" in text and "Traceback" not in text
