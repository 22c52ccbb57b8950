"""Packing: budgets hold, every sample placed once, packed losses equal the samples run alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magicvl.model.packing import GreedyPacker, SampleCost, collate_packs, pack_all, per_sample_losses
from magicvl.model.processor import IGNORE_INDEX
from magicvl.sample_data.synthetic_curated import curated_rows


def _costs(n: int, seed: int = 0) -> list[SampleCost]:
    rng = np.random.default_rng(seed)
    return [SampleCost(i, int(rng.integers(50, 3000)), int(rng.integers(0, 3))) for i in range(n)]


def test_packs_respect_budgets_and_place_every_sample_once():
    costs = _costs(500)
    packs = list(pack_all(costs, max_tokens=8192, max_images=12, buffers=8))
    assert all(p.tokens <= 8192 and p.images <= 12 for p in packs)
    keys = [s.key for p in packs for s in p.samples]
    assert sorted(keys) == list(range(500))
    assert all(p.tokens == sum(s.tokens for s in p.samples) for p in packs)
    # best fit over several buffers fills packs well (the last few are the tail)
    share = sum(c.tokens for c in costs) / (len(packs) * 8192)
    assert share > 0.9


def test_more_buffers_never_pack_worse_on_a_mixed_stream():
    costs = _costs(400, seed=1)
    one = len(list(pack_all(costs, 8192, 48, buffers=1)))
    many = len(list(pack_all(costs, 8192, 48, buffers=16)))
    assert many <= one


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_fit_over_the_default_buffers_is_within_one_pack_of_the_volume_bound(seed):
    costs = _costs(500, seed)
    bound = max(-(-sum(c.tokens for c in costs) // 8192), -(-sum(c.images for c in costs) // 12))
    packs = list(pack_all(costs, 8192, 12, buffers=16))  # 16: PackingConfig's default
    assert bound <= len(packs) <= bound + 1
    assert len(list(pack_all(costs, 8192, 12, buffers=1))) > bound + 5  # plain greedy is far from it


def test_a_sample_larger_than_a_pack_is_refused_by_name():
    packer = GreedyPacker(100, 2)
    with pytest.raises(ValueError, match="'big' needs 101 tokens"):
        packer.add(SampleCost("big", 101, 0))
    assert list(pack_all([SampleCost("big", 101, 0), SampleCost("ok", 10, 0)], 100, 2))[0].samples[0].key == "ok"


def test_image_budget_closes_a_pack():
    packs = list(pack_all([SampleCost(i, 10, 1) for i in range(5)], 1000, 2, buffers=1))
    assert [p.images for p in packs] == [2, 2, 1]


def _encoded(processor, n: int):
    from magicvl.model.train_data import decode_image

    rows = curated_rows(4, n) + curated_rows(3, n)
    return [processor(r["conversations"], [] if r["image"] is None else [decode_image(r["image"])]) for r in rows]


def test_positions_restart_and_boundaries_are_not_trained(processor):
    samples = _encoded(processor, 2)
    batch = collate_packs([samples[:2], samples[2:3]], pad_id=0)
    lengths = [len(s["input_ids"]) for s in samples[:3]]
    pos = batch["position_ids"]
    assert pos[0, : lengths[0]].tolist() == list(range(lengths[0]))
    assert pos[0, lengths[0]] == 0  # the second sample starts again at 0
    assert batch["labels"][0, lengths[0]] == IGNORE_INDEX
    assert (batch["sample_index"][1, lengths[2] :] == -1).all()  # padding of the shorter row
    assert batch["image_grid"].shape[0] == sum(len(s["image_grid"]) for s in samples[:3])


def test_packed_batch_gives_the_same_per_sample_losses_as_samples_alone(tiny_dir, processor):
    from magicvl.model.magicvl import MagicVL

    model = MagicVL.from_pretrained(tiny_dir)
    samples = _encoded(processor, 3)  # 6 samples, with and without images
    keys = ("input_ids", "position_ids", "pixel_values", "image_grid", "patch_mask", "tile_image_index")
    with torch.no_grad():
        alone = []
        for s in samples:
            b = collate_packs([[s]], pad_id=0)
            out = model(**{k: b[k] for k in keys}).logits
            alone.append(per_sample_losses(out, b["labels"], b["sample_index"]))
        alone = torch.cat(alone)  # [6]
        packed_batch = collate_packs([samples[:4], samples[4:]], pad_id=0)  # 2 packs, one padded
        logits = model(**{k: packed_batch[k] for k in keys}).logits
        packed = per_sample_losses(logits, packed_batch["labels"], packed_batch["sample_index"])
    assert torch.isfinite(alone).all()
    torch.testing.assert_close(packed, alone, rtol=1e-4, atol=1e-4)
    # attention is blocked across samples: changing sample 0 leaves the others' losses unchanged
    changed = dict(samples[0])
    changed["input_ids"] = samples[0]["input_ids"].clone()
    changed["input_ids"][1:5] = 7
    b2 = collate_packs([[changed] + samples[1:4], samples[4:]], pad_id=0)
    with torch.no_grad():
        again = per_sample_losses(model(**{k: b2[k] for k in keys}).logits, b2["labels"], b2["sample_index"])
    torch.testing.assert_close(again[1:], packed[1:], rtol=1e-4, atol=1e-4)
