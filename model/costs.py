"""Per-sample packing costs, counted once at curation: text tokens and visual tokens.

``visual_tokens`` is the number of ``<|image_pad|>`` tokens a sample's image
becomes: the model's resolution rule (``model.resolution.plan_images`` with
the checkpoint's ``max_tiles`` / ``token_px`` / ``tile_size``) applied to the
stored ``height``/``width``; 0 without an image. ``text_tokens`` is every
other token of the chat-templated sample (turn markers, text, and the
``<|vision_start|>``/``<|vision_end|>`` pair around each image). Their sum is
the sample's sequence length, ``len(MagicVLProcessor(...)["input_ids"])``,
which is what the packer plans with.

Both depend on the tokenizer and the resolution settings, so curated rows
also store ``token_counter``: a digest of exactly those (``counter_key``). A
training planner trusts stored counts only when its own processor has the same
key (``StageData``); otherwise it recounts, so a curriculum curated for one
model never mis-packs for another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from magicvl.model.resolution import MAX_TILES, TILE_PX, TOKEN_PX, plan_images
from magicvl.storage.fingerprint import stable_hash

if TYPE_CHECKING:
    from magicvl.model.processor import MagicVLProcessor

COST_COLUMNS = ("text_tokens", "visual_tokens", "token_counter")
_TOKENIZER_PARTS = ("model", "added_tokens", "normalizer", "pre_tokenizer")  # what maps text to ids
_COUNTER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


@dataclass(frozen=True)
class CostModel:
    """What curation counts costs with: a MagicVL checkpoint folder (None: visual tokens only, with the
    default resolution rule) and a digest of its counting files (part of the combine cache key)."""

    model_dir: str | None = None
    files_digest: str = "default-resolution"

    @classmethod
    def of(cls, model_dir: str | Path | None) -> CostModel:
        """The cost model of a checkpoint folder (its config and tokenizer files hashed)."""
        if model_dir is None:
            return cls()
        folder = Path(model_dir)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} holds no MagicVL checkpoint (config.json): cannot count token costs")
        h = hashlib.sha256()
        for name in _COUNTER_FILES:
            if (folder / name).is_file():
                h.update(name.encode() + b"\0" + (folder / name).read_bytes())
        return cls(str(folder.resolve()), h.hexdigest()[:16])

    def columns(self, conversations: Sequence[Any], sizes: Sequence[tuple[int | None, int | None]]) -> dict[str, list]:
        """``text_tokens``, ``visual_tokens``, ``token_counter`` for a batch of samples."""
        if self.model_dir is None:
            visual = visual_tokens_batch(sizes)
            return {"text_tokens": [None] * len(sizes), "visual_tokens": visual, "token_counter": [None] * len(sizes)}
        processor, key = load_counter(self.model_dir)
        text, visual = count_costs(processor, conversations, sizes)
        keys = [None if t is None else key for t in text]
        return {"text_tokens": text, "visual_tokens": visual, "token_counter": keys}


def visual_tokens(height: int | None, width: int | None, max_tiles: int = MAX_TILES, token_px: int = TOKEN_PX,
                  tile_px: int = TILE_PX) -> int:  # fmt: skip
    """Visual tokens of a one-image sample (0 without an image): the resolution rule, no pixels."""
    if height is None or width is None:
        return 0
    return plan_images([(int(height), int(width))], max_tiles, token_px, tile_px)[0].num_tokens


def visual_tokens_batch(
    sizes: Sequence[tuple[int | None, int | None]], max_tiles: int = MAX_TILES, token_px: int = TOKEN_PX,
    tile_px: int = TILE_PX,
) -> list[int | None]:  # fmt: skip
    """``visual_tokens`` of many one-image samples (None: a side < 1 px). Vectorised for images within the
    tile budget; the few that the budget downscales go through ``plan_images`` (cached by size)."""
    h = np.array([0 if s[0] is None or s[1] is None else s[0] for s in sizes], dtype=np.int64)
    w = np.array([0 if s[0] is None or s[1] is None else s[1] for s in sizes], dtype=np.int64)
    rows = np.maximum(1, (2 * h + token_px) // (2 * token_px))  # tokens_1d, vectorised
    cols = np.maximum(1, (2 * w + token_px) // (2 * token_px))
    per_tile = tile_px // token_px
    tiles = -(-rows // per_tile) * -(-cols // per_tile)
    out: list[int | None] = []
    for i, (hi, wi) in enumerate(zip(h.tolist(), w.tolist())):
        if sizes[i][0] is None or sizes[i][1] is None:
            out.append(0)
        elif hi < 1 or wi < 1:
            out.append(None)  # the planner recounts and drops the row with its reason
        elif tiles[i] <= max_tiles:
            out.append(int(rows[i] * cols[i]))
        else:
            out.append(_downscaled_tokens(hi, wi, max_tiles, token_px, tile_px))
    return out


@lru_cache(maxsize=65536)
def _downscaled_tokens(height: int, width: int, max_tiles: int, token_px: int, tile_px: int) -> int:
    return visual_tokens(height, width, max_tiles, token_px, tile_px)


def counter_key(processor: MagicVLProcessor) -> str:
    """Digest of what the counts depend on: tokenizer (vocab, merges, added tokens, normalizer,
    pre-tokenizer), chat template and the resolution settings. Stable across ``save_pretrained``."""
    tok = processor.tokenizer
    backend = json.loads(tok.backend_tokenizer.to_str())  # padding/truncation state left out: it changes per call
    c = processor.config
    return stable_hash(
        {
            "tokenizer": {k: backend.get(k) for k in _TOKENIZER_PARTS},
            "chat_template": tok.chat_template,
            "resolution": [c.max_tiles, c.token_px, c.tile_size],
            "special": [c.image_token, c.vision_start_token, c.vision_end_token],
        },
        size=16,
    )


def count_costs(
    processor: MagicVLProcessor, conversations: Sequence[Any], sizes: Sequence[tuple[int | None, int | None]]
) -> tuple[list[int | None], list[int | None]]:
    """``(text_tokens, visual_tokens)`` per sample (``sizes`` are ``(height, width)``, None: no image).

    A sample whose conversation cannot be rendered gets ``None`` in both lists (the planner
    recounts it and drops it with its reason)."""
    from magicvl.model.processor import to_messages

    c = processor.config
    texts: list[str | None] = []
    visual: list[int | None] = []
    for conv, (h, w) in zip(conversations, sizes):
        try:
            messages = to_messages(conv)
            plans = plan_images([] if h is None or w is None else [(int(h), int(w))], c.max_tiles, c.token_px,
                                c.tile_size)  # fmt: skip
            processor._expand_placeholders(messages, plans)
            text = processor.tokenizer.apply_chat_template(messages, tokenize=False)  # = render()'s text
        except (ValueError, TypeError, KeyError, AttributeError):
            texts.append(None)
            visual.append(None)
            continue
        # <|image_pad|> is a special token: input is split around it before the tokenizer model runs, so
        # dropping the pads leaves every other token as it is and the count is the text-token count
        texts.append(text.replace(c.image_token, ""))
        visual.append(sum(p.num_tokens for p in plans))
    ok = [t for t in texts if t is not None]
    encoded = processor.tokenizer.backend_tokenizer.encode_batch(ok, add_special_tokens=False) if ok else []
    counts = iter(len(e.ids) for e in encoded)
    return [None if t is None else next(counts) for t in texts], visual


@lru_cache(maxsize=2)
def load_counter(model_dir: str) -> tuple[MagicVLProcessor, str]:
    """The processor of a MagicVL checkpoint and its ``counter_key``, once per process."""
    from magicvl.model.processor import MagicVLProcessor

    processor = MagicVLProcessor.from_pretrained(Path(model_dir))
    return processor, counter_key(processor)
