"""The unit-of-work skeleton and its steps: quarantine kinds of oversize input, row-by-row fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import Signal, SignalParams
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.layout import OutputLayout
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import list_shards
from magicvl.tasks.steps.ingest.units import IngestUnit
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit, compute_rows
from magicvl.tasks.unit import sweep
from tests.helpers import make_dataset

TURNS = [{"from": "human", "value": "<image>\nwhat?"}, {"from": "gpt", "value": "a thing"}]


def ingest(root: Path, cfg: DatasetConfig, opts: IngestOptions = IngestOptions()) -> dict:
    (chunk,) = plan_dataset(cfg, root, opts)
    return IngestUnit(chunk, cfg, opts, StorageOptions(), str(root / "out"), str(root), []).run()


def quarantined(root: Path, ds: str = "d") -> dict[str, str]:
    """source → error_kind of every quarantined record."""
    rows = [r for p in list_shards(OutputLayout(root / "out").quarantine_dir(ds)) for r in pq.read_table(p).to_pylist()]
    return {r["source"]: r["error_kind"] for r in rows}


def test_record_too_large_and_image_too_large_are_quarantined(tmp_path):
    make_dataset(tmp_path, n=4)
    big = {"id": "big", "conversations": [{"from": "human", "value": "x" * 5000}, {"from": "gpt", "value": "y"}]}
    with open(tmp_path / "d.jsonl", "a") as f:
        f.write(json.dumps(big) + "\n")
    (tmp_path / "images" / "huge.png").write_bytes((tmp_path / "images" / "0.png").read_bytes() + b"\0" * 20000)
    with open(tmp_path / "d.jsonl", "a") as f:
        f.write(json.dumps({"id": "huge", "image": "huge.png", "conversations": TURNS}) + "\n")
    cfg = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images")
    s = ingest(tmp_path, cfg, IngestOptions(max_record_bytes=4096, max_image_bytes=16000))
    assert s["records_in"] == 6 and s["kept"] == 4
    assert quarantined(tmp_path) == {"d.jsonl:line 5": "record_too_large", "d.jsonl:line 6": "image_too_large"}


def test_image_without_an_image_root_is_quarantined(tmp_path):
    make_dataset(tmp_path, n=3)  # record 0 and 1 reference images; 4 is text-only (none here)
    cfg = DatasetConfig(name="d", format="jsonl", path="d.jsonl")  # no image_root
    s = ingest(tmp_path, cfg)
    assert s["kept"] == 0 and s["quarantined"] == {"no_image_root": 3}
    assert set(quarantined(tmp_path).values()) == {"no_image_root"}


def test_a_rerun_skips_and_a_new_key_replaces_the_stale_outputs(tmp_path):
    make_dataset(tmp_path, n=12)
    cfg = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images")
    (chunk,) = plan_dataset(cfg, tmp_path, IngestOptions())
    out = tmp_path / "out"
    small = IngestUnit(chunk, cfg, IngestOptions(), StorageOptions(shard_max_rows=5), str(out), str(tmp_path), [])
    first = small.run()
    assert [sh["rows"] for sh in first["shards"]] == [5, 5, 2]
    assert small.run()["cached"]
    one = IngestUnit(chunk, cfg, IngestOptions(), StorageOptions(), str(out), str(tmp_path), []).run()
    assert not one["cached"] and [sh["rows"] for sh in one["shards"]] == [12]
    assert [str(p) for p in list_shards(OutputLayout(out).samples_dir("d"))] == [one["shards"][0]["path"]]
    assert sweep(OutputLayout(out).samples_dir("d"), set()) == 1  # sweep removes what is not kept


def _poisoned(batch: SampleBatch, params: SignalParams, _backend=None) -> dict[str, np.ndarray]:
    if any("poison" in r for r in batch.responses()):
        raise ValueError("cannot score a poisoned response")
    return {"test_len": np.array([float(len(r)) for r in batch.responses()])}


POISONED = Signal(
    name="test_len", version="1", axis="text", description="response length; raises on 'poison' (test only)",
    params=SignalParams, compute=_poisoned, columns=("test_len",), reads="text",
)  # fmt: skip


def test_a_signal_that_raises_on_one_row_falls_back_to_row_by_row(tmp_path):
    job = SignalJob(POISONED, SignalParams(), None)
    convs = [[{"from": "human", "value": "q"}, {"from": "gpt", "value": v}] for v in ("ab", "poison", "abcd")]
    cols, errors = compute_rows(job, SampleBatch(["a", "b", "c"], convs), None)
    assert errors[0] is None and errors[2] is None and "cannot score a poisoned response" in errors[1]
    np.testing.assert_array_equal(cols["test_len"], [2.0, np.nan, 4.0])

    make_dataset(tmp_path, n=8)  # and through a unit over a real shard
    with open(tmp_path / "d.jsonl", "a") as f:
        poison = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "poison"}]
        f.write(json.dumps({"id": "p", "conversations": poison}) + "\n")
    cfg = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images", label_field="category")
    shard = ingest(tmp_path, cfg)["shards"][0]
    res = SignalUnit(job, "d", shard, str(tmp_path / "out"), StorageOptions(), 10**8, 10**8).run()
    assert res["rows"] == 9 and res["errors"] == 1
    t = pq.read_table(res["path"]).to_pydict()
    assert [e is not None for e in t["error"]] == [False] * 8 + [True]
    assert None not in t["test_len"][:8] and t["test_len"][8] is None  # no value only there


@pytest.mark.parametrize("side", [16, 64])
def test_unit_keys_differ_by_parameters(side):
    from magicvl.scoring.signals import get_signal

    s = get_signal("image_entropy")
    a = SignalJob.of(s, s.params(max_side=side)).key("sha")
    b = SignalJob.of(s, s.params(max_side=side + 1)).key("sha")
    assert a != b and a == SignalJob.of(s, s.params(max_side=side)).key("sha")


def test_forget_datasets_removes_every_output_of_a_dataset_no_longer_in_the_recipe(tmp_path: Path) -> None:
    from magicvl.storage.layout import OutputLayout
    from magicvl.tasks.unit import forget_datasets

    layout = OutputLayout(tmp_path / "out")
    files = {}
    for ds in ("kept", "gone"):
        files[ds] = [
            layout.samples_dir(ds) / "part-000000-000.parquet",
            layout.quarantine_dir(ds) / "ingest-part-000000-000.parquet",
            layout.signal_dir("token_length", ds) / "part-000000-000-0123456789abcdef.parquet",
            layout.quality_dir("verdicts", ds) / "part-000000-000.parquet",
            layout.scores_dir(ds) / f"{ds}-part-000000-000-000.parquet",
            layout.marker("ingest", f"{ds}/000000"),
            layout.marker("dedup", ds),
            layout.folder_manifest(layout.samples_dir(ds)),
        ]
        for p in files[ds]:
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.suffix == ".parquet":
                pq.write_table(pa.table({"sample_id": [ds]}), p)
            else:
                p.write_text("{}")
    shared = layout.quality_dir("duplicates") / "duplicates.parquet"  # across datasets: not a dataset's folder
    shared.parent.mkdir(parents=True)
    pq.write_table(pa.table({"sample_id": ["x"]}), shared)

    assert forget_datasets(layout, {"kept"}) == ["gone"]
    assert all(p.exists() for p in files["kept"]) and shared.exists()
    assert not any(p.exists() for p in files["gone"])
    assert not layout.samples_dir("gone").exists() and not (layout.state / "ingest" / "gone").exists()
    assert forget_datasets(layout, {"kept"}) == []  # nothing left to forget
