"""Shard sizing and compression of written outputs."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from magicvl.storage.fs import ObjectStoreOptions

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def parse_bytes(value: int | str) -> int:
    """``512MiB`` / ``1GB`` / ``1048576`` → bytes."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a byte size: {value!r} (use e.g. 512MiB, 1GB, 1048576)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


class StorageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shard_max_rows: int = Field(default=10_000, gt=0, description="Rotate a shard after this many rows.")
    shard_max_bytes: int = Field(
        default=512 << 20, gt=0, description="Rotate a shard past this many bytes (e.g. 512MiB)."
    )
    compression: Literal["zstd", "snappy", "gzip", "lz4", "none"] = Field(default="zstd")
    s3: ObjectStoreOptions = Field(
        default_factory=ObjectStoreOptions,
        exclude=True,  # where the bytes are served from changes no output: not part of cache keys or the recipe hash
        description="How to reach s3:// inputs (endpoint_url, region, anonymous); credentials come from the "
        "environment (storage.fs).",
    )

    @field_validator("shard_max_bytes", mode="before")
    @classmethod
    def _bytes(cls, v: int | str) -> int:
        return parse_bytes(v)
