"""The steps end to end on a local Ray: planted broken records, accounting, stale outputs, granularity, score."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from magicvl.flows.recipe import Recipe, parse_recipe
from magicvl.flows.report import accounting
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_folder_manifest
from magicvl.storage.readers import list_shards
from magicvl.tasks.steps.combine import step as combine_step
from magicvl.tasks.steps.ingest import step as ingest_step
from magicvl.tasks.steps.quality.step import quality
from magicvl.tasks.steps.signals import step as signals_step
from magicvl.tasks.steps.signals.crossmodal import signal_jobs
from tests.helpers import HOSTILE_LINES, make_dataset

pytestmark = pytest.mark.slow

# planted kind (sample_data's manifest) → the error kind ingestion must give it
PLANTED_AS = {
    "truncated_jpeg": "decode_error",
    "path_escapes_root": "path_outside_root",
    "absolute_path_outside_root": "path_outside_root",
    "url_image_path": "url_refused",
    "missing_conversations": "missing_conversations",
    "conversations_not_a_list": "wrong_type",
    "duplicate_id": "duplicate_id",
    "not_an_image": "not_an_image",
    "invalid_json": "invalid_json",
    "invalid_utf8": "invalid_utf8",
    "missing_image_file": "image_not_found",
}


def run(recipe: Recipe) -> dict:
    ingest_step.ingest(recipe)
    quality(recipe)
    signals_step.signals(recipe)
    comb = combine_step.combine(recipe)
    return accounting.accounting(OutputLayout(recipe.output_root), [d.name for d in recipe.datasets], comb["results"])


def quarantine_rows(out: Path) -> list[dict]:
    return [r for p in list_shards(out / "quarantine") for r in pq.read_table(p).to_pylist()]


def test_planted_broken_records_end_in_their_quarantine_kinds(tmp_path, tokenizer_dir, causal_lm_dir, ray_local):
    from magicvl.sample_data import generate

    sample = generate(tmp_path / "data")
    demo = Path(__file__).resolve().parents[2] / "flows" / "recipes" / "demo.yaml"
    data = yaml.safe_load(demo.read_text())
    data["signals"]["token_length"]["tokenizer"] = str(tokenizer_dir)
    data["signals"]["type_token_ratio"]["tokenizer"] = str(tokenizer_dir)
    data["signals"]["perplexity"]["model"] = str(causal_lm_dir)
    recipe = parse_recipe(data, tmp_path)
    acc = run(recipe)
    assert acc["balanced"] and acc["records_in"] == sample.total_records
    assert acc["quarantined"] == len(sample.broken) == 13
    rows = quarantine_rows(tmp_path / "out")
    for b in sample.broken:  # the generator's manifest is the oracle
        (row,) = [r for r in rows if r["dataset"] == b.dataset and r["source"].split(" (")[0] == b.locator]
        assert row["error_kind"] == PLANTED_AS[b.kind], (b, row["error"])
    assert acc["quarantined_by_error"] == dict(Counter(PLANTED_AS[b.kind] for b in sample.broken))
    dup = next(r for r in rows if r["error_kind"] == "duplicate_id")
    assert "first seen at instruct.json:record" in dup["error"]

    # a quarantine file gone missing: the counts on disk no longer balance, and the run says so
    (victim,) = [p for p in list_shards(tmp_path / "out" / "quarantine") if p.name.startswith("dedup-")]
    victim.unlink()
    bad = accounting.accounting(OutputLayout(recipe.output_root), [d.name for d in recipe.datasets], [])
    assert not bad["balanced"]
    with pytest.raises(accounting.AccountingError, match="accounting does not balance"):
        accounting.check(bad)


def recipe_dict(root: Path, tokenizer: Path, chunk_records: int, side: int, granularity: str, ttr: bool) -> dict:
    signals = {"token_length": {"tokenizer": str(tokenizer)}, "image_entropy": {"max_side": side}}
    if ttr:
        signals["type_token_ratio"] = {"tokenizer": str(tokenizer)}
    return {
        "output": "out",
        "datasets": [
            {
                "name": "d",
                "format": "jsonl",
                "path": "data/d.jsonl",
                "image_root": "data/images",
                "label_field": "category",
            }
        ],  # fmt: skip
        "ingest": {"chunk_records": chunk_records},
        "storage": {"shard_max_rows": 5},
        "signals": signals,
        "combine": {"granularity": granularity},
        # tests.helpers' responses are synthetic repeats ("w0 w1 w0 w1 ..."): the repetition filter rightly
        # drops them (tests/tasks/steps/test_quality_step.py covers the filters); these tests are about other steps
        "filters": {"repetition": {"enabled": False}},
        "resources": {"ingest": {"batch_size": 3}, "signals": {"token_length": {"concurrency": 1, "batch_size": 4}}},
    }


def test_recipe_change_removes_stale_outputs_and_dataset_granularity_runs(tmp_path, tokenizer_dir, ray_local):
    make_dataset(tmp_path / "data", n=40, extra=HOSTILE_LINES)
    first = parse_recipe(recipe_dict(tmp_path, tokenizer_dir, 7, 64, "sample", True), tmp_path)
    acc = run(first)
    assert acc["balanced"] and acc["kept"] == 40 and acc["quarantined"] == 5
    out = tmp_path / "out"
    chunks_before = {p.name[:11] for p in list_shards(out / "samples")}  # part-NNNNNN

    second = parse_recipe(recipe_dict(tmp_path, tokenizer_dir, 10, 32, "dataset", False), tmp_path)
    acc2 = run(second)
    assert acc2["balanced"] and acc2["kept"] + acc2["dropped"] == 40 and acc2["quarantined"] == 5
    layout = OutputLayout(out)
    samples = read_folder_manifest(layout.samples_dir("d"))["shards"]
    assert sorted(p.name for p in list_shards(layout.samples_dir("d"))) == sorted(s["path"] for s in samples)
    gone = chunks_before - {s["path"][:11] for s in samples}
    assert gone  # bigger chunks: fewer of them
    for folder in ("samples", "quarantine", "signals", "scores", "dropped", "curated"):
        assert not [p for p in list_shards(out / folder) if any(g in p.name for g in gone)], folder
    assert not list_shards(layout.signals / "type_token_ratio")  # signal left out of the recipe
    entropy = list_shards(layout.signal_dir("image_entropy", "d"))
    job = signal_jobs(second)[1]
    assert sorted(p.name for p in entropy) == sorted(
        layout.signal_path(job.name, "d", s["path"].removesuffix(".parquet"), job.key(s["sha256"])).name
        for s in samples
    )
    # dataset granularity: every (dataset, category) unit is staged whole
    stages: dict[str, set[int]] = {}
    for p in list_shards(layout.curated):
        t = pq.read_table(p, columns=["category", "stage"]).to_pydict()
        for c, s in zip(t["category"], t["stage"]):
            stages.setdefault(c, set()).add(s)
    assert stages and all(len(s) == 1 for s in stages.values())


def test_score_flow_for_one_dataset_without_combine(tmp_path, tokenizer_dir, ray_local, prefect_harness):
    from magicvl.flows.curate import curate, score

    for ds in ("a", "b"):
        make_dataset(tmp_path / ds, n=12)
    data = recipe_dict(tmp_path, tokenizer_dir, 7, 64, "sample", True)
    data["datasets"] = [
        {
            "name": ds,
            "format": "jsonl",
            "path": f"{ds}/d.jsonl",
            "image_root": f"{ds}/images",
            "label_field": "category",
        }
        for ds in ("a", "b")
    ]
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(data))
    curate(str(tmp_path / "recipe.yaml"))
    out = tmp_path / "out"
    before = {p: p.stat().st_mtime_ns for p in list_shards(out)}
    res = score(str(tmp_path / "recipe.yaml"), signals=["token_length"], datasets=["b"], force=True, then_combine=False)
    assert list(res) == ["signals"]
    tl = res["signals"]["token_length"]
    b_shards = read_folder_manifest(OutputLayout(out).samples_dir("b"))["shards"]
    assert tl["executor"] == "actors" and tl["cached"] == 0 and tl["shards"] == len(b_shards)  # b's, recomputed
    changed = {p for p, t in before.items() if not p.exists() or p.stat().st_mtime_ns != t}
    assert changed and all(p.parent == OutputLayout(out).signal_dir("token_length", "b") for p in changed)
    shutil.rmtree(out / "curated")  # and combine did not run: nothing writes curated/ again
    assert not (out / "curated").exists()
