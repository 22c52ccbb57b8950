"""GPUs in the recipe: device/dtype fields, tensor_parallel vs num_gpus, the per-node check of
`magicvl validate`, and flows/recipes/paper.yaml (hub ids are accepted as they are: nothing downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from magicvl.flows.cli import main
from magicvl.flows.gpu_plan import fit_problems, gpu_steps, local_gpu_count
from magicvl.flows.recipe import RecipeError, load_recipe, parse_recipe
from magicvl.scoring.judge import CoherenceJudgeConfig
from magicvl.scoring.signals import get_signal
from magicvl.tasks.steps.signals.units import SignalJob

PAPER = Path(__file__).resolve().parents[2] / "flows" / "recipes" / "paper.yaml"
BASE = {"output": "out", "datasets": [{"name": "d", "format": "jsonl", "path": "d.jsonl"}]}


def test_the_paper_recipe_validates_with_its_models_and_gpus():
    r = load_recipe(PAPER)
    assert r.signal_params("perplexity").model == "Qwen/Qwen2.5-1.5B"  # a hub id stays an id
    assert r.signal_params("object_density").model == "IDEA-Research/grounding-dino-tiny"
    models = r.cross_modal.models
    assert [m.model for m in models.values()] == [f"Qwen/Qwen2-VL-{s}-Instruct" for s in ("2B", "7B", "72B")]
    assert models["72b"].engine == "vllm" and models["72b"].tensor_parallel == 4 and models["72b"].dtype == "bfloat16"
    steps = {s.gpus_field: s.num_gpus for s in gpu_steps(r)}
    assert steps == {
        "resources.signals.perplexity.num_gpus": 1, "resources.signals.object_density.num_gpus": 1,
        "resources.signals.ocr_text_density.num_gpus": 0.25, "cross_modal.models.2b.resources.num_gpus": 1,
        "cross_modal.models.7b.resources.num_gpus": 1, "cross_modal.models.72b.resources.num_gpus": 4,
    }  # fmt: skip
    assert fit_problems(gpu_steps(r), [8.0] * 16, "a 16 × 8-GPU cluster") == []
    assert fit_problems(gpu_steps(r), [4.0], "x") == []
    assert fit_problems(gpu_steps(r), [2.0, 2.0], "two 2-GPU nodes") == [
        "cross_modal.models.72b.resources.num_gpus is 4: more GPUs per actor than any node of two 2-GPU nodes has "
        "(GPUs per node: [2.0, 2.0])"
    ]


def _cross_modal(tp: int, gpus: float) -> dict:
    big = {"model": "Qwen/Qwen2-VL-72B-Instruct", "engine": "vllm", "tensor_parallel": tp,
           "resources": {"num_gpus": gpus}}  # fmt: skip
    return {"models": {"7b": {"model": "Qwen/Qwen2-VL-7B-Instruct"}, "72b": big}}


def test_tensor_parallel_must_match_num_gpus_and_needs_vllm(tmp_path):
    ok = parse_recipe({**BASE, "cross_modal": _cross_modal(4, 4)}, tmp_path)
    assert ok.cross_modal.models["72b"].tensor_parallel == 4
    with pytest.raises(RecipeError) as e:
        parse_recipe({**BASE, "cross_modal": _cross_modal(4, 2)}, tmp_path)
    assert str(e.value) == (  # one cause: one line
        "invalid recipe <recipe>: cross_modal.models.72b.tensor_parallel is 4 but cross_modal.models.72b.resources"
        ".num_gpus is 2: one vLLM actor spans tensor_parallel GPUs, so the two must be equal"
    )
    with pytest.raises(RecipeError, match=r"tensor_parallel is 1 but cross_modal.models.72b.resources.num_gpus is 4"):
        parse_recipe({**BASE, "cross_modal": _cross_modal(1, 4)}, tmp_path)
    with pytest.raises(RecipeError, match=r"perplexity: Value error, tensor_parallel applies to backend vllm"):
        parse_recipe({**BASE, "signals": {"perplexity": {"model": "m", "tensor_parallel": 2}}}, tmp_path)
    judge = {"coherence": {"model": "Qwen/Qwen2.5-72B-Instruct", "backend": "vllm", "tensor_parallel": 8}}
    with pytest.raises(RecipeError, match=r"judge.coherence.tensor_parallel is 8 but resources.judge.num_gpus is 4"):
        parse_recipe({**BASE, "judge": judge, "resources": {"judge": {"num_gpus": 4}}}, tmp_path)
    with pytest.raises(RecipeError, match=r"signals\.perplexity\.device|perplexity: device"):
        parse_recipe({**BASE, "signals": {"perplexity": {"model": "m", "device": "gpu"}}}, tmp_path)


def test_dtype_is_in_the_cache_key_device_and_tensor_parallel_are_not():
    ppl = get_signal("perplexity")

    def key(**kw) -> str:
        return SignalJob.of(ppl, ppl.params(model="Qwen/Qwen2.5-1.5B", **kw)).key("shard")

    assert key() == key(device="cpu") == key(device="cuda")
    assert key(dtype="float32") != key()  # default bfloat16
    assert key(backend="vllm") == key(backend="vllm", tensor_parallel=4) != key()
    vlm = get_signal("vlm_loss")
    base = {"model": "Qwen/Qwen2-VL-72B-Instruct", "engine": "vllm"}
    vkey = lambda **kw: SignalJob.of(vlm, vlm.params(**base, **kw)).key("s")  # noqa: E731
    assert vkey() == vkey(tensor_parallel=4, device="cuda") != vkey(dtype="bfloat16")
    judge = CoherenceJudgeConfig(model="m")
    assert "dtype" not in judge.model_dump() and "device" not in judge.model_dump()  # keys of earlier runs hold
    assert CoherenceJudgeConfig(model="m", dtype="bfloat16").model_dump()["dtype"] == "bfloat16"
    assert judge.load_options() == {"dtype": None, "device": "auto", "tensor_parallel": 1}


def test_validate_checks_gpus_per_node_unless_offline(tmp_path, monkeypatch, capsys):
    data = yaml.safe_load(PAPER.read_text())
    data["ray"] = {"address": "local"}
    recipe = tmp_path / "paper.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # this machine: no GPU for a local Ray
    assert local_gpu_count() == 0
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: recipe {recipe}: resources.signals.perplexity.num_gpus is 1:")
    assert main(["validate", "--offline", str(recipe)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("# cluster not checked (--offline)")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert local_gpu_count() == 4


def test_a_local_run_with_four_gpus_passes_the_check(tmp_path, monkeypatch, capsys):
    import ray

    if ray.is_initialized():
        pytest.skip("a shared Ray is running in this process: validate reads its nodes instead")
    data = yaml.safe_load(PAPER.read_text())
    data["ray"] = {"address": "local"}
    recipe = tmp_path / "paper.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert main(["validate", str(recipe)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("# GPUs per node of this machine (local Ray): [4.0]")
