"""The ``gstvqa`` metric: sequence preparation as the authors' test script, padding policy for short clips,
batch-size independence, missing-weights behaviour (per-video errors, the run goes on), catalogue row.

Seeded random weights only (no released checkpoint can be downloaded here); the network itself is compared
with the authors' code through tests/golden/gstvqa_net.npz in tests/backbones/test_gstvqa.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aigve.backbones.gstvqa import gstvqa_raw_scores, prepare_sequence
from aigve.backbones.nets.gstvqa import CHECKPOINT_SCALES, FEATURE_DIM, KONVID_SCALE, MIN_FRAMES
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.catalog import get_metric_class
from aigve.metrics.vqa import GSTVQA
from aigve.types import Entry
from tests.backbones.staged import build_scorer, staged_score
from tests.backbones.test_gstvqa import (
    _extractor,
    _their_pipeline_ours,
    seeded_clip,
    seeded_features,
    seeded_net,
)

ENTRY = Entry(id="v", generated=Path("v.mp4"))


class _Seeded:
    """A gstvqa metric whose scorer runs the seeded network (as the engine would build it)."""

    def __init__(self, **opts) -> None:
        self.metric = GSTVQA(**opts)
        self.scorer = build_scorer(self.metric)
        self.scorer.set_network(seeded_net(), "seeded")

    def score(self, entry: Entry, feats: dict) -> dict[str, float]:
        return staged_score(self.metric, entry, feats["frames"], scorer=self.scorer)


def _metric(**opts) -> _Seeded:
    return _Seeded(**opts)


def test_prepare_sequence_follows_the_authors_test_dataset() -> None:
    f = seeded_features(520, 1)
    seq, mean_var = prepare_sequence(f)
    assert seq.shape == (500, 2944)
    np.testing.assert_array_equal(seq, f[:500])
    # population std over ALL rows (before the 500-row cut), like np.std(features1, 0)
    np.testing.assert_allclose(mean_var, np.std(f[:, :FEATURE_DIM].astype(np.float64), axis=0), rtol=1e-6)


def test_padding_policies_for_short_clips() -> None:
    f = seeded_features(16, 2)
    seq, mv = prepare_sequence(f, pad="repeat_last")
    assert seq.shape[0] == MIN_FRAMES
    np.testing.assert_array_equal(seq[:16], f)
    np.testing.assert_array_equal(seq[16:], np.repeat(f[-1:], MIN_FRAMES - 16, axis=0))
    np.testing.assert_allclose(mv, f[:, :FEATURE_DIM].std(axis=0), rtol=1e-6)  # real frames only
    seq, _ = prepare_sequence(f, pad="stretch")
    rows = [i * 16 // MIN_FRAMES for i in range(MIN_FRAMES)]
    np.testing.assert_array_equal(seq, f[rows])
    assert rows[0] == 0 and rows[-1] == 15 and sorted(rows) == rows
    with pytest.raises(ValueError, match="at least 29"):
        prepare_sequence(f, pad="none")
    with pytest.raises(UsageError):
        prepare_sequence(f, pad="black")


def test_score_equals_network_on_prepared_input_and_mos_scale() -> None:
    m = _metric()
    f = seeded_features(64, 3)
    out = m.score(ENTRY, {"frames": f})
    assert out["gstvqa_raw"] == pytest.approx(_their_pipeline_ours(f, seeded_net()), rel=1e-6, abs=1e-7)
    assert out["gstvqa"] == pytest.approx(KONVID_SCALE * out["gstvqa_raw"], rel=1e-12)
    # a short clip with repeat_last = the network on the explicitly repeated rows (mean_var from real frames)
    short = seeded_features(10, 4)
    padded = np.concatenate([short, np.repeat(short[-1:], MIN_FRAMES - 10, axis=0)])
    raw = m.score(ENTRY, {"frames": short})["gstvqa_raw"]
    import torch

    net = seeded_net()
    with torch.no_grad():
        ref = net(
            torch.from_numpy(padded)[None],
            torch.tensor([MIN_FRAMES]),
            torch.from_numpy(short[:, :FEATURE_DIM].astype(np.float64).std(axis=0).astype(np.float32))[None],
        )
    assert raw == pytest.approx(float(ref[0]), rel=1e-6, abs=1e-7)
    with pytest.raises(MetricInputError, match="at least 29 frames"):
        _metric(pad="none").score(ENTRY, {"frames": short})


# the authors' cross_test.py: output x the training set's largest MOS
AUTHORS_SCALES = {"konvid": 4.64, "cvd14": 93.38, "liveq": 73.643, "livev": 94.287}
AUTHORS_RANGES = {"konvid": [1.0, 5.0], "cvd14": [0.0, 100.0], "liveq": [0.0, 100.0], "livev": [0.0, 100.0]}


@pytest.mark.parametrize("checkpoint", sorted(AUTHORS_SCALES))
def test_scale_follows_the_checkpoint(checkpoint: str) -> None:
    assert CHECKPOINT_SCALES[checkpoint] == AUTHORS_SCALES[checkpoint]
    f = seeded_features(40, 5)
    for opts in ({}, {"weights": "/x/my-copy.pth"}):  # an explicit path keeps the checkpoint's scale
        m = _metric(checkpoint=checkpoint, **opts)
        out = m.score(ENTRY, {"frames": f})
        assert out["gstvqa"] == pytest.approx(AUTHORS_SCALES[checkpoint] * out["gstvqa_raw"], rel=1e-12)
        assert m.metric.mos_scale == AUTHORS_SCALES[checkpoint]
        assert m.scorer.weights_name == f"gstvqa_{checkpoint}"
        prov = m.metric.provenance()
        assert prov["checkpoint"] == checkpoint and prov["mos_scale"] == AUTHORS_SCALES[checkpoint]
        assert prov["gstvqa_nominal_range"] == AUTHORS_RANGES[checkpoint]
    # mos_scale still overrides, whatever the checkpoint (and provenance says which was used)
    m = _metric(checkpoint=checkpoint, mos_scale=2.0)
    out = m.score(ENTRY, {"frames": f})
    assert out["gstvqa"] == pytest.approx(2.0 * out["gstvqa_raw"], rel=1e-12)
    assert m.metric.provenance()["mos_scale"] == 2.0


def test_default_checkpoint_is_konvid_and_bad_options_are_usage_errors() -> None:
    m = GSTVQA()
    assert m.options["checkpoint"] == "konvid" and m.options["mos_scale"] is None
    assert m.mos_scale == KONVID_SCALE
    assert "checkpoint" not in m.extractor_options()  # absent = konvid: default cache keys unchanged
    prov = m.provenance()
    assert prov["mos_scale"] == 4.64 and prov["gstvqa_nominal_range"] == [1.0, 5.0]
    assert prov["training_set"] == "KoNViD-1k"
    with pytest.raises(UsageError, match="checkpoint must be one of"):
        GSTVQA(checkpoint="youtube_ugc")
    with pytest.raises(UsageError, match="checkpoint must be one of"):
        build_scorer(GSTVQA(), checkpoint="konvid1k")
    for bad in (0, -1.0, "x"):
        with pytest.raises(UsageError, match="mos_scale"):
            GSTVQA(mos_scale=bad)


def test_two_checkpoints_are_two_scorer_identities() -> None:
    """The checkpoint is a scorer option, so its identity (cache key) differs, even with the same weights path."""
    ids = {}
    for ck in sorted(AUTHORS_SCALES):
        sc = build_scorer(GSTVQA(checkpoint=ck))
        sc.set_network(seeded_net(), "seeded")  # same network and sha: only the option tells them apart
        ids[ck] = repr(sc.identity())
        assert sc.options.get("checkpoint", "konvid") == ck
    assert len(set(ids.values())) == 4
    a = build_scorer(GSTVQA(checkpoint="cvd14", weights="/x/w.pth")).options
    b = build_scorer(GSTVQA(checkpoint="livev", weights="/x/w.pth")).options
    assert a != b and a["checkpoint"] == "cvd14" and b["checkpoint"] == "livev"


def test_missing_non_default_checkpoint_names_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError, match="training-all-data-GSTVQA-liveq-EXP0-best"):
        build_scorer(GSTVQA(checkpoint="liveq")).ensure_loaded()


def test_batch_size_independent_and_deterministic() -> None:
    net = seeded_net()
    seqs = [seeded_features(n, 10 + n) for n in (12, 29, 33, 80, 130)]
    one = gstvqa_raw_scores(net, seqs, batch_size=1)
    many = gstvqa_raw_scores(net, seqs, batch_size=4)
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(gstvqa_raw_scores(net, seqs, batch_size=4), many)


def test_end_to_end_with_seeded_backbone_on_frames() -> None:
    """Extractor -> metric on real pixels (seeded VGG + seeded head): finite, and a repeated run is identical."""
    frames = seeded_clip(t=6, h=48, w=64)
    feats = _extractor().extract(frames)
    a = _metric().score(ENTRY, {"frames": feats})
    b = _metric().score(ENTRY, {"frames": _extractor(batch_size=2).extract(frames)})
    assert np.isfinite(a["gstvqa"])
    assert a["gstvqa_raw"] == pytest.approx(b["gstvqa_raw"], rel=1e-4, abs=1e-5)


def test_catalogue_row_and_options() -> None:
    cls = get_metric_class("gstvqa")
    spec = cls.spec
    assert spec.family == "nn_based_video" and spec.inputs == ("generated",)
    assert spec.extra == "nnvqa" and spec.weights == ("gstvqa_konvid", "tv_vgg16")
    assert [o.name for o in spec.outputs] == ["gstvqa", "gstvqa_raw"]
    assert spec.higher_is_better is True and spec.primary.range == (1.0, 5.0)
    from aigve.weights import weight_names

    assert set(spec.weights) <= set(weight_names())
    m = cls(weights="/x/gst.pth", vgg_weights="/x/vgg.pth", tap="pool", resize=256, protocol="uniform", n=32)
    # the gstvqa scorer gets its checkpoint; the vgg16_meanstd extractor it reads gets the VGG options
    assert build_scorer(m).upstream() == (
        "vgg16_meanstd",
        {"weights": "/x/vgg.pth", "tap": "pool", "resize": 256},
    )
    assert m.extractor_options()["weights"] == "/x/gst.pth"
    req = m.requests()[0]
    assert req.extractor == "gstvqa" and req.sampler.protocol == "uniform" and req.sampler.n == 32
    with pytest.raises(UsageError):
        cls(pad="black")
    with pytest.raises(UsageError):
        cls(max_len=10)
    with pytest.raises(UsageError):
        cls(protocol="uniform")  # needs n


def test_missing_checkpoint_fails_each_video_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError) as exc:
        build_scorer(GSTVQA()).ensure_loaded()  # the engine loads it once; its error fails every video
    msg = str(exc.value)
    assert "training-all-data-GSTVQA-konvid-EXP0-best" in msg and "put it at" in msg
    assert "gstvqa.weights=PATH" in msg
    with pytest.raises(WeightsError, match="does not exist"):
        build_scorer(GSTVQA(weights=str(tmp_path / "nope"))).ensure_loaded()


def test_engine_run_continues_when_weights_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.video.encode import write_video

    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    entries = []
    for i in range(2):
        p = write_video(tmp_path / f"v{i}.mp4", seeded_clip(seed=i, t=4, h=48, w=64), fps=8)
        entries.append(Entry(id=f"v{i}", generated=p))
    cfg = RunConfig(metrics=["gstvqa"], cache_dir=tmp_path / "cache", bootstrap=0, progress=False)
    res = Engine(Dataset("t", entries), cfg).run()
    recs = [r for r in res.records if r.metric == "gstvqa"]
    assert {r.video_id for r in recs} == {"v0", "v1"}
    assert all(r.value is None and "vgg16-397923af.pth" in (r.error or "") for r in recs)
    assert res.aggregates["gstvqa"].n_errors == 2
