"""Re-tune bookkeeping: per-shard moves, the step's transition table, and the parameters that changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from magicvl.flows.recipe import parse_recipe
from magicvl.storage.layout import OutputLayout
from magicvl.tasks.steps.combine import retune


def test_moves_count_previous_to_new_stage_with_new_and_not_kept(tmp_path: Path) -> None:
    folder = tmp_path / "scores" / "d"
    folder.mkdir(parents=True)
    prev = pa.table({"sample_id": ["a", "b", "c", "x"], "stage": pa.array([1, 2, None, 3], pa.int8())})
    pq.write_table(prev, folder / "d-part-000000-000-000.parquet")
    pq.write_table(pa.table({"sample_id": ["z"], "stage": pa.array([4], pa.int8())}), folder / "d-other-000.parquet")
    before = retune.previous_stages(folder, "d-part-000000-000-")
    assert before == {"a": 1, "b": 2, "c": 0, "x": 3}
    got = retune.moves(before, ["a", "b", "c", "n"], [1, 4, 3, None])
    assert got == {"1>1": 1, "2>4": 1, "0>3": 1, "new>0": 1}


def test_held_out_eval_rows_are_eval_not_a_stage_before_and_after(tmp_path: Path) -> None:
    folder = tmp_path / "scores" / "d"
    folder.mkdir(parents=True)
    prev = pa.table({"sample_id": ["a", "e", "f", "x"], "stage": pa.array([1, None, None, 2], pa.int8()),
                     "reason": ["", "eval_split", "too_short", None]})  # fmt: skip
    pq.write_table(prev, folder / "d-part-000000-000-000.parquet")
    before = retune.previous_stages(folder, "d-part-")
    assert before == {"a": 1, "e": retune.EVAL, "f": 0, "x": 2}
    held = np.array([False, True, False, True])  # e stays held out; x leaves stage 2 for the split
    got = retune.moves(before, ["a", "e", "f", "x"], [1, 3, None, 2], held)  # S still gives e and x a stage
    assert got == {"1>1": 1, "eval>eval": 1, "0>0": 1, "2>eval": 1}
    assert retune.format_transitions(got).splitlines()[-1] == "1 of 4 samples changed stage"
    assert [r["from"] for r in retune.transition_rows(got)] == ["0", "1", "2", "eval"]


def test_transitions_add_units_and_a_cached_unit_moved_nothing() -> None:
    results = [
        {"cached": False, "moves": {"1>2": 3, "2>2": 1}},
        {"cached": True, "kept": {"1|caption": 2, "3|vqa": 4}, "dropped": {"uncategorized": 1}, "quarantined": 2,
         "moves": {"1>4": 99}},  # a marker's old moves are not this run's
    ]  # fmt: skip
    t = retune.transitions(results)
    assert t == {"1>2": 3, "2>2": 1, "1>1": 2, "3>3": 4, "0>0": 3}
    rows = retune.transition_rows(t)
    assert rows[0] == {"from": "0", "to 0": 3, "to 1": 0, "to 2": 0, "to 3": 0, "to 4": 0}
    assert next(r for r in rows if r["from"] == "1")["to 2"] == 3
    assert retune.format_transitions(t).splitlines()[-1] == "3 of 13 samples changed stage"


def _recipe(beta: float, share: float) -> dict:
    return {
        "output": "out",
        "datasets": [{"name": "d", "format": "jsonl", "path": "d.jsonl"}],
        "signals": {"image_entropy": {}},
        "combine": {"task": {"beta": beta}, "stages": {"caption_low_share": share}},
    }


def test_changed_parameters_compare_with_the_previous_recorded_recipe(tmp_path: Path) -> None:
    layout = OutputLayout(tmp_path / "out")
    assert retune.previous_sections(layout) is None
    now = parse_recipe(_recipe(1.5, 0.3), tmp_path)
    assert retune.changed_parameters(now, None) == []
    for i, (beta, share) in enumerate([(9.0, 0.9), (1.05, 0.3)]):  # the newest run is the one compared
        run = layout.runs / f"2026112{i}T000000Z-local"
        run.mkdir(parents=True)
        (run / "recipe.yaml").write_text(yaml.safe_dump(_recipe(beta, share)))
    prev = retune.previous_sections(layout)
    assert retune.changed_parameters(now, prev) == ["combine.task.beta: 1.05 → 1.5"]
    assert retune.changed_parameters(parse_recipe(_recipe(1.05, 0.3), tmp_path), prev) == []


def test_the_crossmodal_recipe_runs_one_vlm_loss_job_per_model_smallest_first(tmp_path: Path) -> None:
    from magicvl.flows.recipe import load_recipe
    from magicvl.tasks.steps.signals.crossmodal import crossmodal_resources, signal_jobs

    template = Path(__file__).resolve().parents[3] / "flows" / "recipes" / "crossmodal.yaml"
    for size in "sml":  # where `magicvl build-tiny-models` puts them beside the copied recipe
        (tmp_path / "models" / "vlm" / f"qwen2_vl-{size}").mkdir(parents=True)
    (tmp_path / "crossmodal.yaml").write_text(template.read_text())
    recipe = load_recipe(tmp_path / "crossmodal.yaml")
    names = [j.name for j in signal_jobs(recipe)]
    assert names == ["token_length", "type_token_ratio", "image_entropy", "vlm_loss@s", "vlm_loss@m", "vlm_loss@l"]
    assert all(r.concurrency == 1 and r.num_gpus == 0 for r in crossmodal_resources(recipe).values())
