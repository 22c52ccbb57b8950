"""Exports read back: WebDataset (the `webdataset` package), Hugging Face (`datasets`), and the
LLaMA-Factory ShareGPT and InternVL layouts checked field by field against their documented schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from magicvl.storage.export.base import ExportOptions
from magicvl.storage.export.run import EXPORT_MANIFEST, export_curated
from tests.export_data import BROKEN, MISSING_ROW, MISSING_SHARD, SHARED, SYSTEM, curated_rows, write_export_curated

UNAVAILABLE = {BROKEN: "broken_image", MISSING_SHARD: "missing_image", MISSING_ROW: "missing_image"}


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    return write_export_curated(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def source(curated) -> dict[str, dict]:
    return curated_rows(curated)


def exported(curated: Path, tmp_path: Path, fmt: str, **opts) -> tuple[Path, dict]:
    out = tmp_path / fmt
    return out, export_curated(curated, fmt, out, options=ExportOptions(**opts))


def errors(out: Path) -> dict[str, str]:
    lines = (out / "export_errors.jsonl").read_text().splitlines()
    return {e["sample_id"]: e["kind"] for e in map(json.loads, lines)}


def test_webdataset_reads_back_with_the_webdataset_package(curated, source, tmp_path):
    import webdataset as wds

    out, manifest = exported(curated, tmp_path, "webdataset", shard_max_samples=5)
    assert errors(out) == UNAVAILABLE
    seen = {}
    for st in manifest["stages"]:
        assert len(st["files"]) == -(-st["samples"] // 5)  # sized shards: at most 5 samples each
        for f in st["files"]:
            for s in wds.WebDataset(str(out / f), shardshuffle=False, empty_check=False):
                meta = json.loads(s["json"])
                assert s["__key__"] == meta["sample_id"] and meta["stage"] == st["stage"]
                img = [k for k in s if k in ("jpg", "png")]
                seen[meta["sample_id"]] = (meta, s[img[0]] if img else None)
    assert set(seen) == set(source) - set(UNAVAILABLE)
    for sid, (meta, data) in seen.items():
        row = source[sid]
        assert data == row["image_bytes"]  # original encoded bytes; no member for text-only samples
        assert meta["conversations"] == row["conversations"]
        assert (meta["category"], meta["S"], meta["s_text"]) == (row["category"], row["complexity"], row["s_text"])


def test_hf_folder_loads_with_datasets_typed_and_decoding(curated, source, tmp_path):
    import datasets

    out, manifest = exported(curated, tmp_path, "hf", shard_max_samples=6)
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))
    assert list(ds) == ["stage_1", "stage_2", "stage_3", "stage_4"]
    f = ds["stage_3"].features
    assert isinstance(f["image"], datasets.Image) and f["S"].dtype == "float64" and f["stage"].dtype == "int8"
    assert f["conversations"].feature["value"].dtype == "string"
    n = 0
    for split, st in zip(ds.values(), manifest["stages"]):
        assert len(split) == st["samples"] and len(st["files"]) == -(-st["samples"] // 6)
        for r in split:
            row = source[r["sample_id"]]
            assert r["stage"] == st["stage"] and r["conversations"] == row["conversations"]
            if row["image_bytes"] is None:
                assert r["image"] is None
            else:
                assert isinstance(r["image"], Image.Image) and r["image"].size == (row["width"], row["height"])
            n += 1
    assert n == len(source) - len(UNAVAILABLE)
    card = (out / "README.md").read_text()
    assert "| stage_3 | 12 |" in card and "recipe hash" in card and "text_only" in card


def test_sharegpt_matches_llama_factory_schema(curated, source, tmp_path):
    out, manifest = exported(curated, tmp_path, "sharegpt")
    info = json.loads((out / "dataset_info.json").read_text())
    assert list(info) == [f"magicvl_stage_{k}" for k in (1, 2, 3, 4)]
    for name, st in zip(info, manifest["stages"]):
        entry = info[name]
        assert entry == {
            "file_name": f"stage-{st['stage']}.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images", "system": "system"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
        }
        lines = [json.loads(x) for x in (out / entry["file_name"]).read_text().splitlines()]
        assert len(lines) == st["samples"]
        for obj in lines:
            roles = [m["role"] for m in obj["messages"]]
            assert roles == ["user", "assistant"] * (len(roles) // 2) and roles
            assert all(isinstance(m["content"], str) for m in obj["messages"])
            tokens = sum(m["content"].count("<image>") for m in obj["messages"])
            assert isinstance(obj["images"], list) and tokens == len(obj["images"])
            for p in obj["images"]:
                assert not Path(p).is_absolute() and (out / p).read_bytes() == source[obj["sample_id"]]["image_bytes"]
    system = [json.loads(x) for x in (out / "stage-3.jsonl").read_text().splitlines() if SYSTEM in x]
    assert system[0]["system"] == "Be brief." and system[0]["messages"][0] == {"role": "user", "content": "Say hi."}


def test_internvl_meta_and_annotations_match_the_documented_format(curated, source, tmp_path):
    out, manifest = exported(curated, tmp_path, "internvl", repeat_time=0.5)
    for st in manifest["stages"]:
        meta = json.loads((out / f"meta/stage-{st['stage']}.json").read_text())
        ((name, entry),) = meta.items()
        assert name == f"magicvl_stage_{st['stage']}"
        assert set(entry) == {"root", "annotation", "data_augment", "repeat_time", "length"}
        assert entry["repeat_time"] == 0.5 and entry["data_augment"] is False
        lines = [json.loads(x) for x in Path(entry["annotation"]).read_text().splitlines()]
        assert entry["length"] == len(lines) == st["samples"]
        for obj in lines:
            row = source[obj["id"]]
            turns = obj["conversations"]
            body = turns[1:] if turns[0]["from"] == "system" else turns
            assert [t["from"] for t in body] == ["human", "gpt"] * (len(body) // 2)
            n_tokens = sum(t["value"].count("<image>") for t in turns)
            if row["image_bytes"] is None:
                assert "image" not in obj and n_tokens == 0
            else:
                assert n_tokens == 1 and body[0]["value"].startswith("<image>\n")
                assert (Path(entry["root"]) / obj["image"]).read_bytes() == row["image_bytes"]
                assert (obj["width"], obj["height"]) == (row["width"], row["height"])


def test_each_distinct_image_is_written_once(curated, source, tmp_path):
    out, manifest = exported(curated, tmp_path, "llava")
    files = sorted((out / "images").rglob("*.*"))
    distinct = {r["image_bytes"] for sid, r in source.items() if r["image_bytes"] and sid not in UNAVAILABLE}
    assert len(files) == manifest["images"]["written"] == len(distinct)
    lines = json.loads((out / "stage-3.json").read_text())
    a, b = (next(x for x in lines if x["id"] == s) for s in SHARED)
    assert a["image"] == b["image"]


def test_manifest_counts_stages_in_order_and_reports_every_row(curated, source, tmp_path):
    out, manifest = exported(curated, tmp_path, "internvl")
    assert json.loads((out / EXPORT_MANIFEST).read_text()) == manifest
    assert [s["stage"] for s in manifest["stages"]] == [1, 2, 3, 4]
    assert manifest["samples"] + manifest["skipped"] == len(source)
    three = manifest["stages"][2]
    assert three["skipped"] == {"broken_image": 1, "missing_image": 2}
    kept3 = [r for sid, r in source.items() if r["stage"] == 3 and sid not in UNAVAILABLE]
    counted = [r for r in kept3 if r["text_tokens"] is not None]
    assert three["text_tokens"] == sum(r["text_tokens"] for r in counted)
    assert three["visual_tokens"] == sum(r["visual_tokens"] for r in counted)
    assert three["samples_without_token_counts"] == len(kept3) - len(counted)
    assert sum(three["categories"].values()) == three["samples"]


def test_stage_selection_and_an_occupied_folder(curated, tmp_path):
    out = tmp_path / "two"
    m = export_curated(curated, "sharegpt", out, stages=[2, 4])
    assert [s["stage"] for s in m["stages"]] == [2, 4]
    assert list(json.loads((out / "dataset_info.json").read_text())) == ["magicvl_stage_2", "magicvl_stage_4"]
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_curated(curated, "sharegpt", out)
    assert export_curated(curated, "sharegpt", out, stages=[1], overwrite=True)["stages"][0]["stage"] == 1
    assert not (out / "stage-2.jsonl").exists()
    with pytest.raises(FileNotFoundError, match=r"stages \[7\]"):
        export_curated(curated, "sharegpt", tmp_path / "x", stages=[7])
    with pytest.raises(ValueError, match="unknown export format 'tfrecord'"):
        export_curated(curated, "tfrecord", tmp_path / "y")
