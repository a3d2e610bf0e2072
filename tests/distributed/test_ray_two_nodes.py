"""``--engine ray`` on two Ray nodes simulated on this machine (``ray.cluster_utils.Cluster`` on loopback): a
head with one CPU and a worker node with two CPUs and one logical GPU. The model actor asks for a GPU, so it
runs on that node (on the CPU: torch sees no CUDA here); decode tasks may run on either node. The results are
the local engine's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster

from aigve import evaluate
from aigve.engine.ray_engine import local_settings
from tests.distributed.helpers import METRICS, aggregates, is_loopback, listening_sockets


@pytest.fixture(scope="module")
def two_nodes(ray_env: None, ray_tmp: Path) -> Iterator[tuple[str, set[tuple[str, int]]]]:
    """Yields the GPU node's id and the listening sockets the cluster opened."""
    before = listening_sockets()
    with local_settings():
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "num_gpus": 0,
                "include_dashboard": False,
                "object_store_memory": 128 * 2**20,
                "temp_dir": str(ray_tmp / "two"),
            },
        )
        gpu_node = cluster.add_node(num_cpus=2, num_gpus=1, object_store_memory=128 * 2**20)
        ray.init(address=cluster.address, log_to_driver=False)
    opened = listening_sockets() - before
    try:
        yield gpu_node.node_id, opened
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_two_nodes_on_loopback_model_stage_on_the_gpu_node_same_results(
    two_nodes: tuple[str, set[tuple[str, int]]],
    dataset: Any,
    run_kwargs: dict[str, Any],
    local_run: Any,
    tmp_path: Path,
) -> None:
    gpu_node, opened = two_nodes
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    assert opened and all(is_loopback(addr) for addr, _ in opened), sorted(opened)
    res = evaluate(
        dataset,
        METRICS,
        cache_dir=tmp_path / "cache",
        engine="ray",
        ray_workers=1,
        ray_gpus_per_worker=1,
        device="cpu",
        **run_kwargs,
    )
    eng = res.provenance["engine"]
    assert eng["nodes"] == 2 and eng["gpus_per_worker"] == 1
    assert eng["worker_nodes"] == [gpu_node]  # every group was scored by the actor on the GPU node
    assert res.per_video.equals(local_run[0].per_video)
    assert aggregates(res) == aggregates(local_run[0])
