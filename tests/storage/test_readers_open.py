"""Every output table opens unchanged in the readers people use, with the right rows and types.

A real run writes samples/, signals/<name>/, scores/, dropped/, quarantine/ and curated/;
each is opened as a folder with pandas, pyarrow datasets (hive), polars (folder and glob),
duckdb (hive) and Hugging Face ``datasets`` (``data_dir=`` and ``data_files=``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from magicvl.storage.readers import list_shards
from tests.helpers import HOSTILE_LINES, make_dataset

pytestmark = pytest.mark.slow

TABLES = ("samples", "signals/token_length", "scores", "dropped", "quarantine", "curated")


@pytest.fixture(scope="module")
def run(tmp_path_factory, tokenizer_dir, ray_local, prefect_harness) -> dict:
    """One curate run: dataset `d` is labelled, `u` is the same records unlabelled (dropped as duplicates of `d`)."""
    from magicvl.flows.curate import curate

    root = tmp_path_factory.mktemp("readers")
    make_dataset(root / "data", n=24, extra=HOSTILE_LINES)
    jsonl = {"format": "jsonl", "path": "data/d.jsonl", "image_root": "data/images"}
    recipe = {
        "output": "out",
        "datasets": [{"name": "d", "label_field": "category", **jsonl}, {"name": "u", **jsonl}],
        "ingest": {"chunk_records": 10},
        "storage": {"shard_max_rows": 7},
        "signals": {"token_length": {"tokenizer": str(tokenizer_dir)}, "image_entropy": {"max_side": 64}},
        "combine": {"granularity": "sample"},
        "filters": {"repetition": {"enabled": False}},  # tests.helpers' responses are synthetic repeats
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    acc = curate(str(root / "recipe.yaml"))["accounting"]
    assert acc["balanced"] and acc["kept"] > 0 and acc["dropped"] > 0 and acc["quarantined"] > 0
    n = acc["samples_after_ingest"]
    ingested = n + acc["quarantined_by_error"].get("duplicate_id", 0)  # later duplicates stay in samples/
    rows = {
        "samples": ingested,
        "signals/token_length": ingested,
        "scores": n,
        "dropped": acc["dropped"],
        "quarantine": acc["quarantined"],
        "curated": acc["kept"],
    }
    return {"out": root / "out", "rows": rows, "hf_cache": root / "hf-cache"}


def _column_type(table: pa.Table, name: str) -> pa.DataType:
    return table.schema.field(name).type


def _key(table: str) -> tuple[str, pa.DataType] | None:
    """The partition column each table stores, and its type in the files."""
    if table == "curated":
        return "stage", pa.int8()
    if table.startswith("signals"):
        return None  # keyed by sample_id only
    return "dataset", pa.string()


def test_no_table_folder_holds_anything_but_parquet(run) -> None:
    for table in TABLES:
        folder = run["out"] / table
        others = [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".parquet"]
        assert others == [], others
        assert not any("=" in p.name for p in folder.rglob("*"))  # no path-derived second copy of a column


@pytest.mark.parametrize("table", TABLES)
def test_pandas_pyarrow_polars_duckdb_open_each_table(run, table) -> None:
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as pads

    folder = run["out"] / table
    n = run["rows"][table]
    truth = pq.read_schema(list_shards(folder)[0])
    key = _key(table)

    df = pd.read_parquet(folder)
    arrow = pads.dataset(folder, format="parquet", partitioning="hive").to_table()
    lazy = pl.scan_parquet(folder).collect()
    glob = pl.scan_parquet(f"{folder}/**/*.parquet").collect()
    duck = duckdb.sql(
        f"select * from read_parquet('{folder}/**/*.parquet', hive_partitioning=true)"
    ).fetch_arrow_table()
    for got in (len(df), arrow.num_rows, lazy.height, glob.height, duck.num_rows):
        assert got == n
    for names in (list(df.columns), arrow.column_names, lazy.columns, glob.columns, duck.column_names):
        assert names == truth.names  # no extra or missing columns, same order
    if key:
        name, typ = key
        assert _column_type(arrow, name) == typ and _column_type(duck, name) == typ
        assert lazy.schema[name] == pl.from_arrow(pa.table({name: pa.array([], typ)})).schema[name]
        assert glob.schema[name] == lazy.schema[name]
        assert not isinstance(df[name].dtype, pd.CategoricalDtype)
        if typ == pa.int8():
            assert str(df[name].dtype) == "int8"
            assert set(df[name]) <= {1, 2, 3, 4}


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("how", ["data_dir", "data_files"])
def test_hugging_face_datasets_opens_each_table(run, table, how, monkeypatch) -> None:
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = run["out"] / table
    arg = {"data_dir": str(folder)} if how == "data_dir" else {"data_files": f"{folder}/**/*.parquet"}
    ds = datasets.load_dataset("parquet", split="train", cache_dir=str(run["hf_cache"]), **arg)
    assert ds.num_rows == run["rows"][table]
    assert list(ds.features) == pq.read_schema(list_shards(folder)[0]).names
    key = _key(table)
    if key:
        assert ds.features[key[0]] == datasets.Value(str(key[1]))
    if "image" in ds.features:
        assert isinstance(ds.features["image"], datasets.Image)
        with_image = ds.filter(lambda r: r["image"] is not None)
        img = with_image[0]["image"]
        assert img.size == (with_image[0]["width"], with_image[0]["height"])  # decodes through the Image feature


def test_hive_reader_of_one_stage_folder_has_int8_stage(run) -> None:
    import pyarrow.dataset as pads

    folder: Path = run["out"] / "curated" / "stage-3"
    table = pads.dataset(folder, partitioning="hive").to_table()
    assert _column_type(table, "stage") == pa.int8() and set(table.column("stage").to_pylist()) == {3}
