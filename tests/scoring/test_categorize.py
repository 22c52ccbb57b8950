"""The 8-task categorizer: rules on examples of every category (English, Chinese), and label precedence."""

from __future__ import annotations

import pytest

from magicvl.scoring.categorize import CategorizeConfig, categorize, categorize_batch, rule_category
from magicvl.storage.schema import CATEGORIES


def _conv(prompt: str, answer: str, image: bool = True) -> list[dict[str, str]]:
    return [{"from": "human", "value": ("<image>\n" if image else "") + prompt}, {"from": "gpt", "value": answer}]


EXAMPLES = [
    ("text_only", "Give me three tips for a job interview.", "1. Research the company.", False),
    ("text_only", "Describe the chart below.", "There is no chart.", False),  # no image wins
    ("grounding", "Locate the magenta square in the image.", "[0.530, 0.522, 0.662, 0.656]", True),
    (
        "grounding",
        "Find the cat.",
        "<|object_ref_start|>the cat<|object_ref_end|><|box_start|>(7,8),(90,99)<|box_end|>",
        True,
    ),
    ("grounding", "What object is inside the region [0.6, 0.15, 0.75, 0.32]?", "A blue triangle.", True),
    ("grounding", "请框出图中的狗。", "(10,20),(200,220)", True),
    ("ocr", "Transcribe the text in this document.", "INVOICE No 42", True),
    ("ocr", "What is written on the sign?", "STOP", True),
    ("ocr", "请识别图中的文字。", "欢迎光临", True),
    ("chart", "Which bar is the tallest?", "B", True),
    ("chart", "What is the value for Pears?", "74", True),
    ("chart", "这个柱状图的最大值是多少？", "42", True),
    ("gui", "Click the Settings button.", "Tap at (350, 950).", True),
    ("gui", "What is the name of the field at pixel (1110, 441)?", "Quantity", True),
    ("gui", "这个界面上有几个按钮？", "三个", True),
    ("caption", "Describe the image briefly.", "A cat on a table.", True),
    ("caption", "", "A cat on a table.", True),  # bare image prompt
    ("caption", "请描述这张图片。", "一只猫在桌子上。", True),
    ("reasoning", "Solve the problem in the image. Think step by step.", "x = 180 - 60 - 21 = 99.", True),
    ("reasoning", "What is the area of the rectangle? Show your steps.", "5 × 16 = 80", True),
    ("reasoning", "请一步一步计算三角形的面积。", "面积 = 6 × 8 / 2 = 24", True),
    ("vqa", "What color is the car?", "Red", True),
    ("vqa", "图中有几只猫？", "两只", True),
    ("vqa", "ما لون السيارة؟", "أحمر", True),
]


@pytest.mark.parametrize(("category", "prompt", "answer", "image"), EXAMPLES)
def test_rules(category, prompt, answer, image):
    assert rule_category(_conv(prompt, answer, image), image) == category


def test_every_category_is_covered():
    assert {e[0] for e in EXAMPLES} == set(CATEGORIES)


def test_precedence_label_inspection_vlm_rules():
    conv = _conv("Describe the image.", "A cat.")
    assert categorize(conv, True, label="ocr", inspection="chart", vlm="gui") == ("ocr", "label")
    assert categorize(conv, True, inspection="chart", vlm="gui") == ("chart", "inspection")
    assert categorize(conv, True, inspection="mixed", vlm="gui") == ("gui", "vlm")
    assert categorize(conv, True, inspection="mixed", vlm=None) == ("caption", "rules")
    assert categorize(conv, True, label="not-a-category") == ("caption", "rules")


def test_batch_and_config():
    convs = [_conv("What color?", "Red"), _conv("Hi", "Hello", image=False)]
    assert categorize_batch(convs, [True, False], [None, "reasoning"]) == (["vqa", "reasoning"], ["rules", "label"])
    assert CategorizeConfig().method == "rules" and not CategorizeConfig().drop_uncategorized
    with pytest.raises(ValueError, match="extra"):
        CategorizeConfig.model_validate({"mode": "rules"})
    with pytest.raises(ValueError, match="needs a `vlm:` classifier"):
        CategorizeConfig(method="vlm")
    assert CategorizeConfig.model_validate({"method": "vlm", "vlm": {"backend": "magicvl", "model": "m"}}).vlm


def test_hostile_conversations_do_not_crash():
    for conv in ([], [{"from": "gpt", "value": ""}], _conv("\u202e" * 1000, "x" * 1_000_000)):
        assert rule_category(conv, True) in CATEGORIES
