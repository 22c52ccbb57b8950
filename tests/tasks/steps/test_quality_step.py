"""The quality step end to end on a local Ray: planted bad texts and duplicates across two datasets,
categories with their sources, drops in dropped/ with step, rule and reason, balanced accounting,
threshold re-tuning without re-measuring, and the LLM judge's policy path with a tiny local LM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from magicvl.flows.recipe import Recipe, parse_recipe
from magicvl.flows.report import accounting
from magicvl.flows.report.inspect import inspect_folder
from magicvl.storage.layout import OutputLayout
from magicvl.storage.readers import list_shards
from magicvl.tasks.executor import StepFailed
from magicvl.tasks.steps.combine import step as combine_step
from magicvl.tasks.steps.ingest import step as ingest_step
from magicvl.tasks.steps.quality.step import quality, summary_line
from magicvl.tasks.steps.signals import step as signals_step

pytestmark = pytest.mark.slow


def _conv(prompt: str, answer: str, image: bool = True) -> list[dict]:
    return [{"from": "human", "value": ("<image>\n" if image else "") + prompt}, {"from": "gpt", "value": answer}]


def _image(path: Path, seed: int, noise: int = 0) -> None:
    rng = np.random.default_rng(seed)
    arr = np.kron(rng.integers(0, 255, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.int16)  # 64×64 blocks
    arr += np.random.default_rng(99).integers(-noise, noise + 1, arr.shape) if noise else 0
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)


def make_data(root: Path) -> None:
    """Two JSONL datasets: ``a`` (per-record labels on some rows) and ``b`` (no labels at all)."""
    (root / "img").mkdir(parents=True)
    for i in range(8):
        _image(root / "img" / f"{i}.png", i)
    _image(root / "img" / "near.png", 0, noise=2)  # a re-encoded, slightly noisy copy of 0.png
    a = [
        {"id": "a0", "category": "vqa", "image": "0.png",
         "conversations": _conv("What colour is the bus?", "The bus is red and parked by a brick wall.")},
        {"id": "a1", "image": "1.png",
         "conversations": _conv("Describe the image.", "A cat sleeps on a sunny windowsill next to a plant.")},
        {"id": "a2", "image": "2.png",
         "conversations": _conv("Where is the dog?", "The dog is at [0.12, 0.30, 0.55, 0.81] in the image.")},
        {"id": "a3", "conversations": _conv("What is 12 + 30?", "12 + 30 = 42.", image=False)},
        {"id": "rep", "image": "3.png", "conversations": _conv("What is on the table?", "coffee cup " * 40)},
        {"id": "moji", "image": "4.png",
         "conversations": _conv("Read the sign.", "CafÃ© Ã©tÃ© â€™ seÃ±or Ã¼ber naÃ¯ve rÃ©sumÃ© dÃ©jÃ  vu")},
        {"id": "ai", "image": "5.png",
         "conversations": _conv("What is shown?", "As an AI language model, I cannot see the image.")},
        {"id": "empty", "image": "6.png", "conversations": _conv("What is shown?", "")},
    ]  # fmt: skip
    b = [
        {"id": "b-exact", "image": "0.png",
         "conversations": _conv("What colour is the bus?", "The bus is red and parked by a brick wall.")},
        {"id": "b-near", "image": "near.png",
         "conversations": _conv("What colour is the bus?", "The bus is red and parked by a brick wall.")},
        {"id": "b-chart", "image": "7.png",
         "conversations": _conv("Which bar in the chart is highest?", "The bar for 2021 is the highest.")},
        {"id": "b-text", "conversations": _conv("Name a prime number.", "Seven is a prime number.", image=False)},
    ]  # fmt: skip
    for name, rows in (("a", a), ("b", b)):
        (root / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def recipe_of(root: Path, tokenizer: Path, **extra) -> Recipe:
    data = {
        "output": "out",
        "datasets": [
            {"name": "a", "format": "jsonl", "path": "a.jsonl", "image_root": "img", "label_field": "category"},
            {"name": "b", "format": "jsonl", "path": "b.jsonl", "image_root": "img"},
        ],
        "signals": {"token_length": {"tokenizer": str(tokenizer)}},
        "combine": {"granularity": "dataset"},
        "ray": {"address": "local"},
        **extra,
    }
    return parse_recipe(data, root)


def run(recipe: Recipe) -> tuple[dict, dict]:
    ingest_step.ingest(recipe)
    q = quality(recipe)
    signals_step.signals(recipe)
    comb = combine_step.combine(recipe)
    acc = accounting.accounting(OutputLayout(recipe.output_root), [d.name for d in recipe.datasets], comb["results"])
    return q, acc


def rows(folder: Path) -> list[dict]:
    """Every row under ``folder``, ``sample_id`` replaced by the record's own id (its source key)."""
    root = next(p for p in (folder, *folder.parents) if p.name == "out")
    keys = {r["sample_id"]: r["source_key"] for p in list_shards(root / "samples")
            for r in pq.read_table(p, columns=["sample_id", "source_key"]).to_pylist()}  # fmt: skip
    out = [r for p in list_shards(folder) for r in pq.read_table(p).to_pylist()]
    return [{**r, "sample_id": keys.get(r["sample_id"], r["sample_id"])} for r in out]


