"""Packing and trainer throughput: real-token share of packs, CPU tokens/s of the tiny model per ZeRO stage.

    python -m bench.packing [--curated work/demo/out/curated] [--zero 0 1 2 3] [--steps 6]

1. Real (non-pad) token share of packs at 16,384 tokens / 48 images, for 1..64
   open buffers: on the curated sample data (costs from the tiny tokenizer and
   the resolution rule, as the trainer plans them) and on a synthetic length
   mix (text-only and single-image samples, photo-to-document image sizes).
   "all packs" counts every pack including the last partly filled ones of the
   stream; "full stream" leaves out the final flush (what a long run sees; "-"
   when no pack closed before it). "min packs" is the volume bound no packer can
   beat (total tokens / 16,384 or images / 48, rounded up) and "bound share" the
   all-packs share a packer reaching it would get. The curated data is also
   resampled with replacement to the synthetic mix's size (its length mix at a
   realistic stage size, where the final partial pack is noise).
2. CPU tokens/s of the tiny MagicVL trainer per ZeRO stage (one gloo process,
   fp32, synthetic curated shards), the median over steps 2..N.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from magicvl.model.packing import GreedyPacker, SampleCost
from magicvl.model.resolution import plan_images

MAX_TOKENS, MAX_IMAGES = 16_384, 48
BUFFERS = (1, 4, 16, 64)


def synthetic_costs(n: int, seed: int = 0) -> list[SampleCost]:
    """A length mix: 20% text-only (50-4k tokens), 80% one image from 224 px to 4k px documents."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        text = int(np.clip(rng.lognormal(5.0, 1.0), 20, 4000))
        if rng.random() < 0.2:
            out.append(SampleCost(i, text, 0))
            continue
        side = float(np.exp(rng.uniform(np.log(224), np.log(4000))))
        aspect = float(np.exp(rng.uniform(-0.8, 0.8)))
        h, w = max(16, int(side / np.sqrt(aspect))), max(16, int(side * np.sqrt(aspect)))
        visual = plan_images([(h, w)])[0].num_tokens + 2  # + vision start/end
        out.append(SampleCost(i, text + visual, 1))
    return out


def curated_costs(curated: Path) -> list[SampleCost]:
    """Costs of every curated row as the trainer plans them: the counts curation stored (``text_tokens`` +
    ``visual_tokens``) when their ``token_counter`` is the tiny model's, else counted (tokenizer + resolution rule)."""
    import pyarrow.parquet as pq

    from magicvl.model.costs import COST_COLUMNS, counter_key
    from magicvl.model.processor import MagicVLProcessor
    from magicvl.model.tiny import build_tiny_magicvl
    from magicvl.storage.readers import iter_batches, list_shards

    with tempfile.TemporaryDirectory() as tmp:
        processor = MagicVLProcessor.from_pretrained(build_tiny_magicvl(Path(tmp) / "tiny"))
    key = counter_key(processor)
    out = []
    for path in list_shards(curated):
        stored = [c for c in COST_COLUMNS if c in pq.read_schema(path).names]
        for batch in iter_batches(path, columns=["conversations", "width", "height", *stored]):
            for row in batch.to_pylist():
                sizes = [] if row["width"] is None else [(row["height"], row["width"])]
                if row.get("token_counter") == key and row.get("text_tokens") is not None:
                    out.append(SampleCost(len(out), row["text_tokens"] + row["visual_tokens"], len(sizes)))
                    continue
                try:
                    tokens, _ = processor.count_tokens(row["conversations"], sizes)
                except ValueError:
                    continue
                out.append(SampleCost(len(out), tokens, len(sizes)))
    return out


def resample(costs: list[SampleCost], n: int, seed: int = 0) -> list[SampleCost]:
    """``n`` costs drawn with replacement from ``costs`` (a seeded bootstrap of the same length mix)."""
    pick = np.random.default_rng(seed).integers(0, len(costs), n)
    return [SampleCost(i, costs[k].tokens, costs[k].images) for i, k in enumerate(pick)]


def share(costs: list[SampleCost], buffers: int) -> tuple[float, float, int, float]:
    """(share over all packs, share before the final flush, packs, planning µs per sample)."""
    packer = GreedyPacker(MAX_TOKENS, MAX_IMAGES, buffers)
    t0 = time.perf_counter()
    closed = [p for c in costs if packer.fits(c) for p in packer.add(c)]
    us = (time.perf_counter() - t0) / max(1, len(costs)) * 1e6
    tail = packer.flush()
    real = sum(p.tokens for p in closed)
    stream = real / (len(closed) * MAX_TOKENS) if closed else float("nan")
    total = (real + sum(p.tokens for p in tail)) / ((len(closed) + len(tail)) * MAX_TOKENS)
    return total, stream, len(closed) + len(tail), us


