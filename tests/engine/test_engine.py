"""End-to-end behaviour of the engine with small test-defined extractors and metrics.

The metrics here are deliberately trivial (mean brightness, a set-level count/mean) so every value
can be recomputed independently from the decoded frames.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from aigve.backbones.base import Extractor
from aigve.backbones.registry import register_extractor
from aigve.data.dataset import Dataset
from aigve.engine import Engine, RunConfig
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
    # the extractor-call counts below are per video: frames of several videos in one call are tested in
    # tests/engine/test_throughput.py
    kw.setdefault("batch_videos", False)
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

    cfg = RunConfig(metrics=metrics, cache_dir=None, out_dir=out, bootstrap=0, batch_videos=False)
    with pytest.raises(_Kill):
        Engine(dataset, cfg, progress=kill_after(3)).run()
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3  # header + three finished units
    # a torn line from a kill mid-write is ignored
    with open(out / "journal.jsonl", "a") as f:
        f.write('{"unit": "gen:v3", "reco')
    CALLS["extract"] = 0
    cfg = RunConfig(
        metrics=metrics, cache_dir=None, out_dir=out, resume=True, bootstrap=0, batch_videos=False
    )
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


# ----------------------------------------------------------------------------- robustness (audit findings)
def _truncated_copy(tmp: Path, frames: np.ndarray, keep: float = 0.5) -> Path:
    """An mp4 with its index in front (faststart) cut after ``keep`` of its bytes: the first frames still
    decode, the rest is gone — what a broken download looks like."""
    import av

    from aigve.video.encode import write_video

    full = write_video(tmp / "full_for_truncation.mp4", frames, fps=8)
    fs = tmp / "faststart.mp4"
    with av.open(str(full)) as src, av.open(str(fs), "w", options={"movflags": "faststart"}) as dst:
        s = src.streams.video[0]
        o = dst.add_stream_from_template(s)
        for pkt in src.demux(s):
            if pkt.dts is not None:
                pkt.stream = o
                dst.mux(pkt)
    data = fs.read_bytes()
    out = tmp / "truncated.mp4"
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def test_truncated_video_is_scored_with_a_warning_that_survives_the_cache(
    dataset: Dataset, tmp_path: Path
) -> None:
    noisy = np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    trunc = _truncated_copy(tmp_path, noisy)
    ds = Dataset("t", [*dataset.entries, Entry(id="cut", generated=trunc, prompt="p")])
    for attempt in ("decoded", "from cache"):
        CALLS["extract"] = 0
        res = run(ds, tmp_path, ["test_brightness"], cache_dir=tmp_path / "shared-cache")
        assert CALLS["extract"] == (5 if attempt == "decoded" else 0), attempt
        df = res.per_video
        cut = df[df.video_id == "cut"]
        assert cut["value"].notna().all() and cut["error"].isna().all()  # scored: some frames decode
        assert cut["warning"].str.contains("truncated.mp4: truncated: decoding stopped after").all(), attempt
        assert df[df.video_id != "cut"]["warning"].isna().all()
        assert [w["video_id"] for w in res.video_warnings] == ["cut"]
        assert res.to_dict()["video_warnings"][0]["path"] == str(trunc)
        assert res.exit_code == 0  # a warning, not a failure


def test_resume_redoes_units_whose_file_changed_or_that_failed(dataset: Dataset, tmp_path: Path) -> None:
    fixed = tmp_path / "later.mp4"
    fixed.write_bytes(b"")  # empty: fails now, is re-generated before the resume
    ds = Dataset("t", [*dataset.entries, Entry(id="later", generated=fixed, prompt="p")])
    out = tmp_path / "o"
    first = run(ds, tmp_path, ["test_brightness"], out_dir=out)
    assert first.exit_code == 3 and "empty" in first.errors[0]["error"]
    ok = run(dataset, tmp_path, ["test_brightness"])  # reference values of the untouched videos
    from aigve.video.encode import write_video

    write_video(fixed, smooth_clip(12, seed=42), fps=8)  # the fix the error message asked for
    # and a video that was fine is replaced by another one: its old value must not come back
    changed = Path(ds.entries[1].generated)
    write_video(changed, smooth_clip(12, seed=77), fps=8)
    CALLS["extract"] = 0
    resumed = run(ds, tmp_path, ["test_brightness"], out_dir=out, resume=True, cache_dir=tmp_path / "c2")
    assert CALLS["extract"] == 2  # the fixed and the changed video; the other three stand
    assert resumed.exit_code == 0 and resumed.errors == []
    got = resumed.per_video.set_index(["video_id", "output"])["value"]
    assert got[("later", "test_brightness")] == pytest.approx(_decoded_mean(fixed))
    assert got[("v1", "test_brightness")] == pytest.approx(_decoded_mean(changed))
    assert (
        got[("v1", "test_brightness")]
        != ok.per_video.set_index(["video_id", "output"])["value"][("v1", "test_brightness")]
    )
    for vid in ("v0", "v2", "v3"):
        assert got[(vid, "test_brightness")] == pytest.approx(
            _decoded_mean(Path(ds.entries[int(vid[1])].generated))
        )


def test_resume_computes_a_metric_that_could_not_run_before(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A metric whose extra/weights were missing in the first run (metric-level failure) is computed for
    the already-finished videos after the user installs what was missing and resumes."""
    import aigve.engine.plan as plan_mod

    out = tmp_path / "o"
    real_missing = plan_mod.missing_modules
    monkeypatch.setattr(
        plan_mod,
        "missing_modules",
        lambda spec: ["some_extra_module"] if spec.name == "test_promptlen" else real_missing(spec),
    )
    first = run(dataset, tmp_path, ["test_brightness", "test_promptlen"], out_dir=out)
    assert first.aggregates["test_promptlen"].error and first.exit_code == 3
    monkeypatch.setattr(plan_mod, "missing_modules", real_missing)
    resumed = run(dataset, tmp_path, ["test_brightness", "test_promptlen"], out_dir=out, resume=True)
    assert resumed.exit_code == 0
    assert resumed.value("test_promptlen") == pytest.approx(np.mean([len(e.prompt) for e in dataset.entries]))


