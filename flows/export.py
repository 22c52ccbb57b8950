"""``magicvl export`` and the ``export`` Prefect flow: a run's curriculum in another trainer's layout.

The work itself is ``storage.export.run.export_curated`` (streamed shard by
shard, memory flat in the curriculum's size); the flow is one Prefect task
around it plus a markdown artifact of the per-stage counts, so a deployment
can export after ``curate``/``combine`` with the same ``recipe_path``.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from magicvl.flows.export_cli import summary_table
from magicvl.flows.report.runs import flow_run_name
from magicvl.storage.export.run import export_curated

Format = Literal["llava", "sharegpt", "internvl", "webdataset", "hf"]


@task(name="export", cache_policy=NO_CACHE)
def export_task(curated: str, fmt: str, out: str, stages: list[int] | None, overwrite: bool) -> dict[str, Any]:
    """Stream the curated stages into the target layout; returns the export manifest."""
    return export_curated(curated, fmt, out, stages, overwrite=overwrite)


@flow(name="export", flow_run_name=flow_run_name)
def export(
    recipe_path: str,
    format: Format = "llava",
    out: str | None = None,
    stages: list[int] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export the recipe's curriculum (``<output>/curated``) to ``out`` (default ``<output>/export/<format>``)."""
    from prefect.artifacts import create_markdown_artifact

    from magicvl.flows.recipe import load_recipe

    root = load_recipe(recipe_path).output_root
    target = out or str(root / "export" / format)
    manifest = export_task(str(root / "curated"), format, target, stages, overwrite)
    create_markdown_artifact(summary_table(manifest), key="export-summary", description=f"export to {target}")
    return manifest
