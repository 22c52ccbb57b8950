"""Stage data: seeded order, resume from a data position, every row accounted for."""

from __future__ import annotations

import torch

from magicvl.model.train_config import DataSource, PackingConfig
from magicvl.model.train_data import StageData, in_split, stage_shards
from magicvl.sample_data.synthetic_curated import curated_rows, write_stage_shard

PACKING = PackingConfig(max_tokens=1024, max_images=8, buffers=4, shuffle_window=8)


def _data(processor, curated, seed=0, stages=(3, 4), world=1, rank=0):
    shards = stage_shards(curated, [DataSource(stages=list(stages))])
    return StageData(processor, shards, PACKING, seed, micro_batch=1, rank=rank, world=world)


def _ids(pack):
    return [s.key["sample_id"] for s in pack.samples]


def test_order_is_a_function_of_the_seed_and_every_row_is_planned_once(processor, curated):
    a = [_ids(p) for p in _data(processor, curated).plan(0)]
    b = [_ids(p) for p in _data(processor, curated).plan(0)]
    c = [_ids(p) for p in _data(processor, curated, seed=1).plan(0)]
    assert a == b and a != c
    assert sorted(i for p in a for i in p) == sorted(f"s{k}-{i:04d}" for k in (3, 4) for i in range(16))
    assert [_ids(p) for p in _data(processor, curated).plan(1)] != a  # a new shuffle per epoch


def test_costs_match_the_processor_without_decoding_images(processor, curated):
    data = _data(processor, curated)
    pack = next(iter(data.plan(0)))
    encoded = data._process(pack)
    assert [len(x["input_ids"]) for x in encoded] == [s.tokens for s in pack.samples]


def test_resume_from_a_data_position_continues_the_same_stream(processor, curated):
    full = _data(processor, curated).batches()
    seq = [next(full) for _ in range(5)]
    resumed = _data(processor, curated).batches(seq[2][0])
    for (state, batch), (state2, batch2) in zip(seq[3:], [next(resumed) for _ in range(2)]):
        assert state == state2 and batch["input_ids"].equal(batch2["input_ids"])


def test_ranks_split_the_packs(processor, curated):
    r0 = [x for x, _ in zip(_data(processor, curated, world=2, rank=0).batches(), range(3))]
    r1 = [x for x, _ in zip(_data(processor, curated, world=2, rank=1).batches(), range(3))]
    assert [s for s, _ in r0] == [s for s, _ in r1]  # ranks advance in lockstep
    assert r0[0][0].packs == 2  # one round = one pack per rank
    assert not torch.equal(r0[0][1]["sample_index"], r1[0][1]["sample_index"]) or not torch.equal(
        r0[0][1]["input_ids"], r1[0][1]["input_ids"]
    )


def test_bad_rows_are_dropped_and_counted(processor, tmp_path):
    rows = curated_rows(3, 6)
    rows[0]["conversations"] = [{"from": "robot", "value": "?"}]  # unknown role
    rows[1]["image"] = {"bytes": b"not an image", "path": "x.png"}  # undecodable
    rows[2]["conversations"] = [{"from": "human", "value": "x " * 3000}, {"from": "gpt", "value": "y"}]  # too long
    write_stage_shard(tmp_path, 3, rows, "part-0")
    data = _data(processor, tmp_path / "curated", stages=(3,))
    batches = [b for _, (_, b) in zip(range(20), data.batches()) if data.stats.rows <= 6]
    assert batches
    assert data.stats.dropped["unreadable: ValueError"] >= 1
    assert data.stats.dropped["larger than a pack"] >= 1
    assert data.stats.dropped["processor: UnidentifiedImageError"] >= 1


def test_hash_split_halves_are_disjoint_and_cover():
    ids = [f"id{i}" for i in range(200)]
    a = {i for i in ids if in_split(i, (0, 2))}
    b = {i for i in ids if in_split(i, (1, 2))}
    assert a.isdisjoint(b) and a | b == set(ids) and 60 < len(a) < 140


def test_categorized_order_splits_the_captions_of_stages_1_and_2_across_two_stages(processor, curated):
    from magicvl.model.train_config import TrainConfig

    cfg = TrainConfig(model="m", order="categorized")
    seen = []
    for stage in (1, 2):
        data = StageData(processor, stage_shards(curated, cfg.sources(stage)), PACKING, seed=0)
        seen.append({i for p in data.plan(0) for i in _ids(p)})
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == {f"s{k}-{i:04d}" for k in (1, 2) for i in range(16)}
