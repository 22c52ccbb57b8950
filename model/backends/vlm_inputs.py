"""A sample (ShareGPT turns + optional image) → VLM inputs with a response-token mask.

The processor's own chat template renders the turns (HF content lists:
``{"type": "image"}`` and ``{"type": "text"}`` items), so any Hugging Face VLM
with a chat template works. The response is each assistant turn's content,
plus its end-of-turn token(s) with ``count_end_of_turn`` (the rule the
``perplexity`` signal shares: ``response_spans``). Response characters are found on the rendered text,
marked on its plain tokenization, then carried over to the processor's
output, where every image placeholder has become a run of image tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from magicvl.model.backends.response_spans import mark_tokens, response_spans

IMAGE_PLACEHOLDER = "<image>"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass
class Encoded:
    """One sample ready for collation."""

    tensors: dict[str, torch.Tensor]  # input_ids/attention_mask/... [1, T]; pixel_values etc. as the processor gives
    response: torch.Tensor  # [T] bool, True on response tokens

    @property
    def length(self) -> int:
        return int(self.response.shape[0])


def to_messages(conversation: list[dict[str, str]], with_image: bool) -> list[dict[str, Any]]:
    """ShareGPT turns → chat messages with content lists; the image goes where ``<image>`` is.

    Without a placeholder the image goes first in the first user turn (LLaVA's
    convention); without an image every placeholder is removed.
    """
    messages: list[dict[str, Any]] = []
    placed = not with_image
    for k, turn in enumerate(conversation):
        role = ROLES.get(turn.get("from", turn.get("role", "")))
        value = turn.get("value", turn.get("content"))
        if role is None or not isinstance(value, str):
            raise ValueError(f"turn {k}: expected from in {sorted(ROLES)} and a string value")
        parts = value.split(IMAGE_PLACEHOLDER)
        content: list[dict[str, Any]] = []
        for i, part in enumerate(parts):
            if i > 0 and role == "user" and not placed:
                content.append({"type": "image"})
                placed = True
            elif i > 0 and role == "user" and with_image:
                raise ValueError(f"turn {k}: more {IMAGE_PLACEHOLDER} placeholders than images (1)")
            text = part.strip() if len(parts) > 1 else part
            if text:
                content.append({"type": "text", "text": text})
        messages.append({"role": role, "content": content})
    if not placed:
        users = [m for m in messages if m["role"] == "user"]
        if not users:
            raise ValueError("sample has an image but no user turn")
        users[0]["content"].insert(0, {"type": "image"})
    return messages


def render(
    processor: Any, messages: list[dict[str, Any]], count_end_of_turn: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """The chat-templated text and the character spans of the response."""
    contents = ["".join(c["text"] for c in m["content"] if c["type"] == "text") for m in messages]
    return response_spans(
        lambda n, gen: processor.apply_chat_template(messages[:n], tokenize=False, add_generation_prompt=gen),
        [m["role"] for m in messages],
        contents,
        count_end_of_turn,
    )


def image_token_id(processor: Any) -> int | None:
    """The id of the token an image placeholder expands into (None if the processor has no images)."""
    tid = getattr(processor, "image_token_id", None)
    if tid is None and getattr(processor, "image_token", None):
        tid = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    return tid


def carry_mask(plain: list[int], mask: list[bool], expanded: list[int], image_id: int | None) -> list[bool]:
    """The response mask of ``plain`` ids carried onto ``expanded`` ids (image runs, leading extras)."""
    runs = sum(1 for i, t in enumerate(plain) if t == image_id and (i == 0 or plain[i - 1] != image_id))
    extra_image = sum(t == image_id for t in expanded) - sum(t == image_id for t in plain)
    lead = len(expanded) - len(plain) - extra_image
    if lead < 0 or (runs == 0 and extra_image):
        raise ValueError("processor output does not match the rendered text")
    out = [False] * len(expanded)
    j = lead
    for t, m in zip(plain, mask):
        if t == image_id:
            while j < len(expanded) and expanded[j] == image_id:
                j += 1
            continue
        if j >= len(expanded) or expanded[j] != t:
            raise ValueError("processor output does not match the rendered text")
        out[j] = m
        j += 1
    if j != len(expanded):
        raise ValueError("processor output does not match the rendered text")
    return out


def encode(
    processor: Any, conversation: list[dict[str, str]], image: Image.Image | None, count_end_of_turn: bool = False
) -> Encoded:
    """One sample → processor tensors ``[1, T]`` (+ image tensors) and its response mask ``[T]``."""
    messages = to_messages(conversation, image is not None)
    text, spans = render(processor, messages, count_end_of_turn)
    plain_ids, offsets = _tokenize(processor.tokenizer, text)
    mask = mark_tokens(offsets, spans)
    kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
    if image is not None:
        kwargs["images"] = [image]
    enc = processor(**kwargs)
    ids = enc["input_ids"][0].tolist()
    response = carry_mask(plain_ids, mask, ids, image_token_id(processor))
    return Encoded(dict(enc), torch.tensor(response, dtype=torch.bool))


def _tokenize(tok: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Ids and character offsets of ``text`` without added special tokens (the fast backend when there is one)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        enc = backend.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets
    out = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return out["input_ids"], out["offset_mapping"]


def collate(samples: list[Encoded], pad_id: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Right-pad sequence tensors to ``[B, T]``; concatenate image tensors along dim 0.

    Returns the model inputs and the response mask ``[B, T]`` (False on padding).
    """
    length = max(s.length for s in samples)
    keys = samples[0].tensors.keys() | {k for s in samples for k in s.tensors}
    out: dict[str, torch.Tensor] = {}
    for key in sorted(keys):
        have = [s.tensors[key] for s in samples if key in s.tensors]
        if all(_is_sequence(s, key) for s in samples if key in s.tensors) and len(have) == len(samples):
            fill = pad_id if key == "input_ids" else 0
            out[key] = torch.cat([_pad(s.tensors[key], length, fill) for s in samples])  # [B, T]
        else:
            out[key] = torch.cat(have)
    response = torch.stack([_pad(s.response[None], length, False)[0] for s in samples])  # [B, T]
    return out, response


def _is_sequence(s: Encoded, key: str) -> bool:
    t = s.tensors[key]
    return t.dim() == 2 and tuple(t.shape) == (1, s.length)


def _pad(t: torch.Tensor, length: int, fill: Any) -> torch.Tensor:
    """``t [1, n]`` right-padded to ``[1, length]``."""
    pad = torch.full((1, length - t.shape[1]), fill, dtype=t.dtype)
    return torch.cat([t, pad], dim=1)
