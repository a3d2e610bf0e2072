"""Fixtures of the judge tests: a scripted chat-completions server on 127.0.0.1 (one per test module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.judges.chatserver import ChatServer


@pytest.fixture(scope="module")
def chat_server() -> Iterator[ChatServer]:
    with ChatServer() as srv:
        yield srv


@pytest.fixture
def server(chat_server: ChatServer) -> Iterator[ChatServer]:
    """The module's server, with its script and request log reset for each test."""
    chat_server.reset()
    chat_server.responder = lambda seen: "Yes"
    chat_server.json_mode = True
    chat_server.invalid.clear()
    yield chat_server
