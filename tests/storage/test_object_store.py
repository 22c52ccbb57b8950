"""Inputs on object storage: s3:// datasets and image roots read through storage.fs against a local moto server.

Every reader must see exactly the records it sees on disk (same locators, ordinals,
objects, errors, image bytes), with the same root-escape checks and fingerprints
that change when an object changes.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magicvl.flows.recipe import RecipeError, parse_recipe
from magicvl.storage.fingerprint import source_fingerprint
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.images import ImageError, read_image_bytes, resolve_image_path
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset, read_chunk, source_files
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import list_shards
from magicvl.tasks.steps.ingest.units import IngestUnit
from tests.helpers import HOSTILE_LINES, make_dataset
from tests.s3server import CREDENTIALS, moto_server, s3fs_for, upload_tree

OPTS = IngestOptions(chunk_records=7)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(endpoint, store options, local copy): a moto server holding the same files as a local folder."""
    local = tmp_path_factory.mktemp("src")
    make_dataset(local, n=20, extra=HOSTILE_LINES)
    records = [json.loads(line) for line in (local / "d.jsonl").read_text().splitlines() if line.startswith('{"id')]
    (local / "d.json").write_text(json.dumps(records[:10]) + '\n, {"id": "torn"')  # a torn end: quarantined
    images = {r["id"]: (local / "images" / r["image"]).read_bytes() for r in records[:12] if "image" in r}
    rows = [
        {
            "id": r["id"],
            "conversations": json.dumps(r["conversations"]),
            "image": {"bytes": images.get(r["id"]), "path": r.get("image")},
        }
        for r in records[:12]
    ]
    pq.write_table(pa.Table.from_pylist(rows), local / "d.parquet", row_group_size=3)
    with tarfile.open(local / "shard-0.tar", "w") as tar:
        for i, (key, data) in enumerate(images.items()):
            for name, blob in ((f"{key}.png", data), (f"{key}.txt", f"caption {i}".encode())):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, fileobj=io.BytesIO(blob))
    with pytest.MonkeyPatch.context() as mp, moto_server() as endpoint:
        for k, v in CREDENTIALS.items():
            mp.setenv(k, v)
        fs = s3fs_for(endpoint)
        fs.create_dir("bkt")
        upload_tree(fs, local, "bkt/src")
        with fs.open_output_stream("bkt/src/images-private/secret.png") as f:  # a sibling prefix of images/
            f.write(next(iter(images.values())))
        yield endpoint, ObjectStoreOptions(endpoint_url=endpoint), local


def _records(cfg: DatasetConfig, base: Path, store: ObjectStoreOptions | None) -> list[tuple]:
    chunks = plan_dataset(cfg, base, OPTS, store)
    return [
        (r.locator, r.ordinal, r.obj, r.error_kind, r.error, r.image_bytes, r.key)
        for c in chunks
        for r in read_chunk(c, cfg, OPTS, store)
    ]


@pytest.mark.parametrize(
    "fmt,name",
    [("jsonl", "d.jsonl"), ("llava_json", "d.json"), ("parquet", "d.parquet"), ("webdataset", "shard-0.tar")],
)
def test_every_format_reads_the_same_records_from_s3_as_from_disk(s3, fmt, name):
    _, store, local = s3
    on_disk = _records(DatasetConfig(name="d", format=fmt, path=name), local, None)
    on_s3 = _records(DatasetConfig(name="d", format=fmt, path=f"s3://bkt/src/{name}"), local, store)
    assert len(on_disk) >= 10
    assert on_s3 == on_disk
    if fmt == "jsonl":  # several chunks: seeks into the object, and the bad lines are still accounted for
        assert (
            len(plan_dataset(DatasetConfig(name="d", format=fmt, path=f"s3://bkt/src/{name}"), local, OPTS, store)) == 4
        )
        assert sum(r[3] is not None for r in on_s3) == 1  # the broken JSON line


