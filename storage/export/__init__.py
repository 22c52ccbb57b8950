"""Exporting a curriculum to other trainers' layouts: a plain registry, format name → writer class.

``export_curated`` (``storage.export.run``) streams ``curated/stage-<k>`` shard
by shard into one of these layouts and writes ``export_manifest.json``.
"""

from __future__ import annotations

from magicvl.storage.export.base import ExportOptions, FormatWriter
from magicvl.storage.export.hf import HFWriter
from magicvl.storage.export.internvl import InternVLWriter
from magicvl.storage.export.llava import LlavaWriter
from magicvl.storage.export.sharegpt import ShareGPTWriter
from magicvl.storage.export.webdataset import WebDatasetWriter

FORMATS: dict[str, type[FormatWriter]] = {
    "llava": LlavaWriter,
    "sharegpt": ShareGPTWriter,
    "internvl": InternVLWriter,
    "webdataset": WebDatasetWriter,
    "hf": HFWriter,
}

__all__ = ["FORMATS", "ExportOptions", "FormatWriter"]
