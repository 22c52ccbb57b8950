"""Perplexity signal throughput vs a bare forward loop over the same samples in ideal batches.

    python -m bench.perplexity [--samples 48] [--batch-size 8] [--big-samples 4] [--big-batch-size 2] [--threads 2]

Both sides run the same model on the same token sequences. "signal" is the
whole ``perplexity`` compute (chat template, tokenization, length-sorted
batches, loss on the response tokens only); "bare" is ``model(input_ids,
attention_mask)`` over the pre-tokenized sequences sorted by length and cut into
batches of the same size (full logits, nothing else). tokens/s counts real
(non-padding) tokens; padding share = padded slots / all slots of the signal's
batches. Models: the tiny random Qwen2 and a random model of Qwen2.5-0.5B's
shape (24 layers, hidden 896, vocabulary 151,936) in bf16.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = (
    "the chart shows revenue growing from 2019 to 2024 with a dip in 2020 click settings button top right "
    "document invoice dated march listing three items total dollars reason step by step answer bounding box "
    "red car astronaut white suit flag rocket launches blue sky people walking table tallest bar"
).split()


def conversations(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """n single- or two-turn conversations with prompts of 5-60 and responses of 5-150 words."""
    rng = np.random.default_rng(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS, int(rng.integers(lo, hi))))

    out = []
    for k in range(n):
        turns = [{"from": "human", "value": "<image>\n" + text(5, 60)}, {"from": "gpt", "value": text(5, 150)}]
        if k % 3 == 0:
            turns += [{"from": "human", "value": text(5, 30)}, {"from": "gpt", "value": text(5, 80)}]
        out.append(turns)
    return out


def bare_loop(model, requests, batch_size: int) -> tuple[float, int]:
    """Seconds and real tokens of plain forwards over length-sorted, right-padded batches."""
    import torch

    from magicvl.model.backends.causal_lm import length_batches, pad_batch

    batches = length_batches([len(r.input_ids) for r in requests], batch_size)
    t0 = time.perf_counter()
    tokens = 0
    with torch.inference_mode():
        for idx in batches:
            ids, mask, _ = pad_batch([requests[i] for i in idx], 0, "right")  # [B, T]
            model(input_ids=ids, attention_mask=mask)
            tokens += int(mask.sum())
    return time.perf_counter() - t0, tokens


def measure(name: str, lm, convs, batch_size: int) -> dict:
    from magicvl.scoring.batch import SampleBatch
    from magicvl.scoring.signals import get_signal
    from magicvl.scoring.signals.perplexity import requests_for

    s = get_signal("perplexity")
    params = s.params(model="bench", batch_size=batch_size, dtype="bfloat16")
    batch = SampleBatch([str(i) for i in range(len(convs))], convs)
    s.compute(SampleBatch(["w"], convs[:1]), params, lm)  # warm-up
    t0 = time.perf_counter()
    s.compute(batch, params, lm)
    sig_s = time.perf_counter() - t0
    stats = lm.stats
    requests = [r for c in convs for r in requests_for(lm.tokenizer, c)]
    bare_loop(lm.model, requests[:1], 1)  # warm-up
    bare_s, bare_tokens = bare_loop(lm.model, requests, batch_size)
    assert bare_tokens == stats.tokens
    return {
        "model": name,
        "samples": len(convs),
        "batch": batch_size,
        "tokens": stats.tokens,
        "signal tok/s": stats.tokens / sig_s,
        "bare tok/s": bare_tokens / bare_s,
        "ratio": (stats.tokens / sig_s) / (bare_tokens / bare_s),
        "padding": stats.padding_share,
        "batches": stats.batches,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--big-samples", type=int, default=4, help="0 skips the 0.5B-shaped model")
    ap.add_argument("--big-batch-size", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    from magicvl.model.backends.causal_lm import TransformersCausalLM
    from magicvl.model.tiny import build_tiny_causal_lm, qwen2_causal_config

    torch.set_num_threads(args.threads)
    print(f"perplexity signal vs bare forward loop, {args.threads} torch threads\n")
    print("  ".join(f"{c:>12}" if c != "model" else f"{c:<26}" for c in COLUMNS), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-ppl-"))
    tiny = build_tiny_causal_lm(work / "causal_lm")
    lm = TransformersCausalLM.load(str(tiny), "bfloat16", "cpu", 4096, args.batch_size)
    show(measure("tiny qwen2 (bf16)", lm, conversations(args.samples), args.batch_size))
    if args.big_samples:
        config = qwen2_causal_config(151936, "qwen2.5-0.5b")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            big = Qwen2ForCausalLM._from_config(config, dtype=torch.bfloat16)
        lm = TransformersCausalLM(big, AutoTokenizer.from_pretrained(tiny), 4096, args.big_batch_size)
        show(measure("Qwen2.5-0.5B shape (bf16)", lm, conversations(args.big_samples, seed=1), args.big_batch_size))


COLUMNS = ("model", "samples", "batch", "tokens", "signal tok/s", "bare tok/s", "ratio", "padding", "batches")


def show(row: dict) -> None:
    cells = []
    for c in COLUMNS:
        v = row[c]
        cells.append(f"{v:<26}" if c == "model" else (f"{v:>12.3f}" if isinstance(v, float) else f"{v:>12}"))
    print("  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
