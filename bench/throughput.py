"""Samples/s of the model-free path end to end, against a plain loop and the image-decode floor.

    python -m bench.throughput [--records 10000] [--work work/bench] [--sequential-too] [--running-services]
    python -m bench.throughput --all-signals [--records 1000]

Targets (issue 6): end to end ≥ 2× the plain single-process loop at 10,000
records, steps only ≥ 2×, and ≥ 0.8× the decode floor. Printed, never asserted.
Also prints where the end-to-end seconds went (start-up parts, flow, steps);
``--sequential-too`` runs the pipeline a second time with the start-up done one
part after another (``MAGICVL_WARM_START=0``, the behaviour before) to compare
within one invocation. ``--running-services`` also runs it once more with a Prefect
server and a Ray head already running (``bench/services.py``: what a machine
that runs curation jobs, or Prefect deployments, has), which the run reuses.

``--all-signals`` runs the recipe of ``magicvl demo --all-signals`` instead (L,
T, E fused into ingestion; P, D_text, D_obj on actor pools, tiny random LM and
Grounding DINO, the real PP-OCR models) and prints samples/s end to end and
where the time went per step and per signal (no model-free baselines).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.baseline import decode_floor, plain_loop
from bench.common import REPO, breakdown, prepare, run_curate, table, write_recipe


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _breakdown_table(runs: dict[str, dict]) -> str:
    parts = {name: breakdown(res) for name, res in runs.items()}
    first = next(iter(parts.values()))
    rows = []
    for i, (label, _, note) in enumerate(first):
        row = {"part": label}
        for name, bd in parts.items():
            row[f"{name} s"] = _fmt(bd[i][1])
        row["note"] = note or next((bd[i][2] for bd in parts.values() if bd[i][2]), "")
        rows.append(row)
    total = {"part": "end to end (wall)", "note": ""}
    for name, res in runs.items():
        total[f"{name} s"] = _fmt(res["wall"])
    rows.append(total)
    return table(rows, list(rows[0]))


def _signal_rows(res: dict) -> list[dict]:
    """Per step and per signal: seconds, share of the steps, rows, errors, rows/s (from the run manifest)."""
    steps = res["manifest_steps"]
    total = res["steps_seconds"]
    rows = []
    for step in ("ingest", "quality", "signals", "combine"):
        if step not in steps:
            continue
        secs = steps[step]["seconds"]
        note = "incl. the fused L, T, E (one decode per image)" if step == "ingest" else ""
        rows.append({"part": step, "seconds": f"{secs:.1f}", "share": f"{secs / total:.0%}", "rows": "",
                     "errors": "", "rows/s": "", "note": note})  # fmt: skip
        if step != "signals":
            continue
        for name, info in steps["signals"].items():
            if not isinstance(info, dict):
                continue
            secs = info["seconds"]
            rows.append({
                "part": f"  {name}", "seconds": f"{secs:.1f}", "share": f"{secs / total:.0%}", "rows": info["rows"],
                "errors": info["errors"], "rows/s": f"{info['rows'] / secs:.1f}" if secs else "-",
                "note": f"{info['executor']}, {info['cached']} of {info['shards']} shards cached",
            })  # fmt: skip
    return rows


def all_signals(args: argparse.Namespace) -> None:
    """The six-signal curate at ``--records``: samples/s and where the time went, per step and per signal."""
    prepare(args.work, args.records, models=True)
    out = args.work / f"out-throughput-{args.records}-all"
    recipe = write_recipe(args.work, args.records, out.name, args.chunk_records, all_signals=True)
    res = run_curate(recipe, out, warm=True)
    n = res["records_in"]
    print(f"\nthroughput, all six signals, {n} records ({args.records} generated), {os.cpu_count()} cores\n")
    print(f"end to end {res['wall']:.1f} s = {n / res['wall']:.1f} samples/s; "
          f"steps {res['steps_seconds']:.1f} s = {n / res['steps_seconds']:.1f} samples/s\n")  # fmt: skip
    print(table(_signal_rows(res), ["part", "seconds", "share", "rows", "errors", "rows/s", "note"]))
    acc = res["accounting"]
    print(f"\naccounting: in {acc['records_in']} = kept {acc['kept']} + dropped {acc['dropped']} "
          f"+ quarantined {acc['quarantined']} (balanced: {acc['balanced']})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000, help="sample data size (default 10000)")
    ap.add_argument("--work", type=Path, default=REPO / "work" / "bench", help="working folder")
    ap.add_argument("--chunk-records", type=int, default=250, help="records per ingestion task")
    ap.add_argument("--sequential-too", action="store_true", help="also run with the sequential start-up")
    ap.add_argument("--running-services", action="store_true",
                    help="also run with a Prefect server and a Ray head already running (reused by the run)")
    ap.add_argument("--all-signals", action="store_true", help="all six signals (P, D_text, D_obj too)")
    args = ap.parse_args()
    if args.all_signals:
        return all_signals(args)
    cores = os.cpu_count() or 1
    data = prepare(args.work, args.records)
    recipe = write_recipe(args.work, args.records, f"out-throughput-{args.records}", args.chunk_records)
    out = args.work / f"out-throughput-{args.records}"
    runs = {"concurrent": run_curate(recipe, out, warm=True)}
    if args.sequential_too:
        runs["sequential"] = run_curate(recipe, out, warm=False)
    if args.running_services:
        from bench.services import running_services

        with running_services(cores) as started:
            runs["services running"] = run_curate(recipe, out, warm=True)
        print("services started before the timed run: " + ", ".join(f"{k} {v:.1f}" for k, v in started.items()))
    n = runs["concurrent"]["records_in"]
    t = time.perf_counter()
    plain_n = plain_loop(data, args.work / "models" / "tokenizer", args.work / f"out-plain-{args.records}")
    plain_s = time.perf_counter() - t
    floor_s, decoded = decode_floor(data, cores)

    measured = []
    for name, res in runs.items():
        measured.append((f"pipeline, end to end ({name})", res["wall"], "process start to exit, all steps"))
        steps_note = "ingest + quality + signals + combine"
        measured.append((f"pipeline, steps only ({name})", res["steps_seconds"], steps_note))
    measured.append(("(a) plain loop", plain_s, f"1 process, PIL + pandas, {plain_n} rows written"))
    measured.append(("(b) decode floor", floor_s, f"{cores} processes, {decoded} images decoded, nothing else"))
    rows = [
        {
            "method": name,
            "seconds": f"{secs:.1f}",
            "samples/s": f"{n / secs:.0f}",
            "× (a)": f"{plain_s / secs:.2f}",
            "× (b)": f"{floor_s / secs:.2f}",
            "what": note,
        }
        for name, secs, note in measured
    ]
    print(f"\nthroughput, model-free path, {n} records ({args.records} generated), {cores} cores\n")
    print(table(rows, ["method", "seconds", "samples/s", "× (a)", "× (b)", "what"]))
    print("\nwhere the end-to-end seconds went (indented start-up parts overlap: they run at the same time)\n")
    print(_breakdown_table(runs))
    acc = runs["concurrent"]["accounting"]
    print(
        f"\npipeline accounting: in {acc['records_in']} = kept {acc['kept']} + dropped {acc['dropped']} "
        f"+ quarantined {acc['quarantined']} (balanced: {acc['balanced']})"
    )
    print("targets: pipeline end to end ≥ 2.00 × (a), steps only ≥ 2.00 × (a), ≥ 0.80 × (b)")


if __name__ == "__main__":
    main()