EXPECTED_DROPS = {
    "rep": ("filter", "filter:repetition", "repetition: dup_5gram_char_share="),
    "moji": ("filter", "filter:abnormal_chars", "abnormal_chars: abnormal_char_share="),
    "ai": ("filter", "filter:synthetic_keywords", "synthetic_keywords: synthetic_keyword_hits=2 > 0"),
    "empty": ("filter", "filter:empty_response", "empty_response: response_chars=0 < 1"),
    "b-exact": ("dedup", "dedup:exact", "exact duplicate of a/a0"),
    "b-near": ("dedup", "dedup:near_image", "near_image duplicate of a/a0: hamming="),
}


def test_default_quality_drops_categorizes_and_balances(tmp_path, tokenizer_dir, ray_local):
    make_data(tmp_path)
    recipe = recipe_of(tmp_path, tokenizer_dir)
    q, acc = run(recipe)
    out = tmp_path / "out"
    assert acc["balanced"] and acc["records_in"] == 12 and acc["quarantined"] == 0
    assert acc["kept"] == 6 and acc["dropped"] == 6
    dropped = {r["sample_id"]: r for r in rows(out / "dropped")}
    assert set(dropped) == set(EXPECTED_DROPS)
    ids = {r["source_key"]: r["sample_id"] for p in list_shards(out / "samples")
           for r in pq.read_table(p, columns=["source_key", "sample_id"]).to_pylist()}  # fmt: skip
    for sid, (step, rule, reason) in EXPECTED_DROPS.items():
        d = dropped[sid]
        reason = reason.replace("a/a0", f"a/{ids['a0']}")
        assert (d["step"], d["rule"]) == (step, rule) and d["reason"].startswith(reason), d
    assert acc["dropped_by_reason"]["dedup:exact"] == 1
    (example,) = acc["drop_examples"]["dedup:exact"]
    assert example.startswith("b/") and example.endswith(f": exact duplicate of a/{ids['a0']}")
    # no record is dropped as uncategorized; each category says where it came from
    curated = {r["sample_id"]: (r["category"], r["category_source"]) for r in rows(out / "curated")}
    assert curated == {
        "a0": ("vqa", "label"),
        "a1": ("caption", "rules"),
        "a2": ("grounding", "rules"),
        "a3": ("text_only", "rules"),
        "b-chart": ("chart", "rules"),
        "b-text": ("text_only", "rules"),
    }
    scores = {r["sample_id"]: r["category_source"] for r in rows(out / "scores")}
    assert scores["a0"] == "label" and scores["b-chart"] == "rules"
    assert q["dropped_by_rule"] == {r: 1 for _, r, _ in EXPECTED_DROPS.values()}
    summary = accounting.format_summary(acc, OutputLayout(out), [])
    assert "filter:repetition: 1" in summary and f"e.g. a/{ids['rep']}: repetition:" in summary
    text = inspect_folder(out / "dropped")
    assert "rows per rule, with examples" in text and "dedup:near_image" in text
    assert "dedup:exact 1" in summary_line(q) and "categories from label 1, rules 11" in summary_line(q)

    # a threshold edit: no measure is recomputed, only the verdicts; the sample comes back
    data = recipe.model_dump(mode="json", exclude={"base_dir"})
    data["filters"]["repetition"]["max_dup_ngram_share"] = {str(n): 1.0 for n in range(5, 11)}
    data["filters"]["repetition"]["max_top_ngram_share"] = {str(n): 1.0 for n in range(2, 5)}
    data["filters"]["repetition"]["max_dup_segment_share"] = 1.0
    measures_before = {p: p.stat().st_mtime_ns for p in list_shards(out / "quality" / "filter_measures" / "a")}
    q2 = quality(parse_recipe(data, tmp_path))
    assert q2["measures"]["cached"] == q2["measures"]["units"] == 2
    assert q2["verdicts"]["cached"] == 0
    assert {p: p.stat().st_mtime_ns for p in list_shards(out / "quality" / "filter_measures" / "a")} == measures_before
    assert "filter:repetition" not in q2["dropped_by_rule"] and q2["dropped_by_rule"]["filter:abnormal_chars"] == 1


def test_drop_uncategorized_only_when_the_recipe_asks(tmp_path, tokenizer_dir, ray_local):
    make_data(tmp_path)
    _, acc = run(recipe_of(tmp_path, tokenizer_dir, categorize={"drop_uncategorized": True}))
    assert acc["balanced"]
    dropped = {r["sample_id"]: r for r in rows(tmp_path / "out" / "dropped")}
    unlabelled = {"a1", "a2", "a3", "b-chart", "b-text"}
    assert {s for s, r in dropped.items() if r["rule"] == "categorize:uncategorized"} == unlabelled
    assert {r["sample_id"] for r in rows(tmp_path / "out" / "curated")} == {"a0"}


