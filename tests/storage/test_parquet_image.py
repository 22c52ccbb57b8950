"""Embedded Parquet image bytes read page by page (``parquet_image.ImageColumn``): round trips
against pyarrow as the oracle, pages refused from their headers cost only their rows, and views."""

from __future__ import annotations

import io
import itertools
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_hostile_inputs import GOOD, read_in_child

from magicvl.sample_data.hostile import jpeg_bytes, jpeg_scan_bomb_bytes, write_parquet_with_blob
from magicvl.storage.images import DecodeBudget, ImageError, check_image, open_checked
from magicvl.storage.ingest import DatasetConfig
from magicvl.storage.ingest.parquet_image import ImageColumn, Refused, Unsupported
from magicvl.storage.ingest.parquet_pages import column_pages

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
VALUES = [os.urandom(i % 300) if i % 7 else None for i in range(400)] + [b"same"] * 50  # lengths >= 128: signed bytes


def _file(values: list[bytes | None], **write) -> io.BytesIO:
    structs = [None if v is None else {"bytes": v, "path": "p"} for v in values]
    table = pa.table(
        {"id": list(range(len(values))), "image": pa.array(structs, IMAGE), "b": pa.array(values, pa.binary())}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, **write)
    buf.seek(0)
    return buf


def _decoded(buf: io.BytesIO, leaf: int, max_image: int = 1 << 30, max_page: int = 1 << 30) -> list:
    pf = pq.ParquetFile(buf)
    out = []
    for rg in range(pf.metadata.num_row_groups):
        col = ImageColumn(buf, pf.metadata.row_group(rg).column(leaf), pf.schema.column(leaf), max_image, max_page, "t")
        out += [v if v is None or isinstance(v, Refused) else bytes(v) for v in col.values(buf)]
    return out


@pytest.mark.parametrize(
    ("compression", "page_version", "dictionary"),
    list(itertools.product(["none", "snappy", "zstd", "gzip"], ["1.0", "2.0"], [True, False])),
)
def test_decoder_round_trips_pyarrow_files(compression, page_version, dictionary):
    """Optional struct leaf (image.bytes, def level 2) and optional top-level binary (b), with nulls,
    several row groups and pages; every value equals what pyarrow wrote."""
    buf = _file(
        VALUES,
        compression=compression,
        data_page_version=page_version,
        use_dictionary=dictionary,
        row_group_size=170,
        data_page_size=2048,
        write_batch_size=37,
    )
    assert _decoded(buf, 1) == VALUES  # image.bytes
    assert _decoded(buf, 3) == VALUES  # b


def test_decoder_edge_columns():
    assert _decoded(_file([None] * 10), 1) == [None] * 10
    assert _decoded(_file([b""] * 10), 1) == [b""] * 10
    assert _decoded(_file([b"x"] * 300, use_dictionary=True), 1) == [b"x"] * 300  # one-entry dictionary


def test_unsupported_encodings_are_said_before_reading():
    buf = _file(VALUES, use_dictionary=False, column_encoding={"b": "DELTA_LENGTH_BYTE_ARRAY"})
    with pytest.raises(Unsupported):
        _decoded(buf, 3)


def _blob_file(path, blob: int, row: int = 3, **write) -> None:
    """GOOD rows with small JPEGs, row ``row`` with a ``blob``-byte image; each value its own page."""
    small = jpeg_bytes(32, 24)
    images = [{"bytes": bytes(blob) if i == row else small, "path": f"{i}.jpg"} for i in range(len(GOOD))]
    table = pa.table(
        {
            "id": [r["id"] for r in GOOD],
            "conversations": [str(r["conversations"]).replace("'", '"') for r in GOOD],
            "image": pa.array(images, IMAGE),
        }
    )
    pq.write_table(table, path, use_dictionary=False, data_page_size=1, write_batch_size=1, **write)


@pytest.mark.parametrize("page_version", ["1.0", "2.0"])
def test_an_image_page_over_max_image_bytes_costs_only_its_row_unread(tmp_path, page_version):
    """The 30 MiB value has a page of its own: refused from the page header (image_too_large),
    never read; the other rows of its row group are kept; every input row is accounted for."""
    _blob_file(tmp_path / "d.parquet", 30 << 20, data_page_version=page_version)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    opts = {"max_record_bytes": 1 << 20, "max_image_bytes": 1 << 20}
    recs, peak = read_in_child(cfg, tmp_path, **opts)
    assert [r[1] or r[4] for r in recs] == ["g0", "g1", "g2", "image_too_large", "g4", "g5"]
    assert [r[0] for r in recs] == [f"d.parquet:row {i}" for i in range(6)]
    assert "not read" in recs[3][2] and "max 1048576" in recs[3][2]
    assert '"id": "g3"' in recs[3][3] and "<not read: page of 3145" in recs[3][3]
    assert peak < 1 << 20  # the page was never decompressed


