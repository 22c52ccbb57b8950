"""The per-unit cost model: the fit recovers a and b, projections with a per-unit fixed cost, old
manifests, and the per-dataset weights of a chunk-sampled calibration."""

from __future__ import annotations

import pytest

from magicvl.tasks.plan import Cluster, project
from magicvl.tasks.plan_fit import UnitFit, fit_units, step_work

CAL = {"nodes": 1, "cpus": 2.0, "gpus": 0.0}


def unit_costs(a: float, b: float, sizes: list[int], dataset: str = "d") -> list[list]:
    return [[round(a + b * n, 6), n, dataset] for n in sizes]


def test_fit_recovers_a_and_b():
    pts = [(y, n, 1.0) for y, n, _ in unit_costs(2.0, 0.01, [50, 100, 250, 250, 400])]
    fit = fit_units(pts)
    assert fit.a == pytest.approx(2.0) and fit.b == pytest.approx(0.01)
    noisy = [(1.9, 100, 1.0), (3.1, 200, 1.0), (3.9, 300, 1.0), (5.1, 400, 1.0)]  # least squares by hand
    assert fit_units(noisy) == UnitFit(pytest.approx(0.9), pytest.approx(0.0104))  # b = 520 / 50,000


def test_fit_is_clamped_and_needs_three_sizes():
    falling = [(4.0, 100, 1.0), (3.0, 200, 1.0), (2.0, 300, 1.0)]  # slope −0.01: b clamps to 0, a to the mean
    assert fit_units(falling) == UnitFit(pytest.approx(3.0), 0.0)
    steep = [(0.5, 100, 1.0), (2.0, 200, 1.0), (3.5, 300, 1.0)]  # free line a = −1: a clamps to 0, b through 0
    assert fit_units(steep) == UnitFit(0.0, pytest.approx((50 + 400 + 1050) / (1e4 + 4e4 + 9e4)))
    assert fit_units([(1.0, 100, 1.0), (2.0, 200, 1.0), (2.1, 200, 1.0)]) is None  # two sizes: no line
    weighted = [(3.0, 100, 3.0), (3.0, 200, 1.0), (3.0, 300, 1.0), (9.0, 300, 0.0)]  # weight 0: left out
    assert fit_units(weighted) == UnitFit(pytest.approx(3.0), pytest.approx(0.0, abs=1e-12))


def calibration(steps: list[dict], records: int, sample: dict | None = None) -> dict:
    return {"records": records, "cluster": CAL, "steps": steps, **({"sample": sample} if sample else {})}


def test_a_per_unit_fixed_cost_at_ten_times_the_records():
    # 6 units of 100/200/300 records, 1 s each whatever the size + 10 ms a record: 6 + 12 = 18 worker-s
    costs = unit_costs(1.0, 0.01, [100, 200, 300, 100, 200, 300])
    step = {"step": "quality", "wall_s": 10.0, "worker_s": 18.0, "units": 6, "unit_costs": costs}
    plan = project(calibration([step], 1200), 12_000, Cluster(1, 2, 0), {}, unit_records=300)
    row = plan["steps"][0]
    # 40 units of 300 records at the target: 40·1 + 0.01·12,000 = 160 worker-s (proportional: 180)
    assert (row["units"], row["rule"]) == (40, "a+b·n")
    assert row["cpu_hours"] == round(160 / 3600, 4)
    assert row["wall_s"] == pytest.approx(10.0 - 18.0 / 2 + 160 / 2)
    same = project(calibration([step], 1200), 1200, Cluster(1, 2, 0), {}, unit_records=300)["steps"][0]
    assert same["wall_s"] == pytest.approx(10.0)  # the line's residuals sum to 0: the calibration comes back


def test_old_manifests_and_too_few_sizes_plan_proportionally():
    old = {"step": "ingest", "wall_s": 10.0, "worker_s": 16.0, "units": 4}
    assert step_work(old, 10.0, 40, None) == (160.0, "proportional")
    two = {**old, "unit_costs": [[4.0, 250, "d"], [4.0, 250, "d"], [6.0, 300, "d"], [2.0, 300, "d"]]}
    assert step_work(two, 10.0, 40, None) == (160.0, "proportional")
    plan = project(calibration([old], 1000), 10_000, Cluster(1, 2, 0), {}, unit_records=250)
    assert plan["steps"][0]["rule"] == "proportional" and plan["steps"][0]["wall_s"] == 2.0 + 160 / 2


