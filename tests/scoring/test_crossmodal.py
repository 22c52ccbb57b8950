"""Cross-modal complexity C(Ms, Ml) and S_task against hand-made loss tables; re-tuning loads no model."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from magicvl.flows.recipe import RecipeError, parse_recipe
from magicvl.scoring import crossmodal as cm
from magicvl.scoring.combine import AxisWeights, CombineConfig
from magicvl.scoring.crossmodal import TaskRule, c_score, indicator, s_task
from magicvl.scoring.score import cutoffs, decide, gather_stats, score_rows, split_histograms
from magicvl.scoring.stages import StageRule

NAN = np.nan
# Pair (a, b) with β = 2, δ = 1: hit iff loss_a > 2·loss_b > 1.
#            loss_a loss_b   2·loss_b  hit
TABLE_AB = [
    (3.0, 1.0),  # 2      1  (3 > 2 > 1)
    (2.0, 2.0),  # 4      0  equal losses
    (5.0, 0.5),  # 1.0    0  exactly at δ (strict)
    (4.0, 2.0),  # 4      0  exactly at the ratio (strict)
    (4.5, 2.0),  # 4      1
    (NAN, 1.0),  # -      -  missing loss: not counted
]
HITS_AB = [1, 0, 0, 0, 1, NAN]
# β = 1: hit iff loss_a > loss_b > 1: rows 4 and 5 (row 1: loss_b = 1 is not > 1; row 2: equal)
HITS_AB_BETA1 = [0, 0, 0, 1, 1, NAN]


def _ab() -> tuple[np.ndarray, np.ndarray]:
    return np.array([r[0] for r in TABLE_AB]), np.array([r[1] for r in TABLE_AB])


def test_indicator_is_the_papers_strict_inequality():
    a, b = _ab()
    np.testing.assert_array_equal(indicator(a, b, 2.0, 1.0), HITS_AB)
    np.testing.assert_array_equal(indicator(a, b, 1.0, 1.0), HITS_AB_BETA1)
    assert c_score(a, b, 2.0, 1.0) == pytest.approx(2 / 5)
    assert c_score(a, b, 1.0, 1.0) == pytest.approx(2 / 5)
    same = np.array([1.0, 2.0, 3.0])
    assert c_score(same, same, 1.0, 0.0) == 0.0  # equal losses never count, whatever δ
    assert np.isnan(c_score(np.array([NAN]), np.array([1.0]), 1.0, 0.0))  # no sample: no C


def test_s_task_is_the_mean_of_c_over_pairs():
    a, b = _ab()
    c = np.array([0.5, 0.5, 0.1, 1.0, 1.0, 0.5])
    # (b, c), β = 2, δ = 1: 2·c = 1, 1, .2, 2, 2, 1 → hits: 1 > 1 no; 2 > 1 no (δ); .2 no; 2 > 2 no; 2 > 2 no;
    # 1 > 1 no → C(b, c) = 0 / 6.
    assert c_score(b, c, 2.0, 1.0) == 0.0
    losses = {"a": a, "b": b, "c": c}
    assert s_task(losses, [("a", "b"), ("b", "c")], 2.0, 1.0) == pytest.approx(0.5 * (2 / 5 + 0))
    # δ = 0: (b, c) hits where b > 2c > 0: rows 2 (2 > 1), 3 (.5 > .2); row 6 (1 > 1) not → 2/6
    assert c_score(b, c, 2.0, 0.0) == pytest.approx(2 / 6)
    # and (a, b) gains row 3 (5 > 1 > 0, no longer held back by δ) → 3/5
    assert c_score(a, b, 2.0, 0.0) == pytest.approx(3 / 5)
    assert s_task(losses, [("a", "b"), ("b", "c")], 2.0, 0.0) == pytest.approx(0.5 * (3 / 5 + 2 / 6))


def _task_only(granularity: str, **task) -> CombineConfig:
    return CombineConfig(
        granularity=granularity,
        normalization="minmax",
        log1p=(),
        weights={"vqa": AxisWeights(text=0.0, image=0.0, task=1.0)},
        stages=StageRule(instruction_low_share=0.5),
        task=TaskRule(**task),
    )


def _metrics(rows: list[tuple[float, float, float]]) -> dict[str, np.ndarray]:
    return {cm.loss_metric(m): np.array([r[k] for r in rows], float) for k, m in enumerate("abc")}


AXES = {cm.loss_metric(m): "task" for m in "abc"}


def test_dataset_granularity_c_per_unit_from_merged_counts():
    # two units; rows are (loss_a, loss_b, loss_c); β = 2, δ = 1
    rows = [(3.0, 1.0, 0.4), (2.0, 2.0, 0.9), (5.0, 0.5, 0.1), (4.0, 2.0, 0.8), (4.5, 2.0, 1.5), (NAN, 1.0, 0.2)]
    ds = ["d1", "d1", "d1", "d2", "d2", "d2"]
    cats = ["vqa"] * 6
    errors: list[list[str]] = [[] for _ in rows]
    cfg = _task_only("dataset", beta=2.0, delta=1.0)
    metrics = _metrics(rows)
    parts = [
        gather_stats(ds[s], cats[s], {m: v[s] for m, v in metrics.items()}, errors[s], cfg)
        for s in (slice(0, 2), slice(2, 6))
    ]
    stats = parts[0].merge(parts[1])
    assert stats.pair_counts["d1/vqa"]["C(vlm_loss@a,vlm_loss@b)"] == [1.0, 3]
    decision = decide(stats, AXES, cfg)
    assert decision.absent_axes == ["text", "image"]
    u1, u2 = decision.units["d1/vqa"], decision.units["d2/vqa"]
    # (a, b): d1 hits row 1 → 1/3; d2 hits row 5 of rows 4, 5 (row 6 lacks loss_a) → 1/2
    assert u1["C(vlm_loss@a,vlm_loss@b)"] == pytest.approx(1 / 3)
    assert u2["C(vlm_loss@a,vlm_loss@b)"] == pytest.approx(1 / 2)
    # (b, c): 2c = .8 .8+1 .2 | 1.6 3 .4 → d1: 1 > .8 but .8 ≤ δ, 2 > 1.8 > 1 hit, no → 1/3; d2: 2 > 1.6 > 1 hit → 1/3
    assert u1["C(vlm_loss@b,vlm_loss@c)"] == pytest.approx(1 / 3)
    assert u2["C(vlm_loss@b,vlm_loss@c)"] == pytest.approx(1 / 3)
    assert u1["s_task"] == u1["complexity"] == pytest.approx(1 / 3)
    assert u2["s_task"] == pytest.approx(0.5 * (1 / 2 + 1 / 3))
    assert (u1["stage"], u2["stage"]) == (3, 4)
    rows_out = score_rows(ds, cats, metrics, errors, cfg, decision)
    np.testing.assert_allclose(rows_out.axes["task"], [1 / 3] * 3 + [5 / 12] * 3)
    assert np.isnan(rows_out.normalized[cm.loss_metric("a")]).all()  # losses feed C, they are not an axis


def test_sample_granularity_indicator_and_difference():
    rows = [(3.0, 1.0, 0.4), (2.0, 2.0, 0.9), (4.5, 2.0, 1.5), (NAN, 1.0, 0.2)]
    ds, cats, errors = ["d"] * 4, ["vqa"] * 4, [[] for _ in rows]
    metrics = _metrics(rows)
    cfg = _task_only("sample", beta=2.0, delta=1.0)
    d = decide(gather_stats(ds, cats, metrics, errors, cfg), AXES, cfg)
    out = score_rows(ds, cats, metrics, errors, cfg, d)
    # (a,b) hits: 1, 0, 1, -   (b,c) hits: 2c=.8 (≤ δ) 0, 1.8: 2 > 1.8 > 1 → 1, 3 no 0, .4 no 0
    np.testing.assert_allclose(out.axes["task"], [0.5, 0.5, 0.5, 0.0])
    cfg = _task_only("sample", beta=2.0, delta=1.0, per_sample="difference", pairs=[("a", "b")])
    d = decide(gather_stats(ds, cats, metrics, errors, cfg), AXES, cfg)
    out = score_rows(ds, cats, metrics, errors, cfg, d)
    # a − b = 2, 0, 2.5, - → min-max over the population: .8, 0, 1, - (no value: dropped)
    np.testing.assert_allclose(out.axes["task"][:3], [0.8, 0.0, 1.0])
    assert out.fate == ["kept", "kept", "kept", "dropped"]


def _retune(beta: float) -> list[int]:
    #      loss_a loss_b     β=1: hit   β=2: hit     (δ = 1)
    rows = [
        (5.0, 1.5, 0.0),  # 5>1.5>1 1   5>3>1 1
        (3.0, 2.0, 0.0),  # 3>2>1   1   3>4   0
        (2.0, 0.8, 0.0),  # .8≤1    0   2>1.6>1 1
        (1.0, 1.0, 0.0),  # equal   0   1>2   0
    ]
    ds, cats, errors = ["d"] * 4, ["vqa"] * 4, [[] for _ in rows]
    metrics = _metrics(rows)
    cfg = _task_only("sample", beta=beta, delta=1.0, pairs=[("a", "b")])
    d = decide(gather_stats(ds, cats, metrics, errors, cfg), AXES, cfg)
    d.cutoffs = cutoffs(split_histograms(cats, score_rows(ds, cats, metrics, errors, cfg, d), cfg.stages), cfg)
    return score_rows(ds, cats, metrics, errors, cfg, d).stage.tolist()


def test_retuning_beta_moves_exactly_the_expected_samples_and_loads_no_model(monkeypatch):
    import magicvl.model.backends.vlm as vlm
    import magicvl.tasks.backends as backends

    def refuse(*_a, **_k):
        raise AssertionError("re-tuning loaded a model")

    monkeypatch.setattr(vlm.VlmLoss, "load", refuse)
    monkeypatch.setattr(vlm, "load_vlm_backend", refuse)
    monkeypatch.setattr(backends, "load_backend", refuse)
    before, after = _retune(1.0), _retune(2.0)
    assert before == [4, 4, 3, 3] and after == [4, 3, 4, 3]
    moved = Counter((b, a) for b, a in zip(before, after) if b != a)
    assert moved == {(4, 3): 1, (3, 4): 1}


def test_combine_arithmetic_imports_no_model_library():
    code = (
        "import sys\n"
        "from tests.scoring.test_crossmodal import _retune\n"
        "assert _retune(2.0) == [4, 3, 4, 3]\n"
        "loaded = sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def _recipe(tmp_path: Path, **extra) -> dict:
    return {"output": "out", "datasets": [{"name": "d", "format": "jsonl", "path": "x.jsonl"}], **extra}


def test_recipe_cross_modal_models_and_pairs(tmp_path):
    (tmp_path / "models" / "s").mkdir(parents=True)
    data = _recipe(
        tmp_path,
        cross_modal={
            "models": {
                "2b": {"model": "models/s", "batch_size": 4},
                "7b": {"model": "Qwen/Qwen2-VL-7B-Instruct", "dtype": "bfloat16", "resources": {"num_gpus": 1}},
                "72b": {"model": "Qwen/Qwen2-VL-72B-Instruct", "engine": "vllm", "tensor_parallel": 4,
                        "resources": {"num_gpus": 4}},
            }
        },
        combine={"task": {"beta": 1.2, "delta": 0.5, "pairs": [["2b", "7b"], ["7b", "72b"]]}},
    )
    recipe = parse_recipe(data, tmp_path)
    jobs = cm.model_jobs(recipe.cross_modal, recipe.base_dir)
    assert [j.name for j in jobs] == ["vlm_loss@2b", "vlm_loss@7b", "vlm_loss@72b"]
    assert jobs[0].params.model == str((tmp_path / "models" / "s").resolve()) and jobs[0].params.batch_size == 4
    assert jobs[2].params.engine == "vllm" and jobs[2].resources.num_gpus == 4
    assert "resources" not in recipe.cross_modal.models["7b"].model_dump()
    bad = {**data, "combine": {"task": {"pairs": [["2b", "13b"]]}}}
    with pytest.raises(RecipeError, match="13b"):
        parse_recipe(bad, tmp_path)
    with pytest.raises(RecipeError, match="cross_modal.models"):
        parse_recipe(_recipe(tmp_path, cross_modal={"models": {"only": {"model": "x"}}}), tmp_path)
