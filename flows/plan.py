"""``magicvl plan``: what a run of a recipe will cost at N records, from a finished calibration run.

The calibration is the ``costs`` block of a ``curate`` run's manifest (a run of
the same recipe on a sample; ``tasks.costs``); the projection is
``tasks.plan.project`` with the resources of the recipe given here. The plan is
printed as a table and written as JSON beside the calibration run's record
(``_runs/<run>/plan-<N>.json``). ``plan`` is also a Prefect flow (deployment
``plan``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from magicvl.flows.recipe import load_recipe
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_json, write_json
from magicvl.tasks.costs import step_resources
from magicvl.tasks.plan import Cluster, format_plan, project


def read_calibration(source: Path) -> tuple[dict[str, Any], Path]:
    """The ``costs`` of a run manifest (a manifest file, or an output root: its latest run), and its run folder."""
    path = source / "_manifest.json" if source.is_dir() else source
    if not path.is_file():
        raise FileNotFoundError(f"calibration: no run manifest at {path} (run `magicvl curate` on a sample first)")
    manifest = read_json(path)
    costs = manifest.get("costs")
    if not costs:
        raise FileNotFoundError(f"calibration: {path} records no step costs (a `magicvl curate` run of this version "
                                "writes them; `score` and `combine` runs do not)")  # fmt: skip
    latest = path.name == "_manifest.json" and manifest.get("run_dir")  # the root's copy points at its record
    run_dir = path.parent / manifest["run_dir"] if latest else path.parent
    return costs, run_dir


def make_plan(
    recipe_path: str, records: int, cluster: str | None = None, calibration: str | None = None, write: bool = True
) -> dict[str, Any]:
    """Project ``recipe_path`` at ``records`` on ``cluster`` (default: the calibration's) from ``calibration``
    (default: the recipe's output root, its latest run); writes the JSON beside the calibration run."""
    if records < 1:
        raise ValueError(f"--records must be ≥ 1, got {records}")
    recipe = load_recipe(recipe_path)
    costs, run_dir = read_calibration(Path(calibration) if calibration else Path(OutputLayout(recipe.output_root).root))
    target = Cluster.parse(cluster) if cluster else Cluster(**costs["cluster"])
    plan = project(costs, records, target, step_resources(recipe), recipe.ingest.chunk_records)
    plan["recipe"] = str(Path(recipe_path).resolve())
    plan["calibration"] = str(run_dir)
    plan["calibration_cached_units"] = costs.get("cached_units", 0)
    if write:
        plan["path"] = str(write_json(run_dir / f"plan-{records}.json", plan))
    return plan


def plan_text(plan: dict[str, Any]) -> str:
    """The table, a warning when the calibration reused cached work, and where the JSON went."""
    out = [format_plan(plan)]
    if plan.get("calibration_cached_units"):
        out.append(f"warning: the calibration run reused {plan['calibration_cached_units']} cached units, whose "
                   "work it did not measure: calibrate on a fresh output root")  # fmt: skip
    if plan.get("path"):
        out.append(f"plan: {plan['path']}")
    return "\n".join(out)


@flow(name="plan", log_prints=True)
def plan(recipe_path: str, records: int, cluster: str | None = None, calibration: str | None = None) -> dict[str, Any]:
    """Project each step's wall time, CPU- and GPU-hours at ``records`` on ``cluster`` (``nodes=…,cpus=…,gpus=…``)."""
    result = make_plan(recipe_path, records, cluster, calibration)
    print(plan_text(result))
    return result
