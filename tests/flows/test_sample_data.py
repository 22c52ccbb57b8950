"""The sample dataset generator: formats, categories, planted broken records, scale mode, hostile builders."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import tarfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, UnidentifiedImageError

from magicvl.sample_data import SampleSet, generate
from magicvl.sample_data import hostile as H
from magicvl.sample_data.charts import chart_spec
from magicvl.sample_data.documents import document
from magicvl.sample_data.grounding import COLORS
from magicvl.sample_data.manifest import MANIFEST_NAME
from magicvl.sample_data.plan import make_plan
from magicvl.storage.schema import CATEGORIES

IMAGE_KINDS = {
    "truncated_jpeg",
    "not_an_image",
    "missing_image_file",
    "path_escapes_root",
    "absolute_path_outside_root",
    "url_image_path",
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSet:
    return generate(tmp_path_factory.mktemp("sample"), seed=0)


# --- readers (plain Python, independent of the project's ingestion) -------------------------------------


def tar_samples(paths: list[Path]) -> list[tuple[str, str, dict[str, bytes]]]:
    """(tar name, key, {ext: bytes}) per sample, in archive order."""
    out: list[tuple[str, str, dict[str, bytes]]] = []
    for p in paths:
        with tarfile.open(p) as tar:
            for m in tar.getmembers():
                key, ext = m.name.split(".", 1)
                if not out or out[-1][:2] != (p.name, key):
                    out.append((p.name, key, {}))
                out[-1][2][ext] = tar.extractfile(m).read()
    return out


def instruct(sample: SampleSet) -> list[dict]:
    return json.loads((sample.root / "instruct/instruct.json").read_text(encoding="utf-8"))


def doc_lines(sample: SampleSet) -> list[bytes]:
    return (sample.root / "docs/docs.jsonl").read_bytes().splitlines()


def chart_table(sample: SampleSet) -> list[dict]:
    return pq.read_table(sample.root / "charts/charts.parquet").to_pylist()


def broken_positions(sample: SampleSet, dataset: str) -> dict[int, str]:
    """0-based entry index → planted kind."""
    out = {}
    for b in sample.broken_in(dataset):
        n = int(re.search(r"(\d+)$", b.locator).group(1))
        out[n - 1 if dataset in ("instruct", "docs") else n] = b.kind
    return out


def decodes(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- the default set ------------------------------------------------------------------------------------


def test_all_eight_categories_and_counts_match_manifest(sample: SampleSet) -> None:
    assert set(sample.category_counts) == set(CATEGORIES)
    assert 300 <= sample.total_records <= 400 and len(sample.broken) == 13
    tars = sorted((sample.root / "captions").glob("*.tar"))
    assert len(tars) == 2
    counts = {
        "captions": len(tar_samples(tars)),
        "instruct": len(instruct(sample)),
        "docs": len(doc_lines(sample)),
        "charts": len(chart_table(sample)),
    }
    for d in sample.datasets:
        assert counts[d.name] == d.records, d.name
        assert d.records == d.good + len(sample.broken_in(d.name)), d.name
    planted = broken_positions(sample, "instruct")
    labels = Counter(r["category"] for i, r in enumerate(instruct(sample)) if i not in planted)
    assert labels == Counter(sample.dataset("instruct").label_counts)
    assert SampleSet.load(sample.root).to_dict() == sample.to_dict()
    assert json.loads((sample.root / MANIFEST_NAME).read_text())["total_records"] == sample.total_records


def test_good_records_are_well_formed_and_their_images_decode(sample: SampleSet) -> None:
    planted = broken_positions(sample, "instruct")
    root = sample.root / "instruct/images"
    ids = []
    for i, rec in enumerate(instruct(sample)):
        if i in planted:
            continue
        ids.append(rec["id"])
        turns = rec["conversations"]
        assert {t["from"] for t in turns} <= {"human", "gpt", "system"} and turns[-1]["from"] == "gpt"
        n_tokens = sum(t["value"].count("<image>") for t in turns)
        if rec["category"] == "text_only":
            assert "image" not in rec and n_tokens == 0
        else:
            first_human = next(t for t in turns if t["from"] == "human")
            assert first_human["value"].startswith("<image>\n") and n_tokens == 1
            w, h = decodes((root / rec["image"]).read_bytes())
            assert min(w, h) >= 100 and max(w, h) <= 4800
    assert len(ids) == len(set(ids))
    docs_root, bad_docs = sample.root / "docs/images", broken_positions(sample, "docs")
    for i, line in enumerate(doc_lines(sample)):
        if i not in bad_docs:
            rec = json.loads(line)
            assert decodes((docs_root / rec["image"]).read_bytes())[0] >= 500


def test_webdataset_layout_and_caption_lengths(sample: SampleSet) -> None:
    samples = tar_samples(sorted((sample.root / "captions").glob("*.tar")))
    bad = {b.locator for b in sample.broken_in("captions")}
    lengths = []
    for tar, key, parts in samples:
        assert set(parts) == {"jpg", "txt", "json"} and re.fullmatch(r"\d{9}", key)
        meta = json.loads(parts["json"])
        assert meta["key"] == key and meta["caption"] == parts["txt"].decode("utf-8")
        assert meta["status"] == "success" and meta["url"].startswith("http://example.invalid/")
        if f"{tar}:{key}" in bad:
            continue
        assert decodes(parts["jpg"]) == (meta["width"], meta["height"])
        assert 200 <= max(meta["width"], meta["height"]) <= 1024
        lengths.append(len(parts["txt"].split()))
    assert min(lengths) <= 6 and max(lengths) >= 80  # complexity varies a lot


def test_planted_broken_records_are_exactly_as_listed(sample: SampleSet) -> None:
    assert Counter(b.kind for b in sample.broken) == Counter(
        {
            "truncated_jpeg": 2,
            "not_an_image": 2,
            "path_escapes_root": 1,
            "absolute_path_outside_root": 1,
            "url_image_path": 1,
            "missing_conversations": 1,
            "conversations_not_a_list": 1,
            "duplicate_id": 1,
            "invalid_json": 1,
            "invalid_utf8": 1,
            "missing_image_file": 1,
        }
    )
    recs, root = instruct(sample), sample.root / "instruct/images"
    for i, kind in broken_positions(sample, "instruct").items():
        rec = recs[i]
        if kind == "truncated_jpeg":
            with pytest.raises(OSError), Image.open(root / rec["image"]) as im:
                im.load()
        elif kind == "not_an_image":
            with pytest.raises(UnidentifiedImageError):
                Image.open(root / rec["image"])
        elif kind == "path_escapes_root":
            target = (root / rec["image"]).resolve()
            assert target.is_file() and not target.is_relative_to(root.resolve())
        elif kind == "absolute_path_outside_root":
            assert Path(rec["image"]).is_absolute()
        elif kind == "url_image_path":
            assert rec["image"].startswith("http://")
        elif kind == "missing_conversations":
            assert "conversations" not in rec
        elif kind == "conversations_not_a_list":
            assert isinstance(rec["conversations"], str)
        elif kind == "duplicate_id":
            assert rec["id"] in {r["id"] for r in recs[:i]}
    lines = doc_lines(sample)
    for i, kind in broken_positions(sample, "docs").items():
        if kind == "invalid_utf8":
            with pytest.raises(UnicodeDecodeError):
                lines[i].decode("utf-8")
        elif kind == "invalid_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(lines[i].decode("utf-8"))
        else:
            assert not (sample.root / "docs/images" / json.loads(lines[i])["image"]).exists()
    rows = chart_table(sample)
    for i in broken_positions(sample, "charts"):
        with pytest.raises(UnidentifiedImageError):
            decodes(rows[i]["image"]["bytes"])
    by_key = {f"{t}:{k}": p for t, k, p in tar_samples(sorted((sample.root / "captions").glob("*.tar")))}
    for b in sample.broken_in("captions"):
        with pytest.raises(OSError):
            decodes(by_key[b.locator]["jpg"])


def _chart_answer(spec, question: str) -> str:
    """Recompute a chart answer from the data, independently of the generator's wording."""
    pct = "%" if spec.kind == "pie" else ""
    values, labels = list(spec.values), list(spec.labels)
    if "highest value" in question or "largest share" in question:
        return labels[int(np.argmax(values))]
    if "lowest value" in question and "difference" not in question or "smallest share" in question:
        return labels[int(np.argmin(values))]
    if "difference" in question:
        return f"{max(values) - min(values)}{pct}"
    label = re.search(r"What is the value (?:in|for) (.+)\?", question).group(1)
    return f"{values[labels.index(label)]}{pct}"


