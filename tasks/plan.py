"""What a run will cost: each step's wall time, CPU-hours and GPU-hours at N records on a cluster.

Calibration (``costs`` in a finished run's manifest, gathered by ``step_costs``):
per step (each signal its own step) the wall seconds, the worker-seconds its
units spent (summed over units, the step's share of a machine they held), the
number of units, the pool that ran them, the bytes written, and per unit that
ran its seconds and size (records; images for an image-only signal).

Projection, per step, with r = N / R (R: the calibration's records; for a
calibration on a chunk sample, ``curate --sample-chunks``, the records of the
whole data it was drawn from, estimated per dataset):

    work(N)   = units(N) · a + b · size · r   (+ the step's work outside its units, · r)
    parallel  = work(N) / slots(N)            slots = min(units(N), pool on the target cluster)
    fixed     = max(0, wall − worker_s / slots₀)   (start-up, model loads, driver work: kept as measured)
    wall(N)   = fixed + parallel
    CPU-hours = work(N) · num_cpus / 3600;  GPU-hours = work(N) · num_gpus / 3600

``a`` (seconds per unit whatever its size: opening files, imports, small
outputs) and ``b`` (seconds per record, or per distinct image) are the
least-squares line through the step's unit costs, clamped to a, b ≥ 0
(``tasks.plan_fit``); size is the calibration's records (rows, images) in those
units. With fewer than 3 distinct unit sizes, or a manifest without unit costs,
``work(N) = worker_s · r`` (the proportional rule; the row says which). In a
sampled calibration each unit stands for its dataset's chunks planned / kept
(units) and records estimated / read (size, and the proportional rule), so a
dataset that the sample over-represents does not weigh more. units(N) is the
calibration's units (all of the data's chunks, for a sample) times min(r, 1),
and never fewer than N / ``ingest.chunk_records``.

The pool is the step's ``concurrency`` (actors) when set, else as many tasks or
actors as the cluster's CPUs (and GPUs, when the step asks for them) hold. An
image-only signal's work scales with distinct images, assumed to keep the
calibration's samples-per-image ratio. Work per unit is assumed to be what the
calibration measured: calibrate on the hardware (CPU or GPU) the run will use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from magicvl.tasks.plan_fit import step_work
from magicvl.tasks.resources import StepResources


@dataclass(frozen=True)
class Cluster:
    """The machines a run gets: ``nodes`` alike, each with ``cpus`` CPUs and ``gpus`` GPUs."""

    nodes: int = 1
    cpus: float = 1.0
    gpus: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Cluster:
        """``nodes=8,cpus=64,gpus=8`` (any subset; cpus and gpus are per node)."""
        fields: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in ("nodes", "cpus", "gpus"):
                raise ValueError(f"--cluster: {part!r} is not nodes=N, cpus=N or gpus=N")
            try:
                fields[key.strip()] = float(value)
            except ValueError:
                raise ValueError(f"--cluster: {key.strip()}={value!r} is not a number") from None
        if fields.get("nodes", 1) < 1 or fields.get("cpus", 1) <= 0 or fields.get("gpus", 0) < 0:
            raise ValueError(f"--cluster: {text!r} needs nodes ≥ 1, cpus > 0, gpus ≥ 0")
        return cls(int(fields.get("nodes", 1)), fields.get("cpus", 1.0), fields.get("gpus", 0.0))

    @property
    def total_cpus(self) -> float:
        return self.nodes * self.cpus

    @property
    def total_gpus(self) -> float:
        return self.nodes * self.gpus


@dataclass(frozen=True)
class StepCost:
    """One step of a calibration run (a signal is a step of its own: ``signal:<name>``)."""

    step: str
    wall_s: float
    worker_s: float
    units: int
    bytes: int = 0
    actors: bool = False  # model-backed: an actor pool (its load time lands in ``fixed``)

    @classmethod
    def of(cls, d: dict[str, Any]) -> StepCost:
        return cls(**{k: d[k] for k in ("step", "wall_s", "worker_s", "units", "bytes", "actors") if k in d})


def pool(res: StepResources, cluster: Cluster, actors: bool) -> int:
    """Tasks or actors of a step that run at once on ``cluster`` (at least one)."""
    if actors and res.concurrency:
        return res.concurrency
    fit = math.floor(cluster.total_cpus / res.num_cpus + 1e-9)
    if res.num_gpus:
        fit = min(fit, math.floor(cluster.total_gpus / res.num_gpus + 1e-9))
    return max(1, fit)


def project_step(
    cost: StepCost, r: float, res: StepResources, cal_res: StepResources, cal: Cluster, target: Cluster,
    units: int | None = None, work: tuple[float, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One step's projection at ``r`` times the calibration's records (see the module docstring);
    ``units``: the step's units at the target size (default: the calibration's times ``r``);
    ``work``: its worker-seconds there and the rule (default: ``worker_s · r``, proportional)."""
    slots0 = max(1, min(cost.units, pool(cal_res, cal, cost.actors)))
    fixed = max(0.0, cost.wall_s - cost.worker_s / slots0)
    units = units or (1 if cost.units <= 1 else math.ceil(cost.units * r))  # one unit: driver work
    slots = max(1, min(units, pool(res, target, cost.actors)))
    work, rule = work or (cost.worker_s * r, "proportional")
    return {
        "step": cost.step,
        "wall_s": round(fixed + work / slots, 3),
        "fixed_s": round(fixed, 3),
        "units": units,
        "slots": slots,
        "cpu_hours": round(work * res.num_cpus / 3600, 4),
        "gpu_hours": round(work * res.num_gpus / 3600, 4),
        "bytes": int(cost.bytes * r),
        "rule": rule,
    }


