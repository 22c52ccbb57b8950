"""The demo's planted low-quality records (sample_data/low_quality.py): each dropped by its rule, the good kept."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from magicvl.flows.recipe import parse_recipe
from magicvl.flows.report import accounting
from magicvl.sample_data.low_quality import EXPECTED, write_flagged
from magicvl.storage.layout import OutputLayout
from magicvl.storage.readers import list_shards
from magicvl.tasks.steps.combine import step as combine_step
from magicvl.tasks.steps.ingest import step as ingest_step
from magicvl.tasks.steps.quality.step import quality
from magicvl.tasks.steps.signals import step as signals_step

pytestmark = pytest.mark.slow


def test_every_planted_record_is_dropped_by_its_rule(tmp_path, tokenizer_dir, ray_local) -> None:
    write_flagged(tmp_path / "flagged")
    recipe = parse_recipe(
        {
            "output": "out",
            "datasets": [{"name": "flagged", "format": "jsonl", "path": "flagged/flagged.jsonl",
                          "image_root": "flagged/images", "label_field": "category"}],
            "signals": {"token_length": {"tokenizer": str(tokenizer_dir)}},
            "ray": {"address": "local"},
        },
        tmp_path,
    )  # fmt: skip
    ingest_step.ingest(recipe)
    quality(recipe)
    signals_step.signals(recipe)
    comb = combine_step.combine(recipe)
    out = OutputLayout(recipe.output_root)
    acc = accounting.accounting(out, ["flagged"], comb["results"])
    assert acc["balanced"] and acc["records_in"] == 9 and acc["kept"] == 3 and acc["dropped"] == 6
    keys = {r["sample_id"]: r["source_key"] for p in list_shards(out.samples)
            for r in pq.read_table(p, columns=["sample_id", "source_key"]).to_pylist()}  # fmt: skip
    dropped = {keys[r["sample_id"]]: r["rule"] for p in list_shards(out.dropped) for r in pq.read_table(p).to_pylist()}
    assert dropped == EXPECTED
