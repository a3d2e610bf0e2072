"""A real chat-completions server on 127.0.0.1 for the judge tests and the benchmark (stdlib http.server).

It validates every request the way a strict OpenAI-compatible server would (JSON body, a model, messages
whose user content is text and ``image_url`` parts holding base64 PNG data URLs, temperature 0) and answers
from a script: a ``responder(request) -> reply text`` function, plus a queue of one-off actions
(``{"status": 429, "headers": {"Retry-After": "1"}}``, ``{"status": 500}``, ``{"sleep": 2.0}``,
``{"raw": "<garbage body>"}``) taken before the responder, in order. Every request is recorded
(:attr:`ChatServer.requests`: the parsed body, the number of images, the texts, the decoded images, the
Authorization header) so tests can check what was sent.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


@dataclass
class Seen:
    """One request as the server received it."""

    body: dict[str, Any]
    texts: list[str]
    images: list[np.ndarray]
    authorization: str | None
    raw: str
    errors: list[str] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.images)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def _decode_png(url: str) -> np.ndarray:
    from PIL import Image

    head, _, data = url.partition(",")
    if head != "data:image/png;base64":
        raise ValueError(f"image_url is not a base64 PNG data URL: {head[:40]}")
    im = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    if im.format != "PNG" or im.mode != "RGB":
        raise ValueError(f"image is {im.format} {im.mode}, expected an RGB PNG")
    return np.asarray(im)


def validate(body: Any) -> tuple[list[str], list[np.ndarray], list[str]]:
    """(texts, images, problems) of a chat-completions request body."""
    problems: list[str] = []
    texts: list[str] = []
    images: list[np.ndarray] = []
    if not isinstance(body, dict):
        return texts, images, ["body is not a JSON object"]
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("no model")
    if body.get("temperature") != 0:
        problems.append(f"temperature is {body.get('temperature')!r}, expected 0")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return texts, images, [*problems, "no messages"]
    for m in msgs:
        if m.get("role") not in ("system", "user", "assistant"):
            problems.append(f"bad role {m.get('role')!r}")
        content = m.get("content")
        if isinstance(content, str):
            if m.get("role") == "user":
                texts.append(content)
            continue
        if not isinstance(content, list):
            problems.append("content is neither text nor a list of parts")
            continue
        for part in content:
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                try:
                    images.append(_decode_png(part["image_url"]["url"]))
                except Exception as exc:
                    problems.append(f"bad image part: {exc}")
            else:
                problems.append(f"bad content part {str(part)[:80]}")
    for k in ("top_logprobs",):
        if k in body and not body.get("logprobs"):
            problems.append("top_logprobs without logprobs")
    return texts, images, problems


def completion(text: str, *, model: str = "m", logprobs: dict[str, float] | None = None) -> dict[str, Any]:
    """A chat completion body with ``text`` (and first-token log-probabilities when given)."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
    }
    if logprobs is not None:
        top = sorted(logprobs.items(), key=lambda kv: -kv[1])
        choice["logprobs"] = {
            "content": [
                {
                    "token": top[0][0],
                    "logprob": top[0][1],
                    "bytes": None,
                    "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top],
                }
            ]
        }
    n_words = max(1, len(text.split()))
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": 100, "completion_tokens": n_words, "total_tokens": 100 + n_words},
    }


Responder = Callable[[Seen], "str | dict[str, Any]"]


class ChatServer:
    """The server; use as a context manager (``with ChatServer(responder) as srv: srv.base_url``)."""

    def __init__(self, responder: Responder | None = None, *, json_mode: bool = True) -> None:
        self.responder = responder or (lambda seen: "Yes")
        self.json_mode = json_mode  # False: reject response_format with HTTP 400, as some servers do
        self.requests: list[Seen] = []
        self.attempts = 0  # every POST, failed ones included
        self.actions: list[dict[str, Any]] = []
        self.invalid: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control -----------------------------------------------------------------------------
    def push(self, *actions: dict[str, Any]) -> None:
        with self._lock:
            self.actions.extend(actions)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.attempts = 0
            self.actions.clear()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ChatServer:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: str, headers: dict[str, str] | None = None) -> None:
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode()
                with srv._lock:
                    srv.attempts += 1
                    action = srv.actions.pop(0) if srv.actions else None
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))
                    return
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._send(400, json.dumps({"error": {"message": "body is not JSON"}}))
                    return
                texts, images, problems = validate(body)
                seen = Seen(body, texts, images, self.headers.get("Authorization"), raw, problems)
                if problems:
                    srv.invalid.extend(problems)
                    self._send(400, json.dumps({"error": {"message": "; ".join(problems)}}))
                    return
                if "response_format" in body and not srv.json_mode:
                    self._send(400, json.dumps({"error": {"message": "response_format is not supported"}}))
                    return
                if action is not None:
                    if "sleep" in action:  # the client is expected to give up: not recorded
                        time.sleep(float(action["sleep"]))
                        self._send(200, json.dumps(completion("late", model=body["model"])))
                        return
                    if "status" in action:
                        self._send(
                            int(action["status"]),
                            json.dumps({"error": {"message": action.get("message", "scripted error")}}),
                            action.get("headers"),
                        )
                        return
                    if "raw" in action:
                        self._send(200, str(action["raw"]))
                        return
                with srv._lock:
                    srv.requests.append(seen)
                reply = srv.responder(seen)
                if isinstance(reply, str):
                    lp = None
                    if body.get("logprobs"):
                        lp = {"Yes": math.log(0.7), "No": math.log(0.2), "yes": math.log(0.05)}
                    reply = completion(reply, model=body["model"], logprobs=lp)
                self._send(200, json.dumps(reply))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
