"""Page sizes and row ranges from Parquet page headers, checked against what was written."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magicvl.storage.ingest.parquet_pages import column_pages, oversized_columns


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("compression", ["snappy", "zstd", "none"])
def test_pages_cover_the_chunk_and_every_row_once(tmp_path, version, compression):
    n = 5000
    table = pa.table({"id": [f"row-{i:05d}" for i in range(n)], "n": list(range(n))})
    path = tmp_path / "d.parquet"
    pq.write_table(
        table,
        path,
        data_page_size=4096,
        write_batch_size=100,
        data_page_version=version,
        compression=compression,
        use_dictionary=["n"],
    )
    pf = pq.ParquetFile(path)
    cc = pf.metadata.row_group(0).column(0)
    with open(path, "rb") as f:
        pages = column_pages(f, cc, flat=True)
        assert column_pages(f, pf.metadata.row_group(0).column(1), flat=True)[0].kind == "dictionary"
    data = [p for p in pages if p.kind == "data"]
    assert len(data) > 5 and len(data) == len(pages)
    ranges = [p.rows for p in data]
    assert ranges[0][0] == 0 and ranges[-1][1] == n - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous, no row twice
    assert sum(p.size for p in pages) <= max(cc.total_uncompressed_size, cc.total_compressed_size)


def test_row_ranges_of_a_repeated_column_are_unknown_in_v1_pages(tmp_path):
    table = pa.table({"tags": [[f"t{i}", "x"] for i in range(3000)]})
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, data_page_size=2048, write_batch_size=100, use_dictionary=False)
    pf = pq.ParquetFile(path)
    with open(path, "rb") as f:
        pages = column_pages(f, pf.metadata.row_group(0).column(0), flat=False)
    assert len(pages) > 3 and all(p.rows is None for p in pages)


def test_oversized_columns_names_the_page_and_its_budget(tmp_path):
    big = b"\x01" * (3 << 20)
    table = pa.table({"id": ["a", "b", "c"], "blob": [b"", big, b""]})
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, use_dictionary=False, compression="none")
    pf = pq.ParquetFile(path)
    budgets = [(1 << 20, "max_record_bytes"), (2 << 20, "max_parquet_page_bytes")]
    [bad] = oversized_columns(str(path), pf, 0, budgets.__getitem__)
    assert (bad.column, bad.limit, bad.budget, bad.page.kind, bad.page.rows) == (
        "blob",
        "max_parquet_page_bytes",
        2 << 20,
        "data",
        (0, 2),
    )
    assert (3 << 20) < bad.size < (3 << 20) + 64
    assert oversized_columns(str(path), pf, 0, lambda i: (4 << 20, "x")) == []
