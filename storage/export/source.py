"""Curated rows, stage by stage, with their images attached: what an export reads.

Curated rows reference their image (``samples_shard``, ``samples_row``); the
reader fetches it from the row group that holds it, keeping only the last few
row groups and shard footers open, so memory does not grow with the curriculum.
An image that cannot be had (shard or row missing, file gone, bytes that are not
a readable image) becomes a reported error for that sample, never a dangling path.
"""

from __future__ import annotations

import bisect
import hashlib
import io
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from magicvl.storage import fs
from magicvl.storage.export.base import ExportImage, ExportRecord
from magicvl.storage.images import stable_error
from magicvl.storage.layout import stage_folder
from magicvl.storage.outfs import as_path, parquet_source
from magicvl.storage.readers import list_shards

_ROW_COLUMNS = (
    "sample_id", "dataset", "category", "conversations", "width", "height", "image_format", "stage",
    "complexity", "s_text", "s_image", "s_task", "samples_shard", "samples_row", "text_tokens", "visual_tokens",
    "image",
)  # fmt: skip
_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


@dataclass(frozen=True)
class ExportError:
    """A sample that was not exported, and why (one line)."""

    stage: int
    sample_id: str
    kind: str  # missing_image | broken_image | unsupported_by_format
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "sample_id": self.sample_id, "kind": self.kind, "error": self.error}


def image_extension(data: bytes) -> str | None:
    """The file extension of encoded image bytes from their magic number (None: not a known format)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), None)


def image_digest(data: bytes) -> str:
    """Hex BLAKE2b-128 of the encoded bytes: the same value ingestion stores as ``image_digest``."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def stage_shards(curated: str | Path, stages: list[int] | None = None) -> list[tuple[int, list[Path]]]:
    """``[(stage, shards)]`` in stage order: the asked stages (all present ones by default)."""
    root = as_path(curated)
    present = sorted(int(p.name.split("-", 1)[1]) for p in root.iterdir() if p.is_dir() and p.name.startswith("stage-"))
    if not present:
        raise FileNotFoundError(f"no stage-<k> folders under {curated}: is it a run's curated/ folder?")
    wanted = sorted(set(stages)) if stages else present
    missing = [s for s in wanted if s not in present]
    if missing:
        raise FileNotFoundError(f"stages {missing} not found under {curated} (present: {present})")
    return [(s, list_shards(root / stage_folder(s))) for s in wanted]


class ImageReader:
    """Fetches the image a curated row references, a few row groups at a time."""

    def __init__(self, root: str | Path, keep_groups: int = 2, keep_files: int = 4) -> None:
        self.root = as_path(root)
        self._files: OrderedDict[str, tuple[pq.ParquetFile, list[int], list[str]] | None] = OrderedDict()
        self._groups: OrderedDict[tuple[str, int], dict[str, pa.Array]] = OrderedDict()
        self.keep_groups, self.keep_files = keep_groups, keep_files

    def _file(self, shard: str) -> tuple[pq.ParquetFile, list[int], list[str]] | None:
        if shard not in self._files:
            path = self.root / shard
            if not path.exists():
                self._files[shard] = None
            else:
                pf = pq.ParquetFile(parquet_source(path))
                starts = [0]
                for g in range(pf.metadata.num_row_groups):
                    starts.append(starts[-1] + pf.metadata.row_group(g).num_rows)
                cols = [c for c in ("image", "image_digest") if c in pf.schema_arrow.names]
                self._files[shard] = (pf, starts, cols)
            while len(self._files) > self.keep_files:
                self._files.popitem(last=False)
        self._files.move_to_end(shard)
        return self._files[shard]

    def _cell(self, shard: str, row: int) -> tuple[dict | None, bytes | None]:
        """``(image struct, stored digest)`` of one samples row; raises LookupError when it is not there."""
        opened = self._file(shard)
        if opened is None:
            raise LookupError(f"samples shard {shard} not found")
        pf, starts, cols = opened
        if not 0 <= row < starts[-1] or "image" not in cols:
            raise LookupError(f"samples shard {shard} has no image row {row}")
        g = bisect.bisect_right(starts, row) - 1
        key = (shard, g)
        if key not in self._groups:
            t = pf.read_row_group(g, columns=cols, use_threads=False)
            self._groups[key] = {c: t.column(c).combine_chunks() for c in cols}
            while len(self._groups) > self.keep_groups:
                self._groups.popitem(last=False)
        group = self._groups[key]
        i = row - starts[g]
        digest = group["image_digest"][i].as_py() if "image_digest" in group else None
        return group["image"][i].as_py(), digest

    def fetch(self, row: dict[str, Any]) -> tuple[ExportImage | None, tuple[str, str] | None]:
        """``(image or None for a text-only sample, None)`` or ``(None, (kind, error))``."""
        digest = None
        if "image" in row:  # a self-contained curated row
            cell = row["image"]
        else:
            try:
                cell, digest = self._cell(row["samples_shard"], int(row["samples_row"]))
            except LookupError as e:
                return None, ("missing_image", str(e))
        if cell is None or (cell.get("bytes") is None and not cell.get("path")):
            if row.get("width") is None and row.get("image_format") is None:
                return None, None  # text-only
            return None, ("missing_image", "the curated row has an image size but its samples row has no image")
        data = cell.get("bytes")
        if data is None:
            try:
                data = fs.read_bytes(cell["path"])
            except OSError as e:
                return None, ("missing_image", f"image file {cell['path']}: {e.strerror or e}")
        return checked_image(data, digest)


def checked_image(data: bytes, digest: bytes | None = None) -> tuple[ExportImage | None, tuple[str, str] | None]:
    """An ``ExportImage`` of bytes that open as an image (header and structure verified), or an error."""
    ext = image_extension(data)
    if ext is None:
        return None, ("broken_image", f"{len(data)} bytes that are not a JPEG/PNG/WEBP/GIF/BMP/TIFF image")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except Exception as e:  # PIL raises many kinds for corrupt data
        return None, ("broken_image", f"{ext} image does not verify: {stable_error(e)}")
    return ExportImage(data, digest.hex() if digest else image_digest(data), ext), None


def to_record(row: dict[str, Any], image: ExportImage | None) -> ExportRecord:
    """The export view of one curated row."""
    return ExportRecord(
        sample_id=row["sample_id"],
        dataset=row["dataset"],
        category=row.get("category"),
        stage=int(row["stage"]),
        S=row.get("complexity"),
        s_text=row.get("s_text"),
        s_image=row.get("s_image"),
        s_task=row.get("s_task"),
        conversations=[{"from": t["from"], "value": t["value"]} for t in row["conversations"]],
        width=row.get("width"),
        height=row.get("height"),
        text_tokens=row.get("text_tokens"),
        visual_tokens=row.get("visual_tokens"),
        image=image,
    )


def iter_rows(shard: Path, batch_size: int = 256) -> Iterator[dict[str, Any]]:
    """The rows of one curated shard, a record batch at a time (only the columns an export reads)."""
    pf = pq.ParquetFile(parquet_source(shard))
    cols = [c for c in _ROW_COLUMNS if c in pf.schema_arrow.names]
    # one thread: reader threads would spread allocations over several malloc arenas, whose fragmented
    # free space grows the peak RSS with the number of rows read (measured: bench/README.md, export)
    for batch in pf.iter_batches(batch_size=batch_size, columns=cols, use_threads=False):
        yield from batch.to_pylist()