def test_chart_answers_match_their_data(sample: SampleSet) -> None:
    planted = broken_positions(sample, "charts")
    checked = 0
    for i, row in enumerate(chart_table(sample)):
        if i in planted:
            continue
        spec = chart_spec(sample.seed, int(re.search(r"(\d+)", row["image"]["path"]).group(1)))
        turns = row["conversations"]
        for q, a in zip(turns[::2], turns[1::2]):
            question = q["value"].removeprefix("<image>\n").split(" Answer with")[0]
            assert a["value"] == _chart_answer(spec, question), (row["id"], question)
            checked += 1
        w, h = decodes(row["image"]["bytes"])
        assert (w, h) == (round(spec.figsize[0] * 100), round(spec.figsize[1] * 100))
    assert checked >= 50


def test_ocr_answers_are_the_rendered_text(sample: SampleSet) -> None:
    bad = broken_positions(sample, "docs")
    full = 0
    for i, line in enumerate(doc_lines(sample)):
        if i in bad:
            continue
        rec = json.loads(line)
        doc = document(sample.seed, int(re.search(r"(\d+)", rec["image"]).group(1)))
        for a in rec["conversations"][1::2]:
            assert a["value"] == doc.text or a["value"] in doc.fields.values()
            full += a["value"] == doc.text
    assert full >= 10


