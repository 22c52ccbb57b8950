"""The combine arithmetic against hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from magicvl.scoring.combine import CombineConfig, complexity
from magicvl.scoring.score import PopulationStats, cutoffs, decide, gather_stats, score_rows, split_histograms
from magicvl.scoring.stages import StageRule, low_bin_cutoff, split_units

AXES = {"token_length": "text", "type_token_ratio": "text", "image_entropy": "image"}

# Hand-worked example (sample granularity, min-max, no log transform). Rows E and F must not
# influence normalisation: E has a signal error (quarantined), F has no category (dropped).
#        cat       L    T     E
ROWS = [
    ("caption", 10, 0.50, 2.0),  # A
    ("caption", 30, 1.00, 6.0),  # B
    ("vqa", 20, 0.75, np.nan),  # C (no image)
    ("vqa", 50, 0.25, 8.0),  # D
    ("vqa", 999, 0.00, 0.0),  # E: quarantined
    (None, -99, 9.00, 99.0),
]  # F: dropped
# L̂ = (L-10)/40: A 0, B .5, C .25, D 1        T̂ = (T-.25)/.75: A 1/3, B 1, C 2/3, D 0
# Ê = (E-2)/6: A 0, B 2/3, C -, D 1
# S_text = mean(L̂, T̂): A 1/6, B 3/4, C 11/24, D 1/2;  S_image = Ê
# caption λ = (.4, .4, .2), vqa λ = (.3, .3, .4); task axis absent → renormalise over present axes:
# S: A (1/6+0)/2 = 1/12, B (3/4+2/3)/2 = 17/24, C = S_text = 11/24, D (1/2+1)/2 = 3/4
EXPECTED_S = [1 / 12, 17 / 24, 11 / 24, 3 / 4]


def columns():
    cats = [r[0] for r in ROWS]
    metrics = {
        "token_length": np.array([r[1] for r in ROWS], float),
        "type_token_ratio": np.array([r[2] for r in ROWS], float),
        "image_entropy": np.array([r[3] for r in ROWS], float),
    }
    errors = [[], [], [], [], ["image_entropy: boom"], []]
    return ["ds"] * len(ROWS), cats, metrics, errors


def config(**kw) -> CombineConfig:
    return CombineConfig(
        granularity="sample",
        normalization="minmax",
        log1p=(),
        stages=StageRule(caption_low_share=0.5, instruction_low_share=0.5),
        **kw,
    )


def test_sample_granularity_hand_worked_example():
    ds, cats, metrics, errors = columns()
    cfg = config()
    # statistics gathered over two shards and merged equal the hand-worked population
    half = [
        gather_stats(ds[s], cats[s], {m: v[s] for m, v in metrics.items()}, errors[s], cfg)
        for s in (slice(0, 3), slice(3, 6))
    ]
    stats = half[0].merge(half[1])
    assert stats.moments["token_length"].min == 10 and stats.moments["token_length"].max == 50
    decision = decide(stats, AXES, cfg)
    assert decision.absent_axes == ["task"]
    rows = score_rows(ds, cats, metrics, errors, cfg, decision)
    np.testing.assert_allclose(rows.complexity[:4], EXPECTED_S)
    np.testing.assert_allclose(rows.axes["text"][:4], [1 / 6, 3 / 4, 11 / 24, 1 / 2])
    assert np.isnan(rows.axes["image"][2])
    assert rows.fate == ["kept"] * 4 + ["quarantined", "dropped"]
    assert rows.reason[4] == "image_entropy: boom" and rows.reason[5] == "uncategorized"
    decision.cutoffs = cutoffs(split_histograms(cats, rows, cfg.stages), cfg)
    staged = score_rows(ds, cats, metrics, errors, cfg, decision)
    assert staged.stage.tolist() == [1, 2, 3, 4, 0, 0]


def test_weights_move_samples_between_stages():
    ds, cats, metrics, errors = columns()
    # vqa judged by the image axis only: C has no image, so no axis is left to score it: dropped, with the reason.
    cfg = config(weights={"vqa": {"text": 0.0, "image": 1.0, "task": 0.0}})
    decision = decide(gather_stats(ds, cats, metrics, errors, cfg), AXES, cfg)
    rows = score_rows(ds, cats, metrics, errors, cfg, decision)
    assert rows.fate[2] == "dropped" and rows.reason[2] == "no_complexity_axis"
    assert rows.complexity[3] == pytest.approx(1.0)


def test_dataset_granularity_scores_whole_units():
    # units: a/caption mean L 20 (n=2), b/caption L 50 (n=1), c/caption L 10 (n=3); one metric.
    ds = ["a", "a", "b", "c", "c", "c"]
    cats = ["caption"] * 6
    metrics = {"token_length": np.array([10, 30, 50, 10, 10, 10], float)}
    errors = [[] for _ in ds]
    cfg = CombineConfig(granularity="dataset", log1p=(), stages=StageRule(caption_low_share=0.5))
    decision = decide(gather_stats(ds, cats, metrics, errors, cfg), {"token_length": "text"}, cfg)
    # unit means 20, 50, 10 → minmax 0.25, 1, 0; S = S_text (only axis present)
    assert decision.units["a/caption"]["complexity"] == pytest.approx(0.25)
    assert decision.units["b/caption"]["complexity"] == pytest.approx(1.0)
    assert decision.units["c/caption"]["complexity"] == pytest.approx(0.0)
    # low share 0.5 of 6 samples = 3: the smallest prefix by S reaching 3 is {c} (3 samples)
    assert {u: d["stage"] for u, d in decision.units.items()} == {"a/caption": 2, "b/caption": 2, "c/caption": 1}
    rows = score_rows(ds, cats, metrics, errors, cfg, decision)
    assert rows.stage.tolist() == [2, 2, 2, 1, 1, 1]
    np.testing.assert_allclose(rows.complexity, [0.25, 0.25, 1, 0, 0, 0])


def test_split_rules():
    hist = np.zeros(10_000, np.int64)
    hist[[10, 20, 30, 40]] = 1
    assert low_bin_cutoff(hist, 0.5) == 20  # the two lowest
    assert low_bin_cutoff(hist, 0.0) == -1
    assert low_bin_cutoff(hist, 1.0) == 40
    # paper's example: 10M low of 33M captions with share 0.30
    assert split_units([0.2, 0.7], [10_000_000, 23_000_000], ["A", "B"], 0.30) == {"A"}


def test_complexity_renormalises_over_present_axes():
    s = complexity(
        {"text": np.array([0.2, np.nan]), "image": np.array([0.8, 0.8]), "task": np.array([np.nan, np.nan])},
        ["caption", "caption"],
        config().weights,
    )
    np.testing.assert_allclose(s, [0.5, 0.8])


def test_config_validation_names_the_problem():
    with pytest.raises(ValidationError, match="unknown categories"):
        CombineConfig(weights={"memes": {"text": 1, "image": 0, "task": 0}})
    with pytest.raises(ValidationError, match="at least one weight"):
        CombineConfig(weights={"ocr": {"text": 0, "image": 0, "task": 0}})
    with pytest.raises(ValidationError):
        StageRule(caption_low_share=1.5)


def test_population_stats_round_trip():
    ds, cats, metrics, errors = columns()
    s = gather_stats(ds, cats, metrics, errors, config())
    again = PopulationStats.from_dict(s.to_dict())
    assert again.to_dict() == s.to_dict()


def test_split_within_category_or_group():
    ds = ["d"] * 4
    cats = ["vqa", "vqa", "ocr", "ocr"]
    metrics = {"token_length": np.array([1.0, 2.0, 8.0, 9.0])}  # S = L̂ = 0, 1/8, 7/8, 1
    errors = [[] for _ in ds]
    stages = {}
    for within in ("category", "group"):
        cfg = CombineConfig(
            granularity="sample", log1p=(), stages=StageRule(instruction_low_share=0.5, split_within=within)
        )
        decision = decide(gather_stats(ds, cats, metrics, errors, cfg), {"token_length": "text"}, cfg)
        rows = score_rows(ds, cats, metrics, errors, cfg, decision)
        decision.cutoffs = cutoffs(split_histograms(cats, rows, cfg.stages), cfg)
        stages[within] = score_rows(ds, cats, metrics, errors, cfg, decision).stage.tolist()
    assert stages["category"] == [3, 4, 3, 4]  # every task contributes low and high data
    assert stages["group"] == [3, 3, 4, 4]  # one ranking across all instruction data
