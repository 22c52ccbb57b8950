"""The batch every signal receives: texts split into prompt/response, images decoded on demand."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from magicvl.storage.images import ImageError, gray_for_signals

IMAGE_PLACEHOLDER = "<image>"


def prompt_parts(turns: list[dict[str, str]]) -> list[str]:
    """The human turns' non-empty contents, without the ``<image>`` placeholder (system prompts excluded)."""
    parts = [t["value"].replace(IMAGE_PLACEHOLDER, "").strip() for t in turns if t["from"] == "human"]
    return [p for p in parts if p]


def response_parts(turns: list[dict[str, str]]) -> list[str]:
    """The assistant (gpt) turns' contents, stripped."""
    return [t["value"].strip() for t in turns if t["from"] == "gpt"]


def prompt_text(turns: list[dict[str, str]]) -> str:
    """The human turns joined by newlines, without the ``<image>`` placeholder (system prompts excluded)."""
    return "\n".join(prompt_parts(turns))


def response_text(turns: list[dict[str, str]]) -> str:
    """The assistant (gpt) turns joined by newlines."""
    return "\n".join(response_parts(turns))


@dataclass
class SampleBatch:
    """Rows of one shard handed to a signal. Pure data: no file access.

    ``images`` holds encoded image bytes (None for text-only rows). Decoded luma
    images (``storage.images.gray_for_signals``) are memoised per ``max_side``
    so several image signals decode once. (Ingestion, which has just decoded
    the image, calls a signal's ``per_image`` directly instead.)
    """

    sample_ids: list[str]
    conversations: list[list[dict[str, str]]]
    images: list[bytes | None] = field(default_factory=list)
    max_pixels: int = 64_000_000
    _gray: dict[int, list[Image.Image | ImageError | None]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def prompts(self) -> list[str]:
        return [prompt_text(c) for c in self.conversations]

    def responses(self) -> list[str]:
        return [response_text(c) for c in self.conversations]

    def turn_texts(self, prompts: bool) -> tuple[list[str], np.ndarray]:
        """Every turn's content as its own text (responses; with ``prompts`` the human turns first), and
        each row's index per text, so counts over turns never include a separator between them."""
        texts: list[str] = []
        owner: list[int] = []
        for i, c in enumerate(self.conversations):
            parts = (prompt_parts(c) if prompts else []) + response_parts(c)
            texts += parts
            owner += [i] * len(parts)
        return texts, np.asarray(owner, dtype=np.int64)

    def gray(self, max_side: int) -> list[Image.Image | ImageError | None]:
        """Per row: the luma image for signals, None without an image, or the decode error."""
        if max_side not in self._gray:
            out: list[Image.Image | ImageError | None] = []
            for data in self.images or [None] * len(self):
                if data is None:
                    out.append(None)
                    continue
                try:
                    out.append(gray_for_signals(data, self.max_pixels, max_side)[1])
                except ImageError as e:
                    out.append(e)
            self._gray[max_side] = out
        return self._gray[max_side]
