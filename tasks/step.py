"""One step over a recipe: the shape every step module fills (the step-level twin of ``tasks.unit``).

A ``Step`` subclass fills two hooks: ``units()`` (the units to run for its recipe)
and ``finish(results, stats)`` (what to make of their summaries: sweeps of stale
outputs, folder manifests, the step's summary). It declares ``name``, ``pool``
(``"tasks"``: each unit loads what it needs; ``"actors"``: ``Unit.setup()``
is loaded once per actor of a pool) and ``resources()`` (from the recipe).

The base owns the rest, through ``tasks.executor``: the one skip decision
(``executor.pending``: finished units are answered from their markers), the
executor choice (in an actor step, units with nothing to load,
``Unit.needs_setup()`` false, run as plain tasks: no model load for them),
the one bounded fan-out loop, one-line failures, and the stats (``StepStats``,
merged by addition). A map whose results one unit reduces (the quality step's
duplicates) asks ``executor.pending`` whether the reduce unit must run, runs the
map only then, and hands its results to the unit as ``run(force=True, backend=parts)``:
no attribute is set on the unit, and its marker still decides the next run.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from magicvl.tasks.executor import pending, run_on_actors, run_units
from magicvl.tasks.resources import StepResources
from magicvl.tasks.unit import Unit

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe


@dataclass(frozen=True)
class StepStats:
    """What a step (or a part of one) did; records add up field by field (datatrove's stats)."""

    units: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0  # wall time of the fan-out in the driver

    def __add__(self, other: StepStats) -> StepStats:
        return StepStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @classmethod
    def of(cls, results: Sequence[dict[str, Any]], seconds: float) -> StepStats:
        return cls(len(results), sum(bool(r.get("cached")) for r in results), 0, round(seconds, 3))


class Step(ABC):
    """A step over a recipe; ``run()`` fans out ``units()`` and hands their summaries to ``finish``."""

    name: str
    pool: Literal["tasks", "actors"] = "tasks"

    def __init__(self, recipe: Recipe, force: bool = False) -> None:
        self.recipe, self.force = recipe, force

    def resources(self) -> StepResources:
        """What each task or actor of this step reserves (from ``recipe.resources``)."""
        return StepResources()

    @abstractmethod
    def units(self) -> Sequence[Unit]:
        """The units to run, in a fixed order (results come back in it)."""

    @abstractmethod
    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> Any:
        """Sweep stale outputs, write folder manifests, and return the step's summary."""

    def run(self) -> Any:
        t0 = time.perf_counter()
        results = self.execute(self.units())
        return self.finish(results, StepStats.of(results, time.perf_counter() - t0))

    def execute(self, units: Sequence[Unit]) -> list[dict[str, Any]]:
        """Every unit's summary, in order: finished ones from their markers, the others on tasks or actors."""
        ray, res = self.recipe.ray, self.resources()
        if self.pool == "tasks":
            return run_units(units, self.name, res, ray.max_in_flight, ray.task_retries, self.force)
        results, todo = pending(units, self.force)
        light = [i for i in todo if not units[i].needs_setup(self.force)]  # nothing to load: plain tasks
        heavy = [i for i in todo if i not in set(light)]
        done = run_units([units[i] for i in light], f"{self.name}:reuse", StepResources(), ray.max_in_flight,
                         ray.task_retries, self.force)  # fmt: skip
        done += run_on_actors([units[i] for i in heavy], self.name, res, ray.task_retries, self.force)
        for i, r in zip(light + heavy, done):
            results[i] = r
        return results
