"""Each raw format reads into the same records, however it is chunked; bad records become error records."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset, read_chunk
from magicvl.storage.ingest.records import RecordError, parse_record
from magicvl.storage.ingest.spec import RawRecord

RECORDS = [
    {
        "id": f"r{i}",
        "image": f"{i}.png",
        "category": "vqa",
        "conversations": [{"from": "human", "value": f"<image>\nq{i} ünïcødé"}, {"from": "gpt", "value": f"a{i}"}],
    }
    for i in range(23)
]


def png_bytes(i: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8 + i, 6), (i, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def read_all(cfg, base, chunk_records):
    opts = IngestOptions(chunk_records=chunk_records)
    chunks = plan_dataset(cfg, base, opts)
    return chunks, [r for c in chunks for r in read_chunk(c, cfg, opts)]


@pytest.mark.parametrize("chunk_records", [1, 5, 23, 1000])
def test_jsonl_chunking_gives_the_same_records(tmp_path, chunk_records):
    lines = [json.dumps(r, ensure_ascii=False) for r in RECORDS]
    lines.insert(5, "")  # blank lines are not records
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = DatasetConfig(name="d", format="jsonl", path="d.jsonl")
    chunks, recs = read_all(cfg, tmp_path, chunk_records)
    assert len(chunks) == -(-24 // chunk_records)  # chunks count lines (24 with the blank one)
    assert [r.obj for r in recs] == RECORDS
    assert recs[5].locator == "d.jsonl:line 7"  # after the blank line
    assert [r.ordinal for r in recs] == sorted(r.ordinal for r in recs)


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("chunk_records", [1, 4, 1000])
def test_llava_json_array_streams_in_chunks(tmp_path, indent, chunk_records):
    (tmp_path / "d.json").write_text(json.dumps(RECORDS, indent=indent, ensure_ascii=False), encoding="utf-8")
    cfg = DatasetConfig(name="d", format="llava_json", path="d.json")
    chunks, recs = read_all(cfg, tmp_path, chunk_records)
    assert [r.obj for r in recs] == RECORDS
    assert len(chunks) == -(-23 // chunk_records)


def test_llava_json_byte_offsets_stay_exact_across_read_windows(tmp_path):
    # ~3.5 MB of multi-byte text: the scanner's window is refilled and compacted (1 MiB blocks),
    # and every chunk start it plans must be the byte offset of a record's '{' in the file.
    big = [
        {
            "id": f"b{i}",
            "conversations": [{"from": "human", "value": "ünï中文" * (i % 7)}, {"from": "gpt", "value": "é" * 900}],
        }
        for i in range(1800)
    ]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(big, ensure_ascii=False), encoding="utf-8")
    cfg = DatasetConfig(name="d", format="llava_json", path="d.json")
    chunks, recs = read_all(cfg, tmp_path, 97)
    assert [r.obj for r in recs] == big
    raw = path.read_bytes()
    assert all(raw[c.start : c.start + 7] == b'{"id": ' for c in chunks[1:])
    assert [r.locator.rsplit("(byte ", 1)[1].rstrip(")") for r in recs[:2]] == ["1", str(raw.index(b'{"id": "b1"'))]


def test_llava_json_malformed_element_is_one_error_and_the_rest_survive(tmp_path):
    good = [json.dumps(r) for r in RECORDS[:4]]
    broken = '{"id": "x", "conversations": [{"from": "human", "value": "oops" {"from": "gpt"}]}'
    text = "[" + ",\n".join(good[:2] + ["17", broken] + good[2:]) + "]"
    (tmp_path / "d.json").write_text(text)
    cfg = DatasetConfig(name="d", format="llava_json", path="d.json")
    for n in (1, 2, 100):
        _, recs = read_all(cfg, tmp_path, n)
        kinds = [r.error_kind for r in recs]
        assert kinds == [None, None, "not_an_object", "invalid_json", None, None]
        assert [r.obj["id"] for r in recs if r.obj] == ["r0", "r1", "r2", "r3"]


def test_llava_json_that_is_not_an_array(tmp_path):
    (tmp_path / "d.json").write_text('{"data": []}')
    _, recs = read_all(DatasetConfig(name="d", format="llava_json", path="d.json"), tmp_path, 10)
    assert [r.error_kind for r in recs] == ["not_a_json_array"]


def test_parquet_with_image_struct_and_with_path_column(tmp_path):
    conv_t = pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))
    t = pa.table(
        {
            "id": ["a", "b"],
            "conversations": pa.array([RECORDS[0]["conversations"], RECORDS[1]["conversations"]], conv_t),
            "image": pa.array(
                [{"bytes": png_bytes(1), "path": "one.png"}, {"bytes": None, "path": "x/two.png"}],
                pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
            ),
        }
    )
    pq.write_table(t, tmp_path / "a.parquet", row_group_size=1)
    pq.write_table(
        pa.table(
            {"id": ["c"], "conversations": ['[{"from": "gpt", "value": "json string"}]'], "image_path": ["c.png"]}
        ),
        tmp_path / "b.parquet",
    )
    cfg = DatasetConfig(name="d", format="parquet", path="a.parquet")
    chunks, recs = read_all(cfg, tmp_path, 1)
    assert len(chunks) == 2
    assert recs[0].image_bytes == png_bytes(1) and recs[0].image_name == "one.png"
    assert recs[1].image_bytes is None and recs[1].obj["image"] == "x/two.png"
    cfg_b = DatasetConfig(name="d", format="parquet", path="b.parquet", image_field="image_path")
    _, recs_b = read_all(cfg_b, tmp_path, 10)
    assert recs_b[0].obj["conversations"] == [{"from": "gpt", "value": "json string"}]
    assert parse_record(recs_b[0], cfg_b).image_ref == "c.png"


def test_unreadable_parquet_is_one_quarantined_record(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    _, recs = read_all(DatasetConfig(name="d", format="parquet", path="x.parquet"), tmp_path, 10)
    assert [r.error_kind for r in recs] == ["unreadable_file"]


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_webdataset_groups_members_by_key(tmp_path):
    _tar(
        tmp_path / "00000.tar",
        [
            ("000000000.jpg", png_bytes(0)),
            ("000000000.txt", b"a red square"),
            ("000000000.json", b'{"caption": "ignored, txt wins", "status": "success"}'),
            ("000000001.jpg", png_bytes(1)),
            ("000000001.json", b'{"caption": "from json"}'),
            ("000000002.txt", b"caption without image"),
            ("000000003.jpg", png_bytes(3)),
            ("000000004.jpg", png_bytes(4)),
            ("000000004.txt", b"\xff\xfe bad utf8"),
        ],
    )
    cfg = DatasetConfig(name="w", format="webdataset", path="*.tar", category="caption")
    _, recs = read_all(cfg, tmp_path, 10)
    assert [r.key for r in recs] == [f"00000000{i}" for i in range(5)]
    assert recs[0].obj["conversations"][1]["value"] == "a red square"
    assert recs[1].obj["conversations"][1]["value"] == "from json"
    assert [r.error_kind for r in recs] == [None, None, "missing_image", "missing_text", "invalid_utf8"]
    parsed = parse_record(recs[0], cfg)
    assert parsed.category == "caption" and parsed.conversations[0]["value"].startswith("<image>\n")


def test_webdataset_hostile_members(tmp_path):
    with tarfile.open(tmp_path / "h.tar", "w") as tar:
        for name, data in [("../evil.jpg", png_bytes()), ("../evil.txt", b"x")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("k.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/hostname"
        tar.addfile(link)
        info = tarfile.TarInfo("k.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    _, recs = read_all(DatasetConfig(name="w", format="webdataset", path="h.tar"), tmp_path, 10)
    assert [r.error_kind for r in recs] == ["bad_tar_member", "bad_tar_member"]
    assert "unsafe member name" in recs[0].error and "not a regular file" in recs[1].error


def test_truncated_tar_keeps_what_was_read_and_says_where_it_broke(tmp_path):
    _tar(
        tmp_path / "t.tar",
        [m for i in range(6) for m in ((f"{i:09d}.jpg", png_bytes(i) * 20), (f"{i:09d}.txt", b"cap"))],
    )
    data = (tmp_path / "t.tar").read_bytes()
    (tmp_path / "t.tar").write_bytes(data[: len(data) // 2 + 100])
    _, recs = read_all(DatasetConfig(name="w", format="webdataset", path="t.tar"), tmp_path, 10)
    assert recs[0].error_kind is None and 0 < len(recs) < 7
    assert recs[-1].error_kind in ("unreadable_file", "bad_tar_member")
    assert "past the end of the file" in recs[-1].error or "tar stream unreadable" in recs[-1].error


def raw(obj, **kw):
    return RawRecord("f:line 1", 0, obj=obj, **kw)


CFG = DatasetConfig(name="d", format="jsonl", path="x", label_field="category", label_map={"docvqa": "ocr"})


@pytest.mark.parametrize(
    "obj,kind",
    [
        ({"id": "a"}, "missing_conversations"),
        ({"conversations": "hello"}, "wrong_type"),
        ({"conversations": []}, "empty_conversations"),
        ({"conversations": ["hi"]}, "wrong_type"),
        ({"conversations": [{"from": "robot", "value": "x"}]}, "bad_role"),
        ({"conversations": [{"from": "human", "value": 5}, {"from": "gpt", "value": "x"}]}, "wrong_type"),
        ({"conversations": [{"from": "human", "value": "q"}]}, "no_response"),
        (
            {"conversations": [{"from": "human", "value": "bad \ud800"}, {"from": "gpt", "value": "x"}]},
            "invalid_unicode",
        ),
        (
            {"conversations": [{"from": "human", "value": "<image> q"}, {"from": "gpt", "value": "x"}]},
            "image_token_without_image",
        ),
        (
            {
                "image": "a.png",
                "conversations": [{"from": "human", "value": "<image><image>"}, {"from": "gpt", "value": "x"}],
            },
            "multi_image",
        ),
        ({"image": ["a.png", "b.png"], "conversations": [{"from": "gpt", "value": "x"}]}, "multi_image"),
        ({"image": 7, "conversations": [{"from": "gpt", "value": "x"}]}, "wrong_type"),
        ({"id": {"nested": 1}, "conversations": [{"from": "gpt", "value": "x"}]}, "wrong_type"),
    ],
)
def test_record_validation_errors(obj, kind):
    with pytest.raises(RecordError) as e:
        parse_record(raw(obj), CFG)
    assert e.value.kind == kind


def test_record_normalisation():
    p = parse_record(
        raw(
            {
                "id": 12,
                "image": "a.png",
                "category": "docvqa",
                "conversations": [{"role": "user", "content": "read it"}, {"role": "assistant", "content": "ok"}],
            }
        ),
        CFG,
    )
    assert p.source_key == "12" and p.category == "ocr" and p.image_ref == "a.png"
    assert p.conversations == [{"from": "human", "value": "<image>\nread it"}, {"from": "gpt", "value": "ok"}]
    unknown = parse_record(raw({"category": "memes", "conversations": [{"from": "gpt", "value": "x"}]}), CFG)
    assert unknown.category is None and unknown.source_key == "@f:line 1"  # no id: the location is the key
    assert (
        parse_record(raw({"id": "a", "conversations": [{"from": "gpt", "value": "x"}]}), CFG).sample_id
        == parse_record(raw({"id": "a", "conversations": [{"from": "gpt", "value": "y"}]}), CFG).sample_id
    )


def test_tar_member_declaring_a_huge_size_is_refused_at_once(tmp_path):
    import time as _time

    from magicvl.sample_data.hostile import TarMember, write_webdataset_tar

    members = [
        TarMember("000000000.jpg", png_bytes(0)),
        TarMember("000000000.txt", b"ok"),
        TarMember("000000001.jpg", b"x", declared_size=1 << 40),
    ]
    write_webdataset_tar(tmp_path / "huge.tar", members)
    t = _time.perf_counter()
    _, recs = read_all(DatasetConfig(name="w", format="webdataset", path="huge.tar"), tmp_path, 10)
    assert _time.perf_counter() - t < 5
    assert recs[0].error_kind is None
    assert recs[-1].error_kind in ("bad_tar_member", "unreadable_file")
