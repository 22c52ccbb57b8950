"""Export throughput against the I/O floor, and peak RSS from 10k to 100k curated records.

    python -m bench.export [--records 10000 100000] [--formats llava sharegpt internvl webdataset hf]
                           [--rss-formats llava webdataset] [--work work/bench/export]

Synthetic curated data at each size (``sample_data.synthetic_curated`` layout:
curated rows reference their image in a samples shard; 4 stages, 80% of rows
with a distinct small PNG, 20% text-only; shards of 5,000 rows, row groups of
1,000). Each export runs in a fresh subprocess that reports its own peak RSS
(VmHWM). The I/O floor copies the same shards' bytes (curated + samples) with
``shutil.copyfile``: what any export must at least read and write. Printed, never
asserted. At the larger sizes only ``--rss-formats`` run (memory flatness).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from bench.common import REPO, table
from magicvl.storage.layout import stage_folder
from magicvl.storage.schema import CURATED_SCHEMA, SAMPLE_SCHEMA

SHARD_ROWS, ROW_GROUP = 5_000, 1_000
CHILD = """
import json, sys, time
from magicvl.storage.export.run import export_curated
t = time.perf_counter()
m = export_curated(sys.argv[1], sys.argv[2], sys.argv[3])
s = time.perf_counter() - t
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(json.dumps({"seconds": s, "samples": m["samples"], "skipped": m["skipped"], "peak_kib": hwm}))
"""


def _png(rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((rng.random((32, 48, 3)) * 255).astype(np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _rows(stage: int, start: int, n: int, rng: np.random.Generator) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        text_only = i % 5 == 4
        rows.append(
            {
                "sample_id": f"b{stage}-{i:07d}",
                "dataset": "bench",
                "source_key": f"{stage}:{i}",
                "source": f"bench:{stage}:{i}",
                "category": "text_only" if text_only else "vqa",
                "conversations": [
                    {"from": "human", "value": ("" if text_only else "<image>\n") + f"Question {i}?"},
                    {"from": "gpt", "value": " ".join(["answer"] * (3 + i % 20))},
                ],
                "image": None if text_only else {"bytes": _png(rng), "path": f"{i}.png"},
                "width": None if text_only else 48,
                "height": None if text_only else 32,
                "image_format": None if text_only else "PNG",
                "stage": stage,
                "complexity": 0.5,
                "s_text": 0.5,
                "s_image": 0.5,
                "s_task": 0.5,
                "text_tokens": 20 + i % 20,
                "visual_tokens": 0 if text_only else 6,
            }
        )
    return rows


def build(root: Path, records: int) -> Path:
    """``root/curated`` with ``records`` rows over 4 stages (built once per size)."""
    if (root / "done").exists():
        return root / "curated"
    rng = np.random.default_rng(records)
    per_stage = records // 4
    for stage in (1, 2, 3, 4):
        for k, start in enumerate(range(0, per_stage, SHARD_ROWS)):
            rows = _rows(stage, start, min(SHARD_ROWS, per_stage - start), rng)
            samples = root / "samples" / "bench" / f"s{stage}-{k:04d}.parquet"
            samples.parent.mkdir(parents=True, exist_ok=True)
            table_ = pa.Table.from_pylist([{c: r.get(c) for c in SAMPLE_SCHEMA.names} for r in rows], SAMPLE_SCHEMA)
            pq.write_table(table_, samples, row_group_size=ROW_GROUP)
            ref = samples.relative_to(root).as_posix()
            cur = [{**r, "samples_shard": ref, "samples_row": j} for j, r in enumerate(rows)]
            folder = root / "curated" / stage_folder(stage)
            folder.mkdir(parents=True, exist_ok=True)
            cols = CURATED_SCHEMA.names
            pq.write_table(
                pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in cur], CURATED_SCHEMA),
                folder / f"part-{k:04d}.parquet",
            )
    (root / "done").write_text("ok")
    return root / "curated"


def copy_floor(root: Path, dest: Path) -> tuple[float, int]:
    """Seconds and bytes to copy every curated and samples shard (the bytes an export must move)."""
    shutil.rmtree(dest, ignore_errors=True)
    t = time.perf_counter()
    total = 0
    for src in sorted([*(root / "curated").rglob("*.parquet"), *(root / "samples").rglob("*.parquet")]):
        target = dest / src.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        total += src.stat().st_size
    return time.perf_counter() - t, total


def run_export(curated: Path, fmt: str, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(curated), fmt, str(out)], capture_output=True, text=True, cwd=REPO
    )
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--formats", nargs="+", default=["llava", "sharegpt", "internvl", "webdataset", "hf"])
    ap.add_argument("--rss-formats", nargs="+", default=["llava", "webdataset"], help="formats run past the first size")
    ap.add_argument("--work", type=Path, default=REPO / "work" / "bench" / "export")
    args = ap.parse_args()
    rows, first_rss = [], {}
    for i, n in enumerate(args.records):
        root = args.work / f"run-{n}"
        t = time.perf_counter()
        curated = build(root, n)
        print(f"{n} records: data ready in {time.perf_counter() - t:.0f} s", flush=True)
        floor_s, nbytes = copy_floor(root, args.work / "copy")
        shutil.rmtree(args.work / "copy", ignore_errors=True)
        rows.append({"records": n, "what": "copy shards (I/O floor)", "seconds": f"{floor_s:.2f}",
                     "samples/s": f"{n / floor_s:,.0f}", "x floor": "1.0", "MB": f"{nbytes / 1e6:.0f}"})  # fmt: skip
        for fmt in args.formats if i == 0 else args.rss_formats:
            r = run_export(curated, fmt, args.work / "out")
            rss = r["peak_kib"] / 1024
            first_rss.setdefault(fmt, rss)
            rows.append(
                {
                    "records": n,
                    "what": f"export {fmt}",
                    "seconds": f"{r['seconds']:.2f}",
                    "samples/s": f"{r['samples'] / r['seconds']:,.0f}",
                    "x floor": f"{r['seconds'] / floor_s:.1f}",
                    "peak RSS MiB": f"{rss:.0f}",
                    "RSS vs first size": f"{rss / first_rss[fmt]:.3f}",
                }
            )
            print(rows[-1], flush=True)
        shutil.rmtree(args.work / "out", ignore_errors=True)
    cols = ["records", "what", "seconds", "samples/s", "x floor", "MB", "peak RSS MiB", "RSS vs first size"]
    print(table(rows, cols))


if __name__ == "__main__":
    main()
