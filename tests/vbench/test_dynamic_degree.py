"""vbench_dynamic_degree against VBench's ``dynamic_degree.py`` (Vchitect/VBench 45e79ec).

- Always: VBench's ``InputPadder``, ``get_score``, ``set_params`` and ``check_move`` restated below vs ours; the
  scorer vs torchvision's ``raft_large`` called as VBench calls RAFT (seeded random weights saved to a file).
- With the original RAFT code (``vbench/third_party/RAFT/core`` of the ``vbench==0.1.5`` wheel, which imports only
  torch/numpy/scipy): set ``AIGVE_VBENCH_SRC`` to the unpacked wheel (``pip download vbench==0.1.5 --no-deps`` +
  unzip; never committed) and the original network with seeded random weights, saved as VBench's checkpoint
  (``module.`` keys), is loaded through our key conversion and compared flow for flow (1e-4 px) and decision for
  decision.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aigve.backbones.vbench import (
    VBenchRaftExtractor,
    pad_to_8,
    raft_original_to_torchvision,
    top5_mean_magnitude,
    vbench_dynamic_stride,
)
from aigve.metrics.vbench import VBenchDynamicDegree, dynamic_decision
from aigve.types import Entry


# ---------------------------------------------------------------- restated from VBench 45e79ec
class InputPadder:
    def __init__(self, dims):
        self.ht, self.wd = dims[-2:]
        pad_ht = (((self.ht // 8) + 1) * 8 - self.ht) % 8
        pad_wd = (((self.wd // 8) + 1) * 8 - self.wd) % 8
        self._pad = [pad_wd // 2, pad_wd - pad_wd // 2, pad_ht // 2, pad_ht - pad_ht // 2]

    def pad(self, *inputs):
        return [F.pad(x, self._pad, mode="replicate") for x in inputs]


def get_score(flo):
    flo = flo[0].permute(1, 2, 0).cpu().numpy()
    u, v = flo[:, :, 0], flo[:, :, 1]
    rad = np.sqrt(np.square(u) + np.square(v))
    h, w = rad.shape
    cut_index = int(h * w * 0.05)
    return np.mean(abs(np.sort(-rad.flatten()))[:cut_index]).item()


def set_params(frame, count):
    scale = min(list(frame.shape)[-2:])
    return {"thres": 6.0 * (scale / 256.0), "count_num": round(4 * (count / 16.0))}


def check_move(params, score_list):
    count = 0
    for score in score_list:
        if score > params["thres"]:
            count += 1
        if count >= params["count_num"]:
            return True
    return False


def frames_moving(t: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h + 8 * t, w + 8 * t, 3)).astype(np.uint8)
    base = np.asarray(torch.nn.functional.avg_pool2d(torch.from_numpy(base).permute(2, 0, 1)[None].float(), 5, 1, 2)[0].permute(1, 2, 0)).astype(np.uint8)  # fmt: skip
    return np.stack([base[3 * i : 3 * i + h, 2 * i : 2 * i + w] for i in range(t)])


# ---------------------------------------------------------------- always
def test_padding_score_params_and_decision_equal_vbench() -> None:
    rng = np.random.default_rng(0)
    for h, w in [(120, 161), (128, 128), (100, 250)]:
        x = torch.from_numpy(rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32))
        assert torch.equal(pad_to_8(x), InputPadder(x.shape).pad(x)[0])
        flo = torch.from_numpy(rng.standard_normal((1, 2, h, w)).astype(np.float32) * 5)
        assert top5_mean_magnitude(flo[0].numpy()) == pytest.approx(get_score(flo), rel=1e-6)
    for n in range(0, 40):
        scores = rng.uniform(0, 10, n)
        p = set_params(torch.zeros(1, 3, 240, 320), n + 1)
        assert dynamic_decision(scores, p["thres"], p["count_num"]) == check_move(p, scores)
    assert [vbench_dynamic_stride(f) for f in (8, 12, 24, 25, 30, 60, 4)] == [1, 2, 3, 3, 4, 8, 1]


@pytest.fixture(scope="module")
def tv_raft_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from torchvision.models.optical_flow import raft_large

    torch.manual_seed(3)
    m = raft_large(weights=None)
    p = tmp_path_factory.mktemp("raft") / "raft_tv.pth"
    torch.save(m.state_dict(), p)
    return p


@pytest.mark.slow
def test_scorer_is_raft_large_as_vbench_calls_it(tv_raft_file: Path) -> None:
    from torchvision.models.optical_flow import raft_large

    fr = frames_moving(3, 128, 150, seed=1)
    sc = VBenchRaftExtractor(weights=str(tv_raft_file))
    ref = raft_large(weights=None)
    ref.load_state_dict(torch.load(tv_raft_file, weights_only=True))
    ref.eval()
    frames = [torch.from_numpy(f).permute(2, 0, 1).float()[None] for f in fr]
    scores = []
    with torch.no_grad():
        for a, b in zip(frames[:-1], frames[1:], strict=True):
            a, b = InputPadder(a.shape).pad(a, b)
            flow = ref(2 * (a / 255.0) - 1.0, 2 * (b / 255.0) - 1.0, num_flow_updates=20)[-1]
            scores.append(get_score(flow))
    out = sc.extract(fr, fps=8.0)
    assert np.allclose(out[:, 0], scores, atol=1e-5, rtol=0)
    p = set_params(frames[0], len(frames))
    assert out[0, 1] == p["thres"] and out[0, 2] == p["count_num"]
    got = VBenchDynamicDegree().score(Entry("v", Path("v.mp4")), {"flow": out})
    assert got["vbench_dynamic_degree"] == float(check_move(p, scores))


# ---------------------------------------------------------------- with the original RAFT code
def _original_raft():
    src = os.environ.get("AIGVE_VBENCH_SRC")
    if not src:
        pytest.skip(
            "set AIGVE_VBENCH_SRC to an unpacked vbench==0.1.5 wheel to compare with the original RAFT"
        )
    sys.path.insert(0, str(Path(src) / "vbench" / "third_party" / "RAFT"))
    try:
        import argparse

        from core.raft import RAFT  # type: ignore[import-not-found]

        return RAFT(argparse.Namespace(small=False, mixed_precision=False, alternate_corr=False))
    finally:
        sys.path.pop(0)


@pytest.mark.slow
def test_original_raft_checkpoint_converted_gives_the_same_flow(tmp_path: Path) -> None:
    orig = _original_raft()
    torch.manual_seed(5)
    with torch.no_grad():
        for name, buf in orig.named_buffers():  # informative batch-norm statistics in the context encoder
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buf.normal_(0, 0.1)
    orig.eval()
    ckpt = tmp_path / "raft-things.pth"
    torch.save({f"module.{k}": v for k, v in orig.state_dict().items()}, ckpt)  # as VBench finds it
    converted = raft_original_to_torchvision(torch.load(ckpt, weights_only=True))
    from torchvision.models.optical_flow import raft_large

    raft_large(weights=None).load_state_dict(converted, strict=True)
    sc = VBenchRaftExtractor(weights=str(ckpt))
    fr = frames_moving(4, 130, 136, seed=2)
    frames = [torch.from_numpy(f).permute(2, 0, 1).float()[None] for f in fr]
    ref_scores = []
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(frames[:-1], frames[1:], strict=True)):
            a, b = InputPadder(a.shape).pad(a, b)
            _, flow_up = orig(a, b, iters=20, test_mode=True)
            ours = sc.flow(fr[i], fr[i + 1])
            assert np.abs(ours - flow_up[0].numpy()).max() < 1e-4
            ref_scores.append(get_score(flow_up))
    out = sc.extract(fr, fps=8.0)
    assert np.allclose(out[:, 0], ref_scores, atol=1e-4, rtol=0)
    p = set_params(frames[0], len(frames))
    got = VBenchDynamicDegree().score(Entry("v", Path("v.mp4")), {"flow": out})
    assert got["vbench_dynamic_degree"] == float(check_move(p, ref_scores))


# ---------------------------------------------------------------- static filter (static_filter.py, 45e79ec)
def static_get_score(flo):
    flo = flo[0].permute(1, 2, 0).cpu().numpy()
    rad = np.sqrt(np.square(flo[:, :, 0]) + np.square(flo[:, :, 1]))
    h, w = rad.shape
    cut_index = int(h * w * 0.02)
    return np.mean(abs(np.sort(-rad.flatten()))[:cut_index])


def check_static(params, score_list):
    thres, count_num, count = params["thres"], params["count_num"], 0
    for score in score_list[:-2]:
        if score > thres:
            count += 1
        if count > count_num:
            return False
    for score in score_list[-2:]:  # noqa: SIM110 - restated as VBench writes it
        if score > thres * count_num * 2:
            return False
    return True


def test_static_filter_equals_vbench(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs (consecutive, then first->last and last->first), top-2 % score, thresholds and decision as
    ``StaticFilter.infer``; the flow itself is RAFT (checked above), stubbed here by a deterministic function."""
    from aigve.backbones.vbench import VBenchRaftStaticExtractor, top2_mean_magnitude
    from aigve.metrics.vbench import VBenchTemporalFlickering, static_decision

    rng = np.random.default_rng(4)
    flo = torch.from_numpy(rng.standard_normal((1, 2, 64, 80)).astype(np.float32) * 3)
    assert top2_mean_magnitude(flo[0].numpy()) == pytest.approx(float(static_get_score(flo)), rel=1e-6)
    for n in range(3, 40):
        scores = list(rng.uniform(0, 4, n))
        p = {"thres": 3.0 * (130 / 256.0), "count_num": round(2 * ((n - 1) / 16.0))}
        assert static_decision(np.array(scores), p["thres"], p["count_num"]) == check_static(p, scores)

    def fake_flow(self, a, b):  # magnitude depends on which two frames: the pair order is checked
        d = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())
        return np.full((2, a.shape[0], a.shape[1]), d / 10, dtype=np.float32)

    monkeypatch.setattr(VBenchRaftStaticExtractor, "flow", fake_flow)
    fr = frames_moving(6, 130, 140, seed=3)
    out = VBenchRaftStaticExtractor().extract(fr, fps=8.0)
    firsts = [*fr[:-1], fr[0], fr[-1]]
    seconds = [*fr[1:], fr[-1], fr[0]]
    ref = [float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean()) / 10 * np.sqrt(2) for a, b in zip(firsts, seconds, strict=True)]  # fmt: skip
    assert np.allclose(out[:, 0], ref, rtol=1e-5)
    params = {"thres": 3.0 * (130 / 256.0), "count_num": round(2 * (6 / 16.0))}
    assert out[0, 1] == params["thres"] and out[0, 2] == params["count_num"]
    metric = VBenchTemporalFlickering(static_filter=True)
    assert [r.extractor for r in metric.requests()] == ["frame_absdiff", "vbench_raft_static"]
    got = metric.score(Entry("v", Path("v.mp4")), {"absdiff": np.ones((5, 1)), "static": out})
    assert got["vbench_temporal_flickering_static"] == float(check_static(params, list(out[:, 0])))


