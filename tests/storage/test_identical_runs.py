"""Identical runs write identical bytes: no object addresses or other run-dependent text in any Parquet output."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from magicvl.flows.demo import prepare_demo
from magicvl.flows.recipe import load_recipe
from magicvl.sample_data.hostile import NOT_AN_IMAGE, deeply_nested_json, jpeg_scan_bomb_bytes, truncated_jpeg_bytes
from magicvl.storage.ingest import DatasetConfig, plan_dataset
from magicvl.storage.layout import OutputLayout
from magicvl.tasks.steps.ingest.units import fused_signals, ingest_chunk

TURNS = [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]


def hostile_dataset(base: Path) -> DatasetConfig:
    img = base / "hostile" / "img"
    img.mkdir(parents=True)
    (img / "html.jpg").write_bytes(NOT_AN_IMAGE)  # PIL: "cannot identify image file <_io.BytesIO object at 0x…>"
    (img / "cut.jpg").write_bytes(truncated_jpeg_bytes())
    (img / "scans.jpg").write_bytes(jpeg_scan_bomb_bytes(scans=500, side=32))
    lines = [json.dumps({"id": n, "image": f"{n}.jpg", "conversations": TURNS}) for n in ("html", "cut", "scans")]
    lines.append(deeply_nested_json(1000).decode())
    (base / "hostile" / "h.jsonl").write_text("\n".join(lines) + "\n")
    return DatasetConfig(name="hostile", format="jsonl", path="hostile/h.jsonl", image_root="hostile/img")


def ingest_all(recipe, datasets, out: Path) -> None:
    fused = fused_signals([(n, recipe.signal_params(n)) for n in recipe.signals])
    for cfg in datasets:
        for chunk in plan_dataset(cfg, recipe.base_dir, recipe.ingest):
            ingest_chunk(chunk, cfg, recipe.ingest, recipe.storage, str(out), str(recipe.base_dir), fused)


def parquet_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_two_ingests_of_the_same_data_are_byte_identical(tmp_path):
    recipe = load_recipe(prepare_demo(tmp_path / "work", records=60))
    datasets = [*recipe.datasets, hostile_dataset(recipe.base_dir)]
    ingest_all(recipe, datasets, tmp_path / "a")
    ingest_all(recipe, datasets, tmp_path / "b")
    a, b = parquet_files(tmp_path / "a"), parquet_files(tmp_path / "b")
    assert len(a) > 10 and a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    q = pq.read_table(OutputLayout(tmp_path / "a").quarantine_dir("hostile")).to_pydict()
    assert dict(zip(q["source"], q["error_kind"])) == {
        "h.jsonl:line 1": "not_an_image",
        "h.jsonl:line 2": "decode_error",
        "h.jsonl:line 3": "too_many_scans",
        "h.jsonl:line 4": "too_deeply_nested",
    }
    assert "cannot identify image file" in q["error"][0] and " at 0x" not in q["error"][0]
