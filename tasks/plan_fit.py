"""The per-unit cost model of ``magicvl plan``: a step's unit costs ``a + b·size``, fitted per step.

``unit_costs`` (``tasks.costs``): one ``[seconds, size, dataset]`` per unit
that ran. A unit pays ``a`` seconds whatever its size (opening files, imports,
writing its small outputs) and ``b`` per record. An image-only signal's units
(pieces of images: their number follows the pool, their seconds the kind of
image) are planned per image, proportionally. ``fit_units`` is the least-squares line through them, clamped to
``a ≥ 0, b ≥ 0``, weighted by how many units of the whole data each one stands
for (1; in a sampled calibration its dataset's chunks planned / kept).
``step_work`` projects a step's worker-seconds with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_SIZES = 3  # distinct unit sizes a line needs; fewer: the proportional rule


@dataclass(frozen=True)
class UnitFit:
    """Seconds of one unit: ``a`` fixed + ``b`` per record (or image)."""

    a: float
    b: float

    def sse(self, pts: list[tuple[float, float, float]]) -> float:
        return sum(w * (y - self.a - self.b * x) ** 2 for y, x, w in pts)


def fit_units(pts: list[tuple[float, float, float]]) -> UnitFit | None:
    """Weighted least squares of seconds on size over ``(seconds, size, weight)``, clamped to a ≥ 0, b ≥ 0
    (the better of the two boundary lines when the free line leaves them); None with fewer than
    ``MIN_SIZES`` distinct sizes."""
    if len({x for _, x, _ in pts}) < MIN_SIZES:
        return None
    sw = sum(w for _, _, w in pts)
    mx, my = sum(w * x for _, x, w in pts) / sw, sum(w * y for y, _, w in pts) / sw
    sxx = sum(w * (x - mx) ** 2 for _, x, w in pts)
    b = sum(w * (x - mx) * (y - my) for y, x, w in pts) / sxx
    free = UnitFit(my - b * mx, b)
    if free.a >= 0 and free.b >= 0:
        return free
    through_zero = sum(w * x * y for y, x, w in pts) / max(sum(w * x * x for _, x, w in pts), 1e-12)
    return min(UnitFit(my, 0.0), UnitFit(0.0, max(0.0, through_zero)), key=lambda f: f.sse(pts))


def dataset_weights(sample: dict[str, Any] | None) -> tuple[dict[str, float], dict[str, float]]:
    """Per dataset of a sampled calibration: (units of the whole data per unit read: chunks planned / kept;
    records of the whole data per record read: records estimated / read). Empty: every weight 1."""
    if not sample:
        return {}, {}
    ds = sample["datasets"]
    units = {d: v["chunks_planned"] / v["chunks_kept"] for d, v in ds.items() if v["chunks_kept"]}
    records = {d: v["records_estimated"] / v["records_read"] for d, v in ds.items() if v["records_read"]}
    return units, records


def step_work(d: dict[str, Any], s: float, units: int, sample: dict[str, Any] | None) -> tuple[float, str]:
    """Worker-seconds of calibration step ``d`` at ``s`` times the records its calibration stands for, on
    ``units`` units; and the rule used: ``a+b·n`` (the fit), ``proportional`` (no per-unit data, or
    fewer than ``MIN_SIZES`` sizes). The step's worker time outside its fitted units (ingest's id
    dedup, an image signal's per-sample tables) scales with the records (those the calibration read)."""
    read = s * (sample["records_estimated"] / sample["records_read"] if sample else 1.0)  # per record read
    rows = d.get("unit_costs")
    if not rows:  # a manifest from before per-unit costs: today's rule
        return d["worker_s"] * read, "proportional"
    wu, wr = dataset_weights(sample)
    rest = max(0.0, d["worker_s"] - sum(r[0] for r in rows)) * read
    # An image-only signal's units are pieces of images whose number follows the pool, not the chunks, and
    # whose seconds follow the kind of image (a document page costs several photos): per image, proportional.
    fit = None if d.get("unit_of") == "images" else fit_units([(r[0], r[1], wu.get(r[2], 1.0)) for r in rows])
    if fit is None:
        return sum(r[0] * wr.get(r[2], 1.0) for r in rows) * s + rest, "proportional"
    share = sum(wu.get(r[2], 1.0) for r in rows) / max(d.get("units_full", d["units"]), 1e-9)  # units that work
    size = sum(r[1] * wr.get(r[2], 1.0) for r in rows) * s
    return fit.a * units * min(1.0, share) + fit.b * size + rest, "a+b·n"
