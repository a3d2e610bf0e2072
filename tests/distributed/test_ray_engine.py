"""``--engine ray`` on a one-node Ray started here on 127.0.0.1 (two CPUs): the same records, set-level values,
CIs and cache files as the local engine; an actor killed mid-run; bad files; resume; the CLI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from aigve import evaluate
from aigve.cli import main
from aigve.engine.ray_engine import local_settings
from tests.distributed.helpers import (
    METRICS,
    aggregates,
    cache_arrays,
    is_loopback,
    kill,
    listening_sockets,
    worker_pids,
)


@pytest.fixture(scope="module")
def cluster(ray_env: None, ray_tmp: Path) -> Iterator[set[tuple[str, int]]]:
    """One Ray for the module; yields the listening sockets it opened."""
    before = listening_sockets()
    with local_settings():  # what a run without --ray-address uses: servers on 127.0.0.1
        ray.init(
            num_cpus=2,
            num_gpus=0,
            include_dashboard=False,
            object_store_memory=256 * 2**20,
            log_to_driver=False,
            _temp_dir=str(ray_tmp / "one"),
        )
    opened = listening_sockets() - before
    yield opened
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_run(
    cluster: Any, dataset: Any, run_kwargs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """The module's Ray run, disturbed: its model actor is killed (SIGKILL) once the first group came back.
    Ray restarts the actor and retries the group it was working on. (``test_ray_two_nodes`` checks an
    undisturbed run against the local engine the same way.)"""
    cache = tmp_path_factory.mktemp("cache-ray")
    killed: list[int] = []
    lock = threading.Lock()

    def progress(done: int, total: int) -> None:
        with lock:
            if not killed and done >= 2:
                pids = worker_pids()
                assert len(pids) == 1, pids
                kill(pids[0])
                killed.append(pids[0])

    res = evaluate(
        dataset, METRICS, cache_dir=cache, engine="ray", ray_workers=1, progress=progress, **run_kwargs
    )
    return res, cache, killed


def test_ray_listens_on_loopback_only(cluster: set[tuple[str, int]]) -> None:
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert cluster, "Ray opened no listening socket?"
    assert all(is_loopback(addr) for addr, _ in cluster), sorted(cluster)


def test_same_records_values_cis_and_cache_files_as_the_local_engine(local_run: Any, ray_run: Any) -> None:
    (a, cache_a), (b, cache_b, _) = local_run, ray_run
    assert b.provenance["engine"]["name"] == "ray" and b.provenance["engine"]["groups"] == 5
    assert a.exit_code == b.exit_code == 0, (a.errors, b.errors)
    # per-video records: equal, in the same (dataset) order
    pa, pb = a.per_video, b.per_video
    assert list(pa["video_id"]) == list(pb["video_id"])
    assert pa.equals(pb)
    # set-level values (FID, KID) and every CI: equal, not close
    assert aggregates(a) == aggregates(b)
    for m in ("fid", "kid"):
        assert a.aggregates[m].value is not None and a.aggregates[m].outputs[m].ci_low is not None
    # the same cache files, bitwise
    arrs_a, arrs_b = cache_arrays(cache_a), cache_arrays(cache_b)
    assert set(arrs_a) == set(arrs_b) and len(arrs_a) >= 20
    for k, v in arrs_a.items():
        assert v.dtype == arrs_b[k].dtype and np.array_equal(v, arrs_b[k]), k


def test_resume_decodes_nothing(ray_run: Any, dataset: Any, run_kwargs: dict[str, Any]) -> None:
    first, cache, _ = ray_run
    again = evaluate(dataset, METRICS, cache_dir=cache, engine="ray", ray_workers=1, **run_kwargs)
    eng = again.provenance["engine"]
    assert eng.get("groups", 0) == 0  # every video was in the cache: nothing went to the cluster
    assert again.provenance["timings_seconds"].get("decode", 0.0) == 0.0
    assert again.provenance["cache"]["misses"] == 0
    assert again.per_video.equals(first.per_video)
    assert aggregates(again) == aggregates(first)


def test_an_actor_killed_mid_run_changes_nothing(ray_run: Any, local_run: Any) -> None:
    """The run completes with every video once and the local engine's numbers (the records and values are
    compared in full by the test above)."""
    res, _, killed = ray_run
    assert killed
    assert res.provenance["engine"]["worker_processes"] >= 2  # the killed actor and its replacement
    assert res.exit_code == 0, res.errors
    pv = res.per_video
    assert not pv.duplicated(["video_id", "metric", "output"]).any()
    assert len(pv) == len(local_run[0].per_video)


def test_bad_files_are_error_records_exit_3_and_the_rest_is_scored(
    cluster: Any, videos: Path, run_kwargs: dict[str, Any], tmp_path: Path, local_run: Any
) -> None:
    weights = run_kwargs["backbone_options"]["fid_inception"]["weights"]
    out = tmp_path / "out"
    code = main(
        [
            "run",
            "--generated",
            str(videos / "bad"),
            "--real",
            str(videos / "real"),
            "--metrics",
            ",".join(METRICS),
            "--backbone-option",
            f"fid_inception.weights={weights}",
            "--max-len",
            "2",
            "--batch-size",
            "2",
            "--num-workers",
            "0",
            "--bootstrap",
            "50",
            "--set-bootstrap",
            "20",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--engine",
            "ray",
            "--ray-workers",
            "1",
            "--no-report",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 3
    import pandas as pd

    pv = pd.read_csv(out / "per_video.csv")
    flick = pv[(pv["metric"] == "flicker") & (pv["output"] == "flicker")].set_index("video_id")
    assert flick.loc["notes", "error"] and "not a video" in flick.loc["notes", "error"]
    assert flick.loc["empty", "error"] and "empty" in flick.loc["empty", "error"]
    good = local_run[0].per_video
    good = good[(good["metric"] == "flicker") & (good["output"] == "flicker")].set_index("video_id")["value"]
    for vid, value in good.items():  # the five good videos: scored, the same values
        assert flick.loc[vid, "value"] == value


def test_a_judge_metric_on_the_workers_same_values_details_and_usage(cluster: Any, tmp_path: Path) -> None:
    """A prompt-reading scorer (VQAScore on an OpenAI-compatible endpoint, the scripted server of the judge
    tests on 127.0.0.1): the workers make the requests; values, per-video details and the provenance's
    request and token counts are the local run's."""
    from aigve.data.dataset import Dataset
    from aigve.types import Entry
    from aigve.video import write_video
    from tests.conftest import smooth_clip
    from tests.judges.chatserver import ChatServer

    vids = [
        write_video(tmp_path / f"j{i}.mp4", smooth_clip(t=4, h=32, w=32, seed=i), fps=8) for i in range(4)
    ]
    prompts = ["a red ball", "a blue car", "a red ball", "a green tree"]
    ds = Dataset(
        name="judge",
        entries=[
            Entry(id=f"j{i}", generated=v, prompt=p)
            for i, (v, p) in enumerate(zip(vids, prompts, strict=True))
        ],
    )
    results = {}
    with ChatServer() as srv:
        srv.responder = lambda seen: "Yes"
        srv.json_mode = True
        judge = {
            "backend": "endpoint",
            "model": "judge-model",
            "base_url": srv.base_url,
            "api_key": "test-key-ray",
        }
        opts = {
            "metric_options": {"vqascore": {"num_frames": 2}},
            "batch_size": 2,
            "report": False,
            "bootstrap": 0,
        }
        for engine in ("local", "ray"):
            results[engine] = evaluate(
                ds, "vqascore", judge=judge, engine=engine, ray_workers=1, cache_dir=tmp_path / engine, **opts
            )
    a, b = results["local"], results["ray"]
    assert a.exit_code == b.exit_code == 0, (a.errors, b.errors)
    assert a.per_video.equals(b.per_video)  # values and the per-video details (the judge's answers)
    ua = a.aggregates["vqascore"].provenance["usage"]
    ub = b.aggregates["vqascore"].provenance["usage"]
    assert ua == ub and ua["judge"]["requests"] == 8


