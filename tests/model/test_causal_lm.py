"""The causal-LM scoring backend: padding side, batching and truncation do not change the values."""

from __future__ import annotations

import pytest
import torch

from magicvl.model.backends.causal_lm import ScoreRequest, TransformersCausalLM, length_batches, truncate


@pytest.fixture(scope="module")
def lm(causal_lm_dir):
    return TransformersCausalLM.load(str(causal_lm_dir), dtype="float32", device="cpu", batch_size=4)


def requests(n: int = 7) -> list[ScoreRequest]:
    g = torch.Generator().manual_seed(0)
    out = []
    for k in range(n):
        length = 5 + 3 * k
        ids = torch.randint(20, 600, (length,), generator=g).tolist()
        target = [False] * (length // 2) + [True] * (length - length // 2)
        out.append(ScoreRequest(tuple(ids), tuple(target)))
    return out


def by_hand(model, req: ScoreRequest) -> float:
    """Summed NLL of the scored tokens from one unpadded forward's full logits."""
    ids = torch.tensor([req.input_ids])
    with torch.no_grad():
        logp = model(input_ids=ids).logits.float().log_softmax(-1)[0]  # [T, V]
    return -sum(float(logp[t - 1, req.input_ids[t]]) for t in range(1, len(req.input_ids)) if req.target[t])


def test_scores_equal_full_logits_by_hand(lm):
    reqs = requests()
    got = lm.score(reqs)
    for r, s in zip(reqs, got):
        assert s.tokens == sum(r.target) and s.truncated_tokens == 0
        assert s.nll_sum == pytest.approx(by_hand(lm.model, r), rel=1e-5)


def test_batched_equals_one_at_a_time_and_padding_sides_agree(lm):
    reqs = requests()
    batched = [s.nll_sum for s in lm.score(reqs)]
    assert lm.stats.batches == 2 and 0 < lm.stats.padding_share < 0.5
    single = [lm.score([r])[0].nll_sum for r in reqs]
    lm.padding_side = "left"
    try:
        left = [s.nll_sum for s in lm.score(reqs)]
    finally:
        lm.padding_side = "right"
    assert batched == pytest.approx(single, rel=1e-5)
    assert left == pytest.approx(batched, rel=1e-5)


def test_truncation_keeps_the_first_tokens_and_counts_what_it_cut(lm):
    r = requests(4)[-1]  # 14 tokens, the last 7 scored
    cut, dropped = truncate(r, 10)
    assert cut.input_ids == r.input_ids[:10] and dropped == 4
    lm.max_length = 10
    try:
        (s,) = lm.score([r])
    finally:
        lm.max_length = 2048
    assert (s.tokens, s.truncated_tokens) == (3, 4)
    assert s.nll_sum == pytest.approx(by_hand(lm.model, cut), rel=1e-5)


def test_length_batches_sort_longest_first_and_respect_limits():
    assert length_batches([3, 9, 5, 7, 1], 2) == [[1, 3], [2, 0], [4]]
    assert length_batches([10, 10, 10], 8, max_tokens=20) == [[0, 1], [2]]


def test_the_first_token_cannot_be_scored():
    with pytest.raises(ValueError, match="first token"):
        ScoreRequest((1, 2), (True, False))
