"""How many records of each category go to which dataset, for the default set or a scaled one."""

from __future__ import annotations

import math
from dataclasses import dataclass

from magicvl.sample_data.pools import pool_size

# The default sample set (good records); a scaled set keeps these proportions.
DEFAULT_MIX: dict[str, int] = {
    "caption": 100,
    "vqa": 30,
    "reasoning": 25,
    "grounding": 25,
    "gui": 20,
    "text_only": 20,
    "ocr": 60,
    "chart": 50,
}
N_BROKEN = 13  # records planted by magicvl.sample_data.broken (see there)
EMBED_SHARE = 0.05  # scale mode: at most this share of records embed image bytes (tar, parquet) ...
DEFAULT_EMBEDDED = {"caption": DEFAULT_MIX["caption"], "chart": DEFAULT_MIX["chart"]}  # ... but never fewer
CHART_REASONING_EVERY = 5  # every 5th reasoning record asks about a chart instead of a drawn figure

# Scale mode: records per distinct image of each pool kind (approximations of real data, see README
# "Sample data with realistic image reuse"): instruction data asks several questions about one image
# (LLaVA-Instruct-150K: ~158K samples over ~81K COCO images; VQAv2: ~5 questions per image), while
# caption pairs and OCR documents carry one record per image.
SAMPLES_PER_IMAGE: dict[str, float] = {
    "caption": 1.0,
    "doc": 1.0,
    "vqa": 2.0,
    "grounding": 2.0,
    "gui": 2.0,
    "figure": 2.0,
    "chart": 2.0,
}


@dataclass(frozen=True)
class Plan:
    """Record counts per dataset and category, and the size of every image pool."""

    good: dict[str, int]  # good records per category, all datasets
    captions_tar: int  # caption samples in the WebDataset shards
    charts_parquet: int  # chart rows in the Parquet file
    instruct: dict[str, int]  # good records per category in the LLaVA JSON
    docs: int  # OCR records in the JSONL
    chart_reasoning: int  # reasoning records of `instruct` that use a chart
    pools: dict[str, int]  # distinct images per pool kind
    broken: bool
    samples_per_image: dict[str, float] | None = None  # scale mode: records per distinct image, per pool kind

    @property
    def total(self) -> int:
        return sum(self.good.values()) + (N_BROKEN if self.broken else 0)


def apportion(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder; every key gets at least 1)."""
    keys = list(weights)
    if total < len(keys):
        raise ValueError(f"need at least {len(keys)} good records (one per category), got {total}")
    wsum = sum(weights.values())
    exact = {k: total * weights[k] / wsum for k in keys}
    out = {k: int(v) for k, v in exact.items()}
    for k in sorted(keys, key=lambda k: (out[k] - exact[k], keys.index(k)))[: total - sum(out.values())]:
        out[k] += 1
    for k in keys:
        if out[k] == 0:
            out[k] = 1
            out[max(keys, key=lambda j: out[j])] -= 1
    return out


def scaled_pool_size(records: int, samples_per_image: float) -> int:
    """Distinct images that give ``records`` records about ``samples_per_image`` records each (at least 1)."""
    return max(1, math.ceil(records / samples_per_image))


def make_plan(n_records: int | None = None, broken: bool = True, samples_per_image: float | None = None) -> Plan:
    """The default set (``n_records=None``) or ``n_records`` entries in all, planted ones included.

    In scale mode every pool kind gets ``ceil(records / samples_per_image)`` distinct images:
    one number for all kinds, or (``None``) the per-kind defaults of :data:`SAMPLES_PER_IMAGE`.
    The default set keeps one image per record (a few chart-reasoning records share the chart pool).
    """
    if samples_per_image is not None and n_records is None:
        raise ValueError("samples_per_image applies to a scaled set only: give n_records too")
    if samples_per_image is not None and not samples_per_image >= 1:
        raise ValueError(f"samples_per_image must be >= 1, got {samples_per_image}")
    n_bad = N_BROKEN if broken else 0
    good = dict(DEFAULT_MIX) if n_records is None else apportion(n_records - n_bad, DEFAULT_MIX)
    n = sum(good.values()) + n_bad
    cap = {k: max(v, int(EMBED_SHARE * n)) for k, v in DEFAULT_EMBEDDED.items()}
    captions_tar = min(good["caption"], cap["caption"])
    charts_parquet = min(good["chart"], cap["chart"])
    instruct = {k: v for k, v in good.items() if k not in ("caption", "chart", "ocr")}
    instruct["caption"] = good["caption"] - captions_tar
    instruct["chart"] = good["chart"] - charts_parquet
    instruct = {k: v for k, v in instruct.items() if v}
    chart_reasoning = good["reasoning"] // CHART_REASONING_EVERY
    records = {
        "caption": good["caption"],
        "vqa": good["vqa"],
        "grounding": good["grounding"],
        "gui": good["gui"],
        "figure": good["reasoning"] - chart_reasoning,
        "chart": max(good["chart"], chart_reasoning),
        "doc": good["ocr"],
    }
    if n_records is None:
        spi = None
        pools = {kind: pool_size(kind, n) for kind, n in records.items()}
    else:
        spi = {k: float(samples_per_image) for k in records} if samples_per_image else dict(SAMPLES_PER_IMAGE)
        pools = {kind: scaled_pool_size(n, spi[kind]) for kind, n in records.items()}
    return Plan(good, captions_tar, charts_parquet, instruct, good["ocr"], chart_reasoning, pools, broken, spi)
