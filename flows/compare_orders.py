"""The paper's Table 4 ablation as one flow: ``compare_orders`` (flow ``compare-orders``, CLI
``magicvl compare-orders RECIPE``, deployment).

Trains the recipe's model under ``all_at_once``, ``categorized`` and ``curriculum`` (``train.order``), each
from the recipe's ``train.model`` with the same seed and the same token budget: every order gets the
same pack capacity (steps × grad_accum × micro_batch × ``packing.max_tokens``) per curriculum stage, so
``all_at_once`` (one run, stage 4's settings) trains the sum of the stages' steps. Every trained stage is
evaluated on ``curated/eval/`` (``flows.evaluate``). Writes ``<output>/compare-orders/``: one derived
recipe per order (``<order>.yaml``, its stages in ``<output>/train-compare/<order>/``),
``comparison.json`` (order × stage × category), ``comparison.md`` (the final table), ``comparison.png``
and a Prefect table artifact ``compare-orders``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from prefect import flow

from magicvl.flows.recipe import load_recipe
from magicvl.flows.report.runs import flow_run_name

ORDERS = ("all_at_once", "categorized", "curriculum")
FOLDER = "compare-orders"


def order_recipe(recipe_path: Path, order: str) -> Path:
    """The recipe with ``train.order`` = ``order``, its own stage folders and the same budget; written beside
    the recipe (relative paths keep resolving) as ``.<stem>.compare-<order>.yaml``."""
    from magicvl.flows.train import train_section

    raw = yaml.safe_load(recipe_path.read_text())
    train = train_section(load_recipe(recipe_path))
    section = dict(raw["train"])
    section.update(order=order, output=f"train-compare/{order}", log_every=1)
    if order == "all_at_once":  # one run: the pack capacity of all four stages
        stages = {int(k): dict(v) for k, v in (section.get("stages") or {}).items()}
        s4 = stages.get(4, train.stages[4].model_dump(exclude_none=True, exclude={"data"}))
        packs = sum(st.steps * st.grad_accum * st.micro_batch for st in train.stages.values())  # all stages
        s4["steps"] = packs // (train.stages[4].grad_accum * train.stages[4].micro_batch)
        stages[4] = s4
        section["stages"] = stages
    raw["train"] = section
    out = recipe_path.with_name(f".{recipe_path.stem}.compare-{order}.yaml")
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def budget(recipe_path: Path) -> dict[str, Any]:
    """Pack capacity (tokens) the order's runs train on, and the real tokens the logs counted."""
    from magicvl.flows.train import stage_dir, train_section

    train = train_section(load_recipe(recipe_path))
    cap = real = 0.0
    for k in train.stage_plan():
        st = train.stages[k]
        per_step = st.grad_accum * st.micro_batch * train.packing.max_tokens
        cap += st.steps * per_step
        path = stage_dir(train, k) / "metrics.jsonl"
        rows = {r["step"]: r for r in map(json.loads, path.read_text().splitlines())} if path.is_file() else {}
        real += sum(r["real_share"] * per_step for r in rows.values())
    return {"capacity_tokens": int(cap), "real_tokens": int(round(real))}


def run_order(recipe_path: Path) -> dict[str, Any]:
    """Train the order's stages in turn from ``train.model``; evaluate each; their eval results and start."""
    from magicvl.flows.evaluate import evaluate_folder
    from magicvl.flows.train import stage_dir, train_section, train_stage

    recipe = load_recipe(recipe_path)
    train = train_section(recipe)
    init, stages = train.model, {}
    for k in train.stage_plan():
        init = train_stage(str(recipe_path), k, init_from=init)
        res = evaluate_folder(k, stage_dir(train, k), Path(recipe.output_root), train.packing.max_tokens, False)
        stages[k] = res or {}
    return {"start": str(recipe.path(train.model)), "seed": train.seed, "stages": stages, **budget(recipe_path)}


def comparison_rows(result: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per order, stage and category (and ``all``): NLL and accuracy on the eval split."""
    rows = []
    for order, r in result.items():
        plan = list(r["stages"])
        for k, ev in r["stages"].items():
            cats = [*ev.get("categories", {}).items(), ("all", ev.get("all", {}))]
            for cat, m in cats:
                m = m or {}
                rows.append({"order": order, "stage": int(k), "final": k == plan[-1], "category": cat,
                             "nll": m.get("nll"), "accuracy": m.get("accuracy"), "n": m.get("samples")})  # fmt: skip
    return rows


def final_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: category × order, the final checkpoint's NLL / accuracy."""
    orders = [o for o in ORDERS if any(r["order"] == o for r in rows)]
    cats = sorted({r["category"] for r in rows if r["category"] != "all"}) + ["all"]
    cell = {(r["order"], r["category"]): r for r in rows if r["final"]}
    out = ["| category | " + " | ".join(f"{o} nll / acc" for o in orders) + " |", "|---" * (len(orders) + 1) + "|"]
    for c in cats:
        vals = []
        for o in orders:
            r = cell.get((o, c))
            ok = r and r["nll"] is not None
            vals.append(f"{r['nll']:.4f} / {r['accuracy']:.4f}" if ok else "-")
        out.append(f"| {c} | " + " | ".join(vals) + " |")
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Eval NLL (all categories) after each stage, one line per order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for o in ORDERS:
        pts = sorted((r["stage"], r["nll"]) for r in rows if r["order"] == o and r["category"] == "all" and r["nll"])
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=o)
    ax.set_xlabel("training stage")
    ax.set_ylabel("eval NLL (all categories)")
    ax.set_xticks([1, 2, 3, 4])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


@flow(name="compare-orders", flow_run_name=flow_run_name, log_prints=True)
def compare_orders(recipe_path: str, orders: list[str] | None = None) -> dict[str, Any]:
    """Train and evaluate every order from the same start, seed and budget; write the comparison."""
    from prefect.artifacts import create_table_artifact

    src = Path(recipe_path).resolve()
    recipe = load_recipe(src)
    folder = Path(recipe.output_root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    result = {}
    for order in orders or ORDERS:
        if order not in ORDERS:
            raise ValueError(f"orders: unknown order {order!r}; choose from {', '.join(ORDERS)}")
        result[order] = run_order(order_recipe(src, order))
    rows = comparison_rows(result)
    (folder / "comparison.json").write_text(json.dumps({"orders": result, "rows": rows}, indent=2, default=str) + "\n")
    table = final_table(rows)
    budgets = "\n".join(
        f"- {o}: capacity {r['capacity_tokens']} tokens, real {r['real_tokens']}" for o, r in result.items()
    )
    (folder / "comparison.md").write_text(f"# Order comparison (final checkpoints)\n\n{table}\n\n{budgets}\n")
    png = plot(rows, folder / "comparison.png")
    create_table_artifact(rows, key="compare-orders", description="eval NLL / accuracy per order, stage, category")
    print(f"order comparison (final checkpoint of each order, eval split):\n{table}\n{budgets}\nwritten: {folder}")
    return {"orders": result, "rows": rows, "table": table, "plot": str(png), "folder": str(folder)}
