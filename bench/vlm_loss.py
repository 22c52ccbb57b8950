"""VLM response loss throughput vs a bare forward loop over the same batches with the same model.

``python -m bench.vlm_loss [--samples 384] [--window 128] [--batch-size 8] [--hidden 256]``

Both sides run a tiny random Qwen2-VL (built here, no download) over the same
synthetic samples (half with an image, responses of 5..120 words). "loss" is
``VlmLoss.score`` end to end: chat template, processor, length-sorted batches,
forward with the LM head on response positions only, NLL. "bare forward" is
``model(**inputs)`` over the very batches the loss path builds, pre-encoded
outside the timer. Tokens are real (non-padding) input tokens. Padding share =
padded slots / all slots, for the length-sorted batches and, for comparison,
for batches in arrival order.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from magicvl.model.backends.vlm import VlmLoss
from magicvl.model.backends.vlm_inputs import Encoded, collate, encode
from magicvl.model.backends.vlm_options import VlmOptions
from magicvl.model.tiny_vl import build_tiny_vlm

WORDS = "the chart shows revenue growing from a red car on the table with two people walking near a sign".split()


def synth(n: int, seed: int = 0) -> tuple[list, list]:
    rng = random.Random(seed)
    convs, images = [], []
    for i in range(n):
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 120)))
        with_image = i % 2 == 0
        prompt = ("<image>\n" if with_image else "") + "Describe what you see in detail."
        convs.append([{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}])
        side = (rng.randint(60, 220), rng.randint(60, 220))
        images.append(Image.new("RGB", side, tuple(rng.randrange(256) for _ in range(3))) if with_image else None)
    return convs, images


def padding_share(encoded: list[Encoded], batches: list[list[int]]) -> float:
    slots = sum(len(b) * max(encoded[i].length for i in b) for b in batches)
    real = sum(encoded[i].length for b in batches for i in b)
    return 1 - real / slots


def best_of(fns: list, repeat: int) -> list[float]:
    """Best wall time of each function, the functions interleaved (fair on a shared, noisy machine)."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [min(t) for t in times]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=384)
    ap.add_argument("--window", type=int, default=128, help="sort_window: samples length-sorted together")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: tiny matmuls spin on a busy box)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_vlm(Path(tmp) / "vlm", "qwen2_vl", hidden=args.hidden)
        opts = VlmOptions(model=str(path), batch_size=args.batch_size, sort_window=args.window)
        scorer = VlmLoss.load(opts)
        convs, images = synth(args.samples)
        encoded = [encode(scorer.processor, c, i) for c, i in zip(convs, images)]
        w = args.window  # the loss path's batches: length-sorted within each window
        batches = [[s + i for i in b] for s in range(0, len(encoded), w) for b in scorer.batches(encoded[s : s + w])]
        full_sort = scorer.batches(encoded)
        inputs = [collate([encoded[i] for i in b], scorer.pad_id)[0] for b in batches]
        arrival = [
            list(range(k, min(k + args.batch_size, len(encoded)))) for k in range(0, len(encoded), args.batch_size)
        ]
        tokens = sum(e.length for e in encoded)
        scorer.score(convs[:4], images[:4])  # warm-up

        def bare() -> None:
            with torch.inference_mode():
                for x in inputs:
                    scorer.model(**x, use_cache=False)

        t_loss, t_bare, t_enc = best_of(
            [lambda: scorer.score(convs, images), bare, lambda: scorer.encode_all(convs, images)], args.repeat
        )
    print(
        f"VLM loss vs bare forward: tiny Qwen2-VL (text hidden {args.hidden}, 2 layers, vocab 646), "
        f"{args.samples} samples ({tokens} tokens), batch {args.batch_size}, {args.threads} torch thread(s) "
        "(+1 encoding thread in the loss path), "
        f"best of {args.repeat}\n"
    )
    rows = [
        ("loss (end to end)", t_loss, "template + processor (next window, background) + forward + NLL"),
        ("bare forward", t_bare, "model(**inputs) over the same batches, pre-encoded"),
        ("encode only", t_enc, "chat template + processor + response mask, no model"),
    ]
    print(f"{'path':<20} {'seconds':>8} {'tokens/s':>9} {'× bare':>7}  what")
    print(f"{'-' * 20} {'-' * 8} {'-' * 9} {'-' * 7}  {'-' * 50}")
    for name, t, what in rows:
        print(f"{name:<20} {t:>8.3f} {tokens / t:>9.0f} {t_bare / t:>7.2f}  {what}")
    print(
        f"\npadding share: {padding_share(encoded, batches):.1%} length-sorted in windows of {args.window} "
        f"({len(batches)} batches), {padding_share(encoded, full_sort):.1%} sorted as one window, "
        f"{padding_share(encoded, arrival):.1%} in arrival order"
    )


if __name__ == "__main__":
    main()