def test_s3_paths_expand_like_local_paths(s3):
    _, store, local = s3

    def files(path: str, fmt: str = "jsonl") -> list[str]:
        return [str(p) for p in source_files(DatasetConfig(name="d", format=fmt, path=path), local, store)]

    assert files("s3://bkt/src/d.jsonl") == ["s3://bkt/src/d.jsonl"]
    assert files("s3://bkt/src") == files("s3://bkt/src/") == ["s3://bkt/src/d.jsonl"]  # a prefix: *.jsonl under it
    assert files("s3://bkt/src/*.json*", "llava_json") == ["s3://bkt/src/d.json", "s3://bkt/src/d.jsonl"]
    with pytest.raises(FileNotFoundError):  # '*' stays within one folder, as in Path.glob
        files("s3://bkt/*.jsonl")
    with pytest.raises(ValueError, match="a glob cannot match bucket names"):
        files("s3://bk*/src/d.jsonl")
    assert len(files("s3://bkt/src/images/*.png")) == len(list((local / "images").glob("*.png")))
    assert files("s3://bkt/**/secret.png") == ["s3://bkt/src/images-private/secret.png"]
    with pytest.raises(FileNotFoundError, match="no jsonl objects at s3://bkt/nothing"):
        files("s3://bkt/nothing")


def test_fingerprint_follows_the_object(s3):
    endpoint, store, _ = s3
    fs = s3fs_for(endpoint)
    for body in (b"one\n", b"two\n"):  # same size, rewritten within the same second: the ETag tells them apart
        with fs.open_output_stream("bkt/fp/x.jsonl") as f:
            f.write(body)
        if body == b"one\n":
            first = source_fingerprint("s3://bkt/fp/x.jsonl", store)
            assert source_fingerprint("s3://bkt/fp/x.jsonl", store) == first  # stable while unchanged
    assert source_fingerprint("s3://bkt/fp/x.jsonl", store) != first
    with pytest.raises(FileNotFoundError):
        source_fingerprint("s3://bkt/fp/missing.jsonl", store)


@pytest.mark.parametrize(
    "ref,kind",
    [
        ("../images-private/secret.png", "path_outside_root"),  # a sibling prefix sharing the root's name
        ("../../src/images-private/secret.png", "path_outside_root"),
        ("sub/../../d.jsonl", "path_outside_root"),
        ("/bkt/src/images/1.jpg", "path_outside_root"),  # absolute: local-path syntax, refused on s3
        ("s3://bkt/src/images/1.jpg", "url_refused"),
        ("http://example.com/x.jpg", "url_refused"),
        ("missing.png", "image_not_found"),
    ],
)
def test_image_references_stay_under_an_s3_root(s3, ref, kind):
    _, store, _ = s3
    with pytest.raises(ImageError) as e:
        resolve_image_path(ref, "s3://bkt/src/images", store)
    assert e.value.kind == kind


def test_image_references_resolve_and_read_under_an_s3_root(s3):
    _, store, local = s3
    uri = resolve_image_path("./sub/../1.jpg", "s3://bkt/src/images", store)
    assert uri == "s3://bkt/src/images/1.jpg"
    assert read_image_bytes(uri, 1 << 20, store) == (local / "images" / "1.jpg").read_bytes()
    with pytest.raises(ImageError, match="max 10") as e:
        read_image_bytes(uri, 10, store)
    assert e.value.kind == "image_too_large"


def _ingest(cfg: DatasetConfig, base: Path, out: Path, store: ObjectStoreOptions | None) -> tuple[list, list[dict]]:
    storage = StorageOptions(s3=store) if store else StorageOptions()
    summaries = [
        IngestUnit(c, cfg, OPTS, storage, str(out), str(base), []).run() for c in plan_dataset(cfg, base, OPTS, store)
    ]
    rows = [r for p in list_shards(out / "samples") for r in pq.read_table(p).to_pylist()]
    for r in rows:
        if r["image"]:  # a local path on disk, the object's URI on s3: compare names
            r["image"]["path"] = Path(r["image"]["path"]).name
    return summaries, rows


