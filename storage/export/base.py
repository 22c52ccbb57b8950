"""What every export format shares: the record it writes, its options, the writer hooks, the image folder.

A format writer sees one stage at a time, one record at a time (``open_stage`` →
``check`` / ``write`` … → ``close_stage``), then ``finish`` once with the
per-stage summaries (index files such as ``dataset_info.json`` or a dataset card).
Folder formats (llava, sharegpt, internvl) keep one ``images/`` folder where each
distinct image is one file named by its digest; the streaming formats
(webdataset, hf) carry each sample's image inside the sample.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

IMAGE_TOKEN = "<image>"
IMAGES_DIR = "images"


class ExportOptions(BaseModel):
    """How an export is laid out (the CLI flags and the Prefect flow parameters mirror it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="magicvl", description="Dataset name prefix: `<name>_stage_<k>` in index files.")
    shard_max_samples: int = Field(default=10_000, gt=0, description="webdataset/hf: samples per shard at most.")
    shard_max_bytes: int = Field(default=1 << 30, gt=0, description="webdataset/hf: start a new shard past this size.")
    repeat_time: float = Field(default=1.0, gt=0, description="internvl: the meta file's `repeat_time` of each stage.")
    data_augment: bool = Field(default=False, description="internvl: the meta file's `data_augment` of each stage.")


@dataclass(frozen=True)
class ExportImage:
    """One image as stored: its encoded bytes, content digest (hex) and file extension."""

    data: bytes
    digest: str
    ext: str  # jpg | png | webp | gif | bmp | tiff


@dataclass
class ExportRecord:
    """One curated sample as every format sees it."""

    sample_id: str
    dataset: str
    category: str | None
    stage: int
    S: float | None  # the combined complexity score (curated ``complexity``)
    s_text: float | None
    s_image: float | None
    s_task: float | None
    conversations: list[dict[str, str]]  # [{from: human|gpt|system, value}]
    width: int | None
    height: int | None
    text_tokens: int | None
    visual_tokens: int | None
    image: ExportImage | None = None

    def meta(self) -> dict[str, Any]:
        """The fields that join an exported record back to ``scores/`` (kept by every format)."""
        return {
            "sample_id": self.sample_id,
            "dataset": self.dataset,
            "category": self.category,
            "stage": self.stage,
            "S": self.S,
            "s_text": self.s_text,
            "s_image": self.s_image,
            "s_task": self.s_task,
        }


@dataclass
class StageSummary:
    """What one stage's export holds (for the manifest and index files)."""

    stage: int
    files: list[str] = field(default_factory=list)
    samples: int = 0
    with_image: int = 0
    text_tokens: int = 0
    visual_tokens: int = 0
    without_token_counts: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, rec: ExportRecord) -> None:
        self.samples += 1
        self.with_image += rec.image is not None
        if rec.text_tokens is None or rec.visual_tokens is None:
            self.without_token_counts += 1
        else:
            self.text_tokens += rec.text_tokens
            self.visual_tokens += rec.visual_tokens
        key = rec.category or "uncategorized"
        self.categories[key] = self.categories.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "files": self.files,
            "samples": self.samples,
            "samples_with_image": self.with_image,
            "text_tokens": self.text_tokens,
            "visual_tokens": self.visual_tokens,
            "samples_without_token_counts": self.without_token_counts,
            "categories": dict(sorted(self.categories.items())),
            "skipped": dict(sorted(self.skipped.items())),
        }


def image_placed_first(turns: list[dict[str, str]], has_image: bool) -> list[dict[str, str]]:
    """Turns with exactly one ``<image>\\n`` at the start of the first human turn (LLaVA / InternVL
    convention) for an image sample, none for a text-only one; the text otherwise unchanged."""
    out = [{"from": t["from"], "value": t["value"]} for t in turns]
    for t in out:
        t["value"] = t["value"].replace(IMAGE_TOKEN + "\n", "").replace(IMAGE_TOKEN, "")
    if has_image:
        first = next(t for t in out if t["from"] == "human")
        first["value"] = f"{IMAGE_TOKEN}\n{first['value']}"
    return out


