"""`magicvl export` on the command line and the `export` Prefect flow (as its deployment runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from magicvl.flows.cli import main
from magicvl.flows.export_cli import FORMAT_NAMES, parse_stages
from magicvl.storage.export import FORMATS
from tests.export_data import write_export_curated


def test_cli_lists_every_registered_format():
    assert FORMAT_NAMES == tuple(FORMATS)
    assert parse_stages("1,3") == [1, 3] and parse_stages(None) is None


def test_cli_exports_and_refuses_to_overwrite(tmp_path, capsys):
    curated = write_export_curated(tmp_path / "run", n_per_stage=2)
    out = tmp_path / "llava"
    assert main(["export", str(curated), "--format", "llava", "--out", str(out), "--stages", "1,3"]) == 0
    printed = capsys.readouterr().out
    assert "| 3 | 5 | 5 | 55 | 36 | broken_image 1, missing_image 2, unsupported_by_format 1 | 1 |" in printed
    assert "4 samples not exported" in printed
    assert sorted(p.name for p in out.glob("stage-*.json")) == ["stage-1.json", "stage-3.json"]
    assert main(["export", str(curated), "--format", "llava", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_export_flow_writes_under_the_recipe_output(tmp_path, prefect_harness):
    from magicvl.flows.export import export

    write_export_curated(tmp_path / "run", n_per_stage=2)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump({"output": "run", "datasets": [{"name": "d", "format": "jsonl", "path": "d.jsonl"}],
                        "signals": {"image_entropy": {}}})
    )
    manifest = export(str(recipe), format="internvl", stages=[2, 4])
    out = tmp_path / "run" / "export" / "internvl"
    assert json.loads((out / "export_manifest.json").read_text()) == manifest
    assert [s["stage"] for s in manifest["stages"]] == [2, 4]
    assert sorted(p.name for p in Path(out, "meta").iterdir()) == ["stage-2.json", "stage-4.json"]
