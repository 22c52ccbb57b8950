"""Held-out evaluation of a checkpoint: per category, mean response NLL and next-token accuracy.

The eval split (``<output root>/curated/eval/``, carved at curation) holds
curated rows with the stage shards' schema. Each row is processed as in training
(``MagicVLProcessor``: assistant tokens are the targets, everything else is
masked), samples are packed in file order into rows of at most ``max_tokens``
tokens (positions restart per sample, attention stays inside a sample), and the
model's logits give, for every target token, its NLL and whether the argmax is
the target. Per category (and ``all``): ``nll`` is the mean NLL over its target
tokens (the training loss's masking and weighting) and ``accuracy`` the share of
target tokens predicted exactly; ``samples`` and ``tokens`` count what was
scored. Rows the processor rejects are counted in ``dropped``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from magicvl.model.magicvl import MagicVL
from magicvl.model.packing import collate_packs, token_losses
from magicvl.model.processor import MagicVLProcessor
from magicvl.model.train_data import COLUMNS, IMAGE_REF, decode_image, referenced_image
from magicvl.model.training import MODEL_INPUTS
from magicvl.storage.readers import iter_batches, list_shards


def eval_rows(eval_dir: str | Path, output_root: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of the eval split in file order; image references resolved against ``output_root``."""
    import pyarrow.parquet as pq

    for path in list_shards(eval_dir):
        names = set(pq.read_schema(path).names)
        image_cols = ["image"] if "image" in names else [c for c in IMAGE_REF if c in names]
        for batch in iter_batches(path, columns=COLUMNS + image_cols):
            for row in batch.to_pylist():
                if row.get("samples_shard") is not None:
                    row["samples_shard"] = str(Path(output_root).resolve() / row["samples_shard"])
                yield row


def _processed(processor: MagicVLProcessor, rows, dropped: Counter) -> Iterator[tuple[str, dict]]:
    for row in rows:
        try:
            image = decode_image(row["image"] if "image" in row else referenced_image(row))
            yield row["category"], processor(row["conversations"], [] if image is None else [image])
        except (OSError, ValueError, KeyError, TypeError) as e:
            dropped[f"{row.get('sample_id')}: {type(e).__name__}"] += 1


def _packs(samples, max_tokens: int) -> Iterator[list[tuple[str, dict]]]:
    """Consecutive samples grouped into packs of at most ``max_tokens`` tokens (a longer one alone)."""
    pack, used = [], 0
    for cat, x in samples:
        n = len(x["input_ids"])
        if pack and used + n > max_tokens:
            yield pack
            pack, used = [], 0
        pack.append((cat, x))
        used += n
    if pack:
        yield pack


@torch.no_grad()
def evaluate(model: MagicVL, processor: MagicVLProcessor, rows, max_tokens: int = 4096) -> dict[str, Any]:
    """``{"categories": {cat: {samples, tokens, nll, accuracy}}, "all": {...}, "dropped": {...}}``."""
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, dict[str, float]] = defaultdict(lambda: {"samples": 0, "tokens": 0, "nll": 0.0, "correct": 0})
    dropped: Counter = Counter()
    pad_id = processor.tokenizer.pad_token_id or 0
    for pack in _packs(_processed(processor, rows, dropped), max_tokens):
        batch = collate_packs([[x for _, x in pack]], pad_id)
        logits = model(**{k: batch[k].to(device) for k in MODEL_INPUTS}).logits  # [1, T, V]
        labels = batch["labels"].to(device)  # [1, T]
        loss, mask = token_losses(logits, labels)  # [1, T-1] each
        hit = (logits[:, :-1].argmax(-1) == labels[:, 1:]) & mask  # [1, T-1]
        owner = batch["sample_index"][:, 1:].to(device)  # [1, T-1]
        for i, (cat, _) in enumerate(pack):
            mine = mask & (owner == i)
            s = sums[cat]
            s["samples"] += 1
            s["tokens"] += int(mine.sum())
            s["nll"] += float(loss[mine].double().sum())
            s["correct"] += int(hit[mine].sum())
    total = {"samples": 0, "tokens": 0, "nll": 0.0, "correct": 0}
    for s in sums.values():
        for k in total:
            total[k] += s[k]
    return {
        "categories": {cat: _means(s) for cat, s in sorted(sums.items())},
        "all": _means(total),
        "dropped": dict(dropped),
    }


def _means(s: dict[str, float]) -> dict[str, Any]:
    tokens = s["tokens"]
    return {
        "samples": int(s["samples"]),
        "tokens": int(tokens),
        "nll": s["nll"] / tokens if tokens else None,
        "accuracy": s["correct"] / tokens if tokens else None,
    }


def evaluate_checkpoint(
    checkpoint: str | Path, eval_dir: str | Path, output_root: str | Path, max_tokens: int = 4096
) -> dict[str, Any]:
    """Load a MagicVL checkpoint (GPU when there is one) and evaluate it on the split in ``eval_dir``."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = MagicVL.from_pretrained(checkpoint).to(device)
    processor = MagicVLProcessor.from_pretrained(checkpoint)
    result = evaluate(model, processor, eval_rows(eval_dir, output_root), max_tokens)
    return {"checkpoint": str(checkpoint), "eval_dir": str(eval_dir), "device": device, **result}
