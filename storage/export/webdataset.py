"""WebDataset: per-stage tar shards of ``{key}.json`` (+ ``{key}.jpg|png|...``), sized for streaming loaders.

The key is the ``sample_id`` (no dots, so WebDataset groups the members of a
sample); the JSON holds the conversation and the curriculum fields, the image
member its original encoded bytes (a text-only sample has none). A shard closes
at ``shard_max_samples`` samples or ``shard_max_bytes`` bytes; members carry a
fixed mtime, so the same curriculum gives the same tars.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from magicvl.storage.export.base import ExportRecord, FormatWriter


class WebDatasetWriter(FormatWriter):
    name = "webdataset"

    def open_stage(self, stage: int) -> None:
        self._stage, self._n, self._files = stage, 0, []
        self._tar: tarfile.TarFile | None = None

    def _open_shard(self) -> None:
        folder = self.out / f"stage-{self._stage}"
        folder.mkdir(parents=True, exist_ok=True)
        self._path = folder / f"stage-{self._stage}-{len(self._files):06d}.tar"
        self._tmp = self._path.with_name(f".{self._path.name}.tmp-{os.getpid()}")
        self._tar = tarfile.open(self._tmp, "w", format=tarfile.USTAR_FORMAT)
        self._count = 0

    def _close_shard(self) -> None:
        self._tar.close()
        os.replace(self._tmp, self._path)
        self._files.append(self._path.relative_to(self.out).as_posix())
        self._tar = None

    def _add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        self._tar.addfile(info, io.BytesIO(data))
        self._tar.members.clear()  # TarFile lists every member it wrote; a writer never needs them back

    def write(self, rec: ExportRecord, image_path: str | None) -> None:
        if self._tar is None:
            self._open_shard()
        key = rec.sample_id.replace(".", "_")
        meta = {
            **rec.meta(),
            "conversations": rec.conversations,
            "width": rec.width,
            "height": rec.height,
            "text_tokens": rec.text_tokens,
            "visual_tokens": rec.visual_tokens,
            "image_digest": rec.image.digest if rec.image else None,
            "image_ext": rec.image.ext if rec.image else None,
        }
        self._add(f"{key}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        if rec.image is not None:
            self._add(f"{key}.{rec.image.ext}", rec.image.data)
        self._count += 1
        if self._count >= self.options.shard_max_samples or self._tar.fileobj.tell() >= self.options.shard_max_bytes:
            self._close_shard()

    def close_stage(self) -> list[str]:
        if self._tar is not None:
            self._close_shard()
        return list(self._files)

    def abort(self) -> None:
        if getattr(self, "_tar", None) is not None:
            self._tar.close()
            Path(self._tmp).unlink(missing_ok=True)