def project(
    calibration: dict[str, Any],
    records: int,
    target: Cluster,
    resources: dict[str, StepResources],
    unit_records: int | None = None,
) -> dict[str, Any]:
    """The plan: per step (calibration order) wall, CPU- and GPU-hours at ``records``; totals; bottleneck.

    ``resources``: step → the target recipe's resources (missing: the defaults). ``unit_records``:
    records per unit at the target (the recipe's ``ingest.chunk_records``: samples shards follow
    the chunks), so a step of several units has max(its calibration units · min(r, 1),
    ⌈records / unit_records⌉); default: the calibration's units times r. A one-unit step (driver
    work) stays one unit. A sampled calibration's units are those of the whole data (``units_full``).
    """
    sample = calibration.get("sample")
    r = records / (sample["records_estimated"] if sample else calibration["records"])
    cal = Cluster(**calibration["cluster"])
    rows = []
    for d in calibration["steps"]:
        cost = StepCost.of(d)
        cal_res = StepResources(**d.get("resources", {}))
        full = d.get("units_full", cost.units)
        if cost.units <= 1:
            units = 1
        elif unit_records:
            units = max(math.ceil(full * min(r, 1.0) - 1e-9), math.ceil(records / unit_records))
        else:
            units = math.ceil(full * r - 1e-9)
        work = step_work(d, r, units, sample)
        read = records / calibration["records"]  # bytes: per record the calibration read
        rows.append(project_step(cost, read, resources.get(cost.step, StepResources()), cal_res, cal, target, units,
                                 work))  # fmt: skip
    total = {k: round(sum(x[k] for x in rows), 4) for k in ("wall_s", "cpu_hours", "gpu_hours", "bytes")}
    bottleneck = max(rows, key=lambda x: x["wall_s"])["step"] if rows else None
    return {
        "records": records,
        "cluster": asdict(target),
        "calibration_records": calibration["records"],
        "calibration_cluster": calibration["cluster"],
        **({"calibration_sample": {k: sample[k] for k in ("fraction", "every", "chunks_planned", "chunks_kept",
                                                           "records_estimated")}} if sample else {}),  # fmt: skip
        "steps": rows,
        "total": total,
        "bottleneck": bottleneck,
    }


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as a table (one line per step, the bottleneck marked, then the totals)."""
    c = plan["cluster"]
    smp = plan.get("calibration_sample")
    of = f", a sample of 1 chunk in {smp['every']} of ~{smp['records_estimated']:,.0f}" if smp else ""
    head = (f"plan: {plan['records']:,} records on {c['nodes']} node(s) × {c['cpus']:g} CPUs, {c['gpus']:g} GPUs "
            f"(calibration: {plan['calibration_records']:,} records{of})")  # fmt: skip
    cols = ("step", "wall", "fixed s", "units", "slots", "CPU-h", "GPU-h", "GB written", "work", "note")
    lines = [[r["step"], _duration(r["wall_s"]), f"{r['fixed_s']:.1f}", str(r["units"]), str(r["slots"]),
              f"{r['cpu_hours']:.4g}", f"{r['gpu_hours']:.4g}", f"{r['bytes'] / 1e9:.3g}", r.get("rule", ""),
              "← bottleneck" if r["step"] == plan["bottleneck"] else ""] for r in plan["steps"]]  # fmt: skip
    t = plan["total"]
    lines.append(["total (steps in sequence)", _duration(t["wall_s"]), "", "", "", f"{t['cpu_hours']:.4g}",
                  f"{t['gpu_hours']:.4g}", f"{t['bytes'] / 1e9:.3g}", "", ""])  # fmt: skip
    width = [max(len(cols[i]), *(len(x[i]) for x in lines)) for i in range(len(cols))]
    fmt = lambda row: "  ".join(v.ljust(w) for v, w in zip(row, width)).rstrip()  # noqa: E731
    return "\n".join([head, fmt(cols), fmt(["-" * w for w in width]), *map(fmt, lines)])
