"""What a generated sample set holds: datasets, counts and the broken records planted on purpose."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "sample_manifest.json"


@dataclass(frozen=True)
class BrokenRecord:
    """A record planted to fail ingestion.

    ``locator`` follows the ingestion convention: ``instruct.json:record 7``
    (1-based array element), ``docs.jsonl:line 12`` (1-based line),
    ``charts.parquet:row 3`` (0-based row), ``00001.tar:000010004`` (tar key).
    """

    dataset: str
    locator: str
    kind: str
    detail: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    """One raw dataset as a recipe entry needs it (paths relative to the sample root)."""

    name: str
    format: str  # llava_json | jsonl | parquet | webdataset
    path: str  # file, or glob for tar shards
    image_root: str | None  # folder image paths resolve in (None: images embedded)
    category: str | None  # dataset-level category, if the whole dataset has one
    label_field: str | None  # per-record label field, if records carry one
    records: int  # entries written (array elements, lines, rows, tar samples), broken ones included
    label_counts: dict[str, int]  # good records per category
    files: list[str] = field(default_factory=list)  # source files written, relative to the root
    image_files: int = 0  # image files written under image_root (referenced by path)
    image_records: int = 0  # good records that carry an image
    distinct_images: int = 0  # distinct images those records carry

    @property
    def samples_per_image(self) -> float:
        """Reuse ratio: good image records per distinct image (0 without images)."""
        return self.image_records / self.distinct_images if self.distinct_images else 0.0

    @property
    def good(self) -> int:
        """Records expected to ingest cleanly."""
        return sum(self.label_counts.values())


@dataclass
class SampleSet:
    """Everything :func:`magicvl.sample_data.generate` wrote under ``root``."""

    root: Path
    seed: int
    datasets: list[DatasetInfo]
    broken: list[BrokenRecord]
    distinct_images: int = 0  # distinct images over all datasets (pools are shared between datasets)

    @property
    def image_records(self) -> int:
        """Good records that carry an image, all datasets."""
        return sum(d.image_records for d in self.datasets)

    @property
    def samples_per_image(self) -> float:
        """Reuse ratio over the whole set: good image records per distinct image."""
        return self.image_records / self.distinct_images if self.distinct_images else 0.0

    @property
    def total_records(self) -> int:
        """Entries written over all datasets, broken ones included."""
        return sum(d.records for d in self.datasets)

    @property
    def category_counts(self) -> dict[str, int]:
        """Good records per category over all datasets."""
        out: dict[str, int] = {}
        for d in self.datasets:
            for cat, n in d.label_counts.items():
                out[cat] = out.get(cat, 0) + n
        return dict(sorted(out.items()))

    def dataset(self, name: str) -> DatasetInfo:
        """The dataset called ``name``."""
        for d in self.datasets:
            if d.name == name:
                return d
        raise KeyError(f"no dataset {name!r}; have {[d.name for d in self.datasets]}")

    def broken_in(self, name: str) -> list[BrokenRecord]:
        """Planted broken records of one dataset."""
        return [b for b in self.broken if b.dataset == name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no absolute paths, so two roots compare equal)."""
        return {
            "seed": self.seed,
            "total_records": self.total_records,
            "category_counts": self.category_counts,
            "image_records": self.image_records,
            "distinct_images": self.distinct_images,
            "samples_per_image": round(self.samples_per_image, 4),
            "datasets": [{**asdict(d), "samples_per_image": round(d.samples_per_image, 4)} for d in self.datasets],
            "broken": [asdict(b) for b in self.broken],
        }

    def write(self) -> Path:
        """Write ``sample_manifest.json`` in the root."""
        path = self.root / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, root: Path) -> SampleSet:
        """Read the manifest a previous :func:`generate` left in ``root``."""
        data = json.loads((Path(root) / MANIFEST_NAME).read_text(encoding="utf-8"))
        return cls(
            root=Path(root),
            seed=data["seed"],
            datasets=[DatasetInfo(**_dataset_fields(d)) for d in data["datasets"]],
            broken=[BrokenRecord(**b) for b in data["broken"]],
            distinct_images=data.get("distinct_images", 0),
        )


def _dataset_fields(d: dict[str, Any]) -> dict[str, Any]:
    """A manifest's dataset entry less its derived ratio (``samples_per_image``)."""
    return {k: v for k, v in d.items() if k != "samples_per_image"}
