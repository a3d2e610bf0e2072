"""A judge on any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, Ollama, LM Studio, TGI),
through the official ``openai`` package.

- Where: ``base_url`` (else ``$OPENAI_BASE_URL``, else OpenAI's), the key from ``api_key`` (else
  ``$OPENAI_API_KEY``; local servers that take none get a placeholder), the model by name.
- What is sent: one user turn, the images first as base64 PNG data-URL ``image_url`` parts (RGB as given),
  then the text; temperature 0 and a fixed seed; ``response_format={"type": "json_object"}`` when a method
  asks for JSON, dropped for good (with a log line) if the server rejects it.
- How: at most ``concurrency`` requests in flight (one semaphore for the judge, shared by its threads); the
  openai client's own retry loop, which retries connection errors, timeouts, 408/409/429 and 5xx with
  exponential backoff and jitter and waits as long as ``Retry-After``/``retry-after-ms`` says (up to two
  minutes); ``timeout`` seconds per attempt. What still fails becomes a :class:`JudgeError` with a reason
  (``timeout``, ``rate_limited``, ``http_<status>``, ``connection``, ``refusal``, ``bad_response``) and the
  raw reply when there was one.
- Log-probabilities: ``logprobs=True, top_logprobs=20, max_tokens=1`` for VQAScore; a server that returns
  none raises :class:`JudgeCapabilityError`.

The key is given to the client and kept nowhere else; every message this module raises or logs is scrubbed
of it.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from aigve.errors import AigveError, MissingDependencyError
from aigve.judges.base import CachedJudge
from aigve.judges.cache import ResponseCache
from aigve.judges.protocol import JudgeCapabilityError, JudgeError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BASE_URL", "EndpointJudge", "png_data_url"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
TOP_LOGPROBS = 20
RAW_LIMIT = 4000  # characters of a raw reply kept in an error


def png_data_url(image: np.ndarray) -> str:
    """uint8 ``[H, W, 3]`` RGB -> ``data:image/png;base64,...`` (lossless, channel order kept)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def endpoint_host(base_url: str) -> str:
    """``host[:port]`` of a base URL (what identifies the endpoint in the provenance)."""
    parts = urlsplit(base_url)
    return parts.netloc.rsplit("@", 1)[-1] or base_url


