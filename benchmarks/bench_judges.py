"""Judge metrics: requests and tokens per video at the defaults, the cost of a rerun, local VQAScore speed.

1. ``vqascore``, ``viescore``, ``tifa`` and ``dsg`` at their defaults (4 sampled frames) through the engine and
   the endpoint judge, against the scripted chat-completions server of the tests (127.0.0.1), on ``--videos``
   videos sharing ``--prompts`` distinct prompts: judge requests and tokens per video. The server's token
   counts are an estimate, stated so: prompt = ceil(characters / 4) + 85 per image (OpenAI's low-detail image
   cost), completion = ceil(characters / 4).
2. The same run again: first run (the server answering after ``--latency`` seconds per request, as a remote
   endpoint would), a rerun on the same cache dir (feature cache and response cache: no decoding, no request)
   and a rerun with only the response cache (decoding again, no request).
3. Local VQAScore on CPU with the tiny random Qwen2-VL of the tests: frames per second of
   ``LocalJudge.yes_probabilities`` (one frame per question, batched) at two frame sizes.

``PYTHONPATH=src:. .venv/bin/python benchmarks/bench_judges.py [--videos 6 --prompts 3 --latency 0.2]``
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aigve import evaluate
from aigve.data.dataset import Dataset
from aigve.types import Entry
from tests.conftest import smooth_clip
from tests.judges.chatserver import ChatServer, Seen, completion
from tests.judges.test_methods_engine import respond as method_reply

PROMPTS = [
    "A red apple on a table.",
    "A dog on a table.",
    "A red apple on a table in the morning sun.",
    "A dog on a table, cinematic lighting.",
]
METRICS = ["vqascore", "viescore", "tifa", "dsg"]


def scripted(latency: float):  # noqa: ANN201
    """The tests' method replies (and P("Yes") = 0.7 for VQAScore) with estimated token counts."""

    def respond(seen: Seen) -> dict[str, Any]:
        if latency:
            time.sleep(latency)
        if seen.body.get("logprobs"):
            body = completion("Yes", logprobs={"Yes": math.log(0.7), "No": math.log(0.3)})
            text = "Yes"
        else:
            text = method_reply(seen)
            if isinstance(text, dict):  # pragma: no cover - the method replies are text
                return text
            if text == "I cannot rate this.":  # the tests' unusable reply: a usable one here
                text = '{"score": [5], "reasoning": "ok"}'
            body = completion(text)
        pt = math.ceil(len(seen.text) / 4) + 85 * seen.n_images
        ct = math.ceil(len(text) / 4)
        body["usage"] = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        return body

    return respond


def make_dataset(tmp: Path, n: int, n_prompts: int) -> Dataset:
    from aigve.video.encode import write_video

    entries = []
    for i in range(n):
        v = write_video(tmp / f"v{i}.mp4", smooth_clip(t=16, h=64, w=64, seed=i), fps=8)
        entries.append(Entry(id=f"v{i}", generated=v, prompt=PROMPTS[i % n_prompts]))
    return Dataset(name="bench-judges", entries=entries)


def run(ds: Dataset, server: ChatServer, metrics: list[str], **kw: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    res = evaluate(
        ds,
        metrics,
        bootstrap=0,
        report=False,
        judge={"backend": "endpoint", "model": "bench", "base_url": server.base_url, **kw.pop("judge", {})},
        **kw,
    )
    return time.perf_counter() - t0, res


def per_metric(ds: Dataset, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    with ChatServer(scripted(0.0)) as server:
        for m in METRICS:
            server.reset()
            _, res = run(ds, server, [m], use_cache=False)
            usage = res.aggregates[m].provenance["usage"]["judge"]
            n = len(ds.entries)
            assert usage["requests"] == len(server.requests) and res.aggregates[m].error is None
            rows.append(
                {
                    "metric": m,
                    "requests/video": usage["requests"] / n,
                    "prompt tokens/video": usage["prompt_tokens"] / n,
                    "completion tokens/video": usage["completion_tokens"] / n,
                    "distinct prompts": usage["distinct_prompts"],
                    "value": res.aggregates[m].outputs[res.aggregates[m].primary].value,
                }
            )
    return rows


def rerun(ds: Dataset, tmp: Path, latency: float, concurrency: int) -> dict[str, Any]:
    with ChatServer(scripted(latency)) as server:
        cache = tmp / "cache"
        judge = {"concurrency": concurrency}
        first, a = run(ds, server, METRICS, cache_dir=cache, judge=judge)
        n_first = len(server.requests)
        server.reset()
        again, b = run(ds, server, METRICS, cache_dir=cache, judge=judge)
        n_again = server.attempts
        server.reset()
        only_responses, c = run(
            ds,
            server,
            METRICS,
            use_cache=False,
            judge={**judge, "cache": str(cache / "judges" / "responses.sqlite")},
        )
        n_only = server.attempts
    assert a.wide().equals(b.wide()) and a.wide().equals(c.wide())
    return {
        "first run s": first,
        "first run requests": n_first,
        "rerun (same cache dir) s": again,
        "rerun requests": n_again,
        "rerun, response cache only s": only_responses,
        "rerun, response cache only requests": n_only,
        "speed-up (same cache dir)": first / again,
        "speed-up (response cache only)": first / only_responses,
    }


def local_speed(tmp: Path, frames: int, sizes: list[int], batch: int) -> list[dict[str, Any]]:
    import torch

    from aigve.judges.local import LocalJudge
    from aigve.judges.vqascore import QUESTION
    from tests.judges.tiny_qwen import build_tiny_qwen

    d = build_tiny_qwen(tmp / "tiny-qwen2-vl", family="qwen2_vl")
    judge = LocalJudge(str(d), batch_size=batch)
    rng = np.random.default_rng(0)
    rows = []
    for side in sizes:
        fs = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(frames)]
        q = QUESTION.format(PROMPTS[0])
        judge.yes_probabilities([(q, [fs[0]])])  # warm up
        t0 = time.perf_counter()
        judge.yes_probabilities([(q, [f]) for f in fs])
        dt = time.perf_counter() - t0
        rows.append(
            {
                "frame": f"{side}x{side}",
                "frames": frames,
                "batch": batch,
                "s": dt,
                "frames/s": frames / dt,
                "threads": torch.get_num_threads(),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument(
        "--latency", type=float, default=0.2, help="seconds the server takes per request (rerun test)"
    )
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--local-frames", type=int, default=32)
    ap.add_argument("--json", help="write the numbers here too")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        import os

        os.environ["AIGVE_CACHE_DIR"] = str(tmp / "aigve-cache")
        ds = make_dataset(tmp, args.videos, args.prompts)
        out = {
            "per_metric": per_metric(ds, tmp),
            "rerun": rerun(ds, tmp, args.latency, args.concurrency),
            "local_vqascore_cpu": local_speed(tmp, args.local_frames, [64, 224], 8),
            "args": vars(args),
        }
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
