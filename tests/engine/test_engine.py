"""End-to-end behaviour of the engine with small test-defined extractors and metrics.

The metrics here are deliberately trivial (mean brightness, a set-level count/mean) so every value
can be recomputed independently from the decoded frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from aigve.backbones.base import Extractor
from aigve.backbones.registry import register_extractor
from aigve.data.dataset import Dataset
from aigve.engine.runner import Engine, RunConfig
from aigve.errors import UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, SetMetric, VideoMetric
from aigve.metrics.catalog import register_metric, unregister_metric
from aigve.types import Entry, Side
from aigve.video.sampling import Sampler, Window
from tests.conftest import smooth_clip

CALLS: dict[str, int] = {"extract": 0}


@register_extractor
class MeanRGB(Extractor):
    """Per-frame mean of each channel: [T, 3]."""

    name: ClassVar[str] = "test_mean_rgb"

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        CALLS["extract"] += 1
        return frames.reshape(frames.shape[0], -1, 3).mean(axis=1).astype(np.float64)


class Brightness(VideoMetric):
    spec = MetricSpec(
        name="test_brightness",
        family="classic",
        description="mean pixel value (test metric)",
        inputs=("generated",),
        backbone="test_mean_rgb",
        outputs=(OutputSpec("test_brightness", True, (0, 255)), OutputSpec("first_frame", None)),
        options={"n": None},
    )

    def requests(self) -> list[FeatureRequest]:
        s = Sampler("all") if self.options["n"] is None else Sampler("uniform", n=self.options["n"])
        return [FeatureRequest("rgb", "test_mean_rgb", s)]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        f = feats["rgb"]
        return {"test_brightness": float(f.mean()), "first_frame": float(f[0].mean())}


class PromptLen(VideoMetric):
    spec = MetricSpec(
        name="test_promptlen",
        family="vl_similarity",
        description="prompt length (test metric needing a prompt)",
        inputs=("generated", "prompt"),
        backbone="test_mean_rgb",
        outputs=(OutputSpec("test_promptlen", None),),
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("rgb", "test_mean_rgb", Sampler("all"))]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {"test_promptlen": float(len(entry.prompt or ""))}


class SetMean(SetMetric):
    """Difference of the generated and real sets' mean brightness; counts each real video once."""

    spec = MetricSpec(
        name="test_setmean",
        family="distribution_based",
        description="set mean difference (test metric)",
        inputs=("generated", "real"),
        backbone="test_mean_rgb",
        outputs=(OutputSpec("test_setmean", False, (0, None)),),
        level="set",
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.sums = {"generated": 0.0, "real": 0.0}
        self.counts = {"generated": 0, "real": 0}

    def requests(self) -> list[FeatureRequest]:
        return [
            FeatureRequest("g", "test_mean_rgb", Sampler("all"), "generated"),
            FeatureRequest("r", "test_mean_rgb", Sampler("all"), "real"),
        ]

    def update(self, entry: Entry, side: Side, feats: Mapping[str, np.ndarray]) -> None:
        f = feats["g" if side == "generated" else "r"]
        self.sums[side] += float(f.mean())
        self.counts[side] += 1

    def merge(self, other: SetMetric) -> None:
        assert isinstance(other, SetMean)
        for s in self.sums:
            self.sums[s] += other.sums[s]
            self.counts[s] += other.counts[s]

    def compute(self) -> dict[str, Any]:
        g = self.sums["generated"] / self.counts["generated"]
        r = self.sums["real"] / self.counts["real"]
        return {
            "test_setmean": abs(g - r),
            "n_real": self.counts["real"],
            "n_generated": self.counts["generated"],
        }

    def per_video(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {
            "brightness_minus_real_mean": float(feats["g"].mean()) - self.sums["real"] / self.counts["real"]
        }


@pytest.fixture(autouse=True, scope="module")
def _test_metrics_registered():  # noqa: ANN202
    """The test metrics exist in the catalogue only while this module runs."""
    for cls in (Brightness, PromptLen, SetMean):
        register_metric(cls)
    yield
    for cls in (Brightness, PromptLen, SetMean):
        unregister_metric(cls.spec.name)


@pytest.fixture
def dataset(make_video) -> Dataset:
    real = make_video("real.mp4", smooth_clip(12, seed=9))
    entries = []
    for i in range(4):
        p = make_video(
            f"gen{i}.mp4", np.clip(smooth_clip(12, seed=i).astype(int) + 20 * i, 0, 255).astype(np.uint8)
        )
        entries.append(
            Entry(
                id=f"v{i}", generated=p, real=real, prompt=f"prompt {'x' * i}", extra={"model": f"m{i % 2}"}
            )
        )
    return Dataset(name="t", entries=entries)


def _decoded_mean(path: Path) -> float:
    from aigve.video.decode import decode_video

    return float(decode_video(path).frames.astype(np.float64).mean())


def run(ds: Dataset, tmp: Path, metrics: list[str], **kw: Any):
    cfg = RunConfig(metrics=metrics, cache_dir=kw.pop("cache_dir", tmp / "cache"), bootstrap=0, **kw)
    return Engine(ds, cfg).run()


def test_values_match_direct_computation(dataset: Dataset, tmp_path: Path) -> None:
    res = run(dataset, tmp_path, ["test_brightness", "test_setmean"])
    assert res.exit_code == 0
    per = res.wide()
    direct = {e.id: _decoded_mean(e.generated) for e in dataset.entries}
    for vid, v in direct.items():
        assert per.loc[vid, "test_brightness"] == pytest.approx(v, rel=1e-9)
    assert res.value("test_brightness") == pytest.approx(np.mean(list(direct.values())), rel=1e-9)
    real_mean = _decoded_mean(dataset.entries[0].real)  # type: ignore[arg-type]
    agg = res.aggregates["test_setmean"]
    # the shared real video is one member of the real set, not four
    assert agg.extra["n_real"] == 1 and agg.extra["n_generated"] == 4
    assert agg.value == pytest.approx(abs(np.mean(list(direct.values())) - real_mean), rel=1e-9)
    assert per.loc["v2", "test_setmean.brightness_minus_real_mean"] == pytest.approx(direct["v2"] - real_mean)


def test_each_video_decoded_once_and_features_shared(dataset: Dataset, tmp_path: Path, monkeypatch) -> None:
    import aigve.video.decode as dec

    seen: list[str] = []
    orig = dec.decode_video

    def counting(path, window=Window(), **kw):  # type: ignore[no-untyped-def]
        seen.append(Path(path).name)
        return orig(path, window, **kw)

    monkeypatch.setattr(dec, "decode_video", counting)
    CALLS["extract"] = 0
    run(dataset, tmp_path, ["test_brightness", "test_promptlen", "test_setmean"])
    assert sorted(seen) == sorted(["gen0.mp4", "gen1.mp4", "gen2.mp4", "gen3.mp4", "real.mp4"])
    # three metrics, one (extractor, sampler) per side: one extraction per video
    assert CALLS["extract"] == 5
    # rerun: everything comes from the cache, nothing is decoded
    seen.clear()
    res = run(dataset, tmp_path, ["test_brightness", "test_setmean"])
    assert seen == [] and CALLS["extract"] == 5
    assert res.provenance["cache"]["hits"] >= 5


def test_different_sampler_decodes_once_but_extracts_twice(dataset: Dataset, tmp_path: Path) -> None:
    CALLS["extract"] = 0
    res = run(
        dataset, tmp_path, ["test_brightness", "test_promptlen"], metric_options={"test_brightness": {"n": 4}}
    )
    assert CALLS["extract"] == 8  # two samplers x four videos
    assert res.aggregates["test_brightness"].provenance["sampling"]["rgb"]["protocol"] == "uniform"


def test_bad_video_is_recorded_and_others_survive(dataset: Dataset, tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    ds = Dataset("t", [*dataset.entries, Entry(id="bad", generated=bad, prompt="p")])
    res = run(ds, tmp_path, ["test_brightness"])
    assert res.exit_code == 3
    df = res.per_video
    bad_rows = df[df.video_id == "bad"]
    assert bad_rows["value"].isna().all()
    assert all("broken.mp4" in e for e in bad_rows["error"])
    good = df[(df.video_id != "bad") & (df.output == "test_brightness")]
    assert good["error"].isna().all() and len(good) == 4
    assert res.aggregates["test_brightness"].outputs["test_brightness"].n == 4
    assert res.aggregates["test_brightness"].n_errors == 1


def test_missing_prompt_is_a_per_video_error(dataset: Dataset, tmp_path: Path) -> None:
    e0 = dataset.entries[0]
    ds = Dataset("t", [Entry(id=e0.id, generated=e0.generated, prompt=None), *dataset.entries[1:]])
    res = run(ds, tmp_path, ["test_promptlen", "test_brightness"])
    df = res.per_video
    row = df[(df.video_id == e0.id) & (df.metric == "test_promptlen")].iloc[0]
    assert "no prompt" in row["error"]
    assert df[(df.video_id == e0.id) & (df.metric == "test_brightness")]["error"].isna().all()
    assert res.exit_code == 3


def test_deterministic_and_worker_independent(dataset: Dataset, tmp_path: Path) -> None:
    a = run(dataset, tmp_path / "a", ["test_brightness", "test_setmean"], cache_dir=None)
    b = run(dataset, tmp_path / "b", ["test_brightness", "test_setmean"], cache_dir=None, num_workers=2)
    assert a.per_video.equals(b.per_video)
    assert a.to_dict()["metrics"]["test_setmean"]["value"] == b.to_dict()["metrics"]["test_setmean"]["value"]


class _Kill(Exception):
    pass


def test_resume_after_kill_gives_same_results(dataset: Dataset, tmp_path: Path) -> None:
    metrics = ["test_brightness", "test_setmean"]
    full = run(dataset, tmp_path / "full", metrics, cache_dir=None, out_dir=tmp_path / "full")

    out = tmp_path / "killed"

    def kill_after(n: int):  # noqa: ANN202
        def progress(done: int, total: int) -> None:
            if done == n:
                raise _Kill

        return progress

    cfg = RunConfig(metrics=metrics, cache_dir=None, out_dir=out, bootstrap=0)
    with pytest.raises(_Kill):
        Engine(dataset, cfg, progress=kill_after(3)).run()
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3  # header + three finished units
    # a torn line from a kill mid-write is ignored
    with open(out / "journal.jsonl", "a") as f:
        f.write('{"unit": "gen:v3", "reco')
    CALLS["extract"] = 0
    cfg = RunConfig(metrics=metrics, cache_dir=None, out_dir=out, resume=True, bootstrap=0)
    resumed = Engine(dataset, cfg).run()
    assert CALLS["extract"] == 2  # only the two unfinished units were extracted again
    assert (
        resumed.per_video.sort_values(["video_id", "metric", "output"])
        .reset_index(drop=True)
        .equals(full.per_video.sort_values(["video_id", "metric", "output"]).reset_index(drop=True))
    )
    assert resumed.value("test_setmean") == full.value("test_setmean")
    units = [json.loads(x)["unit"] for x in (out / "journal.jsonl").read_text().splitlines()[1:]]
    assert len(units) == len(set(units)) == 5
    assert not (out / ".run-cache").exists()  # the run-private cache is gone once finished


def test_resume_refuses_a_different_run(dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "o"
    run(dataset, tmp_path, ["test_brightness"], out_dir=out)
    with pytest.raises(UsageError, match="resume refused"):
        run(dataset, tmp_path, ["test_setmean"], out_dir=out, resume=True)


def test_unknown_metric_option_is_a_usage_error(dataset: Dataset, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no option"):
        run(dataset, tmp_path, ["test_brightness"], metric_options={"test_brightness": {"nope": 1}})


@register_extractor
class ClipMean(Extractor):
    """A clip-level test extractor: one row per video; counts batched calls."""

    name: ClassVar[str] = "test_clip_mean"
    kind: ClassVar[str] = "clip"  # type: ignore[misc]
    many_calls: ClassVar[list[int]] = []

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        return frames.astype(np.float64).mean(axis=(0, 1, 2))[None]

    def extract_many(self, clips: list[np.ndarray], fps: list[float | None]) -> list[np.ndarray]:
        ClipMean.many_calls.append(len(clips))
        return super().extract_many(clips, fps)


class ClipMetric(VideoMetric):
    spec = MetricSpec(
        name="test_clipmean",
        family="classic",
        description="clip-level mean (test metric)",
        inputs=("generated",),
        backbone="test_clip_mean",
        outputs=(OutputSpec("test_clipmean", None),),
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("c", "test_clip_mean", Sampler("first", n=8, pad="repeat_last"))]

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {"test_clipmean": float(feats["c"].mean())}


def test_clip_extractors_batch_across_videos_with_same_results(dataset: Dataset, tmp_path: Path) -> None:
    register_metric(ClipMetric)
    try:
        ClipMean.many_calls.clear()
        one = run(dataset, tmp_path / "a", ["test_clipmean"], cache_dir=None, batch_size=1)
        assert ClipMean.many_calls == []  # groups of one: the per-video path
        many = run(dataset, tmp_path / "b", ["test_clipmean"], cache_dir=None, batch_size=4)
        assert ClipMean.many_calls == [4]  # four videos, one batched call
        assert one.per_video.equals(many.per_video)
    finally:
        unregister_metric("test_clipmean")
