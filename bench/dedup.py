"""Dedup: records/s of the per-shard hashing (map) and of the cross-dataset resolution (reduce),
and peak memory (RSS of the whole process) of the reduce at 100k and 1M records.

    python -m bench.dedup [--sizes 100000 1000000] [--hash-records 5000]

Hashing runs ``shard_hashes`` on a samples shard of sample-like rows with small JPEGs and no
hash columns, so every image is decoded and hashed here (ingestion normally fills the hash columns
from its own decode, and then this map reads none of the images). The reduce runs ``resolve`` on
synthetic per-shard hashes (5% exact copies, 3% re-encoded images, 3% near-identical texts) in a
fresh process per size; peak RSS is the process high-water mark (inputs + resolution), printed
beside the RSS after imports.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, table


def _shard_rows(n: int, seed: int = 0) -> list[dict]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = []
    for _ in range(max(1, n // 4)):  # each image used by ~4 rows (several questions per image)
        img = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8)).resize((128, 96))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        photos.append(buf.getvalue())
    rows = []
    for i in range(n):
        q, a = f"<image>\nWhat is in picture {i % 997}?", f"A scene with {i % 13} objects and a {i % 7} colour sky."
        rows.append(
            {
                "sample_id": f"s{i:08d}",
                "dataset": "d",
                "source_key": str(i),
                "source": f"f:{i}",
                "category": None,
                "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
                "image": {"bytes": photos[i % len(photos)], "path": None},
                "width": 128,
                "height": 96,
                "image_format": "JPEG",
            }
        )
    return rows


def bench_hashing(n: int) -> list[dict]:
    import pyarrow as pa

    from magicvl.scoring.dedup import DedupConfig
    from magicvl.storage.schema import SAMPLE_SCHEMA
    from magicvl.storage.writer import write_table
    from magicvl.tasks.steps.quality.dedup_near import shard_hashes

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part-000000.parquet"
        write_table(path, pa.Table.from_pylist(_shard_rows(n), schema=SAMPLE_SCHEMA))
        for label, cfg in [
            ("exact only", DedupConfig(near_image=False)),
            ("exact + pHash (default)", DedupConfig()),
            ("exact + pHash + MinHash text", DedupConfig(near_text=True)),
        ]:
            t0 = time.process_time()
            shard_hashes(str(path), cfg)
            s = time.process_time() - t0
            out.append(
                {"step": f"hash shard ({label})", "records": n, "CPU s": f"{s:.2f}", "records/s": f"{n / s:,.0f}"}
            )
    return out


_REDUCE = """
import json, resource, sys, time
import numpy as np
from magicvl.scoring.dedup import DedupConfig
from magicvl.tasks.steps.quality.dedup_near import ShardHashes, resolve
n, shards = int(sys.argv[1]), 10
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rng = np.random.default_rng(0)
cfg = DedupConfig(near_text=True)
per = n // shards
hs = []
for s in range(shards):
    exact = rng.integers(0, 2**63, size=(per, 2), dtype=np.uint64)
    text = rng.integers(0, 2**63, size=per, dtype=np.uint64)
    image = rng.integers(0, 2**63, size=per, dtype=np.uint64)
    bands = rng.integers(0, 2**63, size=(per, cfg.bands), dtype=np.uint64)
    k = per // 20
    exact[-k:] = exact[:k]                                   # 5% exact copies
    m = per * 3 // 100
    image[k:k + m] = image[2 * k:2 * k + m] ^ np.uint64(0b101)  # 3% near images (distance 2), same text
    text[k:k + m] = text[2 * k:2 * k + m]
    bands[-2 * k:-2 * k + m, :3] = bands[3 * k:3 * k + m, :3]   # 3% near texts (3 bands shared)
    ids = [f"{s:02d}-{i:08d}" for i in range(per)]
    hs.append(ShardHashes(ids, ["d"] * per, exact, text, image, np.ones(per, bool), bands))
t = time.process_time()
table = resolve(hs, cfg)
sec = time.process_time() - t
kinds = {k: table.column("kind").to_pylist().count(k) for k in ("exact", "near_image", "near_text")}
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("BENCH " + json.dumps({"seconds": sec, "peak_mib": peak / 1024, "base_mib": base / 1024, "kinds": kinds}))
"""


def bench_reduce(n: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", _REDUCE, str(n)], capture_output=True, text=True, cwd=REPO)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(proc.stderr[-3000:])
    r = json.loads(line[6:])
    return {
        "step": "resolve (exact + near image + near text)",
        "records": n,
        "CPU s": f"{r['seconds']:.2f}",
        "records/s": f"{n / r['seconds']:,.0f}",
        "peak RSS MiB": f"{r['peak_mib']:.0f}",
        "after imports MiB": f"{r['base_mib']:.0f}",
        "dropped": " ".join(f"{k}={v}" for k, v in r["kinds"].items()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--hash-records", type=int, default=5000)
    args = ap.parse_args()
    rows = bench_hashing(args.hash_records) + [bench_reduce(n) for n in args.sizes]
    print("dedup, one process, CPU seconds (shared machine)\n")
    print(table(rows, ["step", "records", "CPU s", "records/s", "peak RSS MiB", "after imports MiB", "dropped"]))


if __name__ == "__main__":
    main()
