"""The Step base: one skip decision, tasks or one actor class (``Unit.setup`` once per actor, units with
nothing to load as plain tasks), results in unit order, stats merged by addition."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from magicvl.flows.recipe import parse_recipe
from magicvl.storage.options import StorageOptions
from magicvl.tasks.resources import StepResources
from magicvl.tasks.step import Step, StepStats
from magicvl.tasks.unit import Outputs, Unit, UnitKey


def test_stats_add_field_by_field():
    a, b = StepStats(3, 1, 0, 1.5), StepStats(2, 2, 1, 0.25)
    assert a + b == StepStats(5, 3, 1, 1.75) and a + StepStats() == a
    assert StepStats.of([{"cached": True}, {"cached": False}, {}], 0.5) == StepStats(3, 1, 0, 0.5)


class CountedUnit(Unit):
    """Writes its index; its setup (a stand-in model load) appends a line to ``counter``."""

    step = "test-step"

    def __init__(self, out_root: str, i: int, counter: str, heavy: bool) -> None:
        super().__init__(out_root, StorageOptions())
        self.i, self.counter, self.heavy = i, counter, heavy

    @property
    def marker_name(self) -> str:
        return f"d/part-{self.i}"

    def key(self) -> UnitKey:
        return UnitKey(str(self.i), self.step, "1", {})

    def setup(self) -> str:
        with open(self.counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        return "model"

    def needs_setup(self, force: bool = False) -> bool:
        return self.heavy

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        return {"i": self.i, "backend": backend}


class CountedStep(Step):
    name, pool = "test-step", "actors"

    def __init__(self, recipe, root: Path, force: bool = False) -> None:
        super().__init__(recipe, force)
        self.root = root

    def resources(self) -> StepResources:
        return StepResources(concurrency=1)

    def units(self) -> list[CountedUnit]:
        return [CountedUnit(str(self.root), i, str(self.root / "loads.txt"), i % 2 == 1) for i in range(4)]

    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> tuple[list, StepStats]:
        return results, stats


@pytest.mark.slow
def test_actor_step_loads_once_skips_finished_and_keeps_order(tmp_path, ray_local):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    recipe = parse_recipe({"output": "out", "datasets": [{"name": "d", "format": "jsonl", "path": "d.jsonl"}],
                           "signals": {"image_entropy": {}}},
                          tmp_path)  # fmt: skip
    results, stats = CountedStep(recipe, tmp_path).run()
    assert [r["i"] for r in results] == [0, 1, 2, 3]
    assert [r["backend"] for r in results] == [None, "model", None, "model"]  # light units: plain tasks
    assert (tmp_path / "loads.txt").read_text().count("\n") == 1 and stats.units == 4 and stats.cached == 0
    results, stats = CountedStep(recipe, tmp_path).run()
    assert stats.cached == 4 and [r["i"] for r in results] == [0, 1, 2, 3]
    assert (tmp_path / "loads.txt").read_text().count("\n") == 1  # finished: no actor, no load
