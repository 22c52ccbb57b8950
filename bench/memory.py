"""Peak RSS of the flow process at 10k and 100k records, each size run three times (target: worst flat within 10%).

    python -m bench.memory [--records 10000 100000] [--repeats 3] [--work work/bench]

The flow process is the one running ``magicvl curate`` (the Prefect flow and
the Ray driver); Ray workers and the ephemeral Prefect API server are separate
processes and are not counted. The sample data of each size is generated once
under ``--work`` and reused. While a run goes, a thread samples the process's
VmRSS every 0.2 s tagged with what the flow is doing (``bench.common.current_phase``);
the table names the phase where the worst run peaked. Printed, never asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import REPO, prepare, run_curate, table, write_recipe


def _peak_phase(res: dict) -> str:
    phases = res.get("rss_by_phase") or {}
    if not phases:
        return "?"
    name, d = max(phases.items(), key=lambda kv: kv[1]["peak_mib"])
    return f"{name} ({d['peak_mib']:.0f}; shm {d.get('shmem_mib', 0):.0f})"


def _row(n: int, runs: list[dict], base: float) -> dict:
    worst = max(runs, key=lambda r: r["maxrss_kib"])
    rss = [r["maxrss_kib"] / 1024 for r in runs]
    return {
        "records": worst["records_in"],
        "runs": len(runs),
        "peak RSS MiB (each run)": " ".join(f"{x:.0f}" for x in rss),
        "worst": f"{max(rss):.0f}",
        "worst vs first size": f"{max(rss) / base:.3f}",
        "phase of worst peak (MiB)": _peak_phase(worst),
        "steps s (worst run)": f"{worst['steps_seconds']:.1f}",
        "balanced": all(r["accounting"]["balanced"] for r in runs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000], help="dataset sizes")
    ap.add_argument("--repeats", type=int, default=3, help="runs per size; the worst is reported (default 3)")
    ap.add_argument("--work", type=Path, default=REPO / "work" / "bench", help="working folder")
    ap.add_argument("--chunk-records", type=int, default=1000, help="records per ingestion task")
    args = ap.parse_args()
    rows = []
    base = None
    for n in args.records:
        prepare(args.work, n)
        recipe = write_recipe(args.work, n, f"out-memory-{n}", args.chunk_records)
        runs = []
        for _ in range(args.repeats):
            runs.append(run_curate(recipe, args.work / f"out-memory-{n}"))
            print(f"  {n} records, run {len(runs)}: peak RSS {runs[-1]['maxrss_kib'] / 1024:.0f} MiB", flush=True)
        base = base or max(r["maxrss_kib"] for r in runs) / 1024
        rows.append(_row(n, runs, base))
    print("\npeak RSS of the flow process (Ray workers and the Prefect API server excluded)\n")
    print(table(rows, list(rows[0])))
    print("target: worst peak RSS flat within 10% from the smallest to the largest size")


if __name__ == "__main__":
    main()
