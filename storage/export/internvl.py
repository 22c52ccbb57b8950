"""InternVL chat data: per-stage JSON Lines annotations + a meta JSON per stage + ``images/``.

As InternVL's "chat data format" documents it: each line ``{id, image,
width, height, conversations: [{from: human|gpt, value}]}`` with ``<image>\\n``
at the start of the first human turn (``image``, ``width``, ``height`` absent
for pure-text data; a leading ``system`` turn is kept, InternVL's preprocess
reads it as the system prompt). The meta file of stage k is
``{<name>_stage_<k>: {root, annotation, data_augment, repeat_time, length}}``
with ``root`` the export root (absolute), for ``--meta_path``.
"""

from __future__ import annotations

from typing import Any

from magicvl.storage.export.base import (
    ExportRecord,
    JsonLines,
    JsonStageWriter,
    StageSummary,
    alternation_error,
    image_placed_first,
)
from magicvl.storage.manifest import write_json


class InternVLWriter(JsonStageWriter):
    name = "internvl"
    shared_images = True

    def check(self, rec: ExportRecord) -> str | None:
        return alternation_error(rec.conversations, allow_system=True)

    def open_stage(self, stage: int) -> None:
        self._file = JsonLines(self.out / "annotations" / f"stage-{stage}.jsonl")

    def write(self, rec: ExportRecord, image_path: str | None) -> None:
        obj: dict[str, Any] = {"id": rec.sample_id}
        if image_path is not None:
            obj.update({"image": image_path, "width": rec.width, "height": rec.height})
        obj["conversations"] = image_placed_first(rec.conversations, image_path is not None)
        obj.update({k: v for k, v in rec.meta().items() if k != "sample_id"})
        self._file.write(obj)

    def finish(self, stages: list[StageSummary], info: dict[str, Any]) -> list[str]:
        """One meta file per stage (a curriculum trains the stages one after another)."""
        files = []
        root = self.out.resolve()
        for s in stages:
            meta = {
                self.stage_name(s.stage): {
                    "root": f"{root}/",
                    "annotation": str(root / s.files[0]),
                    "data_augment": self.options.data_augment,
                    "repeat_time": self.options.repeat_time,
                    "length": s.samples,
                }
            }
            name = f"meta/stage-{s.stage}.json"
            write_json(self.out / name, meta)
            files.append(name)
        return files
