"""Which partition layout every reader opens: (a) Hive ``key=value`` folders, partition columns dropped from
the files, or (b) the columns kept in the files, folder names without ``=`` (what the pipeline writes).

    python -m bench.reader_layouts work/demo/out /tmp/layouts

Copies the output root's tables into both layouts and prints, per reader, the row count and the type it
gives the partition column (``-`` = column missing). Nothing is asserted (see tests/storage/test_readers_open.py).
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as pads
import pyarrow.parquet as pq

TABLES = ("samples", "curated", "scores", "quarantine")


def build(src: Path, dst: Path, variant: str) -> None:
    for p in src.rglob("*.parquet"):
        rel = p.relative_to(src)
        if rel.parts[0] not in TABLES:
            continue
        if variant == "b":
            q = dst / rel
            q.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, q)
            continue
        part = rel.parts[1]
        key, value = ("stage", part.removeprefix("stage-")) if rel.parts[0] == "curated" else ("dataset", part)
        q = dst / rel.parts[0] / f"{key}={value}" / Path(*rel.parts[2:])
        q.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pq.read_table(p).drop_columns([key]), q)


def readers(folder: Path, cache: Path):
    from datasets import load_dataset

    yield "pandas", None, lambda: pd.read_parquet(folder)
    yield "pyarrow hive", None, lambda: pads.dataset(folder, format="parquet", partitioning="hive").to_table()
    yield "polars folder", None, lambda: pl.scan_parquet(folder).collect()
    yield "polars glob", None, lambda: pl.scan_parquet(f"{folder}/**/*.parquet").collect()
    sql = f"select * from read_parquet('{folder}/**/*.parquet', hive_partitioning=true)"
    yield "duckdb hive", None, lambda: duckdb.sql(sql).fetch_arrow_table()
    yield (
        "datasets data_dir",
        None,
        lambda: load_dataset("parquet", data_dir=str(folder), split="train", cache_dir=str(cache)),
    )


def describe(obj, col: str) -> tuple[int, str]:
    if isinstance(obj, pd.DataFrame):
        return len(obj), str(obj[col].dtype) if col in obj else "-"
    if isinstance(obj, pl.DataFrame):
        return obj.height, str(obj.schema[col]) if col in obj.columns else "-"
    if hasattr(obj, "features"):
        return obj.num_rows, str(obj.features[col].dtype) if col in obj.features else "-"
    return obj.num_rows, str(obj.schema.field(col).type) if col in obj.schema.names else "-"


def main(src: Path, tmp: Path) -> None:
    warnings.filterwarnings("ignore")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'layout':<7}{'table':<12}{'reader':<19}{'rows':>10}  partition column type")
    for variant in ("a", "b"):
        build(src, tmp / variant, variant)
        for table in TABLES:
            folder = tmp / variant / table
            truth = sum(pq.ParquetFile(p).metadata.num_rows for p in (src / table).rglob("*.parquet"))
            col = "stage" if table == "curated" else "dataset"
            for name, _, fn in readers(folder, tmp / "hf-cache"):
                try:
                    n, typ = describe(fn(), col)
                    print(f"{variant:<7}{table:<12}{name:<19}{n:>5}/{truth:<4}  {col}: {typ}")
                except Exception as e:  # a reader that cannot open the layout at all
                    print(f"{variant:<7}{table:<12}{name:<19}{'FAIL':>10}  {type(e).__name__}: {str(e)[:60]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
