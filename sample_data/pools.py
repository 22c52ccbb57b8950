"""Bounded pools of distinct images, rendered once and shared by many records.

A pool of ``size`` items serves record ``k`` with item ``k % size``; item ``i`` of
a kind is a pure function of ``(seed, kind, i)``, so pools of different sizes
agree on their common items and every run with the same seed is identical.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magicvl.sample_data.charts import chart_spec, render_chart
from magicvl.sample_data.documents import document
from magicvl.sample_data.figures import figure
from magicvl.sample_data.grounding import grounding_image
from magicvl.sample_data.gui import screen
from magicvl.sample_data.photos import encode_jpeg, encode_png, photo_variant

# Most distinct images a kind has in the default set (scale mode sizes pools by samples per image instead).
POOL_CAPS: dict[str, int] = {
    "caption": 100,
    "vqa": 70,
    "grounding": 50,
    "gui": 30,
    "figure": 30,
    "chart": 50,
    "doc": 60,
}


@dataclass(frozen=True)
class PoolItem:
    """One encoded image and the ground truth its conversations are built from (pixels dropped)."""

    data: bytes
    ext: str  # "jpg" | "png"
    size: tuple[int, int]
    truth: Any  # Photo | GroundingImage | Screen | Figure | ChartSpec | Document, with image=None


def _encoded(obj: Any, jpeg: bool) -> PoolItem:
    im = obj.image
    data = encode_jpeg(im) if jpeg else encode_png(im)
    return PoolItem(data, "jpg" if jpeg else "png", im.size, dataclasses.replace(obj, image=None))


def render_item(kind: str, seed: int, index: int) -> PoolItem:
    """Item ``index`` of pool ``kind``: photos and grounding as JPEG, renders as PNG."""
    if kind in ("caption", "vqa"):
        return _encoded(photo_variant(seed, kind, index), jpeg=True)
    if kind == "grounding":
        return _encoded(grounding_image(seed, index), jpeg=True)
    if kind == "gui":
        return _encoded(screen(seed, index), jpeg=False)
    if kind == "figure":
        return _encoded(figure(seed, index), jpeg=False)
    if kind == "doc":
        return _encoded(document(seed, index), jpeg=False)
    if kind == "chart":
        spec = chart_spec(seed, index)
        return PoolItem(render_chart(spec), "png", (round(spec.figsize[0] * 100), round(spec.figsize[1] * 100)), spec)
    raise ValueError(f"unknown pool kind {kind!r}")


class Pool:
    """The items of one kind, rendered on first use; knows which were written to disk."""

    def __init__(self, kind: str, seed: int, size: int, render: Callable[[str, int, int], PoolItem] = render_item):
        self.kind, self.seed, self.size = kind, seed, max(1, size)
        self._render = render
        self._items: dict[int, PoolItem] = {}
        self._written: dict[int, str] = {}
        self.used: set[int] = set()  # items some record (or planted record) was served

    def index(self, k: int) -> int:
        """Pool item serving the ``k``-th record of this kind."""
        return k % self.size

    def item(self, k: int) -> PoolItem:
        """The item serving record ``k``."""
        i = self.index(k)
        if i not in self._items:
            self._items[i] = self._render(self.kind, self.seed, i)
        self.used.add(i)
        return self._items[i]

    def file(self, k: int, image_root: Path, folder: str) -> str:
        """Write the item serving record ``k`` under ``image_root/folder`` once; its path relative to the root."""
        i = self.index(k)
        if i not in self._written:
            item = self.item(k)
            rel = f"{folder}/{self.kind}_{i:04d}.{item.ext}" if folder else f"{self.kind}_{i:04d}.{item.ext}"
            path = image_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.data)
            self._written[i] = rel
        return self._written[i]

    @property
    def files_written(self) -> int:
        return len(self._written)

    def prefill(self, items: dict[int, PoolItem]) -> None:
        """Adopt items rendered elsewhere (e.g. by worker processes)."""
        self._items.update(items)


def pool_size(kind: str, records: int) -> int:
    """Distinct items a pool of the default set gets for ``records`` records: one each, up to the kind's cap."""
    return max(1, min(POOL_CAPS[kind], records))
