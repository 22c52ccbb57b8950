"""The plan's projection: golden values by hand, pools from resources, the cluster flag."""

from __future__ import annotations

import pytest

from magicvl.tasks.plan import Cluster, format_plan, pool, project
from magicvl.tasks.resources import StepResources

CALIBRATION = {
    "records": 1000,
    "cluster": {"nodes": 1, "cpus": 2.0, "gpus": 0.0},
    "steps": [
        {"step": "ingest", "wall_s": 10.0, "worker_s": 16.0, "units": 4, "bytes": 1000, "actors": False,
         "resources": {"num_cpus": 1.0}},
        {"step": "signal:ocr", "wall_s": 30.0, "worker_s": 50.0, "units": 2, "bytes": 0, "actors": True},
        {"step": "combine", "wall_s": 3.0, "worker_s": 1.0, "units": 4, "bytes": 10, "actors": False},
    ],
}  # fmt: skip


def test_projection_golden_values():
    target = Cluster(nodes=2, cpus=8, gpus=1)
    res = {"signal:ocr": StepResources(num_cpus=2, num_gpus=1)}
    plan = project(CALIBRATION, 10_000, target, res)
    rows = {r["step"]: r for r in plan["steps"]}
    # ingest: 2 slots measured → fixed 10 − 16/2 = 2 s; 40 units on 16 CPUs: 2 + 160/16
    assert rows["ingest"] == {"step": "ingest", "wall_s": 12.0, "fixed_s": 2.0, "units": 40, "slots": 16,
                              "cpu_hours": round(160 / 3600, 4), "gpu_hours": 0.0, "bytes": 10_000,
                              "rule": "proportional"}  # fmt: skip  (no unit costs: an old manifest plans as before)
    # OCR: fixed 30 − 50/2 = 5 s; 2 GPUs hold 2 actors of 1 GPU: 5 + 500/2
    ocr = rows["signal:ocr"]
    assert (ocr["wall_s"], ocr["slots"], ocr["units"]) == (255.0, 2, 20)
    assert (ocr["cpu_hours"], ocr["gpu_hours"]) == (round(1000 / 3600, 4), round(500 / 3600, 4))
    assert rows["combine"]["wall_s"] == 3.125  # fixed 2.5 + 10/16
    assert plan["bottleneck"] == "signal:ocr" and plan["total"]["wall_s"] == 270.125
    assert plan["calibration_records"] == 1000 and plan["cluster"] == {"nodes": 2, "cpus": 8, "gpus": 1}


def test_same_size_same_cluster_gives_back_the_calibration():
    plan = project(CALIBRATION, 1000, Cluster(1, 2, 0), {})
    assert [r["wall_s"] for r in plan["steps"]] == [10.0, 30.0, 3.0]


def test_fewer_units_than_slots_limit_the_parallelism():
    plan = project(CALIBRATION, 500, Cluster(4, 64, 0), {})  # 2 ingest units on 256 CPUs: 2 slots
    ingest = plan["steps"][0]
    assert (ingest["units"], ingest["slots"], ingest["wall_s"]) == (2, 2, 2.0 + 8.0 / 2)


def test_units_follow_the_chunk_size_when_given():
    plan = project(CALIBRATION, 10_000, Cluster(1, 2, 0), {}, unit_records=250)
    assert [r["units"] for r in plan["steps"]] == [40, 40, 40]
    driver = {**CALIBRATION, "steps": [{"step": "signals:other", "wall_s": 0.1, "worker_s": 0.0, "units": 1}]}
    assert project(driver, 10_000, Cluster(1, 2, 0), {}, unit_records=250)["steps"][0]["units"] == 1
    ocr = CALIBRATION["steps"][1]  # 2 calibration units; 40 at the target, still 2 CPUs: same wall as before
    assert plan["steps"][1]["wall_s"] == 30.0 - ocr["worker_s"] / 2 + ocr["worker_s"] * 10 / 2


def test_pool_honours_concurrency_cpus_and_gpus():
    c = Cluster(nodes=2, cpus=16, gpus=4)
    assert pool(StepResources(concurrency=3), c, actors=True) == 3
    assert pool(StepResources(concurrency=3), c, actors=False) == 32  # tasks: concurrency is for actors
    assert pool(StepResources(num_cpus=4), c, actors=False) == 8
    assert pool(StepResources(num_cpus=1, num_gpus=0.5), c, actors=True) == 16
    assert pool(StepResources(num_cpus=64), c, actors=True) == 1


def test_cluster_flag():
    assert Cluster.parse("nodes=8,cpus=96,gpus=8") == Cluster(8, 96.0, 8.0)
    assert Cluster.parse("cpus=4") == Cluster(1, 4.0, 0.0)
    with pytest.raises(ValueError, match=r"--cluster: 'cores=4' is not nodes=N, cpus=N or gpus=N"):
        Cluster.parse("cores=4")
    with pytest.raises(ValueError, match=r"--cluster: gpus='x' is not a number"):
        Cluster.parse("gpus=x")


def test_table_names_the_bottleneck():
    text = format_plan(project(CALIBRATION, 150_000_000, Cluster(64, 96, 8), {}))
    assert "150,000,000 records on 64 node(s)" in text
    line = next(x for x in text.splitlines() if "bottleneck" in x)
    assert line.startswith("signal:ocr")
