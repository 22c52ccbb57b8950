"""Loading a recipe file: YAML → the validated ``Recipe`` model (defined in ``tasks.recipe``).

Relative paths in the recipe resolve against the recipe file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from magicvl.tasks.recipe import RayOptions, Recipe, RecipeError, ResourcesConfig, parse_recipe

__all__ = ["RayOptions", "Recipe", "RecipeError", "ResourcesConfig", "load_recipe", "parse_recipe"]


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a recipe YAML file (``overrides`` replace top-level keys, e.g. output)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RecipeError(f"cannot read recipe {path}: {e}") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {path} is not valid YAML: {e}") from None
    data = {**(data or {}), **(overrides or {})}
    return parse_recipe(data, path.resolve().parent, str(path))
