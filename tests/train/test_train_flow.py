"""`train_curriculum` chains four stages (torchrun subprocesses) and freezes what each stage must not train."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from magicvl.model.magicvl import MagicVL

PARTS = ("vision.", "projector.", "language.")


def write_recipe(root: Path, tiny: Path) -> Path:
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
            "stages": {k: {"steps": 2, "lr": 1e-3, "warmup_steps": 1} for k in (1, 2, 3, 4)},
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

    from magicvl.flows.train import train_curriculum
    from magicvl.sample_data.synthetic_curated import write_curated

    write_curated(tmp_path / "out", n_per_stage=12)
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
    # a rerun finds every stage finished and trains nothing
    assert train_curriculum(str(write_recipe(tmp_path, tiny_dir))) == finals
