"""The endpoint judge against a real chat-completions server on 127.0.0.1 (tests/judges/chatserver.py)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pytest

from aigve.judges.cache import ResponseCache
from aigve.judges.endpoint import EndpointJudge
from aigve.judges.protocol import JudgeCapabilityError, JudgeError
from tests.judges.chatserver import ChatServer, completion

# a made-up key (not a real one): no output may contain it
SENTINEL = "test-key-" + "3f9a7c1e-never-print-me"


def _frames(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8) for _ in range(n)]


def _judge(server: ChatServer, tmp_path: Path | None = None, **kw: object) -> EndpointJudge:
    cache = ResponseCache(tmp_path / "r.sqlite") if tmp_path is not None else None
    opts: dict = {"timeout": 5.0, "max_retries": 3, **kw}
    return EndpointJudge("judge-model", server.base_url, SENTINEL, cache=cache, **opts)


def test_request_carries_images_text_temperature_seed(server: ChatServer) -> None:
    frames = _frames(3)
    reply = _judge(server, seed=7).ask("Is there a cat?", frames, system="be brief", max_tokens=33)
    assert reply.text == "Yes" and reply.prompt_tokens == 100 and not reply.cached
    (seen,) = server.requests
    assert not server.invalid
    assert seen.n_images == 3 and seen.texts == ["Is there a cat?"]
    for sent, frame in zip(seen.images, frames, strict=True):  # lossless PNG, RGB order kept
        np.testing.assert_array_equal(sent, frame)
    body = seen.body
    assert body["temperature"] == 0 and body["seed"] == 7 and body["max_tokens"] == 33
    assert body["model"] == "judge-model" and body["messages"][0] == {"role": "system", "content": "be brief"}
    # the images come first, then the text, in one user turn
    kinds = [p["type"] for p in body["messages"][1]["content"]]
    assert kinds == ["image_url"] * 3 + ["text"]
    assert "response_format" not in body
    assert seen.authorization == f"Bearer {SENTINEL}"


def test_json_mode_and_fallback_when_rejected(server: ChatServer) -> None:
    j = _judge(server)
    j.ask("json please", json_mode=True)
    assert server.requests[-1].body["response_format"] == {"type": "json_object"}
    server.json_mode = False  # a server without JSON mode answers 400: asked again without, and never again
    assert j.ask("json again", json_mode=True).text == "Yes"
    assert "response_format" not in server.requests[-1].body
    before = server.attempts
    j.ask("json a third time", json_mode=True)
    assert server.attempts == before + 1 and "response_format" not in server.requests[-1].body


def test_429_with_retry_after_and_500_are_retried(server: ChatServer) -> None:
    server.push({"status": 429, "headers": {"Retry-After": "0.6"}}, {"status": 500})
    t0 = time.perf_counter()
    reply = _judge(server).ask("retry me")
    took = time.perf_counter() - t0
    assert reply.text == "Yes"
    assert server.attempts == 3 and len(server.requests) == 1
    assert took >= 0.6  # the Retry-After wait was honoured


def test_retries_exhausted_timeout_and_garbage_are_judge_errors(server: ChatServer) -> None:
    server.push({"status": 503}, {"status": 503})
    with pytest.raises(JudgeError) as e:
        _judge(server, max_retries=1).ask("down")
    assert e.value.reason == "http_503" and server.attempts == 2
    server.reset()
    server.push({"sleep": 1.0})
    with pytest.raises(JudgeError) as e:
        _judge(server, max_retries=0, timeout=0.3).ask("slow")
    assert e.value.reason == "timeout"
    server.reset()
    server.push({"raw": "<html>proxy error, not JSON</html>"})
    with pytest.raises(JudgeError) as e:
        _judge(server, max_retries=0).ask("garbage")
    assert e.value.reason == "bad_response" and e.value.raw == "<html>proxy error, not JSON</html>"
    server.reset()
    server.responder = lambda seen: {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [],
    }
    with pytest.raises(JudgeError) as e:
        _judge(server).ask("no choices")
    assert e.value.reason == "bad_response" and '"choices": []' in (e.value.raw or "")


def test_refusal_is_an_error_with_the_refusal_text(server: ChatServer) -> None:
    def refuse(seen: object) -> dict:
        body = completion("")
        body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "I can't help"}
        return body

    server.responder = refuse
    with pytest.raises(JudgeError) as e:
        _judge(server).ask("q")
    assert e.value.reason == "refusal" and e.value.raw == "I can't help"


def test_logprobs_yes_probability_and_capability_error(server: ChatServer) -> None:
    j = _judge(server)
    assert j.yes_probability("q?", _frames(1)) == pytest.approx(0.7)
    body = server.requests[-1].body
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    lp = j.first_token_logprobs("q2?")
    assert lp["Yes"] == pytest.approx(math.log(0.7)) and lp["No"] == pytest.approx(math.log(0.2))
    # "Yes" not among the top tokens: below the least of them, read as 0
    server.responder = lambda seen: completion("No", logprobs={"No": math.log(0.9), "no": math.log(0.1)})
    assert j.yes_probability("q3?") == 0.0
    server.responder = lambda seen: completion("Yes")  # a server that ignores logprobs
    with pytest.raises(JudgeCapabilityError, match="log-probabilities"):
        j.yes_probability("q4?")


def test_cache_makes_zero_requests_and_misses_only_what_changed(server: ChatServer, tmp_path: Path) -> None:
    frames = _frames(2)
    j = _judge(server, tmp_path)
    a = j.ask("first", frames)
    p = j.yes_probability("first?", frames[:1])
    assert len(server.requests) == 2
    j2 = _judge(server, tmp_path)  # a new judge on the same cache file: a rerun
    assert j2.ask("first", frames) == type(a)(a.text, a.prompt_tokens, a.completion_tokens, cached=True)
    assert j2.yes_probability("first?", frames[:1]) == p
    assert len(server.requests) == 2 and j2.usage.snapshot()["requests"] == 0
    j2.ask("second", frames)  # a changed prompt
    j2.ask("first", frames[:1])  # changed images
    other = EndpointJudge(
        "other-model", server.base_url, SENTINEL, cache=ResponseCache(tmp_path / "r.sqlite")
    )
    other.ask("first", frames)  # a changed model
    assert len(server.requests) == 5
    j2.ask("second", frames)
    assert len(server.requests) == 5
    # the key is not in the cache file
    assert SENTINEL.encode() not in (tmp_path / "r.sqlite").read_bytes()


def test_concurrency_is_bounded(server: ChatServer) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    live = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(seen: object) -> str:
        with lock:
            live["now"] += 1
            live["max"] = max(live["max"], live["now"])
        time.sleep(0.05)
        with lock:
            live["now"] -= 1
        return "ok"

    server.responder = slow
    j = _judge(server, concurrency=2)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: j.ask(f"q{i}"), range(8)))
    assert live["max"] == 2 and len(server.requests) == 8


def test_key_never_in_errors_or_logs(server: ChatServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.push({"status": 401, "message": f"Incorrect API key provided: {SENTINEL}"})
    with pytest.raises(JudgeError) as e:
        _judge(server, max_retries=0).ask("who am i")
    assert SENTINEL not in str(e.value) and SENTINEL not in (e.value.raw or "")
    assert "***" in str(e.value)
    j = _judge(server)
    j.ask("fine")
    assert SENTINEL not in repr(j.identity()) and SENTINEL not in caplog.text


def test_openai_without_a_key_is_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    from aigve.errors import AigveError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(AigveError, match="OPENAI_API_KEY"):
        EndpointJudge("gpt-4o")
