"""The batch every signal receives: texts split into prompt/response, images decoded on demand."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from magicvl.storage.images import ImageError, gray_for_signals

IMAGE_PLACEHOLDER = "<image>"


def prompt_text(turns: list[dict[str, str]]) -> str:
    """The human turns joined by newlines, without the ``<image>`` placeholder (system prompts excluded)."""
    parts = [t["value"].replace(IMAGE_PLACEHOLDER, "").strip() for t in turns if t["from"] == "human"]
    return "\n".join(p for p in parts if p)


def response_text(turns: list[dict[str, str]]) -> str:
    """The assistant (gpt) turns joined by newlines."""
    return "\n".join(t["value"].strip() for t in turns if t["from"] == "gpt")


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
