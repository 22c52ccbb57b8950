"""Samples/s of the model-free path end to end, against a plain loop and the image-decode floor.

    python -m bench.throughput [--records 10000] [--work work/bench]

Targets (DEVELOPERS/issue 2): ≥ 2× the plain single-process loop on 2 cores and
≥ 0.8× the decode floor. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.baseline import decode_floor, plain_loop
from bench.common import REPO, prepare, run_curate, table, write_recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000, help="sample data size (default 10000)")
    ap.add_argument("--work", type=Path, default=REPO / "work" / "bench", help="working folder")
    ap.add_argument("--chunk-records", type=int, default=250, help="records per ingestion task")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    data = prepare(args.work, args.records)
    recipe = write_recipe(args.work, args.records, f"out-throughput-{args.records}", args.chunk_records)

    pipe = run_curate(recipe, args.work / f"out-throughput-{args.records}")
    n = pipe["records_in"]
    t = time.perf_counter()
    plain_n = plain_loop(data, args.work / "models" / "tokenizer", args.work / f"out-plain-{args.records}")
    plain_s = time.perf_counter() - t
    floor_s, decoded = decode_floor(data, cores)

    rows = []
    for name, secs, note in (
        ("pipeline, end to end", pipe["wall"], "process start, Prefect API, Ray start, all steps"),
        ("pipeline, steps only", pipe["steps_seconds"], "ingest + signals + combine"),
        ("(a) plain loop", plain_s, f"1 process, PIL + pandas, {plain_n} rows written"),
        ("(b) decode floor", floor_s, f"{cores} processes, {decoded} images decoded, nothing else"),
    ):
        rows.append(
            {
                "method": name,
                "seconds": f"{secs:.1f}",
                "samples/s": f"{n / secs:.0f}",
                "× (a)": f"{plain_s / secs:.2f}",
                "× (b)": f"{floor_s / secs:.2f}",
                "what": note,
            }
        )
    print(f"\nthroughput, model-free path, {n} records ({args.records} generated), {cores} cores\n")
    print(table(rows, ["method", "seconds", "samples/s", "× (a)", "× (b)", "what"]))
    acc = pipe["accounting"]
    print(
        f"\npipeline accounting: in {acc['records_in']} = kept {acc['kept']} + dropped {acc['dropped']} "
        f"+ quarantined {acc['quarantined']} (balanced: {acc['balanced']})"
    )
    print("targets: pipeline ≥ 2.00 × (a) and ≥ 0.80 × (b)")


if __name__ == "__main__":
    main()