def test_missing_prompts_are_named_even_when_the_metric_cannot_run(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import aigve.engine.plan as plan_mod

    e0 = dataset.entries[0]
    ds = Dataset("t", [Entry(id=e0.id, generated=e0.generated, prompt="  "), *dataset.entries[1:]])
    monkeypatch.setattr(plan_mod, "missing_modules", lambda spec: ["some_extra_module"])
    with caplog.at_level("WARNING"):
        res = run(ds, tmp_path, ["test_promptlen"])
    assert "test_promptlen needs a prompt for every video; 1 of 4 have none (v0)" in caplog.text
    df = res.per_video
    err = df[df.video_id == "v0"]["error"].iloc[0]
    assert "some_extra_module" in err and "entry 'v0' has no prompt" in err and "--prompts" in err
    assert "no prompt" not in df[df.video_id == "v1"]["error"].iloc[0]


def test_set_metric_ci_is_clipped_to_the_metric_range(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aigve.results.stats as stats

    monkeypatch.setattr(SetMean, "value_from_features", lambda self, r, g: float(abs(g.mean() - r.mean())))
    real = stats.bootstrap_set_metric

    def wide(*a: Any, **k: Any):  # noqa: ANN202
        ci = real(*a, **k)
        return type(ci)(**{**ci.__dict__, "low": -5.0})  # what a centred interval can do near 0

    monkeypatch.setattr(stats, "bootstrap_set_metric", wide)
    reals = [make for make in (Path(dataset.entries[0].real),)]
    ds = Dataset("t", dataset.entries, extra_reals=[*reals, Path(dataset.entries[1].generated)])
    res = run(ds, tmp_path, ["test_setmean"], set_bootstrap=20)
    ov = res.aggregates["test_setmean"].outputs["test_setmean"]
    assert ov.ci_low == 0.0 and "clipped to the metric's range" in (ov.ci_method or "")


def test_writers_survive_file_names_that_are_not_utf8(tmp_path: Path) -> None:
    import os

    from aigve.results.load import load_run
    from aigve.results.records import MetricAggregate, OutputValue, Results
    from aigve.results.writers import write_results
    from aigve.types import VideoRecord

    name = os.fsdecode(b"bad\xffname.mp4")  # what Python makes of a Latin-1 byte in a Linux file name
    e = Entry(id=name, generated=tmp_path / name, prompt=name)
    agg = MetricAggregate("m", "classic", "video", "-", {"m": OutputValue(1.0, 1, True)}, 1, 0)
    res = Results({"m": agg}, [VideoRecord(name, "m", "m", 1.0, None, f"{name}: truncated")], [e], {}, [])
    write_results(res, tmp_path / "out")
    back = load_run(tmp_path / "out")
    assert back.records[0].video_id == "bad\\xffname.mp4" and back.records[0].value == 1.0
    assert back.records[0].warning == "bad\\xffname.mp4: truncated"


def test_set_metric_without_a_ci_says_why(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SetMean, "value_from_features", lambda self, r, g: float(abs(g.mean() - r.mean())))
    res = run(dataset, tmp_path, ["test_setmean"], set_bootstrap=20)  # one real video shared by all entries
    agg = res.aggregates["test_setmean"]
    assert agg.outputs["test_setmean"].ci_low is None
    assert any("no confidence interval" in w and "1 real" in w for w in agg.warnings)


def test_backbone_options_enter_the_fingerprint_only_when_given() -> None:
    """Backbone options change numbers, so a resumed run with other ones must not reuse the journal; a run
    without them keeps the fingerprint it had before the option existed (old journals still resume)."""
    from aigve.engine import RunConfig

    plain = RunConfig(metrics=["kid"])
    assert set(plain.fingerprint_dict()) == {"metrics", "metric_options", "window"}
    given = RunConfig(metrics=["kid"], backbone_options={"fid_inception": {"weights": "/w.pth"}})
    assert given.fingerprint_dict()["backbone_options"] == {"fid_inception": {"weights": "/w.pth"}}


def test_a_changed_dataset_field_refuses_resume_and_plain_datasets_keep_their_fingerprint() -> None:
    """A scorer may read any field of an entry (``extra``): a journal made with other field values is not
    resumed; entries without extra fields hash as before the fields counted (old journals still resume)."""
    from aigve.engine.journal import run_fingerprint

    cfg = {"metrics": ["x"]}
    plain = Dataset(name="d", entries=[Entry(id="a", generated=Path("/v/a.mp4"), prompt="p")])
    ref = hashlib.sha256(
        json.dumps(
            {"config": cfg, "entries": [["a", "/v/a.mp4", None, "p"]], "extra_reals": []},
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    assert run_fingerprint(cfg, plain) == ref

    def with_question(q: str) -> Dataset:
        return Dataset(
            name="d", entries=[Entry(id="a", generated=Path("/v/a.mp4"), prompt="p", extra={"question": q})]
        )

    assert run_fingerprint(cfg, with_question("is it red?")) == run_fingerprint(
        cfg, with_question("is it red?")
    )
    assert run_fingerprint(cfg, with_question("is it red?")) != run_fingerprint(
        cfg, with_question("is it blue?")
    )


def test_backbone_options_fill_in_and_a_metric_option_wins() -> None:
    """A backbone option reaches every request for that backbone; a metric's own option for the same key
    wins for that metric; requests for other backbones are untouched."""
    from aigve.engine import RunConfig
    from aigve.engine.plan import Planner
    from aigve.metrics.catalog import get_metric_class

    cfg = RunConfig(metrics=["kid", "is"], backbone_options={"fid_inception": {"weights": "/shared.pth"}})
    planner = Planner(Dataset("d", []), cfg)
    kid = get_metric_class("kid")(weights="/own.pth")
    is_ = get_metric_class("is")()
    kid_reqs = [planner._effective(kid, r) for r in kid.requests()]
    is_reqs = [planner._effective(is_, r) for r in is_.requests()]
    assert {r.side for r in kid_reqs} == {"generated", "real"} and is_reqs
    assert all(dict(r.options)["weights"] == "/own.pth" for r in kid_reqs)
    assert all(dict(r.options)["weights"] == "/shared.pth" for r in is_reqs)
    flicker = get_metric_class("flicker")()
    (fl_req,) = [planner._effective(flicker, r) for r in flicker.requests()]
    assert "weights" not in dict(fl_req.options)


def test_engine_ray_without_ray_names_the_extra(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--engine ray`` without the ``distributed`` extra: the error gives the install line (exit 2 on the CLI),
    before any video is read."""
    import sys

    from aigve import evaluate
    from aigve.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'aigve\[distributed\]'"):
        evaluate(dataset, ["flicker"], engine="ray", cache_dir=tmp_path / "c", bootstrap=0, report=False)
    with pytest.raises(UsageError, match="unknown engine 'spark': use local or ray"):
        evaluate(dataset, ["flicker"], engine="spark", cache_dir=tmp_path / "c", bootstrap=0, report=False)
