"""Good records of each dataset, built from the image pools and the conversation builders."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from magicvl.sample_data.charts import chart_conversation, chart_reasoning
from magicvl.sample_data.chat import text_conversation
from magicvl.sample_data.documents import ocr_conversation
from magicvl.sample_data.figures import reasoning_conversation
from magicvl.sample_data.grounding import grounding_conversation
from magicvl.sample_data.gui import gui_conversation
from magicvl.sample_data.photos import caption, caption_conversation, vqa_conversation
from magicvl.sample_data.plan import CHART_REASONING_EVERY, Plan
from magicvl.sample_data.pools import Pool

Turns = list[dict[str, str]]


def _rnd(seed: int, category: str, k: int) -> random.Random:
    return random.Random(f"{seed}:{category}:{k}")


def conversation(category: str, k: int, seed: int, pools: dict[str, Pool]) -> tuple[Turns, Pool | None, int]:
    """Turns of the ``k``-th record of ``category`` and the pool (and record index in it) of its image."""
    rnd = _rnd(seed, category, k)
    if category == "text_only":
        return text_conversation(rnd), None, 0
    if category == "reasoning":
        every = CHART_REASONING_EVERY
        if k % every == every - 1:  # chart-based reasoning
            j = k // every
            return chart_reasoning(pools["chart"].item(j).truth, rnd), pools["chart"], j
        j = k - (k + 1) // every  # ordinal among figure-based reasoning records
        return reasoning_conversation(pools["figure"].item(j).truth, rnd), pools["figure"], j
    kind, build = {
        "caption": ("caption", lambda t: caption_conversation(t.facts, rnd)),
        "vqa": ("vqa", lambda t: vqa_conversation(t.facts, rnd)),
        "grounding": ("grounding", lambda t: grounding_conversation(t, rnd)),
        "gui": ("gui", lambda t: gui_conversation(t, rnd)),
        "ocr": ("doc", lambda t: ocr_conversation(t, rnd)),
        "chart": ("chart", lambda t: chart_conversation(t, rnd)),
    }[category]
    pool = pools[kind]
    return build(pool.item(k).truth), pool, k


def instruct_entries(plan: Plan, pools: dict[str, Pool], seed: int, image_root: Path) -> list[dict[str, Any]]:
    """The LLaVA JSON records: categories shuffled together, images written under ``image_root``."""
    offset = {"caption": plan.captions_tar, "chart": plan.charts_parquet}  # continue after the embedded ones
    order = [(cat, offset.get(cat, 0) + k) for cat, n in plan.instruct.items() for k in range(n)]
    random.Random(f"{seed}:instruct-order").shuffle(order)
    entries = []
    for i, (cat, k) in enumerate(order):
        turns, pool, j = conversation(cat, k, seed, pools)
        entry: dict[str, Any] = {"id": f"instruct-{i:06d}"}
        if pool is not None:
            entry["image"] = pool.file(j, image_root, pool.kind)
        entry["conversations"] = turns
        entry["category"] = cat
        entries.append(entry)
    return entries


def docs_entries(plan: Plan, pools: dict[str, Pool], seed: int, image_root: Path) -> list[dict[str, Any]]:
    """The OCR JSON Lines records, images written flat under ``image_root``."""
    out = []
    for k in range(plan.docs):
        turns, pool, j = conversation("ocr", k, seed, pools)
        out.append(
            {"id": f"doc-{k:06d}", "image": pool.file(j, image_root, ""), "conversations": turns, "category": "ocr"}
        )
    return out


def chart_rows(plan: Plan, pools: dict[str, Pool], seed: int) -> list[dict[str, Any]]:
    """The Parquet chart rows with embedded ``{bytes, path}`` images."""
    rows = []
    for k in range(plan.charts_parquet):
        turns, pool, j = conversation("chart", k, seed, pools)
        item = pool.item(j)
        rows.append(
            {
                "id": f"chart-{k:06d}",
                "conversations": turns,
                "category": "chart",
                "image": {"bytes": item.data, "path": f"chart_{pool.index(j):04d}.png"},
            }
        )
    return rows


def caption_samples(plan: Plan, pools: dict[str, Pool], seed: int) -> list[tuple[bytes, str, dict[str, Any]]]:
    """WebDataset samples ``(jpeg, caption, meta)`` as img2dataset records them."""
    pool = pools["caption"]
    out = []
    for k in range(plan.captions_tar):
        item = pool.item(k)
        photo = item.truth
        stem = photo.facts.file.rsplit(".", 1)[0]
        meta = {
            "url": f"http://example.invalid/photos/{stem}_{pool.index(k):04d}.jpg",
            "status": "success",
            "error_message": None,
            "width": item.size[0],
            "height": item.size[1],
            "original_width": photo.original_size[0],
            "original_height": photo.original_size[1],
        }
        out.append((item.data, caption(photo.facts, _rnd(seed, "caption", k)), meta))
    return out