class EndpointJudge(CachedJudge):
    """A judge on an OpenAI-compatible endpoint (see the module docstring)."""

    kind = "endpoint"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 5,
        seed: int = 0,
        cache: ResponseCache | None = None,
    ) -> None:
        super().__init__(cache, seed)
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingDependencyError("the endpoint judge", "judges", "openai") from exc
        self.model = str(model)
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        if key == "not-needed" and endpoint_host(self.base_url) == "api.openai.com":
            raise AigveError(
                "the judge endpoint is OpenAI's and no key is set: export OPENAI_API_KEY (or name the variable with "
                "--judge-api-key-env VAR), or point --judge-base-url / OPENAI_BASE_URL at your own server"
            )
        self._secrets = tuple(s for s in (key,) if s and s != "not-needed")
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=key, timeout=float(timeout), max_retries=int(max_retries)
        )
        self._openai = openai
        self._sem = threading.BoundedSemaphore(max(1, int(concurrency)))
        self.concurrency = max(1, int(concurrency))
        self._json_ok = True

    def identity(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model, "host": endpoint_host(self.base_url)}

    # -- helpers -------------------------------------------------------------------------------
    def _scrub(self, text: str | None) -> str | None:
        if text is None:
            return None
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def _messages(self, text: str, images: Sequence[np.ndarray], system: str | None) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": png_data_url(im)}} for im in images
        ]
        content.append({"type": "text", "text": text})
        msgs: list[dict[str, Any]] = []
        if system:
            msgs.append({"role": "system", "content": system})
        msgs.append({"role": "user", "content": content})
        return msgs

    def _create(self, **kwargs: Any) -> Any:
        """One chat-completions call (the client retries), errors mapped to ``JudgeError``; returns the
        parsed completion, and the raw body text when the body could not be parsed."""
        oa = self._openai
        try:
            with self._sem:
                raw = self._client.chat.completions.with_raw_response.create(model=self.model, **kwargs)
            body = raw.http_response.text
            try:
                return raw.parse(), body
            except Exception as exc:
                raise JudgeError(
                    f"the endpoint's reply is not a chat completion: {type(exc).__name__}",
                    raw=self._scrub(body[:RAW_LIMIT]),
                    reason="bad_response",
                ) from None
        except JudgeError:
            raise
        except oa.APITimeoutError:
            raise JudgeError(
                f"the judge endpoint {endpoint_host(self.base_url)} timed out (after the client's retries)",
                reason="timeout",
            ) from None
        except oa.APIStatusError as exc:
            status = exc.status_code
            reason = "rate_limited" if status == 429 else f"http_{status}"
            body = None
            try:
                body = exc.response.text
            except Exception:  # pragma: no cover - a streamed body
                body = None
            raise JudgeError(
                self._scrub(f"the judge endpoint answered HTTP {status}: {exc.message}") or "",
                raw=self._scrub(body[:RAW_LIMIT]) if body else None,
                reason=reason,
            ) from None
        except oa.APIConnectionError as exc:
            raise JudgeError(
                self._scrub(f"cannot reach the judge endpoint {endpoint_host(self.base_url)}: {exc}") or "",
                reason="connection",
            ) from None
        except oa.APIError as exc:
            raise JudgeError(
                self._scrub(f"judge endpoint error: {exc}") or "", reason="bad_response"
            ) from None

    def _is_json_rejection(self, exc: JudgeError) -> bool:
        blob = f"{exc} {exc.raw or ''}".lower()
        return exc.reason == "http_400" and ("response_format" in blob or "json" in blob)

    # -- backend -------------------------------------------------------------------------------
    def _generate(
        self,
        text: str,
        images: Sequence[np.ndarray],
        system: str | None,
        json_mode: bool,
        max_tokens: int | None,
    ) -> tuple[str, int, int]:
        kwargs: dict[str, Any] = {
            "messages": self._messages(text, images, system),
            "temperature": 0,
            "seed": self.seed,
        }
        if max_tokens is not None:
            kwargs["max_tokens"] = int(max_tokens)
        if json_mode and self._json_ok:
            try:
                completion, body = self._create(**kwargs, response_format={"type": "json_object"})
            except JudgeError as exc:
                if not self._is_json_rejection(exc):
                    raise
                log.warning(
                    "judge endpoint %s rejected JSON output mode; asking without it from now on",
                    endpoint_host(self.base_url),
                )
                self._json_ok = False
                completion, body = self._create(**kwargs)
        else:
            completion, body = self._create(**kwargs)
        choice, pt, ct = self._first_choice(completion, body)
        msg = choice.message
        refusal = getattr(msg, "refusal", None)
        if refusal:
            raise JudgeError(f"the judge refused: {refusal[:200]}", raw=str(refusal), reason="refusal")
        if getattr(choice, "finish_reason", None) == "content_filter":
            raise JudgeError(
                "the judge's reply was withheld by a content filter", raw=msg.content, reason="refusal"
            )
        if msg.content is None:
            raise JudgeError(
                "the judge's reply has no text", raw=self._scrub(body[:RAW_LIMIT]), reason="bad_response"
            )
        return str(msg.content), pt, ct

    def _first_choice(self, completion: Any, body: str) -> tuple[Any, int, int]:
        choices = getattr(completion, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise JudgeError(
                "the judge's reply has no choices", raw=self._scrub(body[:RAW_LIMIT]), reason="bad_response"
            )
        usage = getattr(completion, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0) if usage is not None else 0
        ct = int(getattr(usage, "completion_tokens", 0) or 0) if usage is not None else 0
        return choices[0], pt, ct

    def _first_token_many(
        self, items: Sequence[tuple[str, Sequence[np.ndarray]]]
    ) -> list[tuple[float | None, dict[str, float], int, int]]:
        """Several first-token requests at once (a video's frames), at most ``concurrency`` in flight."""
        if len(items) < 2 or self.concurrency < 2:
            return super()._first_token_many(items)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(lambda it: self._first_token(*it), items))

    def _first_token(
        self, text: str, images: Sequence[np.ndarray]
    ) -> tuple[float | None, dict[str, float], int, int]:
        completion, body = self._create(
            messages=self._messages(text, images, None),
            temperature=0,
            seed=self.seed,
            max_tokens=1,
            logprobs=True,
            top_logprobs=TOP_LOGPROBS,
        )
        choice, pt, ct = self._first_choice(completion, body)
        lp = getattr(choice, "logprobs", None)
        content = getattr(lp, "content", None) if lp is not None else None
        if not content:
            raise JudgeCapabilityError(
                f"the judge endpoint {endpoint_host(self.base_url)} (model {self.model}) returned no token "
                "log-probabilities; VQAScore needs a server that supports logprobs/top_logprobs "
                "(OpenAI, vLLM, SGLang do) or --judge local"
            )
        first = content[0]
        top: dict[str, float] = {}
        for alt in getattr(first, "top_logprobs", None) or []:
            top.setdefault(str(alt.token), float(alt.logprob))
        top.setdefault(str(first.token), float(first.logprob))
        return None, top, pt, ct