def alternation_error(turns: list[dict[str, str]], allow_system: bool) -> str | None:
    """Why ``turns`` are not human/gpt pairs (after a leading system turn, where allowed), or None."""
    body = turns
    if turns and turns[0]["from"] == "system":
        if not allow_system:
            return "has a system turn, which this format cannot represent"
        body = turns[1:]
    roles = [t["from"] for t in body]
    if not roles or roles != ["human", "gpt"] * (len(roles) // 2):
        return f"turns are not human/gpt pairs ({'/'.join(roles)})"
    return None


class JsonLines:
    """A JSON Lines (or JSON array) file written to a temporary name and renamed into place on close."""

    def __init__(self, path: Path, array: bool = False) -> None:
        self.path, self.array, self.count = path, array, 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self._f = open(self._tmp, "w", encoding="utf-8")
        if array:
            self._f.write("[")

    def write(self, obj: dict[str, Any]) -> None:
        text = json.dumps(obj, ensure_ascii=False)
        if self.array:
            self._f.write(("\n" if self.count == 0 else ",\n") + text)
        else:
            self._f.write(text + "\n")
        self.count += 1

    def close(self) -> Path:
        if self.array:
            self._f.write("\n]\n")
        self._f.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)


class ImageFolder:
    """``images/<hh>/<digest>.<ext>`` under an export root, each distinct image written once.

    Whether an image is there is asked of the file system, so memory does not grow
    with the number of images; files appear whole (temporary name, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written = 0
        self.bytes = 0

    def relpath(self, image: ExportImage) -> str:
        return f"{IMAGES_DIR}/{image.digest[:2]}/{image.digest}.{image.ext}"

    def put(self, image: ExportImage) -> str:
        """The image's path relative to the export root, writing it if it is new."""
        rel = self.relpath(image)
        path = self.root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_bytes(image.data)
            os.replace(tmp, path)
            self.written += 1
            self.bytes += len(image.data)
        return rel


class FormatWriter(ABC):
    """Base of a format: subclasses fill ``open_stage``, ``write``, ``close_stage`` (and ``check``/``finish``)."""

    name = ""
    shared_images = False  # True: the driver writes images into ``images/`` once per digest

    def __init__(self, out: Path, options: ExportOptions) -> None:
        self.out = out
        self.options = options
        self.images = ImageFolder(out)

    def check(self, rec: ExportRecord) -> str | None:
        """Why this format cannot hold ``rec`` (the sample is skipped and reported), or None."""
        return None

    @abstractmethod
    def open_stage(self, stage: int) -> None:
        """Start writing one stage."""

    @abstractmethod
    def write(self, rec: ExportRecord, image_path: str | None) -> None:
        """Write one record; ``image_path`` is its image under the export root (folder formats)."""

    @abstractmethod
    def close_stage(self) -> list[str]:
        """Finish the stage; its files relative to the export root."""

    def abort(self) -> None:  # noqa: B027 (an optional hook: a writer without temporaries has nothing to drop)
        """Drop the temporaries of an unfinished stage."""

    def finish(self, stages: list[StageSummary], info: dict[str, Any]) -> list[str]:
        """Write index files over all stages (``info``: recipe hash, source); their relative paths."""
        return []

    def stage_name(self, stage: int) -> str:
        return f"{self.options.name}_stage_{stage}"


class JsonStageWriter(FormatWriter):
    """A format with one annotation file per stage (``self._file``, a ``JsonLines`` opened in ``open_stage``)."""

    _file: JsonLines | None = None

    def close_stage(self) -> list[str]:
        return [Path(self._file.close()).relative_to(self.out).as_posix()]

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()

