"""clipsim / cliptemp / pickscore / blipsim through the engine: shared forward pass, error records, result files,
catalogue rows, and cliptemp's sensitivity on real video.

Weights: random (tiny CLIP models of the real architecture, see ``tests/backbones/vl_tiny.py``); the real
checkpoints cannot be downloaded here. The reference-implementation parity checks live in
``tests/backbones/test_clip.py`` and ``tests/backbones/test_blip.py``.

- sharing: with clipsim + cliptemp in one run, the ``clip`` extractor runs once per video (counted), and the
  values equal those computed directly from the extractor's output (1e-9: same arrays);
- cliptemp sensitivity (random weights, real video): on the AIGVE toy set (skipped if absent) the frames of two
  different videos interleaved score lower than either video in order; on test-made videos likewise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from aigve.backbones import clip as clip_mod  # noqa: E402
from aigve.backbones.clip import ClipExtractor  # noqa: E402
from aigve.data.dataset import Dataset  # noqa: E402
from aigve.engine import Engine, RunConfig  # noqa: E402
from aigve.metrics.catalog import all_specs, get_metric_class  # noqa: E402
from aigve.metrics.functional.similarity import consecutive_cosine  # noqa: E402
from aigve.metrics.vl_similarity import ClipSim, ClipTemp, frame_sampler  # noqa: E402
from aigve.results.writers import write_results  # noqa: E402
from aigve.types import Entry  # noqa: E402
from aigve.video.sampling import Sampler  # noqa: E402
from aigve.weights import weight_names  # noqa: E402
from tests.backbones.staged import staged_score  # noqa: E402
from tests.backbones.vl_tiny import make_tiny_clip  # noqa: E402
from tests.conftest import smooth_clip, toy_dir_or_none  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("clipm") / "tiny-clip", seed=0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from aigve.video.encode import write_video

    d = tmp_path_factory.mktemp("vids")
    return [write_video(d / f"v{i}.mp4", smooth_clip(t=10, seed=i), fps=8.0) for i in range(3)]


def test_catalogue_rows() -> None:
    names = {s.name: s for s in all_specs()}
    for n in ("clipsim", "cliptemp", "pickscore", "blipsim"):
        spec = names[n]
        assert spec.family == "vl_similarity" and spec.extra == "vlsim" and "transformers" in spec.requires
        assert set(spec.weights) <= set(weight_names())
    assert names["clipsim"].inputs == ("generated", "prompt") and names["cliptemp"].inputs == ("generated",)
    assert [o.name for o in names["clipsim"].outputs] == ["clip_cosine", "clipscore", "prompt_truncated"]
    assert names["clipsim"].outputs[1].range == (0.0, 100.0)
    assert get_metric_class("pickscore").spec.outputs[0].name == "pickscore"


def test_frame_sampling_option() -> None:
    assert ClipSim().requests()[0].sampler == Sampler("uniform", n=16)  # the default
    assert ClipSim(num_frames="all").requests()[0].sampler == Sampler("all")  # the original's choice
    assert frame_sampler(4) == Sampler("uniform", n=4)
    # clipsim's clip_text scorer reads the same clip image features as cliptemp (shared by default)
    from aigve.backbones.clip import ClipTextScorer

    (sim,), (temp,) = ClipSim().effective_requests(), ClipTemp().effective_requests()
    up_name, up_opts = ClipTextScorer(**dict(sim.options)).upstream()
    assert (up_name, tuple(sorted(up_opts.items())), sim.sampler) == (
        temp.extractor,
        temp.options,
        temp.sampler,
    )


def test_engine_shares_one_forward_pass_and_writes_results(
    clip_dir: Path, videos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = ClipExtractor.extract

    def counting(self: ClipExtractor, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        calls.append(len(frames))
        return real(self, frames, fps)

    monkeypatch.setattr(ClipExtractor, "extract", counting)
    entries = [
        Entry("a", videos[0], prompt="a red car"),
        Entry("b", videos[1], prompt=None),  # no prompt: error record for clipsim, cliptemp still scored
        Entry("c", videos[2], prompt="ein Hund 🐕"),
    ]
    opts = {"weights": str(clip_dir), "num_frames": 6}
    cfg = RunConfig(
        metrics=["clipsim", "cliptemp"],
        metric_options={"clipsim": opts, "cliptemp": opts},
        bootstrap=0,
        progress=False,
    )
    res = Engine(Dataset("t", entries), cfg).run()
    # each video's 6 frames encoded once for both metrics (the engine batches frames across videos: one call)
    assert sum(calls) == 18 and calls == [18]

    recs = {(r.video_id, r.metric, r.output): r for r in res.records}
    assert (
        recs[("b", "clipsim", "clip_cosine")].error
        and "no prompt" in recs[("b", "clipsim", "clip_cosine")].error
    )
    assert recs[("b", "cliptemp", "cliptemp")].error is None

    # values equal a direct computation from the extractor's output on the same sampled frames
    from aigve.video.decode import decode_video

    ext = ClipExtractor(**ClipSim(**opts).extractor_options())
    for e in (entries[0], entries[2]):
        clip = decode_video(e.generated)
        f = ext.extract(clip.frames[Sampler("uniform", n=6).select(clip.num_frames)])
        direct = staged_score(ClipSim(**opts), e, f)
        assert recs[(e.id, "clipsim", "clip_cosine")].value == pytest.approx(direct["clip_cosine"], abs=1e-9)
        assert recs[(e.id, "clipsim", "clipscore")].value == pytest.approx(direct["clipscore"], abs=1e-9)
        assert recs[(e.id, "cliptemp", "cliptemp")].value == pytest.approx(
            float(consecutive_cosine(f).mean()), abs=1e-9
        )
    agg = res.aggregates["clipsim"].outputs["clip_cosine"]
    vals = [recs[(i, "clipsim", "clip_cosine")].value for i in ("a", "c")]
    assert agg.value == pytest.approx(float(np.mean(vals)), abs=1e-12) and agg.n == 2

    paths = write_results(res, tmp_path / "out")
    data = json.loads(paths["clipsim_results.json"].read_text())
    assert data["CLIPSIM_Mean_Score"] == pytest.approx(agg.value)
    rows = {r["video_id"]: r for r in data["video_results"]}
    assert rows["a"]["clip_cosine"] == pytest.approx(vals[0]) and "error" in rows["b"]
    assert rows["c"]["prompt_gt"] == "ein Hund 🐕"


def test_one_model_load_serves_images_and_prompts_and_a_rerun_does_no_model_work(
    clip_dir: Path, videos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine hands the clip_text scorer the built clip extractor: CLIP is loaded once for both sides;
    with a feature cache, a rerun encodes no image and no prompt, and a changed prompt re-scores only that
    video (from its cached image embeddings: no image forward pass)."""
    loads: list[str] = []
    real_load = clip_mod.load_clip_model
    monkeypatch.setattr(clip_mod, "load_clip_model", lambda *a, **k: loads.append("x") or real_load(*a, **k))
    images: list[int] = []
    real_extract = ClipExtractor.extract
    monkeypatch.setattr(
        ClipExtractor,
        "extract",
        lambda self, f, fps=None: images.append(len(f)) or real_extract(self, f, fps),
    )
    texts: list[str] = []
    real_encode = clip_mod.ClipModel._encode_one
    monkeypatch.setattr(
        clip_mod.ClipModel, "_encode_one", lambda self, t: texts.append(t) or real_encode(self, t)
    )
    opts = {"weights": str(clip_dir), "num_frames": 4}

    def run(prompts: list[str]):
        entries = [Entry(f"v{i}", v, prompt=p) for i, (v, p) in enumerate(zip(videos, prompts, strict=True))]
        cfg = RunConfig(
            metrics=["clipsim", "pickscore", "cliptemp"],
            metric_options={
                "clipsim": opts,
                "cliptemp": opts,
                "pickscore": {**opts, "model": "clip_vit_b32"},
            },
            bootstrap=0,
            progress=False,
            cache_dir=tmp_path / "cache",
        )
        return Engine(Dataset("t", entries), cfg).run()

    first = run(["a cat", "a dog", "a cat"])
    # one model load; every video's 4 frames encoded once (batched across videos); each distinct prompt once
    assert len(loads) == 1 and sum(images) == 12 and sorted(texts) == ["a cat", "a dog"]
    loads.clear(), images.clear(), texts.clear()
    again = run(["a cat", "a dog", "a cat"])
    assert images == [] and texts == []
    assert [(r.video_id, r.output, r.value) for r in again.records] == [
        (r.video_id, r.output, r.value) for r in first.records
    ]
    changed = run(["a cat", "a bird", "a cat"])
    assert images == [] and texts == ["a bird"]
    val = {(r.video_id, r.metric, r.output): r.value for r in changed.records}
    old = {(r.video_id, r.metric, r.output): r.value for r in first.records}
    assert val[("v0", "clipsim", "clip_cosine")] == old[("v0", "clipsim", "clip_cosine")]
    assert val[("v1", "cliptemp", "cliptemp")] == old[("v1", "cliptemp", "cliptemp")]


