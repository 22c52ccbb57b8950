"""Model-backed signals skip the rows the quality step dropped: one row per shard row in the signal
file (skipped rows null with the SKIPPED error), balanced accounting, and a threshold edit that keeps
one more row recomputes that row only (the others are reused from the previous file)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from magicvl.flows.report import accounting
from magicvl.storage.layout import OutputLayout
from magicvl.storage.readers import list_shards
from magicvl.tasks.steps.combine import step as combine_step
from magicvl.tasks.steps.ingest import step as ingest_step
from magicvl.tasks.steps.quality.step import quality
from magicvl.tasks.steps.signals import step as signals_step
from magicvl.tasks.steps.signals.rows import SKIPPED, dropped_mask, mask_digest
from tests.tasks.steps.test_quality_step import make_data, recipe_of

pytestmark = pytest.mark.slow


def _signal_rows(out, signal: str, dataset: str) -> list[dict]:
    return [r for p in list_shards(out / "signals" / signal / dataset) for r in pq.read_table(p).to_pylist()]


def _verdicts(out, dataset: str) -> list[dict]:
    return [r for p in list_shards(out / "quality" / "verdicts" / dataset) for r in pq.read_table(p).to_pylist()]


def _run(recipe) -> tuple[dict, dict]:
    quality(recipe)
    sig = signals_step.signals(recipe)
    comb = combine_step.combine(recipe)
    acc = accounting.accounting(OutputLayout(recipe.output_root), [d.name for d in recipe.datasets], comb["results"])
    return sig, acc


def test_mask_digest_depends_on_length_and_bits():
    a = np.array([True, False, False])
    assert mask_digest(a) == mask_digest(a.copy())
    assert mask_digest(a) != mask_digest(np.array([False, True, False]))
    assert mask_digest(a) != mask_digest(np.array([True, False, False, False]))
    assert dropped_mask(None) is None


def test_signals_skip_dropped_rows_and_recompute_only_what_a_threshold_edit_needs(
    tmp_path, tokenizer_dir, causal_lm_dir, ray_local
):
    make_data(tmp_path)
    signals = {"token_length": {"tokenizer": str(tokenizer_dir)}, "perplexity": {"model": str(causal_lm_dir)}}
    recipe = recipe_of(tmp_path, tokenizer_dir, signals=signals)
    out = tmp_path / "out"
    ingest_step.ingest(recipe)
    sig, acc = _run(recipe)
    assert acc["balanced"] and acc["records_in"] == 12 and acc["kept"] == 6 and acc["dropped"] == 6
    assert sig["perplexity"]["skipped"] == 6 and sig["token_length"]["skipped"] == 0  # fused: every row
    for ds in ("a", "b"):
        fates = {r["sample_id"]: r["keep"] for r in _verdicts(out, ds)}
        ppl = _signal_rows(out, "perplexity", ds)
        assert sorted(r["sample_id"] for r in ppl) == sorted(fates)  # one row per shard row
        for r in ppl:
            if fates[r["sample_id"]]:
                assert r["error"] is None and r["perplexity"] > 1
            else:
                assert r["error"] == SKIPPED and r["perplexity"] is None
        assert all(r["error"] is None for r in _signal_rows(out, "token_length", ds))
    before = {r["sample_id"]: r["perplexity"] for r in _signal_rows(out, "perplexity", "a")}

    # same drops under an edited threshold: same mask, so the perplexity units are cached
    same = recipe_of(tmp_path, tokenizer_dir, signals=signals, filters={"synthetic_keywords": {"max_hits": 1}})
    sig, acc = _run(same)
    assert acc["balanced"] and acc["dropped"] == 6
    assert sig["perplexity"]["cached"] == sig["perplexity"]["shards"]

    # the synthetic-keyword filter off: the "ai" row is kept now; only it is computed, the rest reused
    looser = recipe_of(tmp_path, tokenizer_dir, signals=signals, filters={"synthetic_keywords": {"enabled": False}})
    sig, acc = _run(looser)
    assert acc["balanced"] and acc["kept"] == 7 and acc["dropped"] == 5
    res = {r["dataset"]: r for r in sig["perplexity"]["results"]}
    assert not res["a"]["cached"] and res["a"]["computed"] == 1 and res["a"]["skipped"] == 3
    assert res["a"]["reused"] == 4 and res["b"]["cached"]
    after = {r["sample_id"]: r["perplexity"] for r in _signal_rows(out, "perplexity", "a")}
    newly = [sid for sid in after if before[sid] is None and after[sid] is not None]
    assert len(newly) == 1
    assert {k: v for k, v in after.items() if k not in newly} == {k: v for k, v in before.items() if k not in newly}
    assert len(list_shards(out / "signals" / "perplexity" / "a")) == 1  # the previous file is swept

    # back to the default filters: "ai" is dropped again; every value needed is in the file, no model loads
    sig, acc = _run(recipe)
    assert acc["balanced"] and acc["kept"] == 6
    res = {r["dataset"]: r for r in sig["perplexity"]["results"]}
    assert not res["a"]["cached"] and res["a"]["computed"] == 0 and res["a"]["reused"] == 4
    assert res["a"]["model_loaded"] is False and res["b"]["cached"]
    assert {r["sample_id"]: r["perplexity"] for r in _signal_rows(out, "perplexity", "a")} == before
