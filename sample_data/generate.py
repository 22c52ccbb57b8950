"""Write the sample set: four raw datasets in four formats, all 8 categories, planted broken records."""

from __future__ import annotations

import shutil
from pathlib import Path

from magicvl.sample_data import broken as B
from magicvl.sample_data.manifest import MANIFEST_NAME, BrokenRecord, DatasetInfo, SampleSet
from magicvl.sample_data.plan import Plan, make_plan
from magicvl.sample_data.pools import Pool
from magicvl.sample_data.records import caption_samples, chart_rows, docs_entries, instruct_entries
from magicvl.sample_data.writers import (
    jsonl_line,
    shard_layout,
    wds_key,
    write_jsonl,
    write_llava_json,
    write_parquet,
    write_webdataset,
)

DATASET_DIRS = ("captions", "instruct", "docs", "charts")


def _prepare(root: Path) -> None:
    """Clear a previous sample set in ``root``; refuse to mix with folders we did not write."""
    ours = (root / MANIFEST_NAME).is_file()
    for name in DATASET_DIRS:
        if (root / name).exists():
            if not ours:
                raise FileExistsError(
                    f"{root / name} exists and {root} holds no {MANIFEST_NAME}; choose an empty folder"
                )
            shutil.rmtree(root / name)
    (root / MANIFEST_NAME).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)


def _counts(entries: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in entries:
        out[e["category"]] = out.get(e["category"], 0) + 1
    return dict(sorted(out.items()))


def _docs(root: Path, plan: Plan, pools: dict[str, Pool], seed: int) -> tuple[DatasetInfo, list[BrokenRecord]]:
    image_root = root / "docs" / "images"
    entries = docs_entries(plan, pools, seed, image_root)
    planted = B.plant_docs() if plan.broken else []
    lines, positions = B.spread([jsonl_line(e) for e in entries], planted)
    write_jsonl(root / "docs" / "docs.jsonl", lines)
    bad = [BrokenRecord("docs", f"docs.jsonl:line {p + 1}", x.kind, x.detail) for p, x in zip(positions, planted)]
    info = DatasetInfo(
        "docs",
        "jsonl",
        "docs/docs.jsonl",
        "docs/images",
        "ocr",
        "category",
        len(lines),
        {"ocr": len(entries)},
        ["docs/docs.jsonl"],
        pools["doc"].files_written,
        len(entries),
        len({e["image"] for e in entries}),
    )
    return info, bad


def _instruct(root: Path, plan: Plan, pools: dict[str, Pool], seed: int) -> tuple[DatasetInfo, list[BrokenRecord]]:
    image_root = root / "instruct" / "images"
    entries = instruct_entries(plan, pools, seed, image_root)
    planted: list = []
    if plan.broken:
        vqa_photo = pools["vqa"].item(0).data
        planted = B.plant_instruct(entries[0]["id"], image_root, vqa_photo, "doc_0000.png")
    mixed, positions = B.spread(entries, planted)
    write_llava_json(root / "instruct" / "instruct.json", mixed)
    bad = [
        BrokenRecord("instruct", f"instruct.json:record {p + 1}", x.kind, x.detail) for p, x in zip(positions, planted)
    ]
    n_files = sum(1 for p in image_root.rglob("*") if p.is_file())
    info = DatasetInfo(
        "instruct",
        "llava_json",
        "instruct/instruct.json",
        "instruct/images",
        None,
        "category",
        len(mixed),
        _counts(entries),
        ["instruct/instruct.json"],
        n_files,
        sum("image" in e for e in entries),
        len({e["image"] for e in entries if "image" in e}),
    )
    return info, bad


def _charts(root: Path, plan: Plan, pools: dict[str, Pool], seed: int) -> tuple[DatasetInfo, list[BrokenRecord]]:
    rows = chart_rows(plan, pools, seed)
    planted = B.plant_charts() if plan.broken else []
    mixed, positions = B.spread(rows, planted)
    write_parquet(root / "charts" / "charts.parquet", mixed)
    bad = [BrokenRecord("charts", f"charts.parquet:row {p}", x.kind, x.detail) for p, x in zip(positions, planted)]
    info = DatasetInfo(
        "charts",
        "parquet",
        "charts/charts.parquet",
        None,
        "chart",
        "category",
        len(mixed),
        {"chart": len(rows)},
        ["charts/charts.parquet"],
        0,
        len(rows),
        len({r["image"]["path"] for r in rows}),
    )
    return info, bad


def _captions(root: Path, plan: Plan, pools: dict[str, Pool], seed: int) -> tuple[DatasetInfo, list[BrokenRecord]]:
    samples = caption_samples(plan, pools, seed)
    planted = []
    if plan.broken:
        item = pools["caption"].item(0)
        planted = B.plant_captions(item.data, item.size)
    mixed, positions = B.spread(samples, planted)
    per_shard = shard_layout(len(mixed))
    paths = write_webdataset(root / "captions", mixed, per_shard)
    bad = [
        BrokenRecord("captions", f"{p // per_shard:05d}.tar:{wds_key(p // per_shard, p % per_shard)}", x.kind, x.detail)
        for p, x in zip(positions, planted)
    ]
    info = DatasetInfo(
        "captions",
        "webdataset",
        "captions/*.tar",
        None,
        "caption",
        None,
        len(mixed),
        {"caption": len(samples)},
        [f"captions/{p.name}" for p in paths],
        0,
        len(samples),
        len({pools["caption"].index(k) for k in range(len(samples))}),
    )
    return info, bad


def generate(
    root: Path | str,
    n_records: int | None = None,
    seed: int = 0,
    broken: bool = True,
    samples_per_image: float | None = None,
) -> SampleSet:
    """Write the sample set under ``root`` and return what was written (also in ``sample_manifest.json``).

    ``n_records=None`` writes the default set (343 records: 330 good + 13 broken). A number
    scales the set to that many entries with the same category mix; each pool kind gets one
    distinct image per ``samples_per_image`` records (default: per kind, ``plan.SAMPLES_PER_IMAGE``,
    about 2 for instruction data and 1 for captions and documents); image-embedding formats (WebDataset, Parquet) keep
    at most 5% of the records each (never fewer than the default set's), the rest of the
    captions and charts go to the LLaVA JSON with their per-record label. Deterministic in ``seed``.
    """
    root = Path(root)
    _prepare(root)
    plan = make_plan(n_records, broken, samples_per_image)
    pools = {kind: Pool(kind, seed, size) for kind, size in plan.pools.items()}
    parts = [
        _captions(root, plan, pools, seed),
        _docs(root, plan, pools, seed),
        _instruct(root, plan, pools, seed),
        _charts(root, plan, pools, seed),
    ]
    order = {"captions": 0, "instruct": 1, "docs": 2, "charts": 3}
    parts.sort(key=lambda p: order[p[0].name])
    distinct = sum(len(p.used) for p in pools.values())
    sample = SampleSet(root, seed, [info for info, _ in parts], [b for _, bad in parts for b in bad], distinct)
    sample.write()
    return sample
