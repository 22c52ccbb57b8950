"""The train recipe section: paper defaults, validation naming the field, generated DeepSpeed JSON, orders."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from magicvl.model.train_config import TrainConfig


def test_paper_defaults():
    t = TrainConfig(model="m")
    assert [t.stages[k].lr for k in (1, 2, 3, 4)] == [2e-4, 1e-5, 4e-5, 4e-5]
    assert [t.stages[k].warmup for k in (1, 2, 3, 4)] == [100, 100, 4200, 7500]  # 0.03 x 140k / 250k
    assert [t.stages[k].steps for k in (1, 2, 3, 4)] == [65_000, 90_000, 140_000, 250_000]
    assert t.stages[1].trainable == ["projector"] and t.stages[2].trainable == ["vision", "projector"]
    assert (t.packing.max_tokens, t.packing.max_images) == (16_384, 48)


def test_a_partial_stage_keeps_the_other_paper_values_and_warmup_kind_can_change():
    t = TrainConfig(model="m", stages={"3": {"steps": 100, "warmup_steps": 5}})
    assert t.stages[3].lr == 4e-5 and t.stages[3].warmup == 5 and t.stages[3].warmup_ratio is None
    assert t.stages[4].steps == 250_000


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"stages": {"5": {"steps": 1}}}, "unknown stage"),
        ({"stages": {"1": {"lr": -1}}}, "stages.1.lr"),
        ({"zero_stage": 4}, "zero_stage"),
        ({"order": "random"}, "order"),
        ({"stages": {"2": {"trainable": ["eyes"]}}}, "stages.2.trainable"),
        ({"packing": {"max_tokens": 0}}, "packing.max_tokens"),
        ({"bogus": 1}, "bogus"),
        ({"launch": {"nnodes": 2}}, "launch"),  # no master_port: the nodes could not meet
        ({"launch": {"nnodes": 2, "node_rank": 2, "master_port": 29500}}, "launch"),
        ({"launch": {"nnodes": 2, "master_port": 29500, "launcher": "deepspeed"}}, "launch"),  # no hostfile
    ],
)
def test_bad_values_name_the_field(data, field):
    with pytest.raises(ValidationError) as e:
        TrainConfig(model="m", **data)
    assert field in str(e.value)


def test_both_warmups_refused():
    with pytest.raises(ValidationError, match="exactly one of warmup_steps or warmup_ratio"):
        TrainConfig(model="m", stages={1: {"warmup_steps": 3, "warmup_ratio": 0.1}})


def test_deepspeed_json_is_generated_from_the_recipe():
    t = TrainConfig(model="m", zero_stage=3, bf16=False, grad_clip=0.5, stages={2: {"micro_batch": 2, "grad_accum": 4}})
    ds = t.deepspeed_config(2)
    assert ds["zero_optimization"] == {"stage": 3} and ds["bf16"] == {"enabled": False}
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"], ds["gradient_clipping"]) == (
        2,
        4,
        0.5,
    )


def test_orders_choose_the_data_of_each_stage():
    cur = TrainConfig(model="m")
    assert [cur.sources(k)[0].stages for k in (1, 2, 3, 4)] == [[1], [2], [3], [4]]
    cat = TrainConfig(model="m", order="categorized")
    assert cat.sources(1)[0].categories == ["caption"] and cat.sources(2)[0].split == (1, 2)
    assert cat.sources(3)[0].stages == [3, 4] and cat.sources(3)[0].categories is None
    once = TrainConfig(model="m", order="all_at_once")
    assert once.stage_plan() == [4] and once.sources(4)[0].stages == [1, 2, 3, 4]
    explicit = TrainConfig(model="m", stages={1: {"data": [{"stages": [1, 3], "categories": ["ocr"]}]}})
    assert explicit.sources(1)[0].stages == [1, 3]
