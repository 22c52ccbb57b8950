"""Read a raw dataset's records straight from its source, without an output folder.

For looking at a dataset before a run (the inspection review sheet) and for
benchmarks over the sample data. Records that ingestion would quarantine are
returned with their error instead of a sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.images import ImageError, read_image_bytes, resolve_image_path
from magicvl.storage.ingest import plan_dataset, read_chunk
from magicvl.storage.ingest.records import RecordError, parse_record
from magicvl.storage.ingest.spec import DatasetConfig, IngestOptions, resolved_image_root


@dataclass
class PreviewRecord:
    """One record of a raw dataset: its parsed sample, or the reason it cannot be one."""

    dataset: str
    source: str
    sample_id: str | None = None
    category: str | None = None
    conversations: list[dict[str, str]] | None = None
    image: bytes | None = None
    error: str | None = None


def iter_records(
    cfg: DatasetConfig, base: Path, options: IngestOptions | None = None, store: ObjectStoreOptions | None = None
) -> Iterator[PreviewRecord]:
    """Every record of a dataset in source order (images read but not decoded); ``store``: for s3:// sources."""
    options = options or IngestOptions()
    root = resolved_image_root(cfg, base)
    for chunk in plan_dataset(cfg, base, options, store):
        for raw in read_chunk(chunk, cfg, options, store):
            rec = PreviewRecord(cfg.name, raw.locator)
            if raw.error_kind is not None:
                rec.error = raw.error or raw.error_kind
                yield rec
                continue
            try:
                parsed = parse_record(raw, cfg)
                rec.sample_id, rec.category, rec.conversations = parsed.sample_id, parsed.category, parsed.conversations
                if raw.image_bytes is not None:
                    rec.image = raw.image_bytes
                elif parsed.image_ref is not None:
                    if root is None:
                        raise ImageError(
                            "no_image_root", "record references an image but the dataset has no image_root"
                        )
                    ref = resolve_image_path(parsed.image_ref, root, store)
                    rec.image = read_image_bytes(ref, options.max_image_bytes, store)
            except (RecordError, ImageError) as e:
                rec.error = str(e)
            yield rec
