"""Writers for the four raw formats, byte-deterministic (no timestamps, fixed ordering)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

TAR_MTIME = 1_700_000_000  # fixed member time: same input, same tar bytes
SAMPLES_PER_SHARD = 1000
_HF_FEATURES = {
    "id": {"dtype": "string", "_type": "Value"},
    "conversations": [{"from": {"dtype": "string", "_type": "Value"}, "value": {"dtype": "string", "_type": "Value"}}],
    "category": {"dtype": "string", "_type": "Value"},
    "image": {"_type": "Image"},
}


def dumps(obj: Any) -> str:
    """Compact UTF-8 JSON (non-ASCII kept as is, like most exported datasets)."""
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def write_llava_json(path: Path, entries: Sequence[Any]) -> Path:
    """A JSON array, one element per line (valid JSON; easy to diff and to stream)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("[\n")
        f.writelines(dumps(entry) + (",\n" if i + 1 < len(entries) else "\n") for i, entry in enumerate(entries))
        f.write("]\n")
    return path


def write_jsonl(path: Path, lines: Iterable[bytes]) -> Path:
    """JSON Lines from raw byte lines (so broken lines can be written verbatim)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.writelines(line.rstrip(b"\n") + b"\n" for line in lines)
    return path


def jsonl_line(obj: Any) -> bytes:
    """One JSON Lines line for ``obj``."""
    return dumps(obj).encode("utf-8")


def write_parquet(path: Path, rows: Sequence[dict[str, Any]], row_group_size: int = 100) -> Path:
    """Parquet with the Hugging Face ``Image`` layout: ``image`` is a struct ``{bytes, path}``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("conversations", pa.list_(turn)),
            ("category", pa.string()),
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ],
        metadata={"huggingface": json.dumps({"info": {"features": _HF_FEATURES}})},
    )
    table = pa.Table.from_pylist(list(rows), schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size, compression="snappy")
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), TAR_MTIME, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def wds_key(shard: int, index: int) -> str:
    """img2dataset sample key: 5-digit shard number + 4-digit index within the shard."""
    return f"{shard:05d}{index:04d}"


def write_webdataset(
    folder: Path, samples: Sequence[tuple[bytes, str, dict[str, Any]]], per_shard: int = SAMPLES_PER_SHARD
) -> list[Path]:
    """img2dataset-style shards ``00000.tar``...: per sample ``<key>.jpg``, ``<key>.txt``, ``<key>.json``.

    ``samples`` are ``(jpeg bytes, caption, meta)``; ``key`` and ``caption`` are added to the meta.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard, start in enumerate(range(0, len(samples), per_shard)):
        path = folder / f"{shard:05d}.tar"
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
            for i, (jpg, caption, meta) in enumerate(samples[start : start + per_shard]):
                key = wds_key(shard, i)
                _add(tar, f"{key}.jpg", jpg)
                _add(tar, f"{key}.txt", caption.encode("utf-8"))
                _add(tar, f"{key}.json", json.dumps({"key": key, "caption": caption, **meta}).encode("utf-8"))
        paths.append(path)
    return paths


def shard_layout(n: int, per_shard: int = SAMPLES_PER_SHARD) -> int:
    """Samples per shard for ``n`` samples: at least two shards, at most ``per_shard`` samples each."""
    return max(1, min(per_shard, -(-n // 2)))
