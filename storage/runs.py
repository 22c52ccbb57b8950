"""Run records: one never-overwritten record per run (flow-run names: ``flows.report.runs``).

``<root>/_runs/<UTC time>-<run id>/manifest.json`` and ``recipe.yaml`` (the recipe
as run) are written once per run; ``<root>/_manifest.json`` is a copy of the
latest one (with ``run_dir`` pointing at its record).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_json, write_json
from magicvl.storage.outfs import S3Path


def recipe_label(recipe_path: str | Path) -> str:
    """A short name for a recipe: its file stem, or its folder's name for a generic ``recipe.yaml``."""
    p = Path(recipe_path)
    return p.parent.resolve().name if p.stem in ("recipe", "config") and p.parent.resolve().name else p.stem


def run_record_name(started: dt.datetime, run_id: str | None) -> str:
    """``20261124T223940Z-1a2b3c4d``: sortable by time, unique per flow run."""
    stamp = started.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{(run_id or 'local').replace('-', '')[:8]}"


def write_run_record(layout: OutputLayout, body: dict[str, Any], recipe_path: str | Path) -> Path | S3Path:
    """Write this run's manifest and recipe copy under ``_runs/`` and point ``_manifest.json`` at it."""
    started = dt.datetime.fromisoformat(body["started"])
    run_dir = layout.run_dir(run_record_name(started, body.get("run_id")))
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(run_dir, S3Path):
            (run_dir / "recipe.yaml").write_bytes(Path(recipe_path).read_bytes())
        else:
            shutil.copyfile(recipe_path, run_dir / "recipe.yaml")
    except OSError:
        pass  # the recipe moved away mid-run: its hash is still in the manifest
    body = {**body, "run_dir": run_dir.relative_to(layout.root).as_posix()}
    write_json(run_dir / "manifest.json", body)
    return write_json(layout.manifest, body)


def list_runs(layout: OutputLayout) -> list[dict[str, Any]]:
    """Every recorded run of an output root, oldest first."""
    if not layout.runs.is_dir():
        return []
    return [read_json(p) for p in sorted(layout.runs.glob("*/manifest.json"))]