def test_grounding_boxes_cover_the_named_shapes(sample: SampleSet) -> None:
    root, checked = sample.root / "instruct/images", 0
    for rec in instruct(sample):
        if rec.get("category") != "grounding" or not isinstance(rec.get("conversations"), list):
            continue
        img = np.asarray(Image.open(root / rec["image"]).convert("RGB"), dtype=float)
        h, w = img.shape[:2]
        turns = rec["conversations"]
        for q, a in zip(turns[::2], turns[1::2]):
            name = re.search(r"the (\w+) (circle|square|triangle|diamond)", q["value"] + " " + a["value"])
            nums = [
                float(x)
                for x in re.findall(
                    r"\d+\.\d+|\d+",
                    a["value"] if "[" in a["value"] or "box" in a["value"] else q["value"].split("region")[1],
                )
            ]
            x1, y1, x2, y2 = nums[:4] if "box_start" not in a["value"] else [v / 1000 for v in nums[:4]]
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
            cx, cy = int((x1 + x2) / 2 * w), int((y1 + y2) / 2 * h + (y2 - y1) * h * 0.15)
            color = img[cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3).mean(axis=0)
            shape_name = name.group(1) if name else a["value"].split()[1]
            assert np.abs(color - COLORS[shape_name]).max() < 60, (rec["id"], shape_name, color)
            checked += 1
    assert checked >= 25


def test_reasoning_answers_are_arithmetically_right(sample: SampleSet) -> None:
    checked = 0
    for rec in instruct(sample):
        if rec.get("category") != "reasoning" or not isinstance(rec.get("conversations"), list):
            continue
        answer = rec["conversations"][1]["value"]
        assert "The answer is" in answer
        if m := re.search(r"= (\d+) \+ (\d+) = (\d+), so c = √\d+ = (\d+)", answer):
            x, y, z, c = map(int, m.groups())
            assert x + y == z == c * c
            checked += 1
        if m := re.search(r"x = 180° - (\d+)° - (\d+)° = (\d+)°", answer):
            assert sum(map(int, m.groups())) == 180
            checked += 1
    assert checked >= 5


# --- determinism, scale, regeneration -------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    a, b, c = (generate(tmp_path / n, n_records=60, seed=s) for n, s in (("a", 7), ("b", 7), ("c", 8)))
    da, db, dc = tree_digest(a.root), tree_digest(b.root), tree_digest(c.root)
    assert da == db and len(da) > 20  # 60 records: about 2 per instruction image, 1 per caption and document
    assert a.to_dict() == b.to_dict() and a.total_records == 60
    assert da["instruct/instruct.json"] != dc["instruct/instruct.json"]
    assert set(a.category_counts) == set(CATEGORIES)


