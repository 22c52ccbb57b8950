"""The export driver: curated stages in order → one format's files + ``export_manifest.json``.

Memory stays flat in the size of the curriculum: rows are read a record batch
at a time, images a row group at a time, written as they come; the folder
formats ask the file system whether an image is already there. Every curated
row ends exported or reported (``export_errors.jsonl``, counted per stage and
kind in the manifest). The manifest is written last: an export folder with a
manifest is complete.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from magicvl.storage.export import FORMATS
from magicvl.storage.export.base import ExportOptions, FormatWriter, JsonLines, StageSummary
from magicvl.storage.export.source import ExportError, ImageReader, iter_rows, stage_shards, to_record
from magicvl.storage.fingerprint import code_version
from magicvl.storage.layout import find_root
from magicvl.storage.manifest import MANIFEST_NAME, read_json, write_json
from magicvl.storage.outfs import S3Path, as_path

EXPORT_MANIFEST = "export_manifest.json"
ERRORS_FILE = "export_errors.jsonl"


def prepare_out(out: Path, overwrite: bool) -> None:
    """An empty output folder; a previous export there is replaced only with ``overwrite``."""
    if out.exists() and any(out.iterdir()):
        if not (out / EXPORT_MANIFEST).exists():
            raise FileExistsError(f"export folder {out} is not empty and holds no {EXPORT_MANIFEST}: choose another")
        if not overwrite:
            raise FileExistsError(f"{out} already holds an export: pass --overwrite to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def run_info(curated: str | Path) -> dict[str, Any]:
    """Where the curriculum comes from: the run manifest's recipe hash and run id, when there is one."""
    root = find_root(as_path(curated))
    shown = str(curated) if isinstance(as_path(curated), S3Path) else str(Path(curated).resolve())
    info: dict[str, Any] = {"curated": shown, "recipe_hash": None, "run_id": None}
    if (root / MANIFEST_NAME).exists():
        m = read_json(root / MANIFEST_NAME)
        info.update(recipe_hash=m.get("recipe_hash"), run_id=m.get("run_id"))
    return info


def export_stage(
    writer: FormatWriter, stage: int, shards: list[Path], reader: ImageReader, errors: JsonLines
) -> StageSummary:
    """One stage: every row checked by the format, its image fetched and verified, then written."""
    summary = StageSummary(stage)
    writer.open_stage(stage)
    try:
        for shard in shards:
            for row in iter_rows(shard):
                problem = _export_row(writer, row, reader, summary)
                if problem is not None:
                    kind, msg = problem
                    errors.write(ExportError(stage, row["sample_id"], kind, msg).as_dict())
                    summary.skipped[kind] = summary.skipped.get(kind, 0) + 1
        summary.files = writer.close_stage()
    except BaseException:
        writer.abort()
        raise
    return summary


def _export_row(writer: FormatWriter, row: dict, reader: ImageReader, summary: StageSummary) -> tuple | None:
    image, problem = reader.fetch(row)
    if problem is not None:
        return problem
    rec = to_record(row, image)
    unsupported = writer.check(rec)
    if unsupported is not None:
        return "unsupported_by_format", f"{writer.name}: {unsupported}"
    path = writer.images.put(rec.image) if writer.shared_images and rec.image is not None else None
    writer.write(rec, path)
    summary.add(rec)
    return None


def export_curated(
    curated: str | Path,
    fmt: str,
    out: str | Path,
    stages: list[int] | None = None,
    options: ExportOptions | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export ``curated`` (a run's ``curated/`` folder) as ``fmt`` into ``out``; returns the manifest."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    options = options or ExportOptions()
    plan = stage_shards(curated, stages)
    out = Path(out)
    prepare_out(out, overwrite)
    started = time.monotonic()
    writer = FORMATS[fmt](out, options)
    reader = ImageReader(find_root(as_path(curated)))
    errors = JsonLines(out / ERRORS_FILE)
    try:
        summaries = [export_stage(writer, stage, shards, reader, errors) for stage, shards in plan]
    except BaseException:
        errors.abort()
        raise
    errors.close()
    info = run_info(curated)
    index = writer.finish(summaries, info)
    manifest = {
        "format": fmt,
        **info,
        "code_version": code_version(),
        "options": options.model_dump(),
        "stages": [s.as_dict() for s in summaries],
        "index_files": index,
        "images": {"folder": "images", "written": writer.images.written, "bytes": writer.images.bytes}
        if writer.shared_images
        else None,
        "samples": sum(s.samples for s in summaries),
        "skipped": sum(sum(s.skipped.values()) for s in summaries),
        "errors_file": ERRORS_FILE,
        "seconds": round(time.monotonic() - started, 3),
    }
    write_json(out / EXPORT_MANIFEST, manifest)
    return manifest
