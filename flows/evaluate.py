"""Held-out evaluation of a trained stage: ``evaluate_stage`` (flow ``evaluate-stage``, CLI ``magicvl evaluate``,
deployment).

With the stage's ``final/`` checkpoint, on ``<output root>/curated/eval/`` (the
split curation carves, the stage shards' schema): per category, mean response
NLL and next-token accuracy (``model.evaluate``). Written to
``<stage>/eval.json`` with the stage's training key and the split's shard digests
(``train_curriculum`` reuses an ``eval.json`` of the same checkpoint and split),
and a Prefect table artifact ``eval-stage-<k>``. Without an eval split it
evaluates nothing and says so in one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from magicvl.flows.recipe import RecipeError, load_recipe
from magicvl.flows.report.runs import flow_run_name
from magicvl.flows.train import stage_dir, train_section
from magicvl.model.train_key import KEY_FILE, stored_key
from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.readers import list_shards

EVAL_FOLDER = "eval"  # under curated/
EVAL_FILE = "eval.json"  # in the stage folder, beside final/


def eval_split(output_root: str | Path) -> Path:
    return Path(output_root) / "curated" / EVAL_FOLDER


def split_key(eval_dir: Path) -> str | None:
    """SHA-256 over the split's shards (relative path + content digest); None when it has none."""
    shards = list_shards(eval_dir)
    if not shards:
        return None
    h = hashlib.sha256()
    for p in shards:
        h.update(p.relative_to(eval_dir).as_posix().encode() + b"\0" + sha256_file(p).encode())
    return h.hexdigest()


def table_rows(stage: int, result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per category (and ``all``) for the artifact and the report."""
    rows = []
    for cat, m in [*result["categories"].items(), ("all", result["all"])]:
        rows.append(
            {
                "stage": stage,
                "category": cat,
                "samples": m["samples"],
                "tokens": m["tokens"],
                "nll": None if m["nll"] is None else round(m["nll"], 4),
                "accuracy": None if m["accuracy"] is None else round(m["accuracy"], 4),
            }
        )
    return rows


@task(name="evaluate-checkpoint")
def evaluate_task(stage: int, folder: str, output_root: str, max_tokens: int) -> dict[str, Any]:
    """Evaluate ``<folder>/final`` on the split; write ``eval.json`` and the table artifact."""
    from magicvl.model.evaluate import evaluate_checkpoint

    out, split = Path(folder), eval_split(output_root)
    result = evaluate_checkpoint(out / "final", split, output_root, max_tokens)
    record = {
        "stage": stage,
        "train_key": stored_key(out / "final" / KEY_FILE),
        "split_key": split_key(split),
        **result,
    }
    (out / f"{EVAL_FILE}.tmp").write_text(json.dumps(record, indent=1) + "\n")
    (out / f"{EVAL_FILE}.tmp").rename(out / EVAL_FILE)
    create_table_artifact(
        table_rows(stage, result), key=f"eval-stage-{stage}", description=f"held-out evaluation, stage {stage}"
    )
    return record


def evaluate_folder(stage: int, folder: Path, output_root: Path, max_tokens: int, force: bool = True) -> dict | None:
    """Evaluate one stage folder (reusing its ``eval.json`` when ``force`` is off and nothing changed);
    None when there is no eval split."""
    logger = get_run_logger()
    split = eval_split(output_root)
    key = split_key(split)
    if key is None:
        logger.warning("stage %d: no eval split at %s (curation writes it): nothing evaluated", stage, split)
        print(f"stage {stage}: no eval split at {split}: nothing evaluated")
        return None
    previous = folder / EVAL_FILE
    if not force and previous.is_file():
        old = json.loads(previous.read_text())
        if old.get("split_key") == key and old.get("train_key") == stored_key(folder / "final" / KEY_FILE):
            logger.info("stage %d: evaluation of this checkpoint on this split exists: %s", stage, previous)
            return old
    record = evaluate_task(stage, str(folder), str(output_root), max_tokens)
    a = record["all"]
    line = f"stage {stage} eval: {a['samples']} samples, {a['tokens']} tokens, NLL {a['nll']}, accuracy {a['accuracy']}"
    logger.info(line)
    print(line)
    return record


@flow(name="evaluate-stage", flow_run_name=flow_run_name)
def evaluate_stage(recipe_path: str, stage: int) -> dict | None:
    """Evaluate one trained stage's final checkpoint on the held-out split (``<stage>/eval.json``)."""
    recipe = load_recipe(recipe_path)
    train = train_section(recipe)
    if stage not in train.stages:
        raise RecipeError(f"stage must be one of {sorted(train.stages)}, got {stage}")
    folder = stage_dir(train, stage)
    if not (folder / "final" / "model.safetensors").is_file():
        raise FileNotFoundError(f"stage {stage} has no final checkpoint at {folder / 'final'}: train it first")
    return evaluate_folder(stage, folder, Path(recipe.output_root), train.packing.max_tokens)