def test_static_filter_weights_are_in_the_request_the_engine_builds() -> None:
    """``weights`` reaches ``vbench_raft_static`` through ``requests()`` (what the engine plans from), not the
    ``frame_absdiff`` request."""
    from aigve.metrics.vbench import VBenchTemporalFlickering

    metric = VBenchTemporalFlickering(static_filter=True, weights="raft.pth")
    for reqs in (metric.requests(), metric.effective_requests()):
        assert {r.extractor: dict(r.options) for r in reqs} == {
            "frame_absdiff": {},
            "vbench_raft_static": {"weights": "raft.pth"},
        }


def test_suite_leaves_out_videos_the_static_filter_rejects() -> None:
    from aigve.results.records import MetricAggregate, OutputValue, Results
    from aigve.types import VideoRecord
    from aigve.vbench.suite import dimension_values

    tf = "vbench_temporal_flickering"
    recs = [
        VideoRecord("a", tf, tf, 0.99),
        VideoRecord("a", tf, f"{tf}_static", 1.0),
        VideoRecord("b", tf, tf, 0.80),
        VideoRecord("b", tf, f"{tf}_static", 0.0),
    ]
    agg = MetricAggregate(tf, "multi_aspect", "video", "x", {tf: OutputValue(0.895, 2, True)}, 2, 0)
    res = Results(aggregates={tf: agg}, records=recs, entries=[], provenance={}, errors=[])
    assert dimension_values(res) == {"temporal_flickering": 0.99}
