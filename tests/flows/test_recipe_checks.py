"""Recipes that would fail late are refused on load, in one line naming the field (issue 20, defects 3 and 4)."""

from __future__ import annotations

import pytest
import yaml

from magicvl.flows.cli import main
from magicvl.flows.recipe import RecipeError, parse_recipe
from magicvl.model.model_ref import is_hub_id, ref_problem

DS = [{"name": "a", "format": "jsonl", "path": "x.jsonl"}]


def test_a_recipe_without_signals_is_refused_in_one_line_naming_the_fix(tmp_path, capsys):
    r = tmp_path / "r.yaml"
    r.write_text(yaml.safe_dump({"output": "o", "datasets": DS}))
    assert main(["validate", str(r)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: invalid recipe {r}: signals: none configured")
    assert "no_complexity_axis" in err and "add one under `signals:`" in err
    r.write_text(yaml.safe_dump({"output": "o", "datasets": DS, "signals": {"image_entropy": {}}}))
    assert main(["validate", str(r)]) == 0


def test_cross_modal_alone_is_a_signal(tmp_path):
    cm = {"models": {"s": {"model": "org/small"}, "l": {"model": "org/large"}}}
    assert parse_recipe({"output": "o", "datasets": DS, "cross_modal": cm}, tmp_path).cross_modal is not None


@pytest.mark.parametrize(
    "section,field",
    [
        ({"signals": {"perplexity": {"model": "/nonexistent/model"}}}, "signals.perplexity.model"),
        ({"signals": {"token_length": {"tokenizer": "./models/tok"}}}, "signals.token_length.tokenizer"),
        ({"signals": {"object_density": {"model": "a/b/c"}}}, "signals.object_density.model"),
        (
            {"cross_modal": {"models": {"small": {"model": "/no/such/vlm"}, "large": {"model": "Qwen/Qwen2-VL-7B"}}}},
            "cross_modal.models.small.model",
        ),
        ({"judge": {"coherence": {"model": "~/missing"}}}, "judge.coherence.model"),
        ({"categorize": {"method": "vlm", "vlm": {"model": "bad--id"}}}, "categorize.vlm.model"),
        ({"translate": {"model": "../lm", "datasets": ["a"]}}, "translate.model"),
        ({"train": {"model": "/no/checkpoint", "stages": {k: {"steps": 1} for k in (1, 2, 3, 4)}}}, "train.model"),
    ],
)
def test_a_model_that_is_neither_a_folder_nor_a_hub_id_is_refused(tmp_path, section, field):
    data = {"output": "o", "datasets": DS, "signals": {"image_entropy": {}}}
    data["signals"] = {**data["signals"], **section.pop("signals", {})}
    with pytest.raises(RecipeError) as e:
        parse_recipe({**data, **section}, tmp_path, "r.yaml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"invalid recipe r.yaml: {field}: ")
    assert "neither an existing local folder" in msg


def test_local_folders_and_valid_hub_ids_pass_without_any_download(tmp_path, tokenizer_dir):
    (tmp_path / "models" / "lm").mkdir(parents=True)
    signals = {
        "token_length": {"tokenizer": str(tokenizer_dir)},  # absolute folder
        "perplexity": {"model": "models/lm"},  # relative to the recipe's folder
        "object_density": {"model": "IDEA-Research/grounding-dino-tiny"},  # a hub id, not cached here
    }
    r = parse_recipe({"output": "o", "datasets": DS, "signals": signals}, tmp_path)
    assert [f for f, _ in r.model_refs()] == [
        "signals.token_length.tokenizer",
        "signals.perplexity.model",
        "signals.object_density.model",
    ]
    (tmp_path / "weights.bin").write_bytes(b"x")
    assert "is a file" in ref_problem("weights.bin", tmp_path)
    assert is_hub_id("Qwen/Qwen2.5-1.5B") and not is_hub_id("/abs/path") and not is_hub_id("s3://b/m")
