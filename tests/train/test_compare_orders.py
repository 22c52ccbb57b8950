"""`compare_orders` (Table 4): three orders from the same start, seed and pack budget, each stage evaluated;
one comparison as JSON, markdown, plot and rows."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def _recipe(root: Path, tiny: Path) -> Path:
    recipe = {
        "output": "out",
        "datasets": [{"name": "synthetic", "format": "jsonl", "path": "unused.jsonl"}],
        "signals": {"image_entropy": {}},
        "train": {
            "model": str(tiny),
            "bf16": False,
            "checkpoint_every": 100,
            "packing": {"max_tokens": 1024, "max_images": 8, "buffers": 4, "shuffle_window": 8},
            "stages": {k: {"steps": 1, "lr": 1e-3, "warmup_steps": 1} for k in (1, 2, 3, 4)},
        },
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root / "recipe.yaml"


def test_compare_orders_same_start_and_budget_one_comparison(tmp_path, tiny_dir, prefect_harness) -> None:
    from magicvl.flows.compare_orders import ORDERS, compare_orders
    from magicvl.sample_data.synthetic_curated import write_curated, write_eval_split

    write_curated(tmp_path / "out", n_per_stage=8)
    write_eval_split(tmp_path / "out", n_per_stage=3, stages=(1, 4))
    res = compare_orders(str(_recipe(tmp_path, tiny_dir)))
    orders = res["orders"]
    assert list(orders) == list(ORDERS)
    assert {o["start"] for o in orders.values()} == {str(tiny_dir)} and {o["seed"] for o in orders.values()} == {0}
    assert {o["capacity_tokens"] for o in orders.values()} == {4 * 1024}  # 4 optimizer steps of one 1024-token pack
    assert all(o["real_tokens"] > 0 for o in orders.values())
    assert list(orders["all_at_once"]["stages"]) == [4] and list(orders["curriculum"]["stages"]) == [1, 2, 3, 4]
    for order, plan in (("all_at_once", [4]), ("categorized", [1, 2, 3, 4]), ("curriculum", [1, 2, 3, 4])):
        folder = tmp_path / "out" / "train-compare" / order
        first = json.loads((folder / f"stage={plan[0]}" / "run.json").read_text())
        assert first["init_from"] == str(tiny_dir)  # every order starts from the same checkpoint
        steps = sum(len((folder / f"stage={k}" / "metrics.jsonl").read_text().splitlines()) for k in plan)
        assert steps == 4  # the same number of optimizer steps (one pack each)
    finals = {(r["order"], r["category"]): r for r in res["rows"] if r["final"]}
    assert {o for o, _ in finals} == set(ORDERS) and all(finals[(o, "all")]["nll"] > 0 for o in ORDERS)
    assert {c for _, c in finals} == {"caption", "chart", "gui", "reasoning", "all"}
    out = tmp_path / "out" / "compare-orders"
    saved = json.loads((out / "comparison.json").read_text())
    assert len(saved["rows"]) == len(res["rows"]) and (out / "comparison.png").stat().st_size > 1000
    assert res["table"].splitlines()[0] == "| category | " + " | ".join(f"{o} nll / acc" for o in ORDERS) + " |"
