"""Test helpers: small real runs (encoded clips + ``evaluate``) and synthetic runs built from tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aigve.data.dataset import Dataset
from aigve.results.records import MetricAggregate, OutputValue, Results
from aigve.types import Entry, VideoRecord

HUMAN_ASPECTS = ("overall", "technical_quality")


def clip(seed: int, t: int = 12, size: int = 64, flicker: float = 0.0) -> np.ndarray:
    """A textured pattern drifting sideways; ``flicker`` adds per-frame brightness jumps."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(size // 8 + 2, (size + 3 * t) // 8 + 2, 3)).astype(np.float32)
    big = np.kron(base, np.ones((8, 8, 1), dtype=np.float32))
    frames = np.stack([big[:size, 2 * i : 2 * i + size] for i in range(t)])
    if flicker:
        frames = frames * (1.0 + flicker * rng.uniform(-1, 1, size=(t, 1, 1, 1)))
    return np.clip(frames, 0, 255).astype(np.uint8)


def small_dataset(root: Path, n: int = 6, with_scores: bool = True) -> Dataset:
    """``n`` clips from two "models" (m1 steady, m2 flickering) on shared prompts, with human scores
    that prefer less flicker (so the correlation section has something to show)."""
    from aigve.video.encode import write_video

    entries = []
    for i in range(n):
        model = "m1" if i % 2 == 0 else "m2"
        amount = 0.0 if model == "m1" else 0.1 + 0.05 * i
        path = write_video(root / f"{model}_{i // 2}.mp4", clip(i, flicker=amount), fps=8.0)
        extra: dict[str, object] = {"model": model}
        if with_scores:
            extra["overall"] = 5 if model == "m1" else max(1, 4 - i // 2)
            extra["technical_quality"] = 4 if model == "m1" else 2
        entries.append(Entry(id=path.stem, generated=path, prompt=f"prompt number {i // 2}", extra=extra))
    return Dataset(name="small", entries=entries, source=f"test:{root}")


def synthetic_results(
    values: dict[str, np.ndarray],
    ids: list[str],
    extra: dict[str, list[object]] | None = None,
    prompts: list[str] | None = None,
    directions: dict[str, bool | None] | None = None,
    name: str = "synthetic",
) -> Results:
    """A ``Results`` whose per-video primary values are given (metric -> array over ``ids``)."""
    directions = directions or {}
    records = []
    aggregates = {}
    for metric, vals in values.items():
        for vid, v in zip(ids, vals, strict=True):
            records.append(VideoRecord(vid, metric, metric, float(v)))
        hib = directions.get(metric)
        aggregates[metric] = MetricAggregate(
            metric, "classic", "video", "none", {metric: OutputValue(float(np.mean(vals)), len(vals), hib)},
            n_videos=len(ids), n_errors=0,
        )  # fmt: skip
    entries = [
        Entry(
            id=vid,
            generated=Path(f"/nonexistent/{vid}.mp4"),
            prompt=prompts[i] if prompts else None,
            extra={k: v[i] for k, v in (extra or {}).items()},
        )
        for i, vid in enumerate(ids)
    ]
    return Results(aggregates, records, entries, provenance={"test": True}, errors=[], dataset_name=name)
