"""Shared fixtures: an isolated cache dir, the toy dataset location, clip factories."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read or write the user's ~/.cache/aigve."""
    cache = tmp_path_factory.mktemp("aigve-cache")
    os.environ["AIGVE_CACHE_DIR"] = str(cache)
    os.environ.setdefault("AIGVE_WEIGHTS_DIR", str(cache / "weights-env"))


def toy_dir_or_none() -> Path | None:
    env = os.environ.get("AIGVE_TOY_DIR")
    cands = [Path(env)] if env else []
    cands.append(REPO.parent / "shared" / "data" / "aigve_toy")
    for c in cands:
        if (c / "annotations" / "evaluate.json").is_file():
            return c
    return None


@pytest.fixture
def toy_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    d = toy_dir_or_none()
    if d is None:
        pytest.skip("AIGVE toy dataset not found (set AIGVE_TOY_DIR)")
    monkeypatch.setenv("AIGVE_TOY_DIR", str(d))
    return d


def smooth_clip(t: int = 12, h: int = 64, w: int = 64, seed: int = 0, speed: float = 2.0) -> np.ndarray:
    """A textured pattern translating by ``speed`` px/frame: natural-ish, compressible content."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h // 8 + 2, (w + int(speed * t)) // 8 + 2, 3)).astype(np.float32)
    big = np.kron(base, np.ones((8, 8, 1), dtype=np.float32))
    frames = []
    for i in range(t):
        x0 = int(round(i * speed))
        frames.append(big[:h, x0 : x0 + w])
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    from aigve.video.encode import write_video

    def _make(
        name: str = "clip.mp4", frames: np.ndarray | None = None, fps: float = 8.0, **kw: object
    ) -> Path:
        if frames is None:
            frames = smooth_clip()
        return write_video(tmp_path / name, frames, fps=fps, **kw)  # type: ignore[arg-type]

    return _make


def per_video_table(res: Any) -> Any:
    """A run's per-video records in a fixed order (video, metric, output), for comparing two runs exactly."""
    return res.per_video.sort_values(["video_id", "metric", "output"]).reset_index(drop=True)


def run_engine(ds: Any, metrics: list[str], **kw: Any) -> Any:
    """One engine run of ``metrics`` on ``ds`` without a shared cache or bootstrap (``kw``: RunConfig fields)."""
    from aigve.engine import Engine, RunConfig

    cfg = RunConfig(metrics=metrics, cache_dir=None, bootstrap=0, set_bootstrap=0, **kw)
    return Engine(ds, cfg).run()


def two_output_spec(name: str, backbone: str) -> Any:
    """The spec of a test metric ``name`` on ``backbone`` with two outputs, ``name`` and ``name_rows``."""
    from aigve.metrics.base import MetricSpec, OutputSpec

    return MetricSpec(
        name=name,
        family="classic",
        description="test metric",
        inputs=("generated",),
        backbone=backbone,
        outputs=(OutputSpec(name, None), OutputSpec(f"{name}_rows", None)),
    )
