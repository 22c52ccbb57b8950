"""WebDataset tar shards as img2dataset writes them: ``<key>.jpg`` + ``<key>.txt`` / ``<key>.json``.

Members are grouped by key (the member name up to the first dot of its base
name, the WebDataset convention). Nothing is extracted to disk; unsafe names,
links and oversized members make the sample a quarantined record.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from magicvl.storage import fs
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.ingest.spec import Chunk, RawRecord

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def plan(path: Path | str, dataset: str, fingerprint: str, first_index: int) -> list[Chunk]:
    """One chunk per tar file (img2dataset shards are already sized for this)."""
    return [Chunk(dataset, "webdataset", str(path), first_index, 0, -1, 0, fingerprint)]


def _split(name: str) -> tuple[str, str]:
    p = PurePosixPath(name)
    base, _, ext = p.name.partition(".")
    parent = "" if str(p.parent) == "." else f"{p.parent}/"
    return parent + base, ext.lower()


def _unsafe(name: str) -> bool:
    p = PurePosixPath(name)
    return p.is_absolute() or ".." in p.parts


def _members(
    tar: tarfile.TarFile, max_member: int, file_size: int
) -> Iterator[tuple[str, str, bytes | None, str | None]]:
    """Yield (key, ext, data, problem) per member, in archive order."""
    for m in tar:
        key, ext = _split(m.name)
        if m.isdir():
            continue
        if _unsafe(m.name):
            yield key, ext, None, f"unsafe member name {m.name!r}"
        elif not m.isfile():
            yield key, ext, None, f"member {m.name!r} is not a regular file"
        elif m.offset_data + m.size > file_size:
            yield key, ext, None, f"member {m.name!r} declares {m.size} bytes, past the end of the file"
            return
        elif m.size > max_member:
            yield key, ext, None, f"member {m.name!r} is {m.size} bytes (max {max_member})"
        else:
            f = tar.extractfile(m)
            yield key, ext, f.read() if f else b"", None


def _plain_size(f) -> int:
    """Size of an uncompressed tar (member sizes can be checked against it); huge for compressed ones."""
    magic = f.read(6)
    compressed = magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic == b"\xfd7zXZ\x00"
    size = f.seek(0, 2)
    f.seek(0)
    return 1 << 62 if compressed else size


def read(
    chunk: Chunk,
    max_image_bytes: int,
    max_record_bytes: int,
    caption_prompt: str,
    preview: int,
    store: ObjectStoreOptions | None = None,
) -> Iterator[RawRecord]:
    """Yield one record per sample key of the tar."""
    name = fs.name(chunk.path)
    ordinal = 0
    current: str | None = None
    parts: dict[str, bytes] = {}
    problems: list[str] = []
    try:
        # seekable mode: a header declaring a huge size is checked against the file, never read through
        with fs.open_binary(chunk.path, store) as f:
            size = _plain_size(f)
            with tarfile.open(fileobj=f, mode="r:*") as tar:
                for key, ext, data, problem in _members(tar, max(max_image_bytes, max_record_bytes), size):
                    if key != current:
                        if current is not None:
                            yield _sample(name, current, ordinal, parts, problems, caption_prompt, preview)
                            ordinal += 1
                        current, parts, problems = key, {}, []
                    if problem:
                        problems.append(problem)
                    else:
                        parts[ext] = data
    except (tarfile.TarError, OSError, EOFError) as e:
        if current is not None:
            yield _sample(name, current, ordinal, parts, problems, caption_prompt, preview)
            ordinal += 1
            current = None
        yield RawRecord(
            f"{name}:after sample {ordinal}",
            ordinal,
            error_kind="unreadable_file",
            error=f"tar stream unreadable: {type(e).__name__}: {e}",
        )
        return
    if current is not None:
        yield _sample(name, current, ordinal, parts, problems, caption_prompt, preview)


def _sample(
    tar: str, key: str, ordinal: int, parts: dict[str, bytes], problems: list[str], caption_prompt: str, preview: int
) -> RawRecord:
    locator = f"{tar}:{key}"
    rec = RawRecord(locator, ordinal, key=key, raw=json.dumps(sorted(parts))[:preview])
    if problems:
        rec.error_kind, rec.error = "bad_tar_member", "; ".join(problems)
        return rec
    meta: dict = {}
    if "json" in parts:
        try:
            meta = json.loads(parts["json"].decode("utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not an object")
        except (UnicodeDecodeError, ValueError) as e:
            rec.error_kind, rec.error = "invalid_json", f"{key}.json is not a JSON object: {e}"
            return rec
    caption = None
    if "txt" in parts:
        try:
            caption = parts["txt"].decode("utf-8")
        except UnicodeDecodeError as e:
            rec.error_kind, rec.error = "invalid_utf8", f"{key}.txt is not valid UTF-8 ({e.reason})"
            return rec
    elif isinstance(meta.get("caption"), str):
        caption = meta["caption"]
    image_ext = next((e for e in IMAGE_EXTS if e in parts), None)
    if image_ext is None:
        rec.error_kind, rec.error = "missing_image", f"sample {key} has no image member ({'/'.join(IMAGE_EXTS)})"
        return rec
    if caption is None:
        rec.error_kind, rec.error = "missing_text", f"sample {key} has no caption (.txt or json 'caption')"
        return rec
    rec.image_bytes = parts[image_ext]
    rec.image_name = f"{key}.{image_ext}"
    rec.obj = {"conversations": [{"from": "human", "value": caption_prompt}, {"from": "gpt", "value": caption.strip()}]}
    rec.raw = json.dumps({"key": key, "caption": caption, "meta": meta}, ensure_ascii=False, default=repr)[:preview]
    return rec