def volume_bound(costs: list[SampleCost]) -> int:
    """Fewest packs any packer can use: all tokens, or all images, in full packs."""
    tokens = sum(c.tokens for c in costs if c.tokens <= MAX_TOKENS and c.images <= MAX_IMAGES)
    images = sum(c.images for c in costs if c.tokens <= MAX_TOKENS and c.images <= MAX_IMAGES)
    return max(math.ceil(tokens / MAX_TOKENS), math.ceil(images / MAX_IMAGES))


def packing_table(name: str, costs: list[SampleCost]) -> list[str]:
    mean = statistics.mean(c.tokens for c in costs)
    bound = volume_bound(costs)
    real = sum(c.tokens for c in costs if c.tokens <= MAX_TOKENS and c.images <= MAX_IMAGES)
    lines = [
        f"{name}: {len(costs)} samples, mean {mean:.0f} tokens, {sum(c.images for c in costs)} images; "
        f"min packs {bound}, bound share {real / (bound * MAX_TOKENS):.3f}",
        f"{'buffers':>7}  {'packs':>6}  {'share, all packs':>16}  {'share, full stream':>18}  {'µs/sample':>9}",
    ]
    for b in BUFFERS:
        total, stream, n, us = share(costs, b)
        full = "-" if math.isnan(stream) else f"{stream:.3f}"
        lines.append(f"{b:>7}  {n:>6}  {total:>16.3f}  {full:>18}  {us:>9.1f}")
    return lines


def zero_tokens_per_s(zero: int, steps: int, root: Path) -> float:
    """Median tokens/s of the tiny trainer (one gloo process) at one ZeRO stage."""
    from magicvl.model.tiny import build_tiny_magicvl
    from magicvl.model.train_config import TrainConfig
    from magicvl.model.training import StageRun
    from magicvl.sample_data.synthetic_curated import write_curated

    tiny = root / "tiny"
    if not (tiny / "config.json").is_file():
        build_tiny_magicvl(tiny)
        write_curated(root, n_per_stage=48)
    cfg = TrainConfig(
        model=str(tiny), bf16=False, zero_stage=zero, log_every=1, checkpoint_every=10_000,
        packing={"max_tokens": 4096, "max_images": 48, "buffers": 8, "shuffle_window": 64},
        stages={4: {"steps": steps, "warmup_steps": 1}},
    )  # fmt: skip
    out = root / f"zero{zero}"
    spec = StageRun(stage=4, init_from=str(tiny), curated=str(root / "curated"), out_dir=str(out), train=cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(spec.model_dump_json())
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path("work/.torch_extensions").resolve()))
    cmd = [sys.executable, "-m", "magicvl.model.training", str(out / "run.json")]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["tokens_per_s"] for r in rows[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--curated", type=Path, default=Path("work/demo/out/curated"))
    p.add_argument("--synthetic", type=int, default=20_000, help="samples in the synthetic mix")
    p.add_argument("--zero", type=int, nargs="*", default=[0, 1, 2, 3])
    p.add_argument("--steps", type=int, default=6)
    args = p.parse_args()
    print(f"packing at {MAX_TOKENS} tokens / {MAX_IMAGES} images (best fit over open buffers)\n")
    print("\n".join(packing_table("synthetic length mix", synthetic_costs(args.synthetic))) + "\n")
    if args.curated.is_dir():
        curated = curated_costs(args.curated)
        print("\n".join(packing_table(f"curated sample data ({args.curated})", curated)) + "\n")
        mix = resample(curated, args.synthetic)
        print("\n".join(packing_table("curated sample data, resampled with replacement", mix)) + "\n")
    else:
        print(f"(no curated sample data at {args.curated}: run `make demo` first)\n")
    if args.zero:
        print("tiny MagicVL trainer, 1 gloo process, fp32, packs of 4096 tokens, CPU")
        print(f"{'ZeRO':>4}  {'tokens/s':>8}")
        with tempfile.TemporaryDirectory() as tmp:
            for z in args.zero:
                print(f"{z:>4}  {zero_tokens_per_s(z, args.steps, Path(tmp)):>8.0f}", flush=True)


if __name__ == "__main__":
    main()