def test_an_image_under_max_image_bytes_is_read_once(tmp_path):
    """A 6 MiB value (limit 8 MiB) in a page of its own is read: Arrow's pool holds the
    decompressed page once (no decoded copy, no batch, no dictionary copy)."""
    _blob_file(tmp_path / "d.parquet", 6 << 20, compression="snappy")
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    recs, peak = read_in_child(cfg, tmp_path, max_record_bytes=1 << 20, max_image_bytes=8 << 20)
    assert [r[1] or r[4] for r in recs] == ["g0", "g1", "g2", "g3", "g4", "g5"]
    assert peak < (6 << 20) + (1 << 20)


def test_a_dictionary_page_over_max_parquet_page_bytes_costs_only_its_row_group(tmp_path):
    """A dictionary holds values of several rows: over the page cap, its rows are refused unread
    (image_page_too_large); the other row groups are read."""
    write_parquet_with_blob(tmp_path / "d.parquet", GOOD, 30 << 20, column="image", row=3, row_group_size=2)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    opts = {"max_record_bytes": 1 << 20, "max_image_bytes": 1 << 20, "max_parquet_page_bytes": 1 << 20}
    recs, peak = read_in_child(cfg, tmp_path, **opts)
    assert [r[1] or r[4] for r in recs] == ["g0", "g1", "image_page_too_large", "image_page_too_large", "g4", "g5"]
    assert "dictionary page of 3145" in recs[3][2] and "max_parquet_page_bytes=1048576" in recs[3][2]
    assert peak < 1 << 20


def test_a_value_over_max_image_bytes_in_a_read_dictionary_is_refused_by_length(tmp_path):
    write_parquet_with_blob(tmp_path / "d.parquet", GOOD, 3 << 20, column="image", row=1)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    recs, _ = read_in_child(cfg, tmp_path, max_record_bytes=1 << 20, max_image_bytes=2 << 20)
    assert [r[1] or r[4] for r in recs] == ["g0", "image_too_large", "g2", "g3", "g4", "g5"]
    assert f"embedded image is {3 << 20} bytes (max {2 << 20})" in recs[1][2] and f"<{3 << 20} bytes>" in recs[1][3]


def test_images_open_from_views_as_from_bytes():
    data = jpeg_bytes(64, 48)
    assert check_image(memoryview(data), 10**8) == check_image(data, 10**8)
    bomb = jpeg_scan_bomb_bytes(300, 64)
    with pytest.raises(ImageError) as e:
        open_checked(memoryview(bomb), 10**8, DecodeBudget(max_jpeg_scans=100))
    assert e.value.kind == "too_many_scans" and str(bomb.count(b"\xff\xda")) in str(e.value)


