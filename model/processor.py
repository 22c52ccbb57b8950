"""MagicVLProcessor: conversations + PIL images -> model inputs and labels.

Images. Each image is planned by ``model.resolution`` (token-level resize,
24-tile budget shared by the images of one sample), resized with bicubic
resampling to ``(rows*32, cols*32)``, normalised with SigLIP's mean/std
(0.5, 0.5), placed top-left on a zero canvas of whole 384 tiles and cut into
tiles ``[n, 3, 384, 384]`` in raster order; ``patch_mask [n, 24, 24]`` marks
real patches. Zero is the *normalised* value; padded patches are masked in the
encoder, so their value never matters.

Text. Conversations are LLaVA/ShareGPT ``[{"from": "human"|"gpt"|"system",
"value": ...}]`` (or ``{"role", "content"}``). Each ``<image>`` in a user turn
becomes ``<|vision_start|>`` + ``rows*cols`` x ``<|image_pad|>`` +
``<|vision_end|>``; with images but no placeholder, ``<image>\\n`` per image is
prepended to the first user turn (LLaVA convention). The tokenizer's chat
template renders the turns (ChatML / Qwen); labels are -100 everywhere except
each assistant turn's content and its closing ``<|im_end|>``. No truncation:
cutting through image tokens would break the image/placeholder match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from magicvl.model.config import MagicVLConfig
from magicvl.model.resolution import ImagePlan, patch_mask, plan_images

IMAGE_PLACEHOLDER = "<image>"
END_OF_TURN = "<|im_end|>"
IGNORE_INDEX = -100
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
SIGLIP_MEAN = 0.5
SIGLIP_STD = 0.5


@dataclass
class ImageInputs:
    """One image, ready for the encoder."""

    pixel_values: torch.Tensor  # [n, 3, S, S] float32
    patch_mask: torch.Tensor  # [n, g, g] bool, True = real patch
    plan: ImagePlan


def image_to_tiles(image: Image.Image, plan: ImagePlan, patch_px: int = 16) -> ImageInputs:
    """Resize ``image`` to ``plan.resized``, normalise, zero-pad and cut into tiles."""
    rh, rw = plan.resized
    tr, tc = plan.tile_grid
    s = plan.tile_px
    resized = image.convert("RGB").resize((rw, rh), Image.Resampling.BICUBIC)
    arr = (np.asarray(resized, dtype=np.float32) / 255.0 - SIGLIP_MEAN) / SIGLIP_STD  # [H', W', 3]
    canvas = np.zeros((tr * s, tc * s, 3), dtype=np.float32)  # [tr*S, tc*S, 3]
    canvas[:rh, :rw] = arr
    tiles = canvas.reshape(tr, s, tc, s, 3).transpose(0, 2, 4, 1, 3).reshape(tr * tc, 3, s, s)  # [n, 3, S, S]
    mask = patch_mask(plan, patch_px)  # [n, g, g]
    return ImageInputs(torch.from_numpy(np.ascontiguousarray(tiles)), torch.from_numpy(mask), plan)


def to_messages(conversation: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """ShareGPT (``from``/``value``) or chat (``role``/``content``) turns -> ``role``/``content``."""
    messages = []
    for k, turn in enumerate(conversation):
        role = turn.get("from", turn.get("role"))
        content = turn.get("value", turn.get("content"))
        if role not in ROLES or not isinstance(content, str):
            raise ValueError(f"turn {k}: expected from/role in {sorted(ROLES)} and a string value, got {turn!r}")
        messages.append({"role": ROLES[role], "content": content})
    return messages


class MagicVLProcessor:
    """Tokenizer + image geometry; ``__call__`` encodes one sample, ``collate`` makes a batch."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: MagicVLConfig):
        self.tokenizer = tokenizer
        self.config = config
        self.image_token_id = tokenizer.convert_tokens_to_ids(config.image_token)
        if self.image_token_id != config.image_token_id:
            raise ValueError(
                f"tokenizer maps {config.image_token!r} to {self.image_token_id}, "
                f"config.image_token_id is {config.image_token_id}"
            )

    @classmethod
    def from_pretrained(cls, path: str | Path) -> MagicVLProcessor:
        """Tokenizer files and ``config.json`` from one checkpoint directory."""
        return cls(AutoTokenizer.from_pretrained(path), MagicVLConfig.from_pretrained(path))

    # ---- images ---------------------------------------------------------------------
    def preprocess_images(self, images: Sequence[Image.Image]) -> list[ImageInputs]:
        """Tiles for all images of one sample, sharing the sample's tile budget."""
        c = self.config
        plans = plan_images([(im.height, im.width) for im in images], c.max_tiles, c.token_px, c.tile_size)
        return [image_to_tiles(im, plan, c.patch_size) for im, plan in zip(images, plans)]

    def _expand_placeholders(self, messages: list[dict[str, str]], plans: list[ImagePlan]) -> None:
        users = [m for m in messages if m["role"] == "user"]
        count = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in users)
        if plans and count == 0:
            if not users:
                raise ValueError("images given but the conversation has no user turn")
            users[0]["content"] = f"{IMAGE_PLACEHOLDER}\n" * len(plans) + users[0]["content"]
            count = len(plans)
        if count != len(plans):
            raise ValueError(f"{count} {IMAGE_PLACEHOLDER} placeholders in user turns but {len(plans)} images")
        c, it = self.config, iter(plans)
        for m in users:
            parts = m["content"].split(IMAGE_PLACEHOLDER)
            expanded = [parts[0]]
            for part in parts[1:]:
                n = next(it).num_tokens
                expanded.append(c.vision_start_token + c.image_token * n + c.vision_end_token + part)
            m["content"] = "".join(expanded)

    def count_tokens(self, conversation: Sequence[dict[str, Any]], sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
        """``(total, visual)`` tokens of a sample from its image sizes ``(h, w)``, without decoding images."""
        c = self.config
        messages = to_messages(conversation)
        plans = plan_images(sizes, c.max_tiles, c.token_px, c.tile_size)
        self._expand_placeholders(messages, plans)
        text, _ = self.render(messages)
        total = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return total, sum(p.num_tokens for p in plans)

    # ---- text -----------------------------------------------------------------------
    def render(
        self, messages: list[dict[str, str]], add_generation_prompt: bool = False
    ) -> tuple[str, list[tuple[int, int]]]:
        """Chat-templated text and the character spans to train on (assistant content + ``<|im_end|>``)."""
        text, spans = "", []
        for k, msg in enumerate(messages):
            full = self.tokenizer.apply_chat_template(messages[: k + 1], tokenize=False)
            if not full.startswith(text):
                raise ValueError("the chat template is not prefix-stable; cannot locate assistant turns")
            if msg["role"] == "assistant":
                seg = full[len(text) :]
                header = seg.find("<|im_start|>assistant")
                end = seg.rfind(END_OF_TURN)
                if header < 0 or end < 0:
                    raise ValueError("expected a ChatML (Qwen) chat template with <|im_start|>/<|im_end|>")
                start = seg.index("\n", header) + 1
                spans.append((len(text) + start, len(text) + end + len(END_OF_TURN)))
            text = full
        if add_generation_prompt:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, spans

    def __call__(
        self,
        conversation: Sequence[dict[str, Any]],
        images: Sequence[Image.Image] = (),
        add_generation_prompt: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Encode one sample: ``input_ids``/``attention_mask``/``labels`` ``[T]`` and its image tensors."""
        messages = to_messages(conversation)
        image_inputs = self.preprocess_images(images)
        plans = [x.plan for x in image_inputs]
        self._expand_placeholders(messages, plans)
        text, spans = self.render(messages, add_generation_prompt)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        labels = [
            tok if any(a <= start < b for a, b in spans) else IGNORE_INDEX
            for tok, (start, _) in zip(ids, enc["offset_mapping"])
        ]
        n_image_tokens = sum(p.num_tokens for p in plans)
        if ids.count(self.image_token_id) != n_image_tokens:
            raise ValueError(
                f"{ids.count(self.image_token_id)} {self.config.image_token} tokens in the text but the images "
                f"need {n_image_tokens} (does the text contain a literal {self.config.image_token}?)"
            )
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.ones(len(ids), dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            **self._image_tensors(image_inputs),
        }

    def _image_tensors(self, image_inputs: list[ImageInputs]) -> dict[str, torch.Tensor]:
        s, g = self.config.tile_size, self.config.patches_per_side
        if not image_inputs:
            return {
                "pixel_values": torch.zeros(0, 3, s, s),
                "patch_mask": torch.zeros(0, g, g, dtype=torch.bool),
                "image_grid": torch.zeros(0, 2, dtype=torch.long),
                "tile_image_index": torch.zeros(0, dtype=torch.long),
            }
        counts = torch.tensor([x.plan.num_tiles for x in image_inputs])
        return {
            "pixel_values": torch.cat([x.pixel_values for x in image_inputs]),  # [n, 3, S, S]
            "patch_mask": torch.cat([x.patch_mask for x in image_inputs]),  # [n, g, g]
            "image_grid": torch.tensor([[x.plan.rows, x.plan.cols] for x in image_inputs]),  # [I, 2]
            "tile_image_index": torch.repeat_interleave(torch.arange(len(image_inputs)), counts),  # [n]
        }

    def collate(
        self, samples: Sequence[dict[str, torch.Tensor]], padding_side: str = "right"
    ) -> dict[str, torch.Tensor]:
        """Pad text to ``[B, T]`` (``left`` for generation) and concatenate images along the tile axis."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        length = max(len(x["input_ids"]) for x in samples)
        pad_id = self.tokenizer.pad_token_id or 0
        batch: dict[str, list[torch.Tensor]] = {"input_ids": [], "attention_mask": [], "labels": []}
        for x in samples:
            for key, fill in (("input_ids", pad_id), ("attention_mask", 0), ("labels", IGNORE_INDEX)):
                pad = torch.full((length - len(x[key]),), fill, dtype=torch.long)
                batch[key].append(torch.cat([pad, x[key]] if padding_side == "left" else [x[key], pad]))
        offsets = np.cumsum([0] + [len(x["image_grid"]) for x in samples[:-1]])
        out = {key: torch.stack(value) for key, value in batch.items()}  # [B, T]
        for key in ("pixel_values", "patch_mask", "image_grid"):
            out[key] = torch.cat([x[key] for x in samples])
        out["tile_image_index"] = torch.cat([x["tile_image_index"] + int(o) for x, o in zip(samples, offsets)])
        return out

    def decode(self, token_ids: torch.Tensor | Sequence[int]) -> str:
        """Text of generated ids, special tokens removed."""
        ids = token_ids.tolist() if isinstance(token_ids, torch.Tensor) else list(token_ids)
        return self.tokenizer.decode(ids, skip_special_tokens=True)
