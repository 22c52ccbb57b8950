"""The eval split carved at curation: its size per category, its accounting, and never in a stage shard
or a training pack."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from magicvl.scoring.eval_split import EvalSplit, id_hashes
from magicvl.storage.manifest import read_folder_manifest
from magicvl.storage.readers import list_shards
from tests.helpers import HOSTILE_LINES, make_dataset

pytestmark = pytest.mark.slow
SPLIT = {"share": 0.25, "min_per_category": 1, "max_per_category": 3}


def _recipe(root: Path, tokenizer: Path) -> Path:
    recipe = {
        "output": "out",
        "datasets": [{"name": "d", "format": "jsonl", "path": "data/d.jsonl", "image_root": "data/images",
                      "label_field": "category"}],
        "ingest": {"chunk_records": 7},
        "storage": {"shard_max_rows": 5},
        "signals": {"token_length": {"tokenizer": str(tokenizer)}, "image_entropy": {"max_side": 64}},
        "combine": {"granularity": "sample", "eval": SPLIT},
        "filters": {"repetition": {"enabled": False}},  # tests.helpers' responses are synthetic repeats
    }  # fmt: skip
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root / "recipe.yaml"


def _rows(folder: Path, columns: list[str]) -> list[dict]:
    shards = list_shards(folder)
    return pads.dataset([str(p) for p in shards]).to_table(columns=columns).to_pylist() if shards else []


def test_eval_split_is_kept_accounted_and_in_no_stage_or_pack(tmp_path, tokenizer_dir, ray_local, prefect_harness,
                                                              processor) -> None:  # fmt: skip
    from magicvl.flows.curate import curate
    from magicvl.model.train_config import DataSource, PackingConfig
    from magicvl.model.train_data import StageData, stage_shards

    make_dataset(tmp_path / "data", n=40, extra=HOSTILE_LINES)
    acc = curate(str(_recipe(tmp_path, tokenizer_dir)))["accounting"]
    out = tmp_path / "out"
    assert acc["balanced"] and acc["records_in"] == acc["kept"] + acc["dropped"] + acc["quarantined"]

    held = _rows(out / "curated" / "eval", ["sample_id", "category"])
    ledger = _rows(out / "scores", ["sample_id", "category", "fate", "reason", "stage"])
    kept = [r for r in ledger if r["fate"] == "kept"]
    per_cat = Counter(r["category"] for r in kept)
    cfg = EvalSplit(**SPLIT)
    want = {}  # by hand: per category, the size(N_c) smallest id hashes among its kept samples
    for c, n in per_cat.items():
        ids = sorted((r["sample_id"] for r in kept if r["category"] == c), key=lambda s: int(id_hashes([s])[0]))
        want.update(dict.fromkeys(ids[: cfg.size(n)], c))
    assert {r["sample_id"]: r["category"] for r in held} == want and len(held) == len(want) > 0
    assert acc["eval_split"] == len(held)
    assert sum(v for k, v in acc["kept_by_stage_category"].items() if k.startswith("eval|")) == len(held)
    for r in ledger:  # kept with reason eval_split and no stage, exactly for the held-out rows
        assert (r["reason"] == "eval_split") == (r["sample_id"] in want)
        if r["sample_id"] in want:
            assert r["fate"] == "kept" and r["stage"] is None

    staged = {r["sample_id"] for k in (1, 2, 3, 4) for r in _rows(out / "curated" / f"stage-{k}", ["sample_id"])}
    assert staged and not staged & set(want)
    assert len(staged) + len(held) == acc["kept"] == acc["rows_on_disk"]["curated"]
    manifest = read_folder_manifest(out / "curated" / "eval")
    assert manifest is not None and sum(s["rows"] for s in manifest["shards"]) == len(held)

    packed = set()  # every training pack of every stage (all rows planned, nothing decoded)
    for k in (1, 2, 3, 4):
        shards = stage_shards(out / "curated", [DataSource(stages=[k])])
        if shards:
            data = StageData(processor, shards, PackingConfig(max_tokens=4096, max_images=48), seed=0)
            packed |= {s.key["sample_id"] for p in data.plan(0) for s in p.samples}
    assert packed == staged and not packed & set(want)
