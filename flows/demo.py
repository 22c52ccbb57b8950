"""The demo: build tiny models and the sample dataset, then run the curate flow on them."""

from __future__ import annotations

import shutil
from pathlib import Path


def prepare_demo(work: Path, records: int | None = None) -> Path:
    """Tiny tokenizer + sample data + the demo recipe in ``work``; returns the recipe path."""
    from magicvl.model.tiny import build_tiny_magicvl, build_tokenizer, is_tiny
    from magicvl.sample_data import generate

    work.mkdir(parents=True, exist_ok=True)
    tok = work / "models" / "tokenizer"
    if not is_tiny(tok):
        build_tokenizer(tok)
        print(f"built a tiny tokenizer locally (not a real model's): {tok}")
    vlm = work / "models" / "magicvl"
    if not is_tiny(vlm):
        build_tiny_magicvl(vlm)
        print(f"built a tiny random MagicVL locally (for `magicvl train-curriculum`): {vlm}")
    data = work / "data"
    marker = data / "sample_manifest.json"
    if not marker.is_file() or records is not None:
        if data.exists():
            shutil.rmtree(data)
        sample = generate(data, n_records=records)
        print(f"generated the sample dataset: {sample.total_records} records in {data}")
    recipe = work / "recipe.yaml"
    shutil.copyfile(Path(__file__).parent / "recipes" / "demo.yaml", recipe)
    return recipe


def run_demo(work: Path, records: int | None = None) -> dict:
    """Prepare and run; prints the summary and returns the flow's result."""
    from magicvl.flows.runtime import warm_start

    recipe = prepare_demo(work, records)
    print(f"running the curate flow on {recipe} (local Prefect API and a local Ray started for the run)")
    with warm_start(recipe):  # Prefect API, Ray and worker imports at once
        from magicvl.flows.curate import curate

        return curate(str(recipe))
