"""Samples/s of the model-free path end to end, against a plain loop and the image-decode floor.

    python -m bench.throughput [--records 10000] [--work work/bench] [--sequential-too] [--running-services]
                               [--repeats 3]
    python -m bench.throughput --all-signals [--records 1000]

Targets (issue 6): end to end ≥ 2× the plain single-process loop at 10,000
records, steps only ≥ 2×, and ≥ 0.8× the decode floor. Printed, never asserted.
Also prints where the end-to-end seconds went (start-up parts, flow, steps);
``--sequential-too`` runs the pipeline a second time with the start-up done one
part after another (``MAGICVL_WARM_START=0``, the behaviour before) to compare
within one invocation. ``--running-services`` also runs it once more with a Prefect
server and a Ray head already running (``bench/services.py``: what a machine
that runs curation jobs, or Prefect deployments, has), which the run reuses.
``--repeats N`` runs everything N rounds (each round: the pipeline runs, then the
plain loop and the floor) and prints medians, with each round's ratio: on a
shared box one run's steps vary by several seconds.

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

import numpy as np

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
    ap.add_argument("--repeats", type=int, default=1, help="rounds of every run (medians printed; default 1)")
    args = ap.parse_args()
    if args.all_signals:
        return all_signals(args)
    cores = os.cpu_count() or 1
    data = prepare(args.work, args.records)
    recipe = write_recipe(args.work, args.records, f"out-throughput-{args.records}", args.chunk_records)
    out = args.work / f"out-throughput-{args.records}"
    rounds = []  # each round: every pipeline mode, then the plain loop and the floor (host noise hits both sides)
    for r in range(args.repeats):
        runs = {"concurrent": run_curate(recipe, out, warm=True)}
        if args.sequential_too:
            runs["sequential"] = run_curate(recipe, out, warm=False)
        if args.running_services:
            from bench.services import running_services

            with running_services(cores) as started:
                runs["services running"] = run_curate(recipe, out, warm=True)
            print("services started before the timed run:", ", ".join(f"{k} {v:.1f}" for k, v in started.items()))
        t = time.perf_counter()
        plain_out = args.work / f"out-plain-{args.records}"
        plain_n = plain_loop(data, args.work / "models" / "tokenizer", plain_out)
        plain_s = time.perf_counter() - t
        floor_s, decoded = decode_floor(data, cores)
        rounds.append((runs, plain_s, floor_s))
        timed = ", ".join(f"{k} {v['wall']:.1f} s (steps {v['steps_seconds']:.1f})" for k, v in runs.items())
        print(f"round {r + 1}/{args.repeats}: plain loop {plain_s:.1f} s, {timed}", flush=True)
    n = rounds[0][0]["concurrent"]["records_in"]

    def med(values: list[float]) -> float:
        return float(np.median(values))

    plain = [p for _, p, _ in rounds]
    floor = [f for _, _, f in rounds]
    measured = []  # (method, seconds per round, × (a) per round, × (b) per round, note)
    for name in rounds[0][0]:
        for label, key, note in (("end to end", "wall", "process start to exit, all steps"),
                                 ("steps only", "steps_seconds", "ingest + quality + signals + combine")):  # fmt: skip
            secs = [runs[name][key] for runs, _, _ in rounds]
            measured.append((f"pipeline, {label} ({name})", secs, [p / x for p, x in zip(plain, secs)],
                             [f / x for f, x in zip(floor, secs)], note))  # fmt: skip
    measured.append(("(a) plain loop", plain, [1.0] * len(plain), [f / p for f, p in zip(floor, plain)],
                     f"1 process, PIL + pandas, {plain_n} rows written"))  # fmt: skip
    measured.append(("(b) decode floor", floor, [p / f for p, f in zip(plain, floor)], [1.0] * len(floor),
                     f"{cores} processes, {decoded} images decoded, nothing else"))  # fmt: skip
    rows = []
    for name, secs, xa, xb, note in measured:
        row = {"method": name, "seconds": f"{med(secs):.1f}", "samples/s": f"{n / med(secs):.0f}",
               "× (a)": f"{med(xa):.2f}", "× (b)": f"{med(xb):.2f}", "what": note}  # fmt: skip
        if args.repeats > 1:
            row["× (a) per round"] = " ".join(f"{x:.2f}" for x in xa)
        rows.append(row)
    # the breakdown of each mode's median run (by wall time)
    runs = {name: sorted((rd[0][name] for rd in rounds), key=lambda x: x["wall"])[len(rounds) // 2]
            for name in rounds[0][0]}  # fmt: skip
    cols = ["method", "seconds", "samples/s", "× (a)", "× (b)"] + (["× (a) per round"] if args.repeats > 1 else [])
    print(f"\nthroughput, model-free path, {n} records ({args.records} generated), {cores} cores\n")
    print(table(rows, cols + ["what"]))
    if args.repeats > 1:
        print(f"\n{args.repeats} rounds; seconds and ratios are medians; a ratio is taken within its round")
    print("\nwhere the end-to-end seconds went (indented start-up parts overlap: they run at the same time)\n")
    print(_breakdown_table(runs))
    acc = runs["concurrent"]["accounting"]  # the median concurrent run
    print(
        f"\npipeline accounting: in {acc['records_in']} = kept {acc['kept']} + dropped {acc['dropped']} "
        f"+ quarantined {acc['quarantined']} (balanced: {acc['balanced']})"
    )
    print("targets: pipeline end to end ≥ 2.00 × (a), steps only ≥ 2.00 × (a), ≥ 0.80 × (b)")


if __name__ == "__main__":
    main()
