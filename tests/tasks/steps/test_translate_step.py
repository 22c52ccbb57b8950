"""The translation step: chosen English samples → a new dataset ``<name>_zh`` whose records point back to
their source sample and keep its image; refused translations quarantined; cached on rerun; the new
dataset runs through quality, signals and combine with balanced accounting; a model that cannot load is
one error before any shard runs; the recipe keys are validated."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from magicvl.flows.cli import _parser, forced_steps, main
from magicvl.flows.recipe import RecipeError, parse_recipe
from magicvl.flows.report import accounting
from magicvl.scoring.translate import TranslateConfig, is_english, picked
from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.layout import OutputLayout
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import list_shards
from magicvl.storage.schema import SAMPLE_SCHEMA
from magicvl.storage.writer import write_table
from magicvl.tasks.executor import StepFailed
from magicvl.tasks.steps.combine import step as combine_step
from magicvl.tasks.steps.ingest import step as ingest_step
from magicvl.tasks.steps.quality.step import quality
from magicvl.tasks.steps.signals import step as signals_step
from magicvl.tasks.steps.translate import TranslateUnit, translate
from tests.tasks.steps.test_quality_step import _conv, make_data

C_ROWS = [
    {"id": "c-plain", "conversations": _conv("Name a colour of the sky.", "The sky is blue on a clear day.", False)},
    {"id": "c-plain2", "conversations": _conv("Say something kind.", "You are doing very well today.", False)},
    {"id": "c-num", "conversations": _conv("How many legs does a cat have?", "A cat has 4 legs.", False)},
    {"id": "c-img", "image": "1.png", "conversations": _conv("What is shown?", "A cat on a windowsill.")},
    {"id": "c-zh", "conversations": _conv("这是什么动物？", "这是一只在窗台上睡觉的猫。", False)},
]


def _rows(folder) -> list[dict]:
    return [r for p in list_shards(folder) for r in pq.read_table(p).to_pylist()]


def _recipe(root, tokenizer, model: str, **translate):
    data = {
        "output": "out",
        "datasets": [
            {"name": "a", "format": "jsonl", "path": "a.jsonl", "image_root": "img", "label_field": "category"},
            {"name": "b", "format": "jsonl", "path": "b.jsonl", "image_root": "img"},
            {"name": "c", "format": "jsonl", "path": "c.jsonl", "image_root": "img"},
        ],
        "signals": {"token_length": {"tokenizer": str(tokenizer)}},
        "combine": {"granularity": "dataset"},
        "translate": {"model": model, "datasets": ["c"], "max_new_tokens": 8, "batch_size": 4, **translate},
    }
    return parse_recipe(data, root)


class _Echo:
    """A translator that keeps every marker (prefixes each turn): the protect/restore path end to end."""

    identity = "echo"

    def generate(self, requests, max_new_tokens):
        return ["译文：" + r.prompt.split("\n\n", 1)[1] for r in requests]


def test_unit_keeps_placeholders_numbers_and_the_image_reference(tmp_path):
    def row(sid, q, a, image=None, lang="en"):
        return {"sample_id": sid, "dataset": "d", "source_key": sid, "source": f"d.jsonl:{sid}", "category": "vqa",
                "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
                "image": image, "width": None, "height": None, "image_format": None}  # fmt: skip

    img = {"bytes": None, "path": "/data/img/7.png"}
    rows = [
        row("s1", "<image>\nWhere is the cat?", "At [0.12, 0.30, 0.55, 0.81], 3 cats, `x = 2`.", img),
        row("s2", "这是什么？", "这是一只猫。"),  # not English: not picked
    ]
    path = tmp_path / "d-000.parquet"
    write_table(path, pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA))
    cfg = TranslateConfig(model="unused", datasets=["d"])
    unit = TranslateUnit("d", {"path": str(path), "sha256": sha256_file(path)}, cfg, (), str(tmp_path / "out"),
                         StorageOptions())  # fmt: skip
    res = unit.run(backend=_Echo())
    assert (res["picked"], res["translated"], res["failed"]) == (1, 1, 0)
    [new] = _rows(OutputLayout(tmp_path / "out").samples_dir("d_zh"))
    assert new["conversations"] == [
        {"from": "human", "value": "译文：<image>\nWhere is the cat?"},
        {"from": "gpt", "value": "译文：At [0.12, 0.30, 0.55, 0.81], 3 cats, `x = 2`."},
    ]
    assert new["image"] == img and new["dataset"] == "d_zh" and new["category"] == "vqa"
    assert new["source"] == "translate:d/s1" and new["source_key"] == "s1" and new["sample_id"] != "s1"
    assert unit.run(backend=None)["cached"]  # same key: no model needed


def test_selection_is_seeded_stable_and_english_only():
    ids = [f"id{i}" for i in range(2000)]
    half = [i for i in ids if picked(i, 7, 0.5)]
    assert 900 < len(half) < 1100 and half == [i for i in ids if picked(i, 7, 0.5)]
    assert half != [i for i in ids if picked(i, 8, 0.5)]
    assert set(i for i in ids if picked(i, 7, 0.2)) <= set(half)  # a smaller share picks a subset
    assert all(picked(i, 0, 1.0) for i in ids)
    en = [{"from": "human", "value": "<image>\nWhat is 12 + 30?"}, {"from": "gpt", "value": "It is 42."}]
    assert is_english(en, 0.9)
    assert not is_english([{"from": "gpt", "value": "这是一只猫 cat"}], 0.9)
    assert not is_english([{"from": "gpt", "value": "12 + 30 = 42"}], 0.9)  # no letters: nothing to translate


@pytest.mark.slow
def test_translation_end_to_end_with_a_tiny_lm(tmp_path, tokenizer_dir, tiny_lm_dir, ray_local):
    make_data(tmp_path)
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in C_ROWS) + "\n")
    recipe = _recipe(tmp_path, tokenizer_dir, str(tiny_lm_dir))
    layout = OutputLayout(recipe.output_root)
    ingest_step.ingest(recipe)
    res = translate(recipe)
    assert res["datasets"]["c"]["records_in"] == 4  # c-zh is not English
    src = {r["sample_id"]: r for r in _rows(layout.samples_dir("c"))}
    new = _rows(layout.samples_dir("c_zh"))
    failed = _rows(layout.quarantine_dir("c_zh"))
    by_key = {src[r["source_key"]]["source_key"]: r for r in new}
    # a random model loses the markers of <image> and numbers: those are refused; plain texts pass through
    assert set(by_key) == {"c-plain", "c-plain2"}
    assert sorted(r["source"] for r in failed) == sorted(
        f"translate:c/{sid}" for sid, r in src.items() if r["source_key"] in ("c-num", "c-img"))  # fmt: skip
    assert all(r["error_kind"] == "translation_failed" and "placeholders" in r["error"] for r in failed)
    for r in new:
        s = src[r["source_key"]]
        assert r["source"] == f"translate:c/{s['sample_id']}" and r["image"] == s["image"]
        assert r["dataset"] == "c_zh" and r["sample_id"] not in src
    assert res["datasets"]["c"] == {"records_in": 4, "samples": 2, "quarantined": {"translation_failed": 2},
                                    "duplicates": 0}  # fmt: skip

    again = translate(recipe)  # cached: no model load, same files
    assert again["cached"] == again["units"] == res["units"]
    assert _rows(layout.samples_dir("c_zh")) == new

    quality(recipe)
    signals_step.signals(recipe)
    comb = combine_step.combine(recipe)
    assert sum(len(_rows(layout.quality_dir(k, "c_zh"))) for k in ("verdicts",)) == 2  # quality saw them
    names = [d.name for d in recipe.all_datasets]
    assert names == ["a", "b", "c", "c_zh"]
    acc = accounting.accounting(layout, names, comb["results"])
    assert acc["balanced"] and acc["records_in"] == 12 + 5 + 4
    assert acc["quarantined_by_error"]["translation_failed"] == 2
    scored = [r for r in comb["results"] if r["dataset"] == "c_zh"]
    assert sum(sum(r["kept"].values()) + sum(r["dropped"].values()) for r in scored) == 2


@pytest.mark.slow
def test_a_translation_model_that_fails_to_load_is_one_error_before_any_shard(tmp_path, tokenizer_dir, ray_local):
    make_data(tmp_path)
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in C_ROWS) + "\n")
    (tmp_path / "not-a-model").mkdir()  # an existing folder (validation accepts it) that holds no model
    recipe = _recipe(tmp_path, tokenizer_dir, str(tmp_path / "not-a-model"))
    ingest_step.ingest(recipe)
    with pytest.raises(StepFailed, match=r"translate: the backend failed to load.*no unit ran"):
        translate(recipe)
    assert not OutputLayout(recipe.output_root).samples_dir("c_zh").exists()


def test_recipe_translate_keys_are_validated(tmp_path, capsys):
    base = {"output": "o", "datasets": [{"name": "a", "format": "jsonl", "path": "x.jsonl"}],
            "signals": {"image_entropy": {}}}  # fmt: skip
    r = parse_recipe(base, tmp_path)
    assert r.translate is None and [d.name for d in r.all_datasets] == ["a"]  # off by default
    r = parse_recipe({**base, "translate": {"model": "m", "datasets": ["a"], "share": 0.25, "seed": 3}}, tmp_path)
    assert [d.name for d in r.all_datasets] == ["a", "a_zh"] and r.translate.max_new_tokens == 512
    for bad, msg in (
        ({"model": "m", "datasets": ["z"]}, "translate.datasets names datasets not in `datasets`: ['z']"),
        ({"model": "m", "datasets": ["a"], "share": 0}, "translate.share: Input should be greater than 0"),
        ({"model": "m", "datasets": []}, "translate.datasets: List should have at least 1 item"),
        ({"model": "m", "datasets": ["a"], "langs": 1}, "translate.langs: Extra inputs are not permitted"),
        ({"datasets": ["a"]}, "translate.model: Field required"),
    ):
        with pytest.raises(RecipeError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            parse_recipe({**base, "translate": bad}, tmp_path)
    clash = {**base, "datasets": base["datasets"] + [{"name": "a_zh", "format": "jsonl", "path": "y.jsonl"}]}
    with pytest.raises(RecipeError, match="clash"):
        parse_recipe({**clash, "translate": {"model": "m", "datasets": ["a"]}}, tmp_path)
    f = tmp_path / "r.yaml"
    f.write_text(yaml.safe_dump({**base, "translate": {"model": "m", "datasets": ["a"], "suffix": "zh-cn"}}))
    assert main(["validate", str(f)]) == 2
    assert "translate.suffix: String should match pattern" in capsys.readouterr().err
    f.write_text(yaml.safe_dump({**base, "translate": {"model": "m", "datasets": ["a"]}}))
    assert main(["validate", str(f)]) == 0
    out = yaml.safe_load(capsys.readouterr().out.split("# recipe hash")[0])
    assert out["translate"]["seed"] == 0 and out["translate"]["share"] == 1.0 and out["translate"]["suffix"] == "zh"


def test_curate_can_force_the_translation_step():
    args = _parser().parse_args(["curate", "r.yaml", "--force", "translate", "quality"])
    assert forced_steps(args.force) == ["translate", "quality"]
    assert "translate" in forced_steps([])
