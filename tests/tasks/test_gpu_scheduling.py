"""GPU scheduling of actor pools on real Ray with logical GPUs (Ray counts GPUs it is told about and
sets CUDA_VISIBLE_DEVICES per actor exactly as on a GPU node; torch sees no CUDA here).

The first test uses the session's GPU-less Ray; the others share one two-node cluster
(``ray.cluster_utils.Cluster``, 2 logical GPUs per node, on 127.0.0.1) started for this module,
after which the session's local Ray is started again for the tests that follow.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from magicvl.scoring.signals import get_signal
from magicvl.storage.options import StorageOptions
from magicvl.tasks.backends import load_backend
from magicvl.tasks.capacity import node_capacity, pool_size
from magicvl.tasks.executor import StepFailed, run_on_actors, run_units
from magicvl.tasks.resources import StepResources
from magicvl.tasks.unit import Outputs, Unit, UnitKey

pytestmark = pytest.mark.slow  # starts Ray clusters

class ProbeUnit(Unit):
    """Reports where it ran: node, CUDA_VISIBLE_DEVICES, Ray's GPU ids, pid, time span, model device.

    With ``barrier`` (a folder and a count), it waits until that many distinct actors have started a
    probe: it can only finish when the pool really runs that many actors at once."""

    step = "test-probe"

    def __init__(self, out_root: str, i: int, barrier: tuple[str, int] | None = None, hold: float = 0.0,
                 model: tuple[Any, Any] | None = None) -> None:  # fmt: skip
        super().__init__(out_root, StorageOptions())
        self.i, self.barrier, self.hold, self.model = i, barrier, hold, model

    def load_backend(self) -> Any:
        """With ``model`` (signal, params): the signal's real backend, loaded by the pool's actor."""
        return None if self.model is None else load_backend(*self.model)

    @property
    def marker_name(self) -> str:
        return str(self.i)

    def key(self) -> UnitKey:
        return UnitKey(str(self.i), self.step, "1", {})

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        import ray

        t0 = time.time()
        if self.barrier is not None:
            _wait_for(Path(self.barrier[0]), self.barrier[1])
        time.sleep(self.hold)
        model = getattr(backend, "model", None)
        return {
            "node": ray.get_runtime_context().get_node_id(),
            "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "pid": os.getpid(),
            "span": (t0, time.time()),
            "device": None if model is None else next(model.parameters()).device.type,
        }


def _wait_for(folder: Path, n: int, timeout: float = 120.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    end = time.monotonic() + timeout
    while len(list(folder.iterdir())) < n:
        if time.monotonic() > end:
            raise TimeoutError(f"only {len(list(folder.iterdir()))} of {n} actors ran at once")
        time.sleep(0.05)


def probes(root: Path, n: int, barrier: int | None = None, hold: float = 0.0, model=None) -> list[ProbeUnit]:
    b = (str(root / "barrier"), barrier) if barrier else None
    return [ProbeUnit(str(root), i, b, hold, model) for i in range(n)]


def idle_cluster(timeout: float = 60.0) -> None:
    """Wait until the previous test's actors (killed asynchronously) have given all 4 GPUs back."""
    import ray

    end = time.monotonic() + timeout
    while ray.available_resources().get("GPU", 0) < 4 and time.monotonic() < end:
        time.sleep(0.1)


def test_node_capacity_is_per_node_and_counts_every_reserved_resource():
    nodes = [{"Resources": {"CPU": 16, "GPU": 3}}, {"Resources": {"CPU": 16, "GPU": 8}}, {"Alive": False}]
    assert node_capacity(StepResources(num_gpus=2, num_cpus=4), nodes) == [1, 4]  # 11 GPUs, but 5 pairs fit
    assert node_capacity(StepResources(num_gpus=0.5, num_cpus=1), nodes) == [6, 16]
    assert node_capacity(StepResources(num_gpus=4, num_cpus=1), nodes) == [0, 2]
    small = [{"Resources": {"CPU": 8, "memory": 9 << 30}}]
    assert node_capacity(StepResources(num_cpus=1, memory=4 << 30), small) == [2]


def test_a_gpu_step_on_a_cluster_without_gpus_fails_once_before_any_unit_runs(tmp_path, ray_local):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    units = probes(tmp_path, 3)
    res = StepResources(num_gpus=1, num_cpus=0.5)
    with pytest.raises(StepFailed) as e:
        run_on_actors(units, "signal:perplexity", res, retries=0)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("signal:perplexity: each task/actor asks for 1 GPUs (resources num_gpus)")
    assert msg.endswith("(GPUs per node: [0]); no unit ran")
    with pytest.raises(StepFailed, match=r"^quality: each task/actor asks for 1 GPUs .* no unit ran$"):
        run_units(units, "quality", res)
    assert all(u.finished() is None for u in units) and not (tmp_path / "barrier").exists()


