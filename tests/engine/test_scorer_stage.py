"""The engine's scorer stage, with a toy scorer and toy metrics defined here.

``test_toy_feats`` is a counting extractor (per-frame mean RGB); ``test_toy_prompt_scorer`` reads its
features and the entry's prompt; ``test_toy_style_scorer`` reads the frames, the prompt and a dataset
field. Every output is recomputed here from the decoded frames, so the tests check values as well as
the work the engine does (model calls, decodes) on reruns, changed prompts and failures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest

from aigve.backbones.base import Extractor, Scorer, ScorerInput, column
from aigve.backbones.registry import register_extractor
from aigve.data.dataset import Dataset
from aigve.engine import Engine, RunConfig
from aigve.errors import AigveError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric, unregister_metric
from aigve.types import Entry
from aigve.video.sampling import Sampler, Window
from tests.conftest import smooth_clip

CALLS: dict[str, Any] = {}


def _reset() -> None:
    CALLS.update(extract=0, score=0, scored=[], batches=[], loads=[], fail_on=set(), bad_shape_on=set())


_reset()


def _mean_rgb(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(frames.shape[0], -1, 3).mean(axis=1).astype(np.float64)


@register_extractor
class ToyFeatures(Extractor):
    """Per-frame mean of each channel ``[T, 3]``, counting its calls."""

    name: ClassVar[str] = "test_toy_feats"

    def load(self) -> None:
        CALLS["loads"].append(self.name)

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        CALLS["extract"] += 1
        return _mean_rgb(frames)


def _prompt_scores(feats: np.ndarray, prompt: str) -> np.ndarray:
    """What the toy scorer gives for one video: ``[K, 2]`` = (feature mean x prompt length, length)."""
    k = len(feats)
    return np.stack([feats.mean(axis=1) * len(prompt), np.full(k, float(len(prompt)))], axis=1)


class _Counting(Scorer):
    def _count(self, items: Sequence[ScorerInput]) -> None:
        CALLS["score"] += 1
        CALLS["batches"].append(len(items))
        ids = [it.video_id for it in items]
        CALLS["scored"].extend(ids)
        bad = CALLS["fail_on"] & set(ids)
        if bad:
            raise RuntimeError(f"toy scorer cannot score {sorted(bad)}")


@register_extractor
class ToyPromptScorer(_Counting):
    name: ClassVar[str] = "test_toy_prompt_scorer"
    input: ClassVar[Literal["frames", "features"]] = "features"
    texts: ClassVar[tuple[str, ...]] = ("prompt",)
    columns: ClassVar[tuple[str, ...]] = ("match", "length")

    def upstream(self) -> tuple[str, dict[str, Any]]:
        return "test_toy_feats", {}

    def load(self) -> None:  # the engine binds the upstream before loading
        assert isinstance(getattr(self, "upstream_extractor", None), ToyFeatures)
        CALLS["loads"].append(self.name)

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self._count(items)
        out = []
        for it in items:
            arr = _prompt_scores(it.data, it.texts["prompt"])
            out.append(arr[:, :1] if it.video_id in CALLS["bad_shape_on"] else arr)
        return out


@register_extractor
class ToyStyleScorer(_Counting):
    """Reads frames (not features), the prompt and the dataset field ``style``."""

    name: ClassVar[str] = "test_toy_style_scorer"
    input: ClassVar[Literal["frames", "features"]] = "frames"
    texts: ClassVar[tuple[str, ...]] = ("prompt", "style")
    columns: ClassVar[tuple[str, ...]] = ("styled",)

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self._count(items)
        return [
            _mean_rgb(it.data).mean(axis=1, keepdims=True) + len(it.texts["style"]) - len(it.texts["prompt"])
            for it in items
        ]


def _spec(name: str, inputs: tuple[str, ...]) -> MetricSpec:
    return MetricSpec(
        name=name,
        family="vl_similarity",
        description=f"{name} (test metric)",
        inputs=inputs,
        backbone="test_toy_feats",
        outputs=(OutputSpec(name, True),),
    )


class ScoreMean(VideoMetric):
    spec = _spec("test_scoremean", ("generated", "prompt"))

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("s", "test_toy_prompt_scorer", Sampler("all"))]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {"test_scoremean": float(column(feats["s"], ToyPromptScorer.columns, "match").mean())}


class FeatMean(VideoMetric):
    """Asks for the scorer's upstream features directly."""

    spec = _spec("test_featmean", ("generated",))

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("f", "test_toy_feats", Sampler("all"))]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {"test_featmean": float(feats["f"].mean())}


