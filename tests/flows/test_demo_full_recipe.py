"""The whole-DAG demo recipe (flows/recipes/demo-full.yaml) and the demo's printed tables."""

from __future__ import annotations

from pathlib import Path

from magicvl.flows.demo_full import eval_table, timing_table

TEMPLATE = Path(__file__).resolve().parents[2] / "flows" / "recipes" / "demo-full.yaml"


def test_the_full_demo_recipe_has_every_signal_the_task_axis_an_eval_split_and_training(tmp_path) -> None:
    from magicvl.flows.recipe import load_recipe
    from magicvl.tasks.steps.signals.crossmodal import signal_jobs

    for name in ("tokenizer", "causal_lm", "grounding_dino", "magicvl", *(f"vlm/qwen2_vl-{s}" for s in "sml")):
        (tmp_path / "models" / name).mkdir(parents=True)
    (tmp_path / "recipe.yaml").write_text(TEMPLATE.read_text())
    recipe = load_recipe(tmp_path / "recipe.yaml")
    names = [j.name for j in signal_jobs(recipe)]
    assert names[:6] == ["token_length", "type_token_ratio", "image_entropy", "perplexity", "ocr_text_density",
                         "object_density"]  # fmt: skip
    assert names[6:] == ["vlm_loss@s", "vlm_loss@m", "vlm_loss@l"]
    assert recipe.combine.eval is not None and recipe.combine.eval.min_per_category >= 1
    assert [d.name for d in recipe.datasets] == ["captions", "instruct", "docs", "charts", "flagged"]
    assert next(d for d in recipe.datasets if d.name == "charts").label_field is None  # categorized by rules
    assert recipe.categorize.method == "vlm" and recipe.categorize.vlm_datasets == ["flagged"]  # the VLM's one
    assert recipe.categorize.for_dataset("charts").method == "rules" and recipe.categorize.for_dataset("flagged").vlm
    assert recipe.train is not None and sorted(recipe.train.stages) == [1, 2, 3, 4]


def test_eval_and_timing_tables() -> None:
    m = {"samples": 2, "tokens": 10, "nll": 1.23456, "accuracy": 0.5}
    text = eval_table({1: {"categories": {"ocr": m}, "all": m}, 2: {"categories": {}, "all": m}})
    lines = text.splitlines()
    assert lines[0].split()[0] == "category" and "stage 2 nll/acc" in lines[0]
    assert lines[2].split()[:3] == ["ocr", "1.235/0.500", "(n=2)"] and lines[2].rstrip().endswith("-")
    assert lines[3].startswith("all")
    t = timing_table({"a": 1.04, "b": 2.0}, 3.5).splitlines()
    assert t[2].split() == ["a", "1.0"] and t[-1].split() == ["total", "3.5"]
