"""Training reads a local curated folder: an s3:// output root is refused with one message saying what to do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from magicvl.flows.recipe import RecipeError, load_recipe

RECIPE = {
    "output": "s3://bkt/run1",
    "datasets": [{"name": "d", "format": "jsonl", "path": "d.jsonl"}],
    "signals": {"image_entropy": {}},
    "train": {"model": "tiny", "stages": {k: {"steps": 1} for k in (1, 2, 3, 4)}},
}
MESSAGE = (
    "training reads curated/ and samples/ from a local folder, and the output root s3://bkt/run1 is on object storage"
)


def test_train_section_refuses_an_object_store_root(tmp_path):
    from magicvl.flows.train import train_section

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    with pytest.raises(RecipeError, match=MESSAGE + r".*aws s3 sync s3://bkt/run1/curated DIR/curated"):
        train_section(load_recipe(path))
    local = load_recipe(path, {"output": "out"})
    assert train_section(local).output == str(tmp_path / "out" / local.train.output)  # a local root still trains


def test_train_stage_cli_says_so_before_any_flow_starts(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    res = subprocess.run(
        [sys.executable, "-m", "magicvl.flows.cli", "train-stage", str(path), "--stage", "1"],
        cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    assert res.stderr.startswith(f"error: {MESSAGE}")
