"""Does ``magicvl plan`` predict a bigger run? A plan from a small calibration run against the measured run.

    python -m bench.plan [--calibrate 1000] [--records 10000] [--all-signals] [--work work/bench]

Runs ``curate`` on the demo recipe over ``magicvl sample-data`` scaled to
``--calibrate`` records (fresh output: the calibration), plans ``--records``
from its manifest on the same machine (``flows.plan.make_plan``), runs
``curate`` at ``--records`` (fresh output) and prints, per step, the predicted
and the measured wall seconds and their ratio. Target (issue 19): every step
within 25%. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import REPO, prepare, run_curate, table, write_recipe


def _run(work: Path, records: int, all_signals: bool) -> tuple[Path, dict]:
    prepare(work, records, models=all_signals)
    out = work / f"out-plan-{records}{'-all' if all_signals else ''}"
    recipe = write_recipe(work, records, str(out.resolve()), all_signals=all_signals)
    res = run_curate(recipe, out)
    costs = json.loads((out / "_manifest.json").read_text())["costs"]
    return recipe, {"res": res, "costs": costs, "out": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", type=int, default=1000)
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--all-signals", action="store_true")
    ap.add_argument("--work", type=Path, default=REPO / "work" / "bench")
    args = ap.parse_args()
    from magicvl.flows.plan import make_plan

    _, cal = _run(args.work, args.calibrate, args.all_signals)
    recipe, big = _run(args.work, args.records, args.all_signals)
    plan = make_plan(str(recipe), args.records, calibration=str(cal["out"]), write=False)
    measured = {s["step"]: s for s in big["costs"]["steps"]}
    rows = []
    for p in plan["steps"]:
        m = measured.get(p["step"], {}).get("wall_s")
        cal_s = next(s["wall_s"] for s in cal["costs"]["steps"] if s["step"] == p["step"])
        ratio = p["wall_s"] / m if m else None
        judged = ratio is not None and m >= 1.0
        rows.append({"step": p["step"], "calibration s": f"{cal_s:.1f}", "predicted s": f"{p['wall_s']:.1f}",
                     "measured s": "-" if m is None else f"{m:.1f}",
                     "predicted/measured": "-" if ratio is None else f"{ratio:.2f}",
                     "within 25%": "-" if not judged else ("yes" if 0.75 <= ratio <= 1.25 else "NO")})  # fmt: skip
    tot_p = plan["total"]["wall_s"]
    tot_m = sum(s["wall_s"] for s in big["costs"]["steps"])
    tot_c = sum(s["wall_s"] for s in cal["costs"]["steps"])
    rows.append({"step": "steps total", "calibration s": f"{tot_c:.1f}", "predicted s": f"{tot_p:.1f}",
                 "measured s": f"{tot_m:.1f}", "predicted/measured": f"{tot_p / tot_m:.2f}",
                 "within 25%": "yes" if 0.75 <= tot_p / tot_m <= 1.25 else "NO"})  # fmt: skip
    c = plan["cluster"]
    print(f"plan from {args.calibrate:,} records vs a measured {args.records:,}-record run "
          f"({'all six signals' if args.all_signals else 'model-free demo recipe'}; "
          f"{c['nodes']} node × {c['cpus']:g} CPUs)")  # fmt: skip
    print(table(rows, list(rows[0])))
    print("(steps under 1 s measured are not judged: fixed costs of a second or less; '-' there)")


if __name__ == "__main__":
    main()