@pytest.fixture(scope="module")
def two_nodes():
    """Two nodes on 127.0.0.1 with 2 logical GPUs and 4 CPUs each; the session's Ray comes back afterwards."""
    import ray
    import ray.cloudpickle
    from ray.cluster_utils import Cluster

    from magicvl.flows.runtime import _ray_init

    had_session_ray = ray.is_initialized()
    ray.shutdown()
    args = {"num_cpus": 4, "num_gpus": 2, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={**args, "include_dashboard": False})
    try:
        cluster.add_node(**args)
        ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
        cluster.wait_for_nodes()
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the probe unit travels by value
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        if had_session_ray:
            _ray_init("local", 2)  # the session fixture's Ray, for the modules that follow


def test_pool_size_is_gpus_per_actor_capped_by_actors(two_nodes, tmp_path):
    idle_cluster()
    assert pool_size(StepResources(num_gpus=1, num_cpus=0.5), 100) == 4  # ⌊4 GPUs / 1⌋
    assert pool_size(StepResources(num_gpus=1, num_cpus=0.5, concurrency=3), 100) == 3  # capped by actors
    assert pool_size(StepResources(num_gpus=2, num_cpus=0.5), 100) == 2
    assert pool_size(StepResources(num_gpus=0.5, num_cpus=0.5), 100) == 8  # fractions share a GPU
    assert pool_size(StepResources(num_gpus=1, num_cpus=0.5), 2) == 2  # never more actors than units
    with pytest.raises(StepFailed, match=r"asks for 3 GPUs .* \(GPUs per node: \[2, 2\]\); no unit ran"):
        pool_size(StepResources(num_gpus=3, num_cpus=0.5), 100, "signal:vlm_loss@72b")

    res = run_on_actors(probes(tmp_path / "a", 8, barrier=4), "probe", StepResources(num_gpus=1, num_cpus=0.5))
    assert len({r["pid"] for r in res}) == 4  # four actors ran at once (the barrier needs all four)
    seats = {(r["node"], r["cvd"]) for r in res}
    assert len(seats) == 4 and all(r["cvd"] == ",".join(r["gpu_ids"]) for r in res)  # each its own GPU
    assert len({node for node, _ in seats}) == 2 and {c for _, c in seats} == {"0", "1"}  # two per node


def test_a_two_gpu_actor_sees_two_gpus_of_one_node(two_nodes, tmp_path):
    idle_cluster()
    res = run_on_actors(probes(tmp_path, 4, barrier=2), "probe", StepResources(num_gpus=2, num_cpus=0.5))
    by_actor = {r["pid"]: r for r in res}
    assert len(by_actor) == 2 and len({r["node"] for r in by_actor.values()}) == 2
    for r in by_actor.values():
        assert sorted(r["cvd"].split(",")) == ["0", "1"] and sorted(r["gpu_ids"]) == ["0", "1"]


def test_two_steps_sharing_the_gpus_never_oversubscribe_them(two_nodes, tmp_path):
    idle_cluster()
    results: dict[str, list] = {}

    def step(name: str) -> None:
        units = probes(tmp_path / name, 6, hold=0.4)
        results[name] = run_on_actors(units, name, StepResources(num_gpus=1, num_cpus=0.5))

    threads = [threading.Thread(target=step, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(results) == ["first", "second"] and all(len(r) == 6 for r in results.values())
    runs = [(r["node"], g, r["pid"], r["span"]) for rs in results.values() for r in rs for g in r["gpu_ids"]]
    assert len({(node, g) for node, g, _, _ in runs}) <= 4
    for node, g, pid, (a0, a1) in runs:
        for node2, g2, pid2, (b0, b1) in runs:
            if (node, g) == (node2, g2) and pid != pid2:
                assert a1 <= b0 or b1 <= a0, f"GPU {g} of node {node[:8]} held by two actors at once"


def test_a_model_step_spreads_over_both_nodes_and_runs_on_cpu_under_auto(two_nodes, tmp_path, causal_lm_dir):
    idle_cluster()
    perplexity = get_signal("perplexity")
    params = perplexity.params(model=str(causal_lm_dir), device="auto", dtype="float32")
    res = run_on_actors(probes(tmp_path, 4, barrier=2, model=(perplexity, params)), "signal:perplexity",
                        StepResources(num_gpus=1, num_cpus=0.5, concurrency=2))  # fmt: skip
    assert len({r["node"] for r in res}) == 2  # one actor per node, not both packed on one
    assert all(r["gpu_ids"] and r["device"] == "cpu" for r in res)  # Ray gave a GPU id; torch has no CUDA


def test_validate_refuses_a_step_wider_than_every_node(two_nodes, tmp_path):
    from magicvl.flows.gpu_plan import check_cluster
    from magicvl.flows.recipe import load_recipe

    paper = load_recipe(Path(__file__).resolve().parents[2] / "flows" / "recipes" / "paper.yaml")
    problems, checked = check_cluster(paper)
    assert checked == "GPUs per node of the connected Ray cluster: [2.0, 2.0]"
    assert problems == [
        "cross_modal.models.72b.resources.num_gpus is 4: more GPUs per actor than any node of "
        "the connected Ray cluster has (GPUs per node: [2.0, 2.0])"
    ]
