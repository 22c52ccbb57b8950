"""The default filters and the rule classifier on the project's own sample data (``magicvl sample-data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from magicvl.flows.recipe import load_recipe
from magicvl.scoring.categorize import rule_category
from magicvl.scoring.filters.config import FiltersConfig, decide, measure_all, responses_of
from magicvl.storage.ingest.preview import iter_records

DEMO = Path(__file__).resolve().parents[2] / "flows" / "recipes" / "demo.yaml"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from magicvl.sample_data import generate

    root = tmp_path_factory.mktemp("sample")
    generate(root)
    out = []
    for cfg in load_recipe(DEMO).datasets:
        cfg = cfg.model_copy(
            update={
                "path": cfg.path.replace("data/", ""),
                "image_root": cfg.image_root and cfg.image_root.replace("data/", ""),
            }
        )
        out += [r for r in iter_records(cfg, root) if r.error is None]
    return out


def test_default_filters_keep_every_clean_sample_record(records):
    assert len(records) > 300
    cfg = FiltersConfig()
    d = decide(measure_all(responses_of([r.conversations for r in records]), cfg), cfg)
    dropped = [(r.source, v.describe()) for r, v in zip(records, d.first) if not v.keep]
    assert dropped == []


def test_rules_agree_with_the_sample_labels(records):
    labelled = [r for r in records if r.category is not None]
    wrong = [(r.category, rule_category(r.conversations, r.image is not None)) for r in labelled]
    wrong = [w for w in wrong if w[0] != w[1]]
    assert len(wrong) <= 0.05 * len(labelled), wrong[:10]