def test_videos_in_memory_go_to_the_workers_with_the_dataset(cluster: Any) -> None:
    """``evaluate(array, engine="ray")``: the frames travel with the dataset to the actors (no file to decode);
    the values are the local engine's."""
    import torch

    from aigve.data.memory import memory_dataset
    from tests.conftest import smooth_clip

    ds = memory_dataset(np.stack([smooth_clip(6, 48, 48, seed=i) for i in range(4)]), fps=8.0)
    kw = {"use_cache": False, "bootstrap": 0, "report": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = evaluate(ds, ["flicker", "frame_consistency"], **kw)
    finally:
        torch.set_num_threads(threads)
    b = evaluate(ds, ["flicker", "frame_consistency"], engine="ray", ray_workers=1, **kw)
    assert a.exit_code == b.exit_code == 0, b.errors
    assert b.provenance["engine"]["groups"] == 1
    assert a.per_video.equals(b.per_video)


def test_resume_after_the_driver_dies(
    cluster: Any, dataset: Any, run_kwargs: dict[str, Any], local_run: Any, tmp_path: Path
) -> None:
    """The driver stops (KeyboardInterrupt) once 4 of 10 videos are journaled; ``--resume`` takes those from
    the journal, finds what the workers had stored in the cache, computes the rest, and ends with the local
    engine's results. The cache is given as a URL (``file://``): the workers open it through fsspec, as they
    would ``s3://``."""
    import time

    out, cache = tmp_path / "out", f"file://{tmp_path / 'cache'}"

    def die(done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(
            dataset,
            METRICS,
            cache_dir=cache,
            out_dir=out,
            engine="ray",
            ray_workers=1,
            progress=die,
            **run_kwargs,
        )
    journaled = [ln for ln in (out / "journal.jsonl").read_text().splitlines()[1:] if ln.strip()]
    assert len(journaled) == 4
    for _ in range(60):  # the abandoned run's actor gives its CPU back
        if not worker_pids():
            break
        time.sleep(0.5)
    res = evaluate(
        dataset, METRICS, cache_dir=cache, out_dir=out, resume=True, engine="ray", ray_workers=1, **run_kwargs
    )
    assert res.provenance["engine"].get("groups", 0) <= 3  # the journaled groups did not go out again
    assert res.per_video.equals(local_run[0].per_video)
    assert aggregates(res) == aggregates(local_run[0])


def test_driver_reports_a_cache_the_workers_cannot_see(
    cluster: Any, dataset: Any, run_kwargs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that does not find the driver's marker in the cache (a node-local path on a cluster) stops the
    run with the fix, instead of CIs read from features that are not there."""
    from aigve.engine import ray_engine
    from aigve.errors import UsageError

    monkeypatch.setattr(ray_engine.RayEngine, "_visibility_marker", lambda self, cache: "0" * 64)
    with pytest.raises(UsageError, match="do not see the feature cache .*--cache-dir"):
        evaluate(dataset, METRICS, cache_dir=tmp_path / "cache", engine="ray", ray_workers=1, **run_kwargs)


def test_weights_that_a_worker_cannot_load_stop_the_run_with_the_reason(
    cluster: Any, dataset: Any, run_kwargs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver loaded the weights; by the time the model actor starts they are gone (a node without them):
    the run stops naming the backbone, the node and the fix, instead of a "features missing" per video."""
    import shutil as sh

    from aigve.engine import ray_engine
    from aigve.errors import AigveError

    weights = tmp_path / "inception.safetensors"
    sh.copy(run_kwargs["backbone_options"]["fid_inception"]["weights"], weights)
    kw = {
        **run_kwargs,
        "backbone_options": {"fid_inception": {**run_kwargs["backbone_options"]["fid_inception"]}},
    }
    kw["backbone_options"]["fid_inception"]["weights"] = str(weights)
    probe = ray_engine.RayEngine._probe_all

    def probe_then_lose_the_weights(self: Any, units: Any, cache: Any) -> Any:
        out = probe(self, units, cache)
        weights.unlink()
        return out

    monkeypatch.setattr(ray_engine.RayEngine, "_probe_all", probe_then_lose_the_weights)
    with pytest.raises(
        AigveError,
        match=r"cannot run this evaluation: backbone fid_inception loaded on the driver but not on this node",
    ):
        evaluate(dataset, ["fid"], cache_dir=tmp_path / "cache", engine="ray", ray_workers=1, **kw)


def test_local_ray_is_started_and_stopped_for_a_run_without_address(
    ray_env: None, dataset: Any, run_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    """No Ray in the process and no address: the run starts a local one, on 127.0.0.1 only, and stops it."""
    if ray.is_initialized():
        ray.shutdown()  # the module's cluster: the fixture's shutdown is then a no-op
    before = listening_sockets()
    during: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        if not during:
            during["ip"] = ray.util.get_node_ip_address()
            during["opened"] = listening_sockets() - before

    one = type(dataset)(name=dataset.name, entries=list(dataset.entries[:1]), source=dataset.source)
    res = evaluate(
        one,
        ["flicker"],
        cache_dir=tmp_path / "cache",
        engine="ray",
        bootstrap=0,
        report=False,
        progress=progress,
    )
    assert res.exit_code == 0 and res.provenance["engine"]["address"] == "local"
    assert during["ip"] == "127.0.0.1"
    assert during["opened"] and all(is_loopback(a) for a, _ in during["opened"]), sorted(during["opened"])
    assert not ray.is_initialized()


def test_actors_always_leave_a_cpu_for_decoding() -> None:
    """Every actor holds its CPUs for the whole run: actors taking all CPUs would wait for ever on frames no
    decode task can produce. A default count is lowered; an explicit one that does not fit is refused."""
    from aigve.engine.plan import RunConfig
    from aigve.engine.ray_engine import RayEngine
    from aigve.errors import UsageError

    eng = RayEngine.__new__(RayEngine)
    eng.worker_config = RunConfig(metrics=["flicker"])  # 1 CPU per actor, 1 per decode task
    assert eng._fit_cpus(1, 2.0, explicit=True) == 1
    assert eng._fit_cpus(4, 3.0, explicit=False) == 2
    with pytest.raises(UsageError, match="--ray-workers 1 or fewer"):
        eng._fit_cpus(2, 2.0, explicit=True)
    with pytest.raises(UsageError, match="a cluster with more CPUs"):
        eng._fit_cpus(1, 1.0, explicit=False)


def test_backbones_with_frame_windows_streamed_by_the_workers(
    cluster: Any, dataset: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """simplevqa (SimpleVQA's key frame and SlowFast's 32-frame clip per second, declared as frame windows, and
    the head reading both) on a video that the decode tasks leave to the workers to stream
    (``stream_above_mib=0``: the same ``stream_plan`` the decode task calls says so) gives the local engine's
    values, decoded whole."""
    import functools

    import torch

    import aigve.api
    from aigve.backbones.nets.simplevqa import SimpleVQANet
    from aigve.backbones.nets.slowfast import SlowFastR50
    from aigve.data.dataset import Dataset
    from aigve.engine import RunConfig
    from aigve.engine.execute import stream_plan
    from aigve.types import Entry
    from aigve.video.sampling import ALL_FRAMES, Window
    from tests.backbones.test_slowfast import seeded_state

    one = Dataset("one", [Entry(id=e.id, generated=e.generated) for e in dataset.entries[:1]])
    svqa, sf = tmp_path / "UGC_BVQA_model.pth", tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"module." + k: v for k, v in seeded_state(SimpleVQANet().state_dict(), 3).items()}, svqa)
    torch.save({"model_state": seeded_state(SlowFastR50().state_dict(), 0)}, sf)
    kw: dict[str, Any] = {
        "metric_options": {"simplevqa": {"weights": str(svqa), "slowfast_weights": str(sf)}},
        "max_len": 3,
        "use_cache": False,
        "bootstrap": 0,
        "num_workers": 0,
        "report": False,
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = evaluate(one, ["simplevqa"], **kw)
    finally:
        torch.set_num_threads(threads)
    assert local.exit_code == 0 and local.per_video["value"].notna().all()
    streaming = functools.partial(RunConfig, stream_above_mib=0)
    cfg = streaming(metrics=["simplevqa"], window=Window(max_len=3))
    assert all(stream_plan(e.generated, cfg, [ALL_FRAMES]) is not None for e in one.entries)
    monkeypatch.setattr(aigve.api, "RunConfig", streaming)
    streamed = evaluate(one, ["simplevqa"], engine="ray", ray_workers=1, **kw)
    assert streamed.per_video.equals(local.per_video)