class StyleMean(VideoMetric):
    spec = _spec("test_stylemean", ("generated", "prompt"))

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("st", "test_toy_style_scorer", Sampler("uniform", n=4))]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {"test_stylemean": float(feats["st"].mean())}


_METRICS = (ScoreMean, FeatMean, StyleMean)


@pytest.fixture(autouse=True, scope="module")
def _test_metrics_registered():  # noqa: ANN202
    for cls in _METRICS:
        register_metric(cls)
    yield
    for cls in _METRICS:
        unregister_metric(cls.spec.name)


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    _reset()


@pytest.fixture
def dataset(make_video) -> Dataset:
    entries = []
    for i in range(5):
        frames = np.clip(smooth_clip(10, seed=i).astype(int) + 15 * i, 0, 255).astype(np.uint8)
        p = make_video(f"gen{i}.mp4", frames)
        entries.append(Entry(id=f"v{i}", generated=p, prompt=f"a prompt {'x' * i}", extra={"style": "s" * i}))
    return Dataset(name="t", entries=entries)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the videos decoded (by any run) during the test."""
    import aigve.video.decode as dec

    seen: list[str] = []
    orig = dec.decode_video

    def counting(path, window=Window(), **kw):  # type: ignore[no-untyped-def]
        seen.append(Path(path).name)
        return orig(path, window, **kw)

    monkeypatch.setattr(dec, "decode_video", counting)
    return seen


def run(ds: Dataset, tmp: Path, metrics: list[str], **kw: Any):
    # the extractor-call counts below are per video: frames of several videos in one call are tested in
    # tests/engine/test_throughput.py
    kw.setdefault("batch_videos", False)
    cfg = RunConfig(metrics=metrics, cache_dir=kw.pop("cache_dir", tmp / "cache"), bootstrap=0, **kw)
    return Engine(ds, cfg).run()


def _direct_feats(path: Path) -> np.ndarray:
    from aigve.video.decode import decode_video

    return _mean_rgb(decode_video(path).frames)


def _value(res: Any, vid: str, metric: str) -> float:
    return float(res.wide().loc[vid, metric])


def test_scorer_values_match_direct_computation(dataset: Dataset, tmp_path: Path) -> None:
    res = run(dataset, tmp_path, ["test_scoremean"])
    assert res.exit_code == 0
    for e in dataset.entries:
        want = _prompt_scores(_direct_feats(e.generated), e.prompt or "")[:, 0].mean()
        assert _value(res, e.id, "test_scoremean") == pytest.approx(want, rel=1e-12)
    # built and loaded once per run, the upstream bound and loaded first
    assert CALLS["loads"] == ["test_toy_feats", "test_toy_prompt_scorer"]
    assert "load:test_toy_prompt_scorer" in res.provenance["timings_seconds"]
    assert "score:test_toy_prompt_scorer" in res.provenance["timings_seconds"]


def test_rerun_does_no_model_work_and_decodes_nothing(
    dataset: Dataset, tmp_path: Path, decodes: list[str]
) -> None:
    first = run(dataset, tmp_path, ["test_scoremean", "test_stylemean"])
    assert len(decodes) == 5 and CALLS["extract"] == 5 and CALLS["score"] > 0
    _reset()
    decodes.clear()
    again = run(dataset, tmp_path, ["test_scoremean", "test_stylemean"])
    assert decodes == [] and CALLS["extract"] == 0 and CALLS["score"] == 0
    assert again.per_video.equals(first.per_video)


def test_changed_prompt_rescores_only_that_video_without_decoding(
    dataset: Dataset, tmp_path: Path, decodes: list[str]
) -> None:
    run(dataset, tmp_path, ["test_scoremean"])
    e2 = dataset.entries[2]
    changed = Entry(id=e2.id, generated=e2.generated, prompt="another prompt", extra=e2.extra)
    ds = Dataset("t", [*dataset.entries[:2], changed, *dataset.entries[3:]])
    _reset()
    decodes.clear()
    res = run(ds, tmp_path, ["test_scoremean"])
    assert CALLS["scored"] == ["v2"] and CALLS["extract"] == 0 and decodes == []  # upstream from cache
    want = _prompt_scores(_direct_feats(e2.generated), "another prompt")[:, 0].mean()
    assert _value(res, "v2", "test_scoremean") == pytest.approx(want, rel=1e-12)


def test_missing_prompt_is_an_error_of_that_video_only(dataset: Dataset, tmp_path: Path) -> None:
    e1 = dataset.entries[1]
    ds = Dataset(
        "t", [dataset.entries[0], Entry(id="v1", generated=e1.generated, prompt=" "), *dataset.entries[2:]]
    )
    res = run(ds, tmp_path, ["test_scoremean", "test_featmean"])
    assert "v1" not in CALLS["scored"] and len(CALLS["scored"]) == 4  # the scorer never saw it
    df = res.per_video
    err = df[(df.video_id == "v1") & (df.metric == "test_scoremean")]["error"].iloc[0]
    assert "entry 'v1' has no prompt; test_scoremean needs one" in err and "--prompts" in err
    assert df[(df.video_id != "v1") | (df.metric == "test_featmean")]["error"].isna().all()
    assert res.aggregates["test_scoremean"].n_errors == 1 and res.exit_code == 3


def test_missing_dataset_field_is_named(dataset: Dataset, tmp_path: Path) -> None:
    e0 = dataset.entries[0]  # style "" (empty): missing
    res = run(dataset, tmp_path, ["test_stylemean"])
    df = res.per_video
    err = df[df.video_id == e0.id]["error"].iloc[0]
    assert "entry 'v0' has no style; test_stylemean needs one" in err and "'style' field" in err
    assert df[df.video_id != e0.id]["error"].isna().all()
    e3 = dataset.entries[3]
    from aigve.video.decode import decode_video
    from aigve.video.sampling import Sampler as S

    clip = decode_video(e3.generated)
    sub = clip.select(S("uniform", n=4).select(clip.num_frames, clip.fps))
    want = _mean_rgb(sub.frames).mean() + 3 - len(e3.prompt or "")
    assert _value(res, "v3", "test_stylemean") == pytest.approx(want, rel=1e-12)


def test_batched_scoring_equals_one_at_a_time(dataset: Dataset, tmp_path: Path) -> None:
    metrics = ["test_scoremean", "test_stylemean"]
    one = run(dataset, tmp_path / "one", metrics, batch_size=1)
    assert set(CALLS["batches"]) == {1}
    _reset()
    many = run(dataset, tmp_path / "many", metrics, batch_size=8)
    # one call per scorer: five videos for the prompt scorer, four for the style scorer (v0 has no style)
    assert sorted(CALLS["batches"]) == [4, 5]
    assert one.per_video.equals(many.per_video)


def test_upstream_features_are_shared_with_a_metric_asking_for_them(dataset: Dataset, tmp_path: Path) -> None:
    res = run(dataset, tmp_path, ["test_featmean", "test_scoremean"])
    assert CALLS["extract"] == 5  # one extraction per video serves both metrics
    assert CALLS["loads"].count("test_toy_feats") == 1
    for e in dataset.entries:
        assert _value(res, e.id, "test_featmean") == pytest.approx(
            _direct_feats(e.generated).mean(), rel=1e-12
        )
    # the scorer's provenance names its upstream
    ext = res.aggregates["test_scoremean"].provenance["extractors"]["s"]
    assert ext["extractor"] == "test_toy_prompt_scorer" and ext["upstream"]["extractor"] == "test_toy_feats"
    assert res.aggregates["test_featmean"].provenance["extractors"]["f"]["extractor"] == "test_toy_feats"


def test_scorer_failure_on_one_video_is_that_video_error(dataset: Dataset, tmp_path: Path) -> None:
    CALLS["fail_on"] = {"v3"}
    res = run(dataset, tmp_path, ["test_scoremean", "test_featmean"])
    assert CALLS["batches"][0] == 5 and CALLS["batches"][1:] == [1] * 5  # batch failed: one at a time
    df = res.per_video
    bad = df[(df.video_id == "v3") & (df.metric == "test_scoremean")]["error"].iloc[0]
    assert "gen3.mp4" in bad and "toy scorer cannot score ['v3']" in bad
    assert df[(df.video_id != "v3") | (df.metric == "test_featmean")]["error"].isna().all()
    assert res.aggregates["test_scoremean"].n_errors == 1
    # the failure is not cached: fixed, a rerun scores that video only
    _reset()
    again = run(dataset, tmp_path, ["test_scoremean", "test_featmean"])
    assert CALLS["scored"] == ["v3"] and CALLS["extract"] == 0 and again.exit_code == 0


def test_scorer_aigve_error_names_the_video(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Any, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        raise AigveError("frames too small for the toy scorer")

    monkeypatch.setattr(ToyPromptScorer, "score", refuse)
    res = run(dataset, tmp_path, ["test_scoremean"])
    errs = res.per_video["error"].tolist()
    assert len(errs) == 5 and all(e.endswith("frames too small for the toy scorer") for e in errs)
    assert all(f"gen{i}.mp4" in e for i, e in enumerate(errs))


def test_wrong_output_shape_is_a_per_video_error(dataset: Dataset, tmp_path: Path) -> None:
    CALLS["bad_shape_on"] = {"v0"}
    res = run(dataset, tmp_path, ["test_scoremean"])
    df = res.per_video
    err = df[df.video_id == "v0"]["error"].iloc[0]
    assert "test_toy_prompt_scorer returned an array of shape (10, 1), expected [K, 2] (match, length)" in err
    assert df[df.video_id != "v0"]["error"].isna().all()


def test_upstream_load_failure_fails_the_scorer_with_its_reason(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_weights(self: Any) -> None:
        raise AigveError("toy weights missing: run aigve weights fetch test_toy_feats")

    monkeypatch.setattr(ToyFeatures, "load", no_weights)
    res = run(dataset, tmp_path, ["test_scoremean", "test_featmean"])
    for m in ("test_scoremean", "test_featmean"):
        assert res.aggregates[m].error == "toy weights missing: run aigve weights fetch test_toy_feats"
    assert CALLS["score"] == 0 and CALLS["extract"] == 0


class _Kill(Exception):
    pass


def test_resume_after_kill_needs_no_model_work(dataset: Dataset, tmp_path: Path, decodes: list[str]) -> None:
    metrics = ["test_scoremean", "test_featmean"]
    full = run(dataset, tmp_path, metrics, cache_dir=None, out_dir=tmp_path / "full")

    def kill_after_two(done: int, total: int) -> None:
        if done == 2:
            raise _Kill

    out = tmp_path / "killed"
    cfg = RunConfig(metrics=metrics, cache_dir=None, out_dir=out, bootstrap=0, batch_videos=False)
    with pytest.raises(_Kill):
        Engine(dataset, cfg, progress=kill_after_two).run()
    _reset()
    decodes.clear()
    resumed = run(dataset, tmp_path, metrics, cache_dir=None, out_dir=out, resume=True)
    # the scorer outputs of the group in flight were cached (in the run's own cache) before the kill
    assert CALLS["score"] == 0 and CALLS["extract"] == 0 and decodes == []
    assert resumed.per_video.equals(full.per_video)
