"""Peak RSS of the flow process at 10k and 100k records (target: flat within 10%).

    python -m bench.memory [--records 10000 100000] [--work work/bench]

The flow process is the one running ``magicvl curate`` (the Prefect flow and
the Ray driver); Ray workers and the ephemeral Prefect API server are separate
processes and are not counted. Printed, never asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import REPO, prepare, run_curate, table, write_recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000], help="dataset sizes")
    ap.add_argument("--work", type=Path, default=REPO / "work" / "bench", help="working folder")
    ap.add_argument("--chunk-records", type=int, default=1000, help="records per ingestion task")
    args = ap.parse_args()
    rows = []
    base = None
    for n in args.records:
        prepare(args.work, n)
        recipe = write_recipe(args.work, n, f"out-memory-{n}", args.chunk_records)
        res = run_curate(recipe, args.work / f"out-memory-{n}")
        rss = res["maxrss_kib"] / 1024
        base = base or rss
        rows.append(
            {
                "records": res["records_in"],
                "peak RSS MiB": f"{rss:.0f}",
                "vs first": f"{rss / base:.3f}",
                "wall s": f"{res['wall']:.1f}",
                "steps s": f"{res['steps_seconds']:.1f}",
                "samples/s (steps)": f"{res['records_in'] / res['steps_seconds']:.0f}",
                "balanced": res["accounting"]["balanced"],
            }
        )
    print("\npeak RSS of the flow process (Ray workers and the Prefect API server excluded)\n")
    print(table(rows, list(rows[0])))
    print("target: peak RSS flat within 10% from the smallest to the largest run")


if __name__ == "__main__":
    main()
