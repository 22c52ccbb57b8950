"""`train_curriculum` chains four stages (torchrun subprocesses), freezes what each stage must not train,
evaluates every stage on the held-out split, and retrains exactly the stages whose training key changed."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from magicvl.model.magicvl import MagicVL

PARTS = ("vision.", "projector.", "language.")


def write_recipe(root: Path, tiny: Path, stage4_lr: float = 1e-3) -> Path:
    recipe = {
        "output": "out",
        "datasets": [{"name": "synthetic", "format": "jsonl", "path": "unused.jsonl"}],
        "signals": {"image_entropy": {}},  # a recipe needs one (it would also curate)
        "train": {
            "model": str(tiny),
            "bf16": False,
            "checkpoint_every": 2,
            "log_every": 1,
            "packing": {"max_tokens": 1024, "max_images": 8, "buffers": 4, "shuffle_window": 8},
            "stages": {k: {"steps": 2, "lr": stage4_lr if k == 4 else 1e-3, "warmup_steps": 1} for k in (1, 2, 3, 4)},
        },
    }
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def moved(before: dict, after: dict) -> dict[str, bool]:
    """Per model part: did any weight change?"""
    return {p: any(not torch.equal(before[k], after[k]) for k in before if k.startswith(p)) for p in PARTS}


def test_train_curriculum_chains_four_stages_and_freezes_per_stage(tmp_path, tiny_dir, prefect_harness):
    from prefect.client.orchestration import get_client  # noqa: F401  (the harness provides the API)

    from magicvl.flows.evaluate import evaluate_stage
    from magicvl.flows.report.train_report import write_train_page
    from magicvl.flows.train import train_curriculum
    from magicvl.sample_data.synthetic_curated import write_curated, write_eval_split

    write_curated(tmp_path / "out", n_per_stage=12)
    write_eval_split(tmp_path / "out", n_per_stage=3, stages=(4,))
    finals = train_curriculum(str(write_recipe(tmp_path, tiny_dir)))
    assert [Path(f).parent.name for f in finals] == ["stage=1", "stage=2", "stage=3", "stage=4"]
    weights = [load_file(tiny_dir / "model.safetensors")] + [load_file(Path(f) / "model.safetensors") for f in finals]
    expected = [
        {"vision.": False, "projector.": True, "language.": False},
        {"vision.": True, "projector.": True, "language.": False},
        {"vision.": True, "projector.": True, "language.": True},
        {"vision.": True, "projector.": True, "language.": True},
    ]
    for k, want in enumerate(expected):
        assert moved(weights[k], weights[k + 1]) == want, f"stage {k + 1}"
    for k, f in enumerate(finals, start=1):
        MagicVL.from_pretrained(f)  # each stage's final checkpoint loads
        stage = Path(f).parent
        rows = [json.loads(x) for x in (stage / "metrics.jsonl").read_text().splitlines()]
        assert [r["stage"] for r in rows] == [k, k] and (stage / "loss.png").stat().st_size > 1000
        init = json.loads((stage / "run.json").read_text())["init_from"]
        assert init == (str(tiny_dir) if k == 1 else finals[k - 2])
    # every stage was evaluated on the held-out split, per category, and carries its training key
    evals = [json.loads((Path(f).parent / "eval.json").read_text()) for f in finals]
    assert all(sorted(e["categories"]) == ["chart", "gui", "reasoning"] and e["all"]["tokens"] > 0 for e in evals)
    assert all(
        e["train_key"] == json.loads((Path(f) / "TRAIN_KEY.json").read_text())["key"] for e, f in zip(evals, finals)
    )
    assert len({e["all"]["nll"] for e in evals}) == 4  # each stage's weights score differently
    stamps = {
        f: ((Path(f) / "model.safetensors").stat().st_mtime_ns, (Path(f).parent / "eval.json").stat().st_mtime_ns)
        for f in finals
    }
    # a rerun finds every stage trained from the same data, config and start: it trains and evaluates nothing
    assert train_curriculum(str(write_recipe(tmp_path, tiny_dir))) == finals
    assert stamps == {
        f: ((Path(f) / "model.safetensors").stat().st_mtime_ns, (Path(f).parent / "eval.json").stat().st_mtime_ns)
        for f in finals
    }
    # stage 4 re-tuned: stages 1-3 are kept, stage 4 is retrained from stage 3 and evaluated again
    assert train_curriculum(str(write_recipe(tmp_path, tiny_dir, stage4_lr=2e-3))) == finals
    assert all((Path(f) / "model.safetensors").stat().st_mtime_ns == stamps[f][0] for f in finals[:3])
    retrained = load_file(Path(finals[3]) / "model.safetensors")
    assert any(not torch.equal(retrained[k], weights[4][k]) for k in retrained)
    new_eval = json.loads((Path(finals[3]).parent / "eval.json").read_text())
    assert new_eval["train_key"] != evals[3]["train_key"] and new_eval["all"]["nll"] != evals[3]["all"]["nll"]
    # `magicvl evaluate --stage 2` (the `evaluate` flow) recomputes the same numbers
    again = evaluate_stage(str(write_recipe(tmp_path, tiny_dir, stage4_lr=2e-3)), 2)
    assert again["categories"] == evals[1]["categories"]
    # the report's training page: eval per category across stages, loss and LR curves
    page = write_train_page(tmp_path / "out", tmp_path / "report")
    text = page.read_text()
    assert "stage 4 NLL / accuracy" in text and "reasoning" in text and "mean tokens/s" in text
    assert (tmp_path / "report" / "train_eval.png").stat().st_size > 1000
