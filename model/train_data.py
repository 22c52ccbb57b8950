"""Training data: stream ``curated/stage-k/`` shards into packed, processed batches.

Order. Each epoch shuffles the shard list and then rows inside a bounded
shuffle window (``numpy`` generator seeded by ``(seed, epoch)``), so the order
is a pure function of the seed; at most one record batch per shard, the window
and the open packs are ever in memory, never a whole stage.

Costs. Packing plans from each row's text-token count and visual-token cost,
never from pixels: images are decoded only once, when their pack is
materialized. Curation stores both counts (``text_tokens``, ``visual_tokens``,
``model.costs``) with the digest of the tokenizer and resolution settings that
counted them (``token_counter``); rows whose digest equals this processor's are
planned from the stored counts, others (older shards, another model) are
counted here from the conversation and the stored ``width``/``height``
(``MagicVLProcessor.count_tokens``).

Ranks. Global pack ``k`` goes to rank ``k % world``; packs are consumed in rounds
of ``world * micro_batch`` and an epoch's last incomplete round is skipped, so
every rank runs the same number of steps. ``DataState(epoch, packs)`` counts
global packs consumed in the epoch: the checkpoint's data position. Resuming
replays the epoch's plan (costs only, no image decoding) up to that position.

Bad rows (unreadable conversation, mismatched placeholders, too large for a
pack, undecodable image) are dropped with a reason and counted; they never stop
the run.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from magicvl.model.costs import COST_COLUMNS, counter_key
from magicvl.model.packing import GreedyPacker, Pack, SampleCost, collate_packs
from magicvl.model.processor import MagicVLProcessor
from magicvl.model.train_config import DataSource, PackingConfig
from magicvl.storage.layout import stage_folder
from magicvl.storage.readers import iter_batches, list_shards

COLUMNS = ["sample_id", "category", "conversations", "width", "height"]
IMAGE_REF = ["samples_shard", "samples_row"]  # curated rows reference their image in samples/ (see tasks.retune)


@dataclass(frozen=True)
class DataState:
    """Data position: epoch and global packs consumed in it."""

    epoch: int = 0
    packs: int = 0


@dataclass
class DataStats:
    """Counters of one stream (dropped rows by reason, packs, tokens)."""

    dropped: Counter = field(default_factory=Counter)
    rows: int = 0
    costs_stored: int = 0  # rows planned from the counts curation stored
    costs_counted: int = 0  # rows counted here (no stored counts, or counted by another tokenizer)


def stage_shards(curated_root: str | Path, sources: Sequence[DataSource]) -> list[tuple[Path, DataSource]]:
    """Shards each source reads, as ``(path, source)`` pairs (sorted, stable)."""
    root = Path(curated_root)
    out = []
    for src in sources:
        for stage in src.stages:
            out += [(p, src) for p in list_shards(root / stage_folder(stage))]
    return out


def in_split(sample_id: str, split: tuple[int, int] | None) -> bool:
    """Whether a sample falls in part ``split[0]`` of ``split[1]`` (stable hash of its id)."""
    if split is None:
        return True
    h = int.from_bytes(hashlib.blake2b(sample_id.encode(), digest_size=8).digest(), "big")
    return h % split[1] == split[0]


def decode_image(cell: dict[str, Any] | None) -> Image.Image | None:
    """A curated image struct ``{bytes, path}`` -> PIL image (bytes first, else the path)."""
    if cell is None:
        return None
    data = cell.get("bytes")
    image = Image.open(io.BytesIO(data)) if data else Image.open(cell["path"])
    image.load()
    return image


class StageData:
    """Deterministic packed batches of one training stage for one rank."""

    def __init__(
        self,
        processor: MagicVLProcessor,
        shards: list[tuple[Path, DataSource]],
        packing: PackingConfig,
        seed: int,
        micro_batch: int = 1,
        rank: int = 0,
        world: int = 1,
        record_samples: bool = False,
    ):
        if not shards:
            raise FileNotFoundError("no curated shards for this stage")
        self.processor, self.shards, self.packing = processor, shards, packing
        self.seed, self.micro_batch, self.rank, self.world = seed, micro_batch, rank, world
        self.stats = DataStats()
        self.counter = counter_key(processor)  # stored counts are used only when they match this processor
        self.trained: list[str] | None = [] if record_samples else None  # ids of the samples this rank trained on

    # ---- planning (no image decoding) ------------------------------------------------
    def _cost(self, row: dict[str, Any]) -> SampleCost | None:
        images = 0 if row.get("width") is None else 1
        try:
            if row.get("token_counter") == self.counter and row.get("text_tokens") is not None:
                tokens = int(row["text_tokens"]) + int(row["visual_tokens"])
                self.stats.costs_stored += 1
            else:
                sizes = [] if images == 0 else [(int(row["height"]), int(row["width"]))]
                tokens, _ = self.processor.count_tokens(row["conversations"], sizes)
                self.stats.costs_counted += 1
        except (ValueError, TypeError, KeyError) as e:
            self.stats.dropped[f"unreadable: {type(e).__name__}"] += 1
            return None
        cost = SampleCost(row, tokens, images)
        if tokens > self.packing.max_tokens or images > self.packing.max_images:
            self.stats.dropped["larger than a pack"] += 1
            return None
        return cost

    def _rows(self, epoch: int) -> Iterator[dict[str, Any]]:
        """Rows of the epoch in seeded order: shuffled shards, then a seeded shuffle window."""
        rng = np.random.default_rng([self.seed, epoch])
        window: list[dict[str, Any]] = []
        for i in rng.permutation(len(self.shards)):
            path, src = self.shards[int(i)]
            names = set(_schema_names(path))
            image_cols = ["image"] if "image" in names else [c for c in IMAGE_REF if c in names]
            cols = COLUMNS + image_cols + [c for c in COST_COLUMNS if c in names]
            for batch in iter_batches(path, columns=cols, batch_size=256):
                for row in batch.to_pylist():
                    if src.categories is not None and row["category"] not in src.categories:
                        continue
                    if not in_split(row["sample_id"], src.split):
                        continue
                    if "samples_shard" in row:  # the output root: curated/stage-k/<shard> → three levels up
                        row["samples_shard"] = str(Path(path).resolve().parents[2] / row["samples_shard"])
                    window.append(row)
                    if len(window) >= self.packing.shuffle_window:
                        yield window.pop(int(rng.integers(len(window))))
        while window:
            yield window.pop(int(rng.integers(len(window))))

    def plan(self, epoch: int) -> Iterator[Pack]:
        """Packs of one epoch, in order (the same for every rank)."""
        p = self.packing
        packer = GreedyPacker(p.max_tokens, p.max_images, p.buffers)
        for row in self._rows(epoch):
            self.stats.rows += 1
            cost = self._cost(row)
            if cost is not None:
                yield from packer.add(cost)
        yield from packer.flush()

    # ---- batches ---------------------------------------------------------------------
    def _process(self, pack: Pack) -> list[dict[str, torch.Tensor]]:
        out = []
        for s in pack.samples:
            row = s.key
            try:
                image = decode_image(row["image"] if "image" in row else referenced_image(row))
                out.append(self.processor(row["conversations"], [] if image is None else [image]))
            except (OSError, ValueError, KeyError) as e:
                self.stats.dropped[f"processor: {type(e).__name__}"] += 1
                continue
            if self.trained is not None:
                self.trained.append(row["sample_id"])
        return out

    def batches(self, state: DataState = DataState()) -> Iterator[tuple[DataState, dict[str, torch.Tensor]]]:
        """Endless ``(state after this batch, batch)`` from ``state`` on; epochs follow each other."""
        round_size = self.world * self.micro_batch
        epoch, start = state.epoch, state.packs
        pad_id = self.processor.tokenizer.pad_token_id or 0
        while True:
            done, group = 0, []
            for k, pack in enumerate(self.plan(epoch)):
                if k < start:
                    continue
                if k % self.world == self.rank:
                    group.append(pack)
                if (k + 1) % round_size == 0:
                    samples = [s for s in (self._process(p) for p in group) if s]
                    group, done = [], done + 1
                    if samples:  # a pack whose every sample failed is skipped (counted in stats)
                        yield DataState(epoch, k + 1), collate_packs(samples, pad_id)
            if done == 0 and start == 0:
                raise ValueError(f"stage data has fewer than {round_size} packs: nothing to train on")
            epoch, start = epoch + 1, 0


@lru_cache(maxsize=2)
def _image_column(samples_shard: str) -> Any:
    """The image column of one samples shard (the last two kept: packs draw from few shards at a time)."""
    import pyarrow.parquet as pq

    return pq.read_table(samples_shard, columns=["image"]).column("image")


def referenced_image(row: dict[str, Any]) -> dict[str, Any] | None:
    """The ``{bytes, path}`` image a curated row references (``samples_shard``, ``samples_row``)."""
    if row.get("samples_shard") is None:
        return None
    return _image_column(row["samples_shard"])[int(row["samples_row"])].as_py()


def _schema_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def pack_stats(batch: dict[str, torch.Tensor], max_tokens: int) -> dict[str, float]:
    """Real tokens, real-token share of the pack budget, samples and images of one batch."""
    real = int((batch["sample_index"] >= 0).sum())
    rows = batch["input_ids"].shape[0]
    return {
        "tokens": real,
        "real_share": real / (rows * max_tokens),
        "samples": int(batch["sample_index"].max()) + 1,
        "images": int(batch["image_grid"].shape[0]),
        "images_per_pack": batch["image_grid"].shape[0] / rows,
    }
