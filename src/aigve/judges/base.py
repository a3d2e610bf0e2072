"""What every judge backend shares: the run-level configuration, the response cache in front of every call,
token and request accounting, and the way a backend is built from the configuration.

A backend subclasses :class:`CachedJudge` and implements ``_generate`` (one chat turn -> text and token
counts) and ``_first_token`` (the log-probabilities of the first answer token); the base class answers
repeated calls from the :class:`~aigve.judges.cache.ResponseCache` and counts what was asked and spent.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from aigve.errors import UsageError
from aigve.judges.cache import ResponseCache, default_cache_path, image_digest, request_key
from aigve.judges.protocol import JudgeCapabilityError, JudgeError, JudgeReply

log = logging.getLogger(__name__)

__all__ = [
    "ENV_JUDGE",
    "ENV_JUDGE_MODEL",
    "CachedJudge",
    "JudgeConfig",
    "Usage",
    "build_judge",
    "check_image",
    "no_judge_message",
]

ENV_JUDGE = "AIGVE_JUDGE"  # "endpoint" or "local"
ENV_JUDGE_MODEL = "AIGVE_JUDGE_MODEL"
BACKENDS = ("endpoint", "local")


def no_judge_message(metric: str) -> str:
    """Why ``metric`` cannot run without a judge, and every way to configure one (``metric`` may be plural)."""
    verb = "need" if metric.endswith("metrics") else "needs"
    return (
        f"{metric} {verb} a judge (a vision-language model) and none is configured: pass --judge endpoint "
        f"--judge-model MODEL (server from --judge-base-url or OPENAI_BASE_URL, key from OPENAI_API_KEY), or "
        f"--judge local --judge-model qwen2_vl_2b_instruct|DIR; or set {ENV_JUDGE_MODEL} (and {ENV_JUDGE}=local "
        f"for an in-process model). Python: evaluate(..., judge={{'backend': 'endpoint', 'model': ...}})"
    )


@dataclass
class JudgeConfig:
    """The run's judge: which backend and model, where, and how hard to push it.

    ``api_key`` is used to talk to the endpoint and nowhere else: it is not in :meth:`public`, in the
    identity, in the cache or in any result (``repr`` hides it too). ``price`` is (USD per million prompt
    tokens, USD per million completion tokens) for the cost in the provenance. ``cache``: the response cache
    file, ``"off"`` for none, None for the default (``<cache dir>/judges/responses.sqlite``).
    """

    backend: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 4
    timeout: float = 120.0
    max_retries: int = 5
    seed: int = 0
    frames: int | None = None
    cache: str | None = None
    price: tuple[float, float] | None = None

    @classmethod
    def from_any(cls, value: JudgeConfig | dict[str, Any] | str | None) -> JudgeConfig | None:
        """A config from a ``JudgeConfig``, a mapping of its fields, or a backend name; None stays None."""
        if value is None or isinstance(value, JudgeConfig):
            return value
        if isinstance(value, str):
            return cls(backend=value)
        if not isinstance(value, dict):
            raise UsageError(f"judge must be a mapping of judge settings, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise UsageError(
                f"unknown judge setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        cfg = cls(**value)
        if cfg.price is not None:
            cfg.price = parse_price(cfg.price)
        return cfg

    def resolved(self) -> JudgeConfig:
        """Fill backend and model from the environment (``AIGVE_JUDGE``, ``AIGVE_JUDGE_MODEL``) and check them."""
        backend = self.backend or os.environ.get(ENV_JUDGE) or None
        model = self.model or os.environ.get(ENV_JUDGE_MODEL) or None
        if backend is None and (model or self.base_url or os.environ.get("OPENAI_BASE_URL")):
            backend = "endpoint"
        if backend is not None and backend not in BACKENDS:
            raise UsageError(f"unknown judge backend '{backend}'; use one of {', '.join(BACKENDS)}")
        for name, value, least in (
            ("concurrency", self.concurrency, 1),
            ("max_retries", self.max_retries, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise UsageError(f"judge {name} must be an integer >= {least} (got {value!r})")
        if not float(self.timeout) > 0:
            raise UsageError(f"judge timeout must be > 0 seconds (got {self.timeout!r})")
        out = JudgeConfig(**{f.name: getattr(self, f.name) for f in fields(self)})
        out.backend, out.model = backend, model
        return out

    def public(self) -> dict[str, Any]:
        """Everything but the key (for the run fingerprint and the provenance)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}


