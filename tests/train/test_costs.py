"""Packing costs counted at curation: exact against the processor, stored in shards, trusted only for the same model."""

from __future__ import annotations

import dataclasses

import pytest

from magicvl.model.costs import CostModel, count_costs, counter_key, visual_tokens, visual_tokens_batch
from magicvl.model.train_config import DataSource, PackingConfig
from magicvl.model.train_data import StageData, decode_image, stage_shards
from magicvl.sample_data.synthetic_curated import curated_rows, write_curated


@pytest.mark.parametrize(
    ("size", "tokens"),
    [
        ((64, 64), 4),  # 2 x 2 tokens of 32 px
        ((300, 400), 9 * 13),  # 300/32 = 9.4 -> 9 rows, 400/32 = 12.5 -> 13 cols
        ((100, 1000), 3 * 31),  # 3 tiles across, within the 24-tile budget
        ((40, 4000), 1 * 125),  # 125 cols = 11 tiles
        ((None, None), 0),  # text only
    ],
)
def test_visual_tokens_follow_the_resolution_rule(size, tokens):
    assert visual_tokens(*size) == tokens


def test_batch_visual_tokens_equal_the_rule_one_by_one():
    import numpy as np

    sizes = [tuple(int(x) for x in hw) for hw in np.random.default_rng(0).integers(1, 9000, (300, 2))]
    sizes += [(None, None), (0, 40), (64, 64)]
    want = [visual_tokens(h, w) for h, w in sizes[:-3]] + [0, None, 4]  # most of the first 300 are downscaled
    assert visual_tokens_batch(sizes) == want


def test_counts_equal_the_processor_encoding(processor):
    rows = curated_rows(3, 9) + curated_rows(4, 6)
    text, visual = count_costs(processor, [r["conversations"] for r in rows], [(r["height"], r["width"]) for r in rows])
    for r, t, v in zip(rows, text, visual):
        image = decode_image(r["image"])
        enc = processor(r["conversations"], [] if image is None else [image])
        assert t + v == len(enc["input_ids"]), r["sample_id"]
        assert v == int((enc["input_ids"] == processor.image_token_id).sum())
    assert any(v == 0 for v in visual) and any(v > 0 for v in visual)


def test_a_row_that_cannot_be_rendered_gets_no_counts(processor):
    convs = [[{"from": "robot", "value": "?"}], [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]]
    text, visual = count_costs(processor, convs, [(64, 64), (None, None)])
    assert text[0] is None and visual[0] is None
    assert text[1] > 0 and visual[1] == 0


def test_counter_key_survives_a_resave_and_changes_with_the_resolution(processor, tiny_dir, tmp_path):
    from magicvl.model.magicvl import MagicVL
    from magicvl.model.processor import MagicVLProcessor

    MagicVL.from_pretrained(tiny_dir).save_pretrained(tmp_path)
    processor.tokenizer.save_pretrained(tmp_path)  # what a training stage's final/ holds
    assert counter_key(MagicVLProcessor.from_pretrained(tmp_path)) == counter_key(processor)
    fewer_tiles = MagicVLProcessor(processor.tokenizer, dataclasses.replace(processor.config, max_tiles=4))
    assert counter_key(fewer_tiles) != counter_key(processor)


def test_cost_model_without_a_checkpoint_counts_visual_tokens_only():
    cols = CostModel().columns([[]], [(300, 400)])
    assert cols == {"text_tokens": [None], "visual_tokens": [117], "token_counter": [None]}
    with pytest.raises(FileNotFoundError, match="no MagicVL checkpoint"):
        CostModel.of("/nonexistent/model")


PACKING = PackingConfig(max_tokens=1024, max_images=8, buffers=4, shuffle_window=8)


def _plan(processor, curated):
    data = StageData(processor, stage_shards(curated, [DataSource(stages=[3, 4])]), PACKING, seed=0)
    return data, [[(s.key["sample_id"], s.tokens) for s in p.samples] for p in data.plan(0)]


def test_planner_uses_stored_costs_without_counting_or_decoding(processor, tiny_dir, tmp_path, monkeypatch):
    import PIL.Image

    plain = write_curated(tmp_path / "plain")
    stored = write_curated(tmp_path / "stored", costs=CostModel.of(tiny_dir))
    _, want = _plan(processor, plain)  # counted by the planner itself

    def refuse(*args, **kwargs):
        raise AssertionError("planning must not count tokens or open images")

    with monkeypatch.context() as m:
        m.setattr(type(processor), "count_tokens", refuse)
        m.setattr(PIL.Image, "open", refuse)
        data, got = _plan(processor, stored)
    assert got == want  # same packs, same per-sample costs
    assert data.stats.costs_stored == 32 and data.stats.costs_counted == 0


def test_planner_recounts_rows_counted_by_another_tokenizer(processor, tiny_dir, tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    curated = write_curated(tmp_path, costs=CostModel.of(tiny_dir))
    for path in curated.glob("stage-3/*.parquet"):  # stage 3 counted by "another model"; stage 4 untouched
        t = pq.read_table(path)
        i = t.schema.get_field_index("token_counter")
        t = t.set_column(i, "token_counter", pc.binary_join_element_wise(t.column(i), "x", ""))
        pq.write_table(t.cast(pq.read_schema(path)), path)
    data, _ = _plan(processor, curated)
    assert data.stats.costs_stored == 16 and data.stats.costs_counted == 16
