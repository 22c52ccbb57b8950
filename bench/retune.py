"""Re-tune time: ``combine`` after a β change, over synthetic scored samples (no model, no image).

Synthetic, exactly: samples shards with real metadata columns and a short
two-turn conversation, no images (``image`` null); one ``token_length`` signal
table and three ``vlm_loss@{s,m,l}`` tables with random losses, written at the
keyed paths the signals step would use (hub-id models, never loaded). The first
``combine`` materialises scores/ and curated/; the timed one is the re-tune:
β changes, everything is recomputed from the stored tables.

    .venv/bin/python -m bench.retune --samples 100000 1000000 --shard-rows 10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from magicvl.flows.recipe import Recipe, parse_recipe
from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import write_folder_manifest
from magicvl.storage.schema import SAMPLE_SCHEMA, signal_schema
from magicvl.tasks.steps.combine import step as combine_step
from magicvl.tasks.steps.quality.step import quality
from magicvl.tasks.steps.signals.crossmodal import signal_jobs

CATS = ["vqa", "ocr", "caption", "chart", "text_only", "gui", "grounding", "reasoning"]
MODELS = {"s": 1.10, "m": 1.0, "l": 0.92}  # mean loss ratio of each synthetic model


def recipe(root: Path, beta: float) -> Recipe:
    data = {
        "output": "out",
        "datasets": [{"name": "syn", "format": "jsonl", "path": "unused.jsonl"}],
        "signals": {"token_length": {"tokenizer": "synthetic/tokenizer"}},
        "cross_modal": {"models": {m: {"model": f"synthetic/vlm-{m}"} for m in MODELS}},
        "combine": {"granularity": "sample", "task": {"beta": beta, "delta": 0.2}},
        "filters": {"repetition": {"enabled": False}},  # the synthetic answers repeat "a cat" on purpose
        "resources": {"combine": {"batch_size": 8192}},
        "ray": {"num_cpus": 2},
    }
    return parse_recipe(data, root)


def _samples(n: int, start: int, rng: np.random.Generator) -> pa.Table:
    ids = [f"syn-{i:08d}" for i in range(start, start + n)]
    cats = [CATS[i % len(CATS)] for i in range(start, start + n)]
    turns = [[{"from": "human", "value": f"what is shown in picture {i}"},
              {"from": "gpt", "value": "a cat " * (1 + i % 7)}] for i in range(start, start + n)]  # fmt: skip
    cols = {"sample_id": ids, "dataset": ["syn"] * n, "source_key": ids, "source": [f"syn.jsonl:{i}" for i in ids],
            "category": cats, "conversations": turns}  # fmt: skip
    cols.update({f.name: [None] * n for f in SAMPLE_SCHEMA if f.name not in cols})
    return pa.table(cols, schema=SAMPLE_SCHEMA)


def generate(root: Path, n: int, shard_rows: int, seed: int = 0) -> Recipe:
    """Samples shards, their manifest and the keyed signal tables of ``recipe(root, …)``."""
    rec = recipe(root, 1.0)
    layout = OutputLayout(rec.output_root)
    rng = np.random.default_rng(seed)
    folder = layout.samples_dir("syn")
    folder.mkdir(parents=True, exist_ok=True)
    jobs = signal_jobs(rec)
    infos = []
    for k, start in enumerate(range(0, n, shard_rows)):
        m = min(shard_rows, n - start)
        path = folder / f"part-{k:06d}-000.parquet"
        t = _samples(m, start, rng)
        pq.write_table(t, path)
        sha = sha256_file(path)
        infos.append({"path": str(path), "rows": m, "bytes": path.stat().st_size, "sha256": sha})
        base = rng.lognormal(0.5, 0.4, m)  # a sample's difficulty, shared by the three models
        for job in jobs:
            if job.name == "token_length":
                vals = {"token_length": rng.integers(5, 400, m).astype(float)}
            else:
                loss = base * MODELS[job.name.split("@")[1]] * rng.lognormal(0, 0.05, m)
                toks = rng.integers(5, 200, m).astype(float)
                vals = {"vlm_loss": loss, "vlm_loss_nll": loss * toks, "vlm_loss_tokens": toks}
            out = layout.signal_path(job.name, "syn", path.stem, job.key(sha))
            out.parent.mkdir(parents=True, exist_ok=True)
            arrays = [t.column("sample_id")] + [pa.array(vals[c]) for c in job.columns] + [pa.nulls(m, pa.string())]
            pq.write_table(pa.Table.from_arrays(arrays, schema=signal_schema(job.columns)), out)
    write_folder_manifest(folder, infos, rec.digest(), {"dataset": "syn"})
    quality(rec)  # verdicts (filters, rule categories, dedup): combine's input, not timed
    return rec


def run(n: int, shard_rows: int, work: Path) -> dict[str, float]:
    root = work / f"retune-{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    generate(root, n, shard_rows)  # includes the quality step (verdicts)
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = combine_step.combine(recipe(root, 1.0))
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = combine_step.combine(recipe(root, 1.08))
    t_retune = time.perf_counter() - t0
    moved = sum(v for k, v in second["transitions"].items() if k.split(">")[0] != k.split(">")[1])
    curated = sum(p.stat().st_size for p in (root / "out" / "curated").rglob("*.parquet"))
    shutil.rmtree(root, ignore_errors=True)
    return {"samples": n, "shards": -(-n // shard_rows), "generate_s": gen, "first_s": t_first,
            "retune_s": t_retune, "moved": moved, "curated_mb": curated / 2**20,
            "kept": sum(sum(r["kept"].values()) for r in first["results"])}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--shard-rows", type=int, default=10_000)
    ap.add_argument("--work", type=Path, default=Path("work/bench"))
    args = ap.parse_args()
    from magicvl.flows.runtime import ray_session

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    rows = []
    with ray_session("local", num_cpus=2):
        for n in args.samples:
            rows.append(run(n, args.shard_rows, args.work.resolve()))
            print(rows[-1], flush=True)
    print("\n| samples | shards | first combine (s) | re-tune β (s) | samples moved | curated/ MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['samples']:,} | {r['shards']} | {r['first_s']:.1f} | {r['retune_s']:.1f} | "
              f"{r['moved']:,} | {r['curated_mb']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
