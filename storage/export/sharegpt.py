"""LLaMA-Factory's multimodal ShareGPT layout: per-stage JSON Lines + ``images/`` + ``dataset_info.json``.

Each line: ``messages`` ([{role: user|assistant, content}], ``<image>`` where
the image goes), ``images`` (paths relative to the folder of
``dataset_info.json``, which is LLaMA-Factory's ``dataset_dir``; empty for a
text-only sample) and ``system`` when the sample has a system turn. The
``dataset_info.json`` entry of every stage names the columns and role tags
(``formatting: sharegpt``), so ``--dataset_dir <export> --dataset
magicvl_stage_1`` trains on stage 1.
"""

from __future__ import annotations

from typing import Any

from magicvl.storage.export.base import (
    IMAGE_TOKEN,
    ExportRecord,
    JsonLines,
    JsonStageWriter,
    StageSummary,
    alternation_error,
)
from magicvl.storage.manifest import write_json

ROLE = {"human": "user", "gpt": "assistant"}
TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}


def messages(rec: ExportRecord, has_image: bool) -> tuple[str | None, list[dict[str, str]]]:
    """``(system prompt or None, messages)``; an image sample without ``<image>`` gets it first in its first turn."""
    turns = rec.conversations
    system = turns[0]["value"] if turns and turns[0]["from"] == "system" else None
    msgs = [{"role": ROLE[t["from"]], "content": t["value"]} for t in turns[1 if system is not None else 0 :]]
    if has_image and not any(IMAGE_TOKEN in m["content"] for m in msgs):
        msgs[0]["content"] = f"{IMAGE_TOKEN}\n{msgs[0]['content']}"
    return system, msgs


class ShareGPTWriter(JsonStageWriter):
    name = "sharegpt"
    shared_images = True

    def check(self, rec: ExportRecord) -> str | None:
        err = alternation_error(rec.conversations, allow_system=True)
        n = sum(t["value"].count(IMAGE_TOKEN) for t in rec.conversations)
        if err is None and n > (rec.image is not None):
            return f"{n} {IMAGE_TOKEN} placeholders for {int(rec.image is not None)} image(s)"
        return err

    def open_stage(self, stage: int) -> None:
        self._file = JsonLines(self.out / f"stage-{stage}.jsonl")

    def write(self, rec: ExportRecord, image_path: str | None) -> None:
        system, msgs = messages(rec, image_path is not None)
        obj: dict[str, Any] = {"messages": msgs, "images": [image_path] if image_path else []}
        if system is not None:
            obj["system"] = system
        obj.update(rec.meta())
        self._file.write(obj)

    def finish(self, stages: list[StageSummary], info: dict[str, Any]) -> list[str]:
        """``dataset_info.json``: one entry per stage, in stage order."""
        entries = {}
        for s in stages:
            entries[self.stage_name(s.stage)] = {
                "file_name": s.files[0],
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images", "system": "system"},
                "tags": dict(TAGS),
            }
        write_json(self.out / "dataset_info.json", entries)
        return ["dataset_info.json"]
