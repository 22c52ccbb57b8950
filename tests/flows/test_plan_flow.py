"""`magicvl plan` from a real calibration run: the manifest's costs, the plan JSON, the CLI and the flow."""

from __future__ import annotations

import json

import pytest

from magicvl.storage.manifest import read_json
from tests.flows.test_curate_flow import write_recipe
from tests.helpers import make_dataset

pytestmark = pytest.mark.slow


def test_a_curate_run_records_its_costs_and_plans_from_them(
    tmp_path, tokenizer_dir, ray_local, prefect_harness, capsys
):
    from magicvl.flows.cli import main
    from magicvl.flows.curate import curate
    from magicvl.flows.plan import plan

    make_dataset(tmp_path / "data", n=30)
    recipe = write_recipe(tmp_path, tokenizer_dir)
    curate(str(recipe))
    manifest = read_json(tmp_path / "out" / "_manifest.json")
    costs = manifest["costs"]
    steps = {s["step"]: s for s in costs["steps"]}
    assert costs["records"] == 30 and costs["cached_units"] == 0 and costs["cluster"]["cpus"] > 0
    assert {"ingest", "quality", "signal:token_length", "signal:image_entropy", "signals:other", "combine"} <= set(
        steps
    )
    assert steps["ingest"]["units"] == 5 and steps["ingest"]["worker_s"] > 0 and steps["ingest"]["bytes"] > 0
    assert steps["quality"]["worker_s"] > 0 and steps["combine"]["worker_s"] > 0
    assert steps["signal:image_entropy"]["worker_s"] == 0  # fused into ingestion: its work is ingest's
    passes = manifest["steps"]["combine"]["passes_worker_s"]  # the statistics (and histogram) tasks: worker time
    units_s = sum(u[0] for u in steps["combine"]["unit_costs"])
    assert passes > 0 and steps["combine"]["worker_s"] == pytest.approx(units_s + passes, abs=2e-3)

    assert main(["plan", str(recipe), "--records", "3000", "--cluster", "nodes=2,cpus=8"]) == 0
    printed = capsys.readouterr().out
    assert "3,000 records on 2 node(s) × 8 CPUs, 0 GPUs (calibration: 30 records)" in printed
    written = json.loads((tmp_path / "out" / manifest["run_dir"] / "plan-3000.json").read_text())
    rows = {r["step"]: r for r in written["steps"]}
    assert rows["ingest"]["units"] == 429 and rows["ingest"]["slots"] == 16  # ⌈3000 / chunk_records 7⌉
    assert written["bottleneck"] in rows and "← bottleneck" in printed
    assert all(r["wall_s"] >= r["fixed_s"] for r in rows.values())

    again = plan(str(recipe), 30)  # the same size on the calibration's own cluster: its own step times back
    for r in again["steps"]:
        assert r["wall_s"] == pytest.approx(steps[r["step"]]["wall_s"], abs=1e-2)

    curate(str(recipe))  # a rerun reuses everything: no longer a calibration
    assert read_json(tmp_path / "out" / "_manifest.json")["costs"]["cached_units"] > 0
    assert main(["plan", str(recipe), "--records", "100"]) == 0
    assert "warning: the calibration run reused" in capsys.readouterr().out