def test_scale_mode_bounds_image_files(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    s = generate(tmp_path / "scale", n_records=2000, seed=1, samples_per_image=10)  # ≤ 10 records per image
    assert time.perf_counter() - t0 < 120  # a guard against pathological slowness, not a benchmark
    assert s.total_records == 2000 and set(s.category_counts) == set(CATEGORIES)
    n_images = sum(1 for p in s.root.rglob("*") if p.suffix in (".jpg", ".png"))
    assert n_images <= 400 and n_images == sum(d.image_files for d in s.datasets)
    assert s.dataset("captions").records <= 0.06 * 2000 and s.dataset("charts").records <= 0.06 * 2000
    assert len(instruct(s)) == s.dataset("instruct").records
    share = s.category_counts["caption"] / sum(s.category_counts.values())
    assert abs(share - 100 / 330) < 0.01  # same mix as the default set


def test_regenerating_replaces_a_previous_set_but_not_foreign_folders(tmp_path: Path) -> None:
    generate(tmp_path / "x", n_records=60)
    (tmp_path / "x/captions/00009.tar").write_bytes(b"stale")
    s = generate(tmp_path / "x", n_records=40, broken=False)
    assert not (tmp_path / "x/captions/00009.tar").exists() and s.total_records == 40 and not s.broken
    (tmp_path / "y/instruct").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        generate(tmp_path / "y")


def image_digests(sample: SampleSet) -> dict[str, list[str]]:
    """Dataset → SHA-256 of the image of every good record that carries one, read from the raw files."""
    digest = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    planted_keys = {b.locator.split(":")[1] for b in sample.broken_in("captions")}
    tars = sorted((sample.root / "captions").glob("*.tar"))
    out = {"captions": [digest(f["jpg"]) for _, key, f in tar_samples(tars) if key not in planted_keys]}
    bad = broken_positions(sample, "instruct")
    root = sample.root / "instruct/images"
    out["instruct"] = [
        digest((root / r["image"]).read_bytes())
        for i, r in enumerate(instruct(sample))
        if i not in bad and "image" in r
    ]
    bad = broken_positions(sample, "docs")
    docs = [json.loads(x) for i, x in enumerate(doc_lines(sample)) if i not in bad]
    out["docs"] = [digest((sample.root / "docs/images" / d["image"]).read_bytes()) for d in docs]
    bad = broken_positions(sample, "charts")
    out["charts"] = [digest(r["image"]["bytes"]) for i, r in enumerate(chart_table(sample)) if i not in bad]
    return out


def check_reuse_counts(sample: SampleSet) -> dict[str, list[str]]:
    """The manifest's image records and distinct images agree with the raw files, per dataset and in all."""
    found = image_digests(sample)
    for d in sample.datasets:
        assert (d.image_records, d.distinct_images) == (len(found[d.name]), len(set(found[d.name]))), d.name
    assert sample.distinct_images == len({x for v in found.values() for x in v})
    assert sample.image_records == sum(len(v) for v in found.values())
    data = json.loads((sample.root / MANIFEST_NAME).read_text())
    assert data["samples_per_image"] == round(sample.image_records / sample.distinct_images, 4)
    return found


def test_default_set_keeps_about_one_record_per_image(sample: SampleSet) -> None:
    check_reuse_counts(sample)
    assert sample.distinct_images == 305 and sample.image_records == 310  # chart reasoning reuses 5 charts


def test_samples_per_image_sets_the_distinct_images_of_every_dataset(tmp_path: Path) -> None:
    s = generate(tmp_path / "spi", n_records=250, seed=2, samples_per_image=3)
    found = check_reuse_counts(s)
    plan = make_plan(250, samples_per_image=3)
    assert s.distinct_images == sum(math.ceil(n / 3) for n in plan_records(plan).values())
    assert s.dataset("docs").distinct_images == math.ceil(plan.docs / 3) == len(set(found["docs"]))
    assert max(Counter(found["docs"]).values()) == 3  # each document image serves at most 3 records
    assert 2.5 < s.samples_per_image <= 3
    with pytest.raises(ValueError, match="scaled set only"):
        make_plan(None, samples_per_image=2)


def plan_records(plan) -> dict[str, int]:
    """Records each pool kind serves (the inverse of make_plan's pool sizing)."""
    g = plan.good
    return {
        "caption": g["caption"],
        "vqa": g["vqa"],
        "grounding": g["grounding"],
        "gui": g["gui"],
        "figure": g["reasoning"] - plan.chart_reasoning,
        "chart": max(g["chart"], plan.chart_reasoning),
        "doc": g["ocr"],
    }


def test_default_scaled_reuse_follows_real_data():
    plan = make_plan(10_000)
    rec = plan_records(plan)
    assert plan.pools["caption"] == rec["caption"] and plan.pools["doc"] == rec["doc"]  # 1 per image
    assert all(plan.pools[k] == math.ceil(rec[k] / 2) for k in ("vqa", "grounding", "gui", "figure", "chart"))
    assert 5000 < sum(plan.pools.values()) < 9000  # thousands of distinct images, not 390


# --- hostile builders -----------------------------------------------------------------------------------


def test_png_bomb_is_small_fast_and_declares_40000_squared(tmp_path: Path, monkeypatch) -> None:
    t0 = time.perf_counter()
    path = H.write_png_bomb(tmp_path)
    assert time.perf_counter() - t0 < 5 and path.stat().st_size < 2 << 20
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(path) as im:
        assert im.size == (40000, 40000) and im.format == "PNG"


def test_hostile_images(tmp_path: Path) -> None:
    def opened(p: Path) -> Image.Image:
        im = Image.open(p)
        im.load()
        return im

    with pytest.raises(OSError, match="truncated"):
        opened(H.write_truncated_jpeg(tmp_path))
    for bad in (H.write_not_an_image(tmp_path), H.write_zero_byte_file(tmp_path)):
        with pytest.raises(UnidentifiedImageError):
            opened(bad)
    assert opened(H.write_cmyk_jpeg(tmp_path)).mode == "CMYK"
    im16 = opened(H.write_16bit_png(tmp_path))
    assert im16.mode == "I;16" and np.asarray(im16).max() == 65535
    assert opened(H.write_palette_png(tmp_path)).mode == "P"
    pt = opened(H.write_palette_png(tmp_path, transparency=True))
    assert pt.mode == "P" and "transparency" in pt.info
    assert opened(H.write_rgba_png(tmp_path)).mode == "RGBA" and opened(H.write_la_png(tmp_path)).mode == "LA"
    gif = Image.open(H.write_gif_animated(tmp_path))
    assert gif.is_animated and gif.n_frames == 4
    assert opened(H.write_exif_rotated_jpeg(tmp_path)).getexif()[0x0112] == 6


def test_jsonl_with_broken_lines(tmp_path: Path) -> None:
    kinds = H.jsonl_with_broken_lines(
        tmp_path / "h.jsonl", [{"id": str(i)} for i in range(3)], H.bad_jsonl_lines(long_line_bytes=1 << 16)
    )
    lines = (tmp_path / "h.jsonl").read_bytes().splitlines()
    assert len(lines) == len(kinds) == 12 and kinds.count("ok") == 3

    def outcome(raw: bytes) -> str:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return "utf8"
        except json.JSONDecodeError:
            return "json"
        text = json.dumps(obj, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "surrogate"
        nul = "\\u0000" in text  # dumps escapes the decoded NUL character
        return type(obj).__name__ + ("+nul" if nul else "") + ("+long" if len(raw) > 60000 else "")

    got = dict(zip(kinds, map(outcome, lines)))
    assert got == {
        "ok": "dict",
        "invalid_json": "json",
        "invalid_utf8": "utf8",
        "json_array": "list",
        "json_scalar": "int",
        "lone_surrogate": "surrogate",
        "nul_escape": "dict+nul",
        "nul_raw": "json",
        "utf8_bom": "json",
        "long_line": "dict+long",
    }


def test_webdataset_tar_with_hostile_members(tmp_path: Path) -> None:
    jpg = H.jpeg_bytes()
    members = H.sample_members("000000000", jpg, "a good sample")
    for group in H.hostile_tar_members(jpg, huge_size=1 << 30).values():
        members += group
    path = H.write_webdataset_tar(tmp_path, members)
    seen = []
    with pytest.raises(tarfile.ReadError), tarfile.open(path, mode="r|*") as tar:
        for m in tar:
            seen.append(m)
            if m.isfile() and m.size < 1 << 20:
                tar.extractfile(m).read()
    names = [m.name for m in seen]
    assert names[:3] == ["000000000.jpg", "000000000.txt", "000000000.json"]
    assert "../000000101.jpg" in names and "/tmp/000000102.jpg" in names
    link = next(m for m in seen if m.name == "000000103.jpg")
    assert link.issym() and link.linkname == "/etc/passwd"
    assert seen[-1].size == 1 << 30  # the header promises 1 GiB; the archive ends there