def test_work_outside_the_units_scales_with_the_records():
    # an image signal: 3 image units (2 s + 0.1 s an image) and 1.5 s of per-sample tables besides
    costs = unit_costs(2.0, 0.1, [10, 20, 30])
    step = {"step": "signal:ocr", "wall_s": 5.0, "worker_s": 13.5, "units": 6, "unit_of": "images",
            "unit_costs": costs}  # fmt: skip
    work, rule = step_work(step, 10.0, 60, None)
    # image pieces scale per image (their count follows the pool, their seconds the kind of image): 12 s of
    # pieces · 10, and the per-sample tables 1.5 s · 10
    assert rule == "proportional" and work == pytest.approx(12.0 * 10 + 15.0)
    ingest = {**step, "step": "ingest", "unit_of": "records"}  # other steps: the line, a per unit + b per record
    work, rule = step_work(ingest, 10.0, 60, None)
    assert rule == "a+b·n" and work == pytest.approx(30 * 2.0 + 0.1 * 600 + 15.0)


SAMPLE = {
    "fraction": 0.1, "every": 10, "chunks_planned": 11, "chunks_kept": 2, "records_read": 350,
    "records_estimated": 2600.0,
    "datasets": {
        "big": {"chunks_planned": 10, "chunks_kept": 1, "records_read": 250, "records_estimated": 2500.0},
        "small": {"chunks_planned": 1, "chunks_kept": 1, "records_read": 100, "records_estimated": 100.0},
    },
}  # fmt: skip


def test_a_sampled_calibration_weighs_each_dataset_by_what_it_stands_for():
    # big: 1 of its 10 chunks read (5 s); small: its only chunk (1 s). The whole data: 10·5 + 1 = 51 s.
    step = {"step": "ingest", "wall_s": 5.0, "worker_s": 6.0, "units": 2, "units_full": 11.0,
            "unit_costs": [[5.0, 250, "big"], [1.0, 100, "small"]]}  # fmt: skip
    cal = calibration([step], 350, SAMPLE)
    plan = project(cal, 2600, Cluster(1, 2, 0), {}, unit_records=250)
    row = plan["steps"][0]
    assert (row["units"], row["rule"], row["cpu_hours"]) == (11, "proportional", round(51 / 3600, 4))
    assert plan["calibration_sample"]["every"] == 10 and "a sample of 1 chunk in 10" in format_head(plan)
    twice = project(cal, 5200, Cluster(1, 2, 0), {}, unit_records=250)["steps"][0]
    assert (twice["units"], twice["cpu_hours"]) == (21, round(102 / 3600, 4))  # ⌈5200 / 250⌉ units


def test_a_sampled_fit_counts_each_unit_as_the_units_it_stands_for():
    # big: units of 250 records at 1 + 0.02 n = 6 s (weight 10); small: 100 and 50 records (weight 1)
    sample = {**SAMPLE, "datasets": {**SAMPLE["datasets"], "small": {"chunks_planned": 2, "chunks_kept": 2,
                                                                     "records_read": 150,
                                                                     "records_estimated": 150.0}}}  # fmt: skip
    sample |= {"records_estimated": 2650.0, "records_read": 400}
    rows = [[6.0, 250, "big"], [3.0, 100, "small"], [2.0, 50, "small"]]
    step = {"step": "combine", "wall_s": 4.0, "worker_s": 11.0, "units": 3, "units_full": 12.0, "unit_costs": rows}
    work, rule = step_work(step, 1.0, 12, sample)
    assert rule == "a+b·n" and work == pytest.approx(12 * 1.0 + 0.02 * (2500 + 150))  # = 10·6 + 3 + 2


def format_head(plan: dict) -> str:
    from magicvl.tasks.plan import format_plan

    return format_plan(plan).splitlines()[0]
