"""What a dataset source is (recipe entry) and how ingestion treats records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from magicvl.storage.fs import ObjectStoreOptions, expand, is_uri
from magicvl.storage.images import DecodeBudget
from magicvl.storage.layout import check_name
from magicvl.storage.schema import CATEGORIES

Format = Literal["llava_json", "jsonl", "parquet", "webdataset"]


class DatasetConfig(BaseModel):
    """One raw dataset of the recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Dataset name; becomes the `<name>` partition folder and the `dataset` column.")
    format: Format = Field(description="llava_json (JSON array), jsonl, parquet, or webdataset (img2dataset tars).")
    path: str = Field(
        description="File, folder or glob of the source files (relative to the recipe file), or an "
        "s3://bucket/prefix object, prefix or glob."
    )
    image_root: str | None = Field(
        default=None,
        description="Folder (or s3://bucket/prefix) image paths resolve in (required for path references).",
    )
    category: str | None = Field(default=None, description="Task category of the whole dataset, if known.")
    label_field: str | None = Field(
        default=None, description="Per-record field holding the dataset's own category label."
    )
    label_map: dict[str, str] = Field(
        default_factory=dict, description="Maps the dataset's own labels to categories (e.g. {'docvqa': 'ocr'})."
    )
    id_field: str = Field(default="id", description="Record field used as the record key (else its location).")
    image_field: str = Field(
        default="image", description="Record field with the image (path, or {bytes, path} struct)."
    )
    conversations_field: str = Field(default="conversations", description="Record field with the turns.")
    review: str | None = Field(
        default=None,
        description="Sidecar YAML with the inspection decision (`magicvl review`): a category or 'mixed'.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "dataset name")

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        if v is not None and v not in CATEGORIES:
            raise ValueError(f"unknown category {v!r}; expected one of {', '.join(CATEGORIES)}")
        return v

    @field_validator("label_map")
    @classmethod
    def _label_map(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {k: c for k, c in v.items() if c not in CATEGORIES}
        if bad:
            raise ValueError(f"label_map targets must be categories ({', '.join(CATEGORIES)}); bad: {bad}")
        return v


class IngestOptions(BaseModel):
    """How records are read, checked and stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: Literal["embed", "reference"] = Field(
        default="embed", description="embed: copy image bytes into shards; reference: store the resolved path."
    )
    max_pixels: int = Field(default=64_000_000, gt=0, description="Refuse images with more pixels (header check).")
    max_image_bytes: int = Field(
        default=64 << 20,
        gt=0,
        description="Refuse image files (and images embedded in Parquet) larger than this. An embedded image "
        "costs at most about 2x this in memory when its Parquet page holds only it (a page of one value over it "
        "is refused unread).",
    )
    max_record_bytes: int = Field(default=16 << 20, gt=0, description="Refuse a JSON record/line larger than this.")
    max_parquet_page_bytes: int = Field(
        default=256 << 20,
        gt=0,
        description="Largest Parquet dictionary page, or page of several values, of embedded image bytes read "
        "(uncompressed, from the page headers, before any data; a page of one image is held to max_image_bytes, "
        "pages of other columns to max_record_bytes). Reading such a page takes about 2x its size; the rows "
        "whose image is in a larger one are quarantined unread (image_page_too_large).",
    )
    chunk_records: int = Field(default=2000, gt=0, description="Records per ingestion task.")
    caption_prompt: str = Field(
        default="<image>\nDescribe the image briefly.",
        description="Human turn given to caption-only records (WebDataset) to form a conversation.",
    )
    raw_preview_bytes: int = Field(default=4096, ge=0, description="How much of a bad record quarantine keeps.")
    max_decode_seconds: float = Field(
        default=10.0, gt=0, description="Time limit of one image decode; slower images are quarantined."
    )
    max_task_seconds: float | None = Field(
        default=3600.0,
        gt=0,
        description="Decode time budget of one ingestion task (all its images); once spent, "
        "its remaining images are quarantined (task_time_limit). null: no task limit.",
    )
    max_jpeg_scans: int = Field(
        default=100, gt=0, description="Refuse JPEGs with more scans than this before decoding (scan bombs)."
    )

    def params(self) -> dict[str, Any]:
        return self.model_dump()

    def decode_budget(self) -> DecodeBudget:
        """A fresh decode budget for one task (its task clock starts at its first image)."""
        return DecodeBudget(self.max_decode_seconds, self.max_task_seconds, self.max_jpeg_scans)


@dataclass(frozen=True)
class Chunk:
    """One unit of ingestion work: a byte or row range of one source file."""

    dataset: str
    format: str
    path: str
    index: int  # position of this chunk among the dataset's chunks (names its output shards)
    start: int  # byte offset (json/jsonl), first row group (parquet), 0 (webdataset)
    end: int  # exclusive end offset / row group; -1 = to the end
    first_record: int  # ordinal of the chunk's first record within its file
    fingerprint: str  # of the source file

    @property
    def stem(self) -> str:
        return f"part-{self.index:06d}"


@dataclass
class RawRecord:
    """A record as read from a source, before validation."""

    locator: str  # human-readable source location, e.g. "data.jsonl:line 17"
    ordinal: int  # record ordinal within its file (stable order for duplicate resolution)
    obj: dict[str, Any] | None = None
    image_bytes: bytes | memoryview | None = None  # embedded image (Parquet struct / WebDataset member)
    image_name: str | None = None  # original name of an embedded image
    key: str | None = None  # source-provided key (WebDataset __key__)
    error_kind: str | None = None
    error: str | None = None
    raw: str | None = None  # preview of what was read, for quarantine


def _clip(obj: Any, limit: int) -> Any:
    """``obj`` with every string cut to ``limit`` characters, bytes shown by size, long lists cut."""
    if isinstance(obj, str):
        return obj if len(obj) <= limit else obj[:limit] + "…"
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return f"<{len(obj)} bytes>"
    if isinstance(obj, dict):
        return {str(k)[:limit]: _clip(v, limit) for k, v in list(obj.items())[: limit + 1]}
    if isinstance(obj, (list, tuple)):
        return [_clip(v, limit) for v in obj[: limit + 1]]
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    return type(obj).__name__


def bounded_json(obj: Any, limit: int) -> str:
    """A JSON preview of at most ``limit`` characters, costing memory on the order of ``limit``
    per value (never a ``repr`` of a whole blob)."""
    try:
        return json.dumps(_clip(obj, limit), ensure_ascii=False)[:limit]
    except (RecursionError, ValueError):
        return f"<{type(obj).__name__} too deeply nested to preview>"


def resolved_image_root(cfg: DatasetConfig, base: Path) -> Path | str | None:
    """The dataset's image root: a resolved folder, an ``s3://`` prefix (no trailing '/'), or None."""
    if not cfg.image_root:
        return None
    return cfg.image_root.rstrip("/") if is_uri(cfg.image_root) else (base / cfg.image_root).resolve()


SUFFIXES = {"llava_json": ".json", "jsonl": ".jsonl", "parquet": ".parquet", "webdataset": ".tar"}


def source_files(cfg: DatasetConfig, base: Path, store: ObjectStoreOptions | None = None) -> list[Path | str]:
    """Expand a dataset's ``path`` (file, folder or glob, relative to ``base``) into sorted files.

    An ``s3://`` path (object, prefix or glob) expands to object URIs (``storage.fs.expand``).
    """
    pattern = cfg.path
    if is_uri(pattern):
        found = expand(pattern, SUFFIXES[cfg.format], store)
        if not found:
            raise FileNotFoundError(f"dataset {cfg.name!r}: no {cfg.format} objects at {pattern}")
        return found
    p = Path(pattern) if Path(pattern).is_absolute() else base / pattern
    if any(ch in pattern for ch in "*?["):
        anchor = Path(p.anchor) if p.is_absolute() else base
        rel = p.relative_to(anchor)
        files = sorted(x for x in anchor.glob(str(rel)) if x.is_file())
    elif p.is_dir():
        suffix = SUFFIXES[cfg.format]
        files = sorted(x for x in p.rglob(f"*{suffix}") if x.is_file())
    else:
        files = [p] if p.is_file() else []
    if not files:
        raise FileNotFoundError(f"dataset {cfg.name!r}: no {cfg.format} files at {p}")
    return files
