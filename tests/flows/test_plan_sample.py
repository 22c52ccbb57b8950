"""`magicvl plan` from a calibration on a chunk sample of the data (`curate --sample-chunks`): the sample's
manifest, its own output root, and a plan of the whole data that counts the data's chunks."""

from __future__ import annotations

import json

import pytest

from magicvl.storage.manifest import read_json
from tests.flows.test_curate_flow import write_recipe
from tests.helpers import make_dataset

pytestmark = pytest.mark.slow


def test_plan_from_a_sampled_calibration(tmp_path, tokenizer_dir, ray_local, prefect_harness, capsys):
    from magicvl.flows.cli import main
    from magicvl.flows.curate import curate

    make_dataset(tmp_path / "data", n=60)  # 60 good records, 7 a chunk: 9 chunks
    recipe = write_recipe(tmp_path, tokenizer_dir)
    with pytest.raises(ValueError, match=r"--sample-chunks: the output root .* is the recipe's own `output`"):
        curate(str(recipe), sample_chunks=0.34)
    assert main(["curate", str(recipe), "--sample-chunks", "0.34"]) == 2  # the CLI: one line, before anything runs
    assert "the recipe's own `output`" in capsys.readouterr().err

    cal = tmp_path / "cal"
    curate(str(recipe), output=str(cal), sample_chunks=0.34)  # 1 chunk in 3: chunks 0, 3, 6
    manifest = read_json(cal / "_manifest.json")
    costs, acc = manifest["costs"], manifest["accounting"]
    sample = costs["sample"]
    assert (sample["every"], sample["chunks_planned"], sample["chunks_kept"]) == (3, 9, 3)
    assert manifest["steps"]["ingest"]["sample"]["fraction"] == 0.34  # the manifest says it was a sample
    assert acc["records_in"] == sample["records_read"] == costs["records"] == 21 and acc["balanced"]
    assert sample["records_estimated"] == 63.0  # 8 chunks of 7 from the plan; the last (4 long lines): bytes, ≤ 7
    steps = {s["step"]: s for s in costs["steps"]}
    assert steps["ingest"]["units_full"] == 9.0 and len(steps["ingest"]["unit_costs"]) == 3
    assert all(n == 7 for _, n, _ in steps["ingest"]["unit_costs"])
    with pytest.raises(ValueError, match=r"holds a --sample-chunks \(1 chunk in 3\) run; this full"):
        curate(str(recipe), output=str(cal))  # a full run never lands in the sample's root

    assert main(["plan", str(recipe), "--records", "60", "--calibration", str(cal)]) == 0
    printed = capsys.readouterr().out
    assert "60 records on 1 node(s)" in printed
    assert "(calibration: 21 records, a sample of 1 chunk in 3 of ~63)" in printed
    written = json.loads((cal / manifest["run_dir"] / "plan-60.json").read_text())
    rows = {r["step"]: r for r in written["steps"]}
    assert rows["ingest"]["units"] == 9  # the data's chunks
    assert rows["ingest"]["rule"] == "proportional"  # every sampled chunk holds 7 records: one size, no line
    assert written["calibration_sample"]["chunks_planned"] == 9
    ingest_s = steps["ingest"]["worker_s"]
    # one dataset: each record read stands for 63 / 21, so the work is the calibration's per record read
    assert rows["ingest"]["cpu_hours"] == pytest.approx(ingest_s * 60 / 21 / 3600, abs=1e-4)
    bigger = json.loads((cal / manifest["run_dir"] / "plan-600.json").read_text()) if main(
        ["plan", str(recipe), "--records", "600", "--calibration", str(cal)]) == 0 else None  # fmt: skip
    assert {r["step"]: r for r in bigger["steps"]}["ingest"]["units"] == 86  # ⌈600 / 7⌉
