"""The demo: build tiny models and the sample dataset, then run the curate flow on them."""

from __future__ import annotations

import shutil
from pathlib import Path


def prepare_demo(work: Path, records: int | None = None, recipe_name: str = "demo.yaml") -> Path:
    """Tiny models + sample data + a demo recipe (``flows/recipes/<recipe_name>``) in ``work``; returns its path."""
    from magicvl.model.tiny import TINY_BUILDERS, build_tiny_magicvl, is_tiny
    from magicvl.sample_data import generate

    work.mkdir(parents=True, exist_ok=True)
    builders = {**TINY_BUILDERS, "magicvl": build_tiny_magicvl}  # magicvl: for `magicvl train-curriculum`
    for name, build in builders.items():
        path = work / "models" / name
        if not is_tiny(path):
            build(path)
            print(f"built a tiny RANDOM {name} locally (not real weights; its scores are not meaningful): {path}")
    data = work / "data"
    marker = data / "sample_manifest.json"
    if not marker.is_file() or records is not None:
        if data.exists():
            shutil.rmtree(data)
        sample = generate(data, n_records=records)
        print(f"generated the sample dataset: {sample.total_records} records in {data}")
    recipe = work / "recipe.yaml"
    shutil.copyfile(Path(__file__).parent / "recipes" / recipe_name, recipe)
    return recipe


def run_demo(work: Path, records: int | None = None, recipe_name: str = "demo.yaml") -> dict:
    """Prepare and run; prints the summary and returns the flow's result."""
    from magicvl.flows.runtime import warm_start

    recipe = prepare_demo(work, records, recipe_name)
    print(f"running the curate flow on {recipe} (local Prefect API and a local Ray started for the run)")
    with warm_start(recipe, preload=("magicvl.flows.curate",)):  # Prefect API, Ray and worker imports at once
        from magicvl.flows.curate import curate

        return curate(str(recipe))
