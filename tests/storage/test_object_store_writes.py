"""An output root on object storage: writers, markers, manifests, sweeps and locks against a local moto server.

Each object is put once at its final key (no temporaries), a marker proves its
outputs (a damaged one is recomputed), stale shards are listed and deleted, and
the run locks exclude each other through conditional PUTs.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.layout import OutputLayout, find_root
from magicvl.storage.lock import OutputLockedError, lock_output, lock_part
from magicvl.storage.manifest import (
    read_json,
    read_marker,
    verify_folder_manifest,
    write_folder_manifest,
    write_json,
    write_marker,
)
from magicvl.storage.outfs import S3Path, as_path
from magicvl.storage.readers import arrow_dataset, list_shards, num_rows, read_table, scan
from magicvl.storage.writer import ShardWriter, write_table
from magicvl.tasks.unit import sweep
from tests.s3server import CREDENTIALS, moto_server, s3fs_for

SCHEMA = pa.schema([("sample_id", pa.string()), ("x", pa.int64())])


@pytest.fixture(scope="module")
def s3():
    """(pyarrow filesystem of the test, store options): a moto server with an empty bucket ``bkt``."""
    with pytest.MonkeyPatch.context() as mp, moto_server() as endpoint:
        for k, v in CREDENTIALS.items():
            mp.setenv(k, v)
        fs = s3fs_for(endpoint)
        fs.create_dir("bkt")
        yield fs, ObjectStoreOptions(endpoint_url=endpoint)


def _keys(fs, prefix: str) -> list[str]:
    from pyarrow.fs import FileSelector, FileType

    infos = fs.get_file_info(FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path.removeprefix(prefix + "/") for i in infos if i.type == FileType.File)


def _rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"sample_id": [f"s{i}" for i in range(start, start + n)], "x": list(range(start, start + n))})


def test_paths_keep_the_layout_and_local_paths_stay_local(s3):
    _, store = s3
    root = as_path("s3://bkt/run/", store)
    layout = OutputLayout(root)
    assert isinstance(layout.samples, S3Path) and str(layout.stage_dir(2)) == "s3://bkt/run/curated/stage-2"
    assert str(layout.folder_manifest(layout.signal_dir("t", "d"))) == "s3://bkt/run/_state/manifests/signals/t/d.json"
    assert (root / "samples/d/a.parquet").relative_to(root).as_posix() == "samples/d/a.parquet"
    assert as_path("out/x").__class__.__name__ == "PosixPath" and OutputLayout("out").root.as_posix() == "out"
    with pytest.raises(TypeError):
        open(root / "x", "wb")  # no __fspath__: never a local file named after the URI


def test_shards_are_put_whole_at_their_final_keys_and_an_abort_leaves_nothing(s3):
    fs, store = s3
    folder = as_path("s3://bkt/w/samples/d", store)
    with ShardWriter(folder, "part-0", SCHEMA, max_rows=4) as w:
        w.write(_rows(10))
        infos = w.close()
    assert [i.rows for i in infos] == [4, 4, 2]
    assert _keys(fs, "bkt/w") == [f"samples/d/part-0-00{n}.parquet" for n in range(3)]  # no temporaries
    for i in infos:
        assert sha256_file(i.path) == i.sha256 and as_path(i.path).stat().st_size == i.bytes
    assert read_table(infos[1].path).column("x").to_pylist() == [4, 5, 6, 7] and num_rows(infos[2].path) == 2
    with pytest.raises(RuntimeError), ShardWriter(folder, "part-1", SCHEMA, max_rows=4) as w:
        w.write(_rows(9))  # two shards already put
        raise RuntimeError("the unit failed")
    assert _keys(fs, "bkt/w") == [f"samples/d/part-0-00{n}.parquet" for n in range(3)]
    assert list_shards(as_path("s3://bkt/w/samples", store)) == [as_path(i.path) for i in infos]
    assert arrow_dataset(folder).count_rows() == 10 and scan(folder, ["x"]).collect()["x"].sum() == 45


def test_markers_prove_their_outputs_and_a_damaged_one_is_recomputed(s3):
    fs, store = s3
    root = as_path("s3://bkt/m", store)
    layout = OutputLayout(root)
    info = write_table(layout.scores_dir("d") / "a-000.parquet", _rows(3)).to_dict()
    marker = layout.marker("combine", "d/a")
    write_marker(marker, "k1", [info], {"rows": 3}, root)
    stored = read_json(marker)
    assert stored["outputs"][0]["path"] == "scores/d/a-000.parquet" and stored["outputs"][0]["mtime_ns"] > 0
    done = read_marker(marker, "k1", root)
    assert done["summary"] == {"rows": 3} and done["outputs"][0]["path"] == "s3://bkt/m/scores/d/a-000.parquet"
    assert read_marker(marker, "k2", root) is None  # another key: recompute
    with fs.open_output_stream("bkt/m/scores/d/a-000.parquet") as f:
        f.write(b"PAR1 truncated")
    assert read_marker(marker, "k1", root) is None  # the output lies: recompute
    assert read_marker(layout.marker("combine", "d/none"), "k1", root) is None


def test_folder_manifests_sweeps_and_roots(s3):
    fs, store = s3
    layout = OutputLayout(as_path("s3://bkt/f", store))
    folder = layout.stage_dir(1)
    keep = [write_table(folder / f"d-{n}-000.parquet", _rows(2, n)).to_dict() for n in range(3)]
    stale = write_table(folder / "d-9-000.parquet", _rows(1)).to_dict()
    write_json(layout.marker("combine", "d/x"), {"key": "k"})  # _state: not a table, never swept
    assert find_root(folder) == layout.root
    assert sweep(folder, {i["path"] for i in keep}, "d-") == 1
    assert _keys(fs, "bkt/f/curated") == [f"stage-1/d-{n}-000.parquet" for n in range(3)]
    assert stale["path"] not in {str(p) for p in list_shards(folder)}
    path = write_folder_manifest(folder, keep, "h")
    assert str(path) == "s3://bkt/f/_state/manifests/curated/stage-1.json" and read_json(path)["rows"] == 6
    assert verify_folder_manifest(folder) == []
    as_path(keep[0]["path"]).unlink()
    assert verify_folder_manifest(folder) == ["d-0-000.parquet: missing"]


def test_run_locks_on_an_s3_root_exclude_each_other_and_are_released(s3):
    fs, store = s3
    root = as_path("s3://bkt/l", store)
    with lock_output(root, "curate", exclusive=True):
        assert _keys(fs, "bkt/l") == ["_state/locks/root.lock"]
        with pytest.raises(OutputLockedError, match=r"output root s3://bkt/l \(curate\) is in use by pid \d+ on "):
            with lock_output(root, "curate", exclusive=True):
                pass
        with pytest.raises(OutputLockedError, match=r"delete s3://bkt/l/_state/locks/root.lock"):
            with lock_output(root, "score", ["signal-a"]):  # shared under an exclusive holder
                pass
    assert _keys(fs, "bkt/l") == []  # released, and the refused shared holder removed its own object
    with lock_output(root, "score", ["signal-a"]), lock_output(root, "score", ["signal-b"]):  # two shared holders
        with pytest.raises(OutputLockedError, match=r"signal-a of output root s3://bkt/l is in use"):
            with lock_output(root, "score", ["signal-a"]):
                pass
        with pytest.raises(OutputLockedError, match=r"output root s3://bkt/l \(curate\) is in use"):
            with lock_output(root, "curate", exclusive=True):
                pass
        with lock_part(root, "combine"):
            assert "_state/locks/combine.lock" in _keys(fs, "bkt/l")
    assert _keys(fs, "bkt/l") == []
