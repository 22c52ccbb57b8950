"""The samples shards of each dataset, read back from the manifests ingestion (or translation) wrote.

Every step after ingestion starts here; it sits below the step packages so none of them imports another for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_folder_manifest

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe


def samples_shards(recipe: Recipe, names: list[str] | None = None) -> dict[str, list[dict]]:
    """Samples shards per dataset (``recipe.all_datasets``, or those in ``names``), from the manifests
    ingestion (or translation) wrote."""
    layout = OutputLayout(recipe.output_root)
    out = {}
    for cfg in recipe.all_datasets:
        if names is not None and cfg.name not in names:
            continue
        m = read_folder_manifest(layout.samples_dir(cfg.name))
        if m is None:
            raise FileNotFoundError(
                f"dataset {cfg.name!r} is not ingested yet (no manifest for {layout.samples_dir(cfg.name)}): "
                "run `magicvl curate` first"
            )
        out[cfg.name] = [{**s, "path": str(layout.samples_dir(cfg.name) / s["path"])} for s in m["shards"]]
    return out
