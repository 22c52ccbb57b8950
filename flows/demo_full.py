"""The whole-DAG demo (``magicvl demo``): curate with every signal and the cross-modal axis, then train a
few steps per stage and evaluate each stage on the held-out split; prints the wall time of every step.

``magicvl demo --quick`` keeps the model-free curate-only path (``flows.demo.run_demo``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from prefect import flow

FULL_RECIPE = "demo-full.yaml"


def _load() -> str:
    """The load average of this machine (how busy it was while the demo ran)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def prepare_full(work: Path, records: int | None = None) -> tuple[Path, list[str]]:
    """Tiny models (incl. the three Qwen2-VL sizes) + sample data + the full recipe; what each model is."""
    from magicvl.flows.demo import prepare_demo
    from magicvl.model.tiny import is_tiny
    from magicvl.model.tiny_vl import build_tiny_vlms
    from magicvl.sample_data.low_quality import write_flagged

    recipe = prepare_demo(work, records, FULL_RECIPE)
    if not (work / "data" / "flagged" / "flagged.jsonl").is_file():
        write_flagged(work / "data" / "flagged")  # planted low-quality records: the quality step drops them
    vlm = work / "models" / "vlm"
    if not all(is_tiny(vlm / f"qwen2_vl-{s}") for s in "sml"):
        for name, p in build_tiny_vlms(vlm, ("qwen2_vl",)).items():
            print(f"built a tiny RANDOM {name} locally (not real weights): {p}")
    notes = [
        "models: tokenizer, causal_lm (P), grounding_dino (object density), qwen2_vl-s/m/l (S_task) and magicvl "
        "(training) are tiny RANDOM checkpoints built locally: their scores and losses are not meaningful",
        "models: OCR density uses the REAL PP-OCR detection/recognition models shipped in the rapidocr wheel",
    ]
    return recipe, notes


def curate_step_seconds(output_root: Path) -> dict[str, float]:
    """Per curate step, the wall seconds the run manifest recorded."""
    steps = json.loads((output_root / "_manifest.json").read_text()).get("steps", {})
    return {name: float(s["seconds"]) for name, s in steps.items() if isinstance(s, dict) and "seconds" in s}


@flow(name="demo-train-evaluate", log_prints=True)
def train_and_evaluate(recipe_path: Path) -> tuple[dict[int, dict[str, Any]], dict[str, float]]:
    """Stages in order, each from the previous final weights, each evaluated; and the wall seconds of each."""
    from magicvl.flows.evaluate import evaluate_folder
    from magicvl.flows.recipe import load_recipe
    from magicvl.flows.train import stage_dir, train_section, train_stage

    recipe = load_recipe(recipe_path)
    train = train_section(recipe)
    init, evals, timings = train.model, {}, {}
    for stage in train.stage_plan():
        t = time.perf_counter()
        init = train_stage(str(recipe_path), stage, init_from=init)
        timings[f"train stage {stage}"] = time.perf_counter() - t
        t = time.perf_counter()
        folder = stage_dir(train, stage)
        evals[stage] = evaluate_folder(stage, folder, Path(recipe.output_root), train.packing.max_tokens, False) or {}
        timings[f"evaluate stage {stage}"] = time.perf_counter() - t
    return evals, timings


def eval_table(evals: dict[int, dict[str, Any]]) -> str:
    """Category × stage: mean response NLL / next-token accuracy on the eval split."""
    cats = sorted({c for e in evals.values() for c in e.get("categories", {})}) + ["all"]
    head = f"{'category':<10} " + " ".join(f"{'stage ' + str(k) + ' nll/acc':>20}" for k in evals)
    lines = [head, "-" * len(head)]
    for c in cats:
        cells = []
        for e in evals.values():
            m = e.get("all") if c == "all" else e.get("categories", {}).get(c)
            ok = m and m.get("nll") is not None
            cells.append(f"{m['nll']:.3f}/{m['accuracy']:.3f} (n={m['samples']})" if ok else "-")
        lines.append(f"{c:<10} " + " ".join(f"{x:>20}" for x in cells))
    return "\n".join(lines)


def timing_table(timings: dict[str, float], total: float) -> str:
    lines = [f"{'step':<22} {'wall s':>8}", "-" * 31]
    lines += [f"{k:<22} {v:>8.1f}" for k, v in timings.items()]
    return "\n".join(lines + ["-" * 31, f"{'total':<22} {total:>8.1f}"])


def run_full_demo(work: Path, records: int | None = None) -> dict[str, Any]:
    """Prepare, curate, train and evaluate; prints the summary, the evaluation and the wall time per step."""
    from magicvl.flows.runtime import warm_start

    t0 = time.perf_counter()
    load_start = _load()
    timings: dict[str, float] = {}
    recipe, notes = prepare_full(work, records)
    timings["prepare (models, data)"] = time.perf_counter() - t0
    print(f"running the whole DAG on {recipe} (local Prefect API and a local Ray started for the run)")
    with warm_start(recipe, preload=("magicvl.flows.curate", "magicvl.flows.train")):
        from magicvl.flows.curate import curate

        t = time.perf_counter()
        res = curate(str(recipe))
        curate_s = time.perf_counter() - t
        steps = curate_step_seconds(Path(res["output"]))
        for name, s in steps.items():
            timings[f"curate: {name}"] = s
        timings["curate: other"] = max(0.0, curate_s - sum(steps.values()))
        evals, train_timings = train_and_evaluate(recipe)
        timings.update(train_timings)
    total = time.perf_counter() - t0
    print("\n".join(["", *notes, "", "held-out evaluation per stage (mean response NLL / next-token accuracy):",
                     eval_table(evals), "", "wall time per step:", timing_table(timings, total),
                     f"load average at start: {load_start}; at end: {_load()} ({os.cpu_count()} CPUs)"]))  # fmt: skip
    return {**res, "evaluation": evals, "timings": timings, "total_seconds": total}