def parse_price(value: Any) -> tuple[float, float]:
    """``"2.5,10"`` / ``[2.5, 10]`` / ``{"prompt": 2.5, "completion": 10}`` -> (prompt, completion) USD per 1M."""
    try:
        if isinstance(value, str):
            parts = [float(p) for p in value.split(",")]
        elif isinstance(value, dict):
            parts = [float(value["prompt"]), float(value["completion"])]
        else:
            parts = [float(p) for p in value]
        if len(parts) != 2 or min(parts) < 0:
            raise ValueError
    except (TypeError, ValueError, KeyError):
        raise UsageError(
            f"judge price must be 'PROMPT,COMPLETION' in USD per million tokens (e.g. 2.5,10), got {value!r}"
        ) from None
    return parts[0], parts[1]


class Usage:
    """Thread-safe counters of one judge's calls: requests made, answered from the cache, failed, tokens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.cached = 0
        self.failed = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def add(
        self, *, request: bool = False, cached: bool = False, failed: bool = False, pt: int = 0, ct: int = 0
    ) -> None:
        with self._lock:
            self.requests += int(request)
            self.cached += int(cached)
            self.failed += int(failed)
            self.prompt_tokens += int(pt)
            self.completion_tokens += int(ct)

    def add_counts(self, counts: dict[str, Any]) -> None:
        """Add the counters of another ``snapshot`` (missing fields count 0)."""
        with self._lock:
            self.requests += int(counts.get("requests", 0))
            self.cached += int(counts.get("cached", 0))
            self.failed += int(counts.get("failed", 0))
            self.prompt_tokens += int(counts.get("prompt_tokens", 0))
            self.completion_tokens += int(counts.get("completion_tokens", 0))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": self.requests,
                "cached": self.cached,
                "failed": self.failed,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            }


def check_image(image: np.ndarray) -> np.ndarray:
    """A judge image: uint8 ``[H, W, 3]`` RGB (raises ``JudgeError`` otherwise)."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 1:
        raise JudgeError(
            f"judge images must be uint8 [H, W, 3] RGB, got {a.dtype} {a.shape}", reason="bad_input"
        )
    return np.ascontiguousarray(a)


