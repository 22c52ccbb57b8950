"""Sequence packing: plan packs from per-sample costs, build the packed batch, per-sample losses.

Planning (``GreedyPacker``) sees only costs (tokens, images), so it runs on
shard metadata without decoding images. Several packs stay open at once; each
sample goes to the open pack it fits most tightly (best fit). When it fits none,
the fullest open pack is closed (emitted) to make room, if all are open. A
sample larger than a whole pack is refused (the caller records the drop).

Packed batch (``collate_packs``). The samples of one pack are concatenated into
one row; ``position_ids`` restart at 0 for every sample and no 2-D attention
mask is passed, so the language model (transformers' packed-sequence
detection) attends causally *within* each sample only: a block-diagonal causal
mask (flash-attention uses varlen kernels from the same positions). The first
label of every sample is ignored, so no token is trained to predict across a
boundary. Rows of a micro-batch are right-padded; each padding run is its own
segment (positions restart) with labels ignored. Images never mix either: the
encoder runs tile by tile.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from magicvl.model.processor import IGNORE_INDEX


@dataclass(frozen=True)
class SampleCost:
    """What packing needs to know about one sample."""

    key: Any  # opaque reference the caller uses to fetch the sample later
    tokens: int  # text + visual tokens
    images: int


@dataclass
class Pack:
    """Samples planned into one sequence."""

    samples: list[SampleCost] = field(default_factory=list)
    tokens: int = 0
    images: int = 0

    def add(self, s: SampleCost) -> None:
        self.samples.append(s)
        self.tokens += s.tokens
        self.images += s.images


class GreedyPacker:
    """Best-fit packing over ``buffers`` open packs of at most ``max_tokens`` / ``max_images``."""

    def __init__(self, max_tokens: int, max_images: int, buffers: int = 16):
        if min(max_tokens, max_images, buffers) < 1:
            raise ValueError("max_tokens, max_images and buffers must be >= 1")
        self.max_tokens, self.max_images, self.buffers = max_tokens, max_images, buffers
        self.open: list[Pack] = []

    def fits(self, s: SampleCost) -> bool:
        """Whether the sample fits an empty pack at all."""
        return s.tokens <= self.max_tokens and s.images <= self.max_images

    def add(self, s: SampleCost) -> list[Pack]:
        """Place one sample; returns the packs closed to make room (zero or one)."""
        if not self.fits(s):
            raise ValueError(
                f"sample {s.key!r} needs {s.tokens} tokens / {s.images} images; a pack holds "
                f"{self.max_tokens} / {self.max_images}"
            )
        best, best_left = None, None
        for p in self.open:
            left = self.max_tokens - p.tokens - s.tokens
            if left >= 0 and p.images + s.images <= self.max_images and (best_left is None or left < best_left):
                best, best_left = p, left
        closed: list[Pack] = []
        if best is None:
            if len(self.open) >= self.buffers:
                fullest = max(self.open, key=lambda p: p.tokens)
                self.open.remove(fullest)
                closed.append(fullest)
            best = Pack()
            self.open.append(best)
        best.add(s)
        if best.tokens == self.max_tokens or best.images == self.max_images:
            self.open.remove(best)
            closed.append(best)
        return closed

    def flush(self) -> list[Pack]:
        """Close every open pack (fullest first)."""
        out = sorted(self.open, key=lambda p: -p.tokens)
        self.open = []
        return out


def pack_all(costs: Iterable[SampleCost], max_tokens: int, max_images: int, buffers: int = 16) -> Iterator[Pack]:
    """Plan a whole stream of costs into packs (samples too large for a pack are skipped)."""
    packer = GreedyPacker(max_tokens, max_images, buffers)
    for c in costs:
        if packer.fits(c):
            yield from packer.add(c)
    yield from packer.flush()


def collate_packs(packs: Sequence[Sequence[dict[str, torch.Tensor]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Processed samples (``MagicVLProcessor.__call__`` outputs), grouped by pack -> one batch.

    Returns ``input_ids``/``labels``/``position_ids``/``sample_index`` ``[B, T]`` (``sample_index``
    numbers samples across the batch, -1 on padding) and the images of all samples in order.
    """
    rows, images = [], []
    n = 0
    for pack in packs:
        ids, labels, pos, idx = [], [], [], []
        for x in pack:
            length = len(x["input_ids"])
            lab = x["labels"].clone()
            lab[0] = IGNORE_INDEX  # never predict a sample's first token from the previous sample
            ids.append(x["input_ids"])
            labels.append(lab)
            pos.append(torch.arange(length))
            idx.append(torch.full((length,), n))
            images.append(x)
            n += 1
        rows.append([torch.cat(v) if v else torch.zeros(0, dtype=torch.long) for v in (ids, labels, pos, idx)])
    length = max(len(r[0]) for r in rows)
    out: dict[str, list[torch.Tensor]] = {"input_ids": [], "labels": [], "position_ids": [], "sample_index": []}
    for ids, labels, pos, idx in rows:
        pad = length - len(ids)
        out["input_ids"].append(F.pad(ids, (0, pad), value=pad_id))
        out["labels"].append(F.pad(labels, (0, pad), value=IGNORE_INDEX))
        out["position_ids"].append(torch.cat([pos, torch.arange(pad)]))  # padding: a segment of its own
        out["sample_index"].append(F.pad(idx, (0, pad), value=-1))
    batch = {k: torch.stack(v) for k, v in out.items()}  # [B, T]
    batch.update(_cat_images(images))
    return batch


def _cat_images(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Images of all samples along the tile axis, in the order their placeholders appear."""
    out = {key: torch.cat([x[key] for x in samples]) for key in ("pixel_values", "patch_mask", "image_grid")}
    offsets, index = 0, []
    for x in samples:
        index.append(x["tile_image_index"] + offsets)
        offsets += len(x["image_grid"])
    out["tile_image_index"] = torch.cat(index)  # [N]
    return out


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token losses ``[B, T-1]`` (float32) and the mask of trained positions ``[B, T-1]``."""
    target = labels[:, 1:]  # [B, T-1]
    mask = target != IGNORE_INDEX
    flat = logits[:, :-1].float().reshape(-1, logits.shape[-1])  # [B*(T-1), V]
    loss = F.cross_entropy(flat, target.clamp(min=0).reshape(-1), reduction="none").view_as(target)
    return loss * mask, mask


def per_sample_losses(logits: torch.Tensor, labels: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
    """Mean assistant-token loss of every sample in a packed batch ``[n_samples]`` (NaN: no labels)."""
    loss, mask = token_losses(logits, labels)
    owner = sample_index[:, 1:]  # the sample each target token belongs to, [B, T-1]
    n = int(sample_index.max()) + 1
    sums = torch.zeros(n).index_add_(0, owner[mask], loss[mask])
    counts = torch.zeros(n).index_add_(0, owner[mask], torch.ones_like(loss[mask]))
    return sums / counts  # [n]
