"""A calibration sample (``curate --sample-chunks F``) keeps apart from the full run of its recipe.

A sampled run never writes into the recipe's own ``output`` (the full run's
root), and an output root holds one kind of run: the sample setting of the run
that first ingested into it is recorded in ``_state/sample.json`` (written for a
sampled run; absent for a full one), and a run with another setting is refused
with one line naming both.
"""

from __future__ import annotations

from typing import Any

from magicvl.flows.recipe import Recipe, load_recipe
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_json, write_json
from magicvl.tasks.steps.ingest.sample import sample_every


def _kind(every: int | None) -> str:
    return "full (unsampled)" if every is None else f"--sample-chunks (1 chunk in {every})"


def sample_root_problem(recipe_path: str, recipe: Recipe, sample: float | None) -> str | None:
    """Why a run of this sample setting may not write into ``recipe.output_root`` (None: it may)."""
    every = sample_every(sample) if sample is not None else None
    layout = OutputLayout(recipe.output_root)
    if every is not None and str(load_recipe(recipe_path).output_root) == str(recipe.output_root):
        return (f"--sample-chunks: the output root {recipe.output_root} is the recipe's own `output`, the full "
                "run's; give --output DIR apart from it")  # fmt: skip
    marker = layout.state / "sample.json"
    held: dict[str, Any] | None = read_json(marker) if marker.exists() else None
    before = held["every"] if held else None
    if (held is not None or layout.samples.exists()) and before != every:
        return (f"output root {layout.root} holds a {_kind(before)} run; this {_kind(every)} run needs an "
                "output root of its own (--output DIR)")  # fmt: skip
    return None


def check_sample_root(recipe_path: str, recipe: Recipe, sample: float | None) -> None:
    """Refuse a run whose sample setting does not fit the output root (``sample_root_problem``, a
    ValueError); record the setting of a sampled run (``_state/sample.json``)."""
    problem = sample_root_problem(recipe_path, recipe, sample)
    if problem:
        raise ValueError(problem)
    marker = OutputLayout(recipe.output_root).state / "sample.json"
    if sample is not None and not marker.exists():
        write_json(marker, {"fraction": sample, "every": sample_every(sample)})
