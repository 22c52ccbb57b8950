"""LLaVA: one JSON array per stage, ``[{id, image, conversations: [{from, value}]}]`` + ``images/``.

As LLaVA's "Finetune on custom data" documents it: ``image`` is a path under
the training ``--image_folder`` (here: the export root), an image sample has
``<image>\\n`` at the start of its first human turn, a text-only sample has no
``image`` key. LLaVA's conversation templates know only human/gpt turns, so a
sample with a system turn is skipped and reported. The curriculum fields
(``sample_id``, ``category``, ``stage``, ``S``...) ride along as extra keys.
"""

from __future__ import annotations

from magicvl.storage.export.base import (
    ExportRecord,
    JsonLines,
    JsonStageWriter,
    alternation_error,
    image_placed_first,
)


class LlavaWriter(JsonStageWriter):
    name = "llava"
    shared_images = True

    def check(self, rec: ExportRecord) -> str | None:
        return alternation_error(rec.conversations, allow_system=False)

    def open_stage(self, stage: int) -> None:
        self._file = JsonLines(self.out / f"stage-{stage}.json", array=True)

    def write(self, rec: ExportRecord, image_path: str | None) -> None:
        obj = {"id": rec.sample_id}
        if image_path is not None:
            obj["image"] = image_path
        obj["conversations"] = image_placed_first(rec.conversations, image_path is not None)
        obj.update({k: v for k, v in rec.meta().items() if k != "sample_id"})
        self._file.write(obj)

