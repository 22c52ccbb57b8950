"""Per-step resources: validated in the recipe, and what Ray reserves for each task and actor."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from magicvl.flows.recipe import RecipeError, parse_recipe
from magicvl.storage.options import StorageOptions
from magicvl.tasks.executor import run_on_actors, run_units
from magicvl.tasks.resources import StepResources
from magicvl.tasks.unit import Outputs, Unit, UnitKey

pytestmark = pytest.mark.slow  # starts Ray

BASE = {"output": "out", "datasets": [{"name": "d", "format": "jsonl", "path": "d.jsonl"}],
        "signals": {"image_entropy": {}}}  # fmt: skip


def test_recipe_resources_are_typed_with_working_defaults(tmp_path):
    r = parse_recipe({**BASE, "resources": {"combine": {"memory": "512MiB", "num_cpus": 0.5},
                                            "signals": {"image_entropy": {"concurrency": 3}}}}, tmp_path)  # fmt: skip
    assert r.resources.combine.memory == 512 << 20 and r.resources.combine.ray_options() == {
        "num_cpus": 0.5, "num_gpus": 0.0, "memory": 512 << 20}  # fmt: skip
    assert r.resources.signal("image_entropy").concurrency == 3
    assert r.resources.ingest == StepResources() and StepResources().num_gpus == 0
    with pytest.raises(RecipeError, match="resources.signals names signals not configured"):
        parse_recipe({**BASE, "resources": {"signals": {"token_length": {}}}}, tmp_path)
    with pytest.raises(RecipeError, match=r"resources\.dedup\.num_gpu"):
        parse_recipe({**BASE, "resources": {"dedup": {"num_gpu": 1}}}, tmp_path)


class AssignedUnit(Unit):
    """Reports the resources Ray assigned to the worker running it."""

    step = "test-assigned"

    def __init__(self, out_root: str, i: int) -> None:
        super().__init__(out_root, StorageOptions())
        self.i = i

    @property
    def marker_name(self) -> str:
        return str(self.i)

    def key(self) -> UnitKey:
        return UnitKey(str(self.i), self.step, "1", {})

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        import ray

        return {"assigned": ray.get_runtime_context().get_assigned_resources()}


def test_resources_reach_ray_tasks_and_actors(tmp_path, ray_local):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    res = StepResources(num_cpus=0.5, memory=64 << 20)
    tasks = run_units([AssignedUnit(str(tmp_path / "t"), i) for i in range(3)], "t", res)
    assert [t["assigned"] for t in tasks] == [{"CPU": 0.5, "memory": float(64 << 20)}] * 3
    # model-free units: the actor's setup() gives None, the pool still runs
    actors = run_on_actors([AssignedUnit(str(tmp_path / "a"), i) for i in range(3)], "a", res)
    assert [a["assigned"] for a in actors] == [{"CPU": 0.5, "memory": float(64 << 20)}] * 3
