"""The eval split's rule: sizes per category, and the same split however the rows are sharded."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from magicvl.scoring.combine import CombineConfig
from magicvl.scoring.eval_split import (
    EvalSplit,
    eval_mask,
    id_hashes,
    merge_candidates,
    shard_candidates,
    thresholds,
)


def test_size_is_the_share_clamped_and_leaves_a_training_sample() -> None:
    cfg = EvalSplit(share=0.1, min_per_category=2, max_per_category=5)
    assert [cfg.size(n) for n in (0, 1, 2, 3, 20, 35, 1000)] == [0, 0, 1, 2, 2, 4, 5]


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="min_per_category 5 > max_per_category 2"):
        EvalSplit(min_per_category=5, max_per_category=2)
    with pytest.raises(ValidationError, match="shar"):
        CombineConfig.model_validate({"eval": {"shar": 0.1}})


def test_ids_hash_stably() -> None:
    h = id_hashes(["a", "b"])
    assert h.dtype == np.uint64 and h.tolist() == id_hashes(["a", "b"]).tolist() and h[0] != h[1]
    assert int(h[0]) == int.from_bytes(__import__("hashlib").blake2b(b"a", digest_size=8).digest(), "big")


def test_the_split_is_the_smallest_hashes_per_category_whatever_the_sharding() -> None:
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(300)]
    cats = [str(c) for c in rng.choice(["caption", "ocr", "vqa"], 300)]
    kept = rng.random(300) > 0.2
    hashes = id_hashes(ids)
    cfg = EvalSplit(share=0.1, min_per_category=1, max_per_category=7)

    def split(n_shards: int) -> set[str]:
        bounds = np.linspace(0, 300, n_shards + 1).astype(int)
        parts = [shard_candidates(cats[a:b], kept[a:b], hashes[a:b], 7) for a, b in zip(bounds, bounds[1:])]
        limits = thresholds(merge_candidates(parts, 7), cfg)
        return {ids[i] for i in np.flatnonzero(eval_mask(cats, kept, hashes, limits))}

    one = split(1)
    assert one == split(7) == split(300)
    for c in ("caption", "ocr", "vqa"):  # by hand: the n_c smallest hashes among the category's kept rows
        rows = [i for i in range(300) if cats[i] == c and kept[i]]
        want = {ids[i] for i in sorted(rows, key=lambda i: int(hashes[i]))[: cfg.size(len(rows))]}
        assert {s for s in one if cats[ids.index(s)] == c} == want
    assert all(kept[ids.index(s)] for s in one)