class CachedJudge:
    """The cache and accounting in front of a backend (see the module docstring)."""

    kind: str = "judge"

    def __init__(self, cache: ResponseCache | None = None, seed: int = 0) -> None:
        self.cache = cache
        self.seed = int(seed)
        self.usage = Usage()
        self._tls = threading.local()
        self.price: tuple[float, float] | None = None  # USD per million prompt / completion tokens

    # -- accounting --------------------------------------------------------------------------
    @contextmanager
    def track(self, *trackers: Usage) -> Iterator[None]:
        """Also count this thread's calls into ``trackers`` (a metric's total, one video's share)."""
        old = getattr(self._tls, "trackers", ())
        self._tls.trackers = (*old, *trackers)
        try:
            yield
        finally:
            self._tls.trackers = old

    def _count(self, **kw: Any) -> None:
        self.usage.add(**kw)
        for t in getattr(self._tls, "trackers", ()):
            t.add(**kw)

    # -- to implement ------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _generate(
        self,
        text: str,
        images: Sequence[np.ndarray],
        system: str | None,
        json_mode: bool,
        max_tokens: int | None,
    ) -> tuple[str, int, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _first_token(
        self, text: str, images: Sequence[np.ndarray]
    ) -> tuple[float | None, dict[str, float], int, int]:
        """(P("Yes") if the backend knows it exactly else None, top first-token logprobs, tokens in, out)."""
        raise JudgeCapabilityError(f"the {self.kind} judge gives no token log-probabilities")

    # -- the protocol ------------------------------------------------------------------------
    def _key(self, op: str, text: str, images: Sequence[np.ndarray], params: dict[str, Any]) -> str:
        content = [{"image": image_digest(im)} for im in images] + [{"text": text}]
        return request_key(self.identity(), content, {"op": op, "seed": self.seed, **params})

    def ask(
        self,
        text: str,
        images: Sequence[np.ndarray] = (),
        *,
        system: str | None = None,
        json_mode: bool = False,
        max_tokens: int | None = None,
    ) -> JudgeReply:
        imgs = [check_image(im) for im in images]
        params = {"system": system, "json_mode": bool(json_mode), "max_tokens": max_tokens, "temperature": 0}
        key = self._key("chat", text, imgs, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self._count(cached=True)
                return JudgeReply(hit["text"], hit["prompt_tokens"], hit["completion_tokens"], cached=True)
        try:
            out, pt, ct = self._generate(text, imgs, system, bool(json_mode), max_tokens)
        except JudgeError:
            self._count(request=True, failed=True)
            raise
        self._count(request=True, pt=pt, ct=ct)
        if self.cache is not None:
            self.cache.put(key, "chat", out, pt, ct)
        return JudgeReply(out, pt, ct)

    def _first_token_many(
        self, items: Sequence[tuple[str, Sequence[np.ndarray]]]
    ) -> list[tuple[float | None, dict[str, float], int, int]]:
        """``_first_token`` of several questions (local backends batch them)."""
        return [self._first_token(t, ims) for t, ims in items]

    def _logprobs_many(
        self, items: Sequence[tuple[str, Sequence[np.ndarray]]]
    ) -> list[tuple[float | None, dict[str, float]]]:
        out: list[tuple[float | None, dict[str, float]] | None] = [None] * len(items)
        keys: list[str] = []
        todo: list[int] = []
        checked = [(t, [check_image(im) for im in ims]) for t, ims in items]
        for i, (text, imgs) in enumerate(checked):
            key = self._key("first_token", text, imgs, {"temperature": 0})
            keys.append(key)
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None and hit["extra"] is not None:
                self._count(cached=True)
                out[i] = (hit["extra"].get("p_yes"), dict(hit["extra"].get("top", {})))
            else:
                todo.append(i)
        if todo:
            try:
                got = self._first_token_many([checked[i] for i in todo])
            except JudgeCapabilityError:
                raise
            except JudgeError:
                self._count(request=True, failed=True)
                raise
            for i, (p_yes, top, pt, ct) in zip(todo, got, strict=True):
                self._count(request=True, pt=pt, ct=ct)
                if self.cache is not None:
                    self.cache.put(keys[i], "first_token", "", pt, ct, extra={"p_yes": p_yes, "top": top})
                out[i] = (p_yes, top)
        return [o for o in out if o is not None]

    def _logprobs(self, text: str, images: Sequence[np.ndarray]) -> tuple[float | None, dict[str, float]]:
        return self._logprobs_many([(text, images)])[0]

    @staticmethod
    def _p_yes(p_yes: float | None, top: dict[str, float]) -> float:
        if p_yes is not None:
            return float(p_yes)
        # an endpoint knows only the likeliest tokens: "Yes" among them, else below the least of them (0)
        return float(np.exp(top["Yes"])) if "Yes" in top else 0.0

    def yes_probabilities(self, items: Sequence[tuple[str, Sequence[np.ndarray]]]) -> list[float]:
        """:meth:`yes_probability` of several (question, images) at once (batched where the backend can)."""
        return [self._p_yes(p, top) for p, top in self._logprobs_many(items)]

    def yes_probability(self, text: str, images: Sequence[np.ndarray] = ()) -> float:
        return self._p_yes(*self._logprobs(text, images))

    def first_token_logprobs(self, text: str, images: Sequence[np.ndarray] = ()) -> dict[str, float]:
        return self._logprobs(text, images)[1]

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def open_cache(
    config: JudgeConfig, run_cache_dir: Path | str | None, *, in_run: bool = False
) -> ResponseCache | None:
    """The response cache a config asks for: off, an explicit file, or ``judges/responses.sqlite`` in the
    run's cache dir. A run without a shared cache (``--no-cache``, ``in_run``) keeps none unless a file is
    named; a judge used on its own uses the default cache dir. A run whose feature cache is a URL
    (``s3://...``) keeps its responses in the default local file: SQLite needs a local file system."""
    if config.cache == "off":
        return None
    if config.cache:
        return ResponseCache(config.cache)
    from aigve.engine.cache import is_url, redact_url

    if isinstance(run_cache_dir, str) and is_url(run_cache_dir):
        path = default_cache_path()
        log.info(
            "judge responses: the feature cache %s is a URL and SQLite needs a local file, so they are "
            "cached in %s (set judge cache= / --judge-cache to choose another file)",
            redact_url(run_cache_dir),
            path,
        )
        return ResponseCache(path)
    if run_cache_dir is not None:
        return ResponseCache(Path(run_cache_dir) / "judges" / "responses.sqlite")
    return None if in_run else ResponseCache(default_cache_path())


def build_judge(
    config: JudgeConfig,
    *,
    device: Any = "cpu",
    batch_size: int = 8,
    run_cache_dir: Path | str | None = None,
    in_run: bool = False,
) -> CachedJudge:
    """The backend a resolved config names (``UsageError`` when none is configured)."""
    cfg = config.resolved()
    if cfg.backend is None or not cfg.model:
        raise UsageError(no_judge_message("this metric"))
    cache = open_cache(cfg, run_cache_dir, in_run=in_run)
    judge: CachedJudge
    if cfg.backend == "endpoint":
        from aigve.judges.endpoint import EndpointJudge

        judge = EndpointJudge(
            cfg.model,
            cfg.base_url,
            cfg.api_key,
            concurrency=cfg.concurrency,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
            seed=cfg.seed,
            cache=cache,
        )
    else:
        from aigve.judges.local import LocalJudge

        judge = LocalJudge(cfg.model, device=device, batch_size=batch_size, seed=cfg.seed, cache=cache)
    judge.price = cfg.price
    return judge