def _interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = min(len(a), len(b))
    out = np.empty((2 * n, *a.shape[1:]), dtype=a.dtype)
    out[0::2], out[1::2] = a[:n], b[:n]
    return out


def test_cliptemp_drops_when_frames_of_two_videos_alternate(clip_dir: Path) -> None:
    ext = ClipExtractor(**ClipTemp(weights=str(clip_dir)).extractor_options())
    a, b = smooth_clip(t=8, seed=10, speed=1.0), smooth_clip(t=8, seed=11, speed=1.0)
    ta = ClipTemp().score(Entry("a", Path("a")), {"clip_image": ext.extract(a)})["cliptemp"]
    tb = ClipTemp().score(Entry("b", Path("b")), {"clip_image": ext.extract(b)})["cliptemp"]
    tm = ClipTemp().score(Entry("m", Path("m")), {"clip_image": ext.extract(_interleave(a, b))})["cliptemp"]
    assert tm < min(ta, tb)


@pytest.mark.toy
def test_cliptemp_toy_set_sensitivity(clip_dir: Path) -> None:
    toy = toy_dir_or_none()
    if toy is None:
        pytest.skip("AIGVE toy dataset not found (set AIGVE_TOY_DIR)")
    from aigve.video.decode import decode_video

    vids = sorted(toy.rglob("*.mp4"))[:2]
    ext = ClipExtractor(**ClipTemp(weights=str(clip_dir)).extractor_options())
    fa, fb = (decode_video(v).frames[::2] for v in vids)
    score = lambda fr: ClipTemp().score(Entry("x", Path("x")), {"clip_image": ext.extract(fr)})["cliptemp"]  # noqa: E731
    assert score(_interleave(fa, fb)) < min(score(fa), score(fb))