def test_llm_judge_runs_on_actors_and_its_policy_decides(tmp_path, tokenizer_dir, tiny_lm_dir, ray_local):
    make_data(tmp_path)
    judge = {"coherence": {"model": str(tiny_lm_dir), "max_new_tokens": 6, "batch_size": 4, "on_unparseable": "drop"}}
    q, acc = run(recipe_of(tmp_path, tokenizer_dir, judge=judge))
    assert acc["balanced"]
    answers = rows(tmp_path / "out" / "quality" / "judge-coherence")
    assert len(answers) == 12 and {r["judge"] for r in answers} == {"coherence"}
    # a random tiny LM answers garbage: recorded as unparseable, and the policy (drop) drops the rest
    assert {r["status"] for r in answers} == {"unparseable"} and not any(r["keep"] for r in answers)
    dropped = {r["sample_id"]: r["rule"] for r in rows(tmp_path / "out" / "dropped")}
    assert {s for s, r in dropped.items() if r == "judge:coherence:unparseable"} == {
        "a0", "a1", "a2", "a3", "b-chart", "b-text"
    }  # fmt: skip
    assert acc["kept"] == 0 and q["judge"]["coherence"]["executor"] == "actors"


def test_a_judge_model_that_fails_to_load_is_one_error_before_any_shard(tmp_path, tokenizer_dir, ray_local):
    make_data(tmp_path)
    (tmp_path / "not-a-model").mkdir()  # an existing folder (validation accepts it) that holds no model
    recipe = recipe_of(tmp_path, tokenizer_dir, judge={"coherence": {"model": str(tmp_path / "not-a-model")}})
    ingest_step.ingest(recipe)
    with pytest.raises(StepFailed, match=r"judge:coherence: the backend failed to load( \(model '.*'\))?, no unit ran"):
        quality(recipe)
    assert not (tmp_path / "out" / "quality" / "judge-coherence").exists()


def test_vlm_classifier_only_for_the_datasets_it_is_given(tmp_path, tokenizer_dir, tiny_vlm_dir, ray_local):
    make_data(tmp_path)
    vlm = {"backend": "magicvl", "model": str(tiny_vlm_dir), "max_new_tokens": 6}
    q, acc = run(recipe_of(tmp_path, tokenizer_dir, categorize={"method": "vlm", "vlm": vlm, "vlm_datasets": ["b"]}))
    assert acc["balanced"] and q["categorize"]["executor"] == "actors+tasks"
    assert q["categorize"]["units"] == 2  # one shard per dataset: b on the VLM's actors, a by labels/rules
    cats = {r["sample_id"]: r for r in rows(tmp_path / "out" / "quality" / "categories")}
    unparsed = sum(bool(r["vlm_error"]) for r in cats.values())  # all in b: a's rows are never asked
    assert q["categorize"]["vlm_datasets"] == ["b"] and q["categorize"]["vlm_unparsed"] == unparsed >= 2
    assert f"(VLM classifier on b: {unparsed} answers unparsed → rules)" in summary_line(q)
    assert all(cats[s]["vlm_error"] for s in ("b-chart", "b-text"))  # the VLM was asked about b's samples
    assert all(cats[s]["vlm_error"] is None and cats[s]["category_source"] == "rules" for s in ("a1", "a2", "a3"))
    with pytest.raises(Exception, match=r"categorize.vlm_datasets: \['c'\] are not datasets of this recipe"):
        recipe_of(tmp_path, tokenizer_dir, categorize={"method": "vlm", "vlm": vlm, "vlm_datasets": ["c"]})


def test_vlm_classifier_on_actors_records_its_answers_and_falls_back_to_rules(
    tmp_path, tokenizer_dir, tiny_vlm_dir, ray_local
):
    make_data(tmp_path)
    categorize = {"method": "vlm", "vlm": {"backend": "magicvl", "model": str(tiny_vlm_dir), "max_new_tokens": 6}}
    q, acc = run(recipe_of(tmp_path, tokenizer_dir, categorize=categorize))
    assert acc["balanced"] and q["categorize"]["executor"] == "actors"
    cats = {r["sample_id"]: r for r in rows(tmp_path / "out" / "quality" / "categories")}
    assert cats["a0"]["category_source"] == "label" and cats["a0"]["vlm_error"] is None  # labels are not asked
    # the random tiny VLM's garbage is refused by the strict parser, recorded, and the rules decide
    unlabelled = [cats[s] for s in ("a1", "a2", "a3", "b-chart", "b-text")]
    assert all(c["vlm_error"] and c["category_source"] == "rules" for c in unlabelled)
    assert {r["sample_id"] for r in rows(tmp_path / "out" / "curated")} >= {"a1", "a2", "a3", "b-chart", "b-text"}