def test_ingest_output_is_the_same_whichever_reader_reads_the_images(tmp_path):
    """Images read page by page (pages over max_record_bytes) and by Arrow give byte-identical
    samples shards and the same fused per-image signal values."""
    from magicvl.storage.ingest import IngestOptions, plan_dataset
    from magicvl.storage.options import StorageOptions
    from magicvl.tasks.steps.ingest.units import fused_signals, ingest_chunk

    images = [{"bytes": jpeg_bytes(64 + 8 * i, 48), "path": f"{i}.jpg"} for i in range(len(GOOD))]
    images[2] = {"bytes": None, "path": "2.jpg"}  # a path, no bytes: the image is looked up
    table = pa.table(
        {
            "id": [r["id"] for r in GOOD],
            "conversations": [str(r["conversations"]).replace("'", '"') for r in GOOD],
            "image": pa.array(images, IMAGE),
        }
    )
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "2.jpg").write_bytes(jpeg_bytes(40, 30))
    pq.write_table(table, tmp_path / "d.parquet", use_dictionary=False, data_page_size=1, write_batch_size=2)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet", image_root="img")
    with open(tmp_path / "d.parquet", "rb") as f:  # pages of 2 images, over 1 KiB each
        pages = column_pages(f, pq.ParquetFile(f).metadata.row_group(0).column(2), True)
    assert len(pages) == 3 and min(p.size for p in pages) > 1 << 10
    from magicvl.scoring.signals import get_signal

    signal = get_signal("image_entropy")
    fused = fused_signals([(signal.name, signal.params(max_side=32))])
    tables = {}
    for limit in (1 << 10, 1 << 24):  # 1 KiB: every image page is read apart; 16 MiB: Arrow reads them
        opts = IngestOptions(max_record_bytes=limit, chunk_records=100)
        out = tmp_path / f"out{limit}"
        chunks = plan_dataset(cfg, tmp_path, opts)
        summary = [ingest_chunk(c, cfg, opts, StorageOptions(), str(out), str(tmp_path), fused) for c in chunks]
        assert [s["kept"] for s in summary] == [6]
        tables[limit] = {str(p.relative_to(out)): pq.read_table(p) for p in sorted(out.rglob("*.parquet"))}
    apart, arrow = tables.values()
    assert len(apart) >= 2 and apart.keys() == arrow.keys()  # samples and the fused signal's file
    assert all(apart[k].equals(arrow[k]) for k in apart)
    samples = next(t for k, t in apart.items() if "image" in t.column_names)
    assert samples.column("image").to_pylist()[0]["bytes"] == images[0]["bytes"]


@pytest.mark.parametrize(("page_cap", "expected"), [(64 << 20, "g3"), (1 << 20, "row_group_too_large")])
def test_an_encoding_the_reader_does_not_decode_falls_back_to_arrow_under_the_page_cap(tmp_path, page_cap, expected):
    """DELTA_LENGTH_BYTE_ARRAY image bytes: Arrow reads pages up to max_parquet_page_bytes (the
    oversized value is then refused by its length); over it, the row group is refused as before."""
    _blob_file(tmp_path / "d.parquet", 3 << 20, column_encoding={"image.bytes": "DELTA_LENGTH_BYTE_ARRAY"})
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    opts = {"max_record_bytes": 1 << 20, "max_image_bytes": 4 << 20, "max_parquet_page_bytes": page_cap}
    recs, _ = read_in_child(cfg, tmp_path, **opts)
    got = [r[1] or r[4] for r in recs]
    assert got == (["g0", "g1", "g2", "g3", "g4", "g5"] if expected == "g3" else ["row_group_too_large"] * 6)
    if expected != "g3":
        assert "max_parquet_page_bytes=1048576" in recs[0][2]


def test_a_corrupt_image_page_read_apart_costs_its_row_group_and_every_row_is_accounted_for(tmp_path):
    """A value length running past its page: the row group's rows are quarantined (unreadable_file),
    one record per input row; the next row group is still read."""
    path = tmp_path / "d.parquet"
    _blob_file(path, 3 << 20, row=1, compression="none", row_group_size=3)
    with open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        cc, leaf = pf.metadata.row_group(0).column(2), pf.schema.column(2)
        page = ImageColumn(f, cc, leaf, 1 << 30, 1 << 30, "t").pages[2]
    data = bytearray(path.read_bytes())
    levels = int.from_bytes(data[page.body : page.body + 4], "little")
    data[page.body + 4 + levels : page.body + 8 + levels] = b"\xff\xff\xff\x7f"  # the value's length
    path.write_bytes(bytes(data))
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    recs, _ = read_in_child(cfg, tmp_path, max_record_bytes=1 << 20, max_image_bytes=4 << 20)
    assert [r[1] or r[4] for r in recs] == ["unreadable_file"] * 3 + ["g3", "g4", "g5"]
    assert [r[0] for r in recs] == [f"d.parquet:row {i}" for i in range(6)]
    assert "row group 0" in recs[0][2] and "runs past the end of its page" in recs[0][2]


def test_a_page_of_one_image_is_held_to_max_image_bytes_not_the_page_cap(tmp_path):
    _blob_file(tmp_path / "d.parquet", 3 << 20)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    opts = {"max_record_bytes": 1 << 20, "max_image_bytes": 4 << 20, "max_parquet_page_bytes": 1 << 20}
    recs, _ = read_in_child(cfg, tmp_path, **opts)
    assert [r[1] or r[4] for r in recs] == ["g0", "g1", "g2", "g3", "g4", "g5"]