def test_ingest_from_s3_keeps_and_quarantines_like_local(s3, tmp_path):
    _, store, local = s3
    local_cfg = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images", label_field="category")
    s3_cfg = local_cfg.model_copy(update={"path": "s3://bkt/src/d.jsonl", "image_root": "s3://bkt/src/images/"})
    disk, disk_rows = _ingest(local_cfg, local, tmp_path / "a", None)
    obj, obj_rows = _ingest(s3_cfg, local, tmp_path / "b", store)
    count = lambda ss, k: sum(s[k] for s in ss)  # noqa: E731
    assert count(obj, "records_in") == count(disk, "records_in") == 25
    assert count(obj, "kept") == count(disk, "kept") == 21  # 20 + a duplicate id (removed later, by dedup)
    quarantined = lambda ss: {k: sum(s["quarantined"].get(k, 0) for s in ss) for s in ss for k in s["quarantined"]}  # noqa: E731
    assert quarantined(obj) == quarantined(disk) == {
        "wrong_type": 1, "path_outside_root": 1, "url_refused": 1, "invalid_json": 1
    }  # fmt: skip
    assert obj_rows == disk_rows and all(r["image"]["bytes"] for r in obj_rows if r["image"])
    again = [
        IngestUnit(c, s3_cfg, OPTS, StorageOptions(s3=store), str(tmp_path / "b"), str(local), []).run()
        for c in plan_dataset(s3_cfg, local, OPTS, store)
    ]
    assert all(s["cached"] for s in again)  # same objects: same fingerprints, finished work reused


def _with_a_signal(data: dict, base_dir):
    return parse_recipe({"signals": {"image_entropy": {}}, **data}, base_dir)


def test_object_storage_recipes(tmp_path):
    ds = [{"name": "a", "format": "jsonl", "path": "s3://bkt/src/d.jsonl", "image_root": "s3://bkt/src/images"}]
    r = _with_a_signal(
        {"output": "out", "datasets": ds, "storage": {"s3": {"endpoint_url": "http://127.0.0.1:9"}}}, tmp_path
    )
    assert r.path(r.datasets[0].path) == "s3://bkt/src/d.jsonl"
    assert r.digest() == _with_a_signal({"output": "out", "datasets": ds}, tmp_path).digest()  # where, not what
    out = _with_a_signal({"output": "s3://bkt/out", "datasets": ds, "storage": {"s3": {"region": "eu-x"}}}, tmp_path)
    assert str(out.output_root) == "s3://bkt/out" and out.output_root.store.region == "eu-x"
    with pytest.raises(RecipeError, match=r"output: output root 's3:///out' names no bucket"):
        _with_a_signal({"output": "s3:///out", "datasets": ds}, tmp_path)
    with pytest.raises(RecipeError, match=r"output: output root 'gs://b/out': unsupported scheme 'gs'"):
        _with_a_signal({"output": "gs://b/out", "datasets": ds}, tmp_path)
    with pytest.raises(RecipeError, match=r"datasets\[0\].path 'gs://b/x.jsonl': unsupported scheme 'gs'"):
        _with_a_signal({"output": "out", "datasets": [{**ds[0], "path": "gs://b/x.jsonl"}]}, tmp_path)
    with pytest.raises(
        RecipeError, match=r"datasets\[0\].image_root is on object storage and ingest.images is 'reference'"
    ):
        _with_a_signal({"output": "out", "datasets": ds, "ingest": {"images": "reference"}}, tmp_path)
    with pytest.raises(RecipeError, match=r"storage.s3.endpoint: Extra inputs are not permitted"):
        _with_a_signal({"output": "out", "datasets": ds, "storage": {"s3": {"endpoint": "x"}}}, tmp_path)
