"""Quality filters: golden measures on hand-made strings, thresholds apart from measures, a hostile set."""

from __future__ import annotations

import numpy as np
import pytest

from magicvl.scoring.filters import FILTERS
from magicvl.scoring.filters.abnormal_chars import abnormal_share
from magicvl.scoring.filters.config import FiltersConfig, decide, measure_all, responses_of
from magicvl.scoring.filters.repetition import COLUMNS, RepetitionConfig, measure_one
from magicvl.scoring.filters.synthetic_keywords import find
from magicvl.scoring.filters.units import is_cjk, segments, units


def _rep(text: str) -> dict[str, float]:
    return dict(zip(COLUMNS, measure_one([text], RepetitionConfig())))


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("CafÃ© â€™", 5 / 9),  # Ã© and â€™ are mojibake (2 + 3 of 9 characters)
        ("ab\x00\ufffd", 2 / 4),  # NUL and U+FFFD
        ("hello\u200bworld", 1 / 11),  # zero-width space
        ("x\ue000", 1 / 2),  # private use
        ("مرحبا\u200cبالعالم", 0.0),  # ZWNJ is ordinary in Persian/Arabic text
        ("Line one\n\tline two\r\n", 0.0),  # tab and newlines are fine
        ("价格：¥3,719.28 (含税)", 0.0),
    ],
)
def test_abnormal_share_golden(text, share):
    assert abnormal_share(text) == pytest.approx(share)


def test_abnormal_share_of_empty_is_nan():
    assert np.isnan(abnormal_share(""))


def test_one_mojibake_sequence_in_a_long_text_drops_it():
    text = "A long and otherwise clean answer about the weather in the mountains today. " * 5 + "Itâ€™s sunny."
    cfg = FiltersConfig()
    v = decide(measure_all([[text], ["Ação e café, naïve São Paulo, NÃO."]], cfg), cfg).first
    assert (v[0].reason, v[0].measure, v[0].value) == ("abnormal_chars", "mojibake_hits", 1.0)
    assert v[1].keep  # real Portuguese/French accents are not mojibake


def test_units_and_segments():
    assert units("Total: $3,719.28, don't panic") == ["total", "3,719.28", "don't", "panic"]
    assert units("我喜欢猫") == ["我", "喜", "欢", "猫"] and is_cjk("我喜欢猫 cat")
    assert not is_cjk("The sign says 出口")
    assert segments("It costs 3.50. Yes! 好的。再见\nBye") == ["It costs 3.50.", "Yes!", "好的", "再见", "Bye"]


def test_repetition_golden_english():
    cat = _rep("The cat. The cat. The cat. The cat.")
    assert cat["dup_segment_char_share"] == pytest.approx(0.75)  # 3 of 4 equal sentences
    assert cat["top_2gram_char_share"] == pytest.approx(1.0)
    assert cat["dup_5gram_char_share"] == pytest.approx(0.75)
    assert cat["dup_7gram_char_share"] == 0.0 and cat["repetition_units"] == 8
    abc = _rep("a b c d e a b c d e")
    assert (abc["top_2gram_char_share"], abc["top_3gram_char_share"], abc["top_4gram_char_share"]) == pytest.approx(
        (0.4, 0.6, 0.8)
    )
    assert abc["dup_5gram_char_share"] == pytest.approx(0.5) and abc["dup_6gram_char_share"] == 0.0


def test_repetition_golden_chinese_and_arabic():
    zh = _rep("我喜欢猫。我喜欢猫。")
    assert zh["dup_segment_char_share"] == pytest.approx(0.5)
    assert zh["top_2gram_char_share"] == pytest.approx(1.0)  # character 4-grams for CJK (n × 2)
    assert zh["repetition_units"] == 8
    ar = _rep("القطة على الطاولة. القطة على الطاولة.")
    assert ar["dup_segment_char_share"] == pytest.approx(0.5)
    assert ar["top_2gram_char_share"] == pytest.approx(16 / 30)
    assert ar["top_3gram_char_share"] == pytest.approx(1.0)


def test_multi_turn_repeated_short_answers_are_not_repetition():
    assert _rep("Yes")["dup_segment_char_share"] == 0.0
    assert measure_one(["Yes", "No", "Yes", "Yes"], RepetitionConfig())[0] == 0.0


def test_synthetic_keywords_match_case_and_apostrophes():
    assert find("As an AI language model, I can’t see the image.", FiltersConfig().synthetic_keywords.keywords) == [
        "as an ai language model",
        "i can't see the image",
    ]
    assert find("作为一个人工智能语言模型，我无法看到图片。", FiltersConfig().synthetic_keywords.keywords) == [
        "作为一个人工智能",
        "我无法看到图片",
    ]
    assert find("The AI model on the screen", FiltersConfig().synthetic_keywords.keywords) == []


KEEP_TEXTS = [
    "A dog.",
    "Yes",
    "12",
    "$3,719.28",
    "x + 3 = 7, so x = 4.",
    "Area = π r² = 3.14 × 5² = 78.50. The answer is 78.50.",
    "A red car parked next to a red car.",
    "一只猫坐在木桌上，旁边有一杯咖啡。",
    "窓の外に富士山が見えます。",
    "قطة تجلس على طاولة خشبية بجانب فنجان قهوة.",
    "חתול יושב על שולחן עץ ליד כוס קפה.",
    "این یک\u200cجمله\u200cی فارسی است.",
    "The sign says 出口 (exit) and مخرج.",
    "<|box_start|>(611,218),(944,269)<|box_end|>",
    "[0.530, 0.522, 0.662, 0.656]",
    "1. Research the company.\n2. Prepare short stories.\n3. Ask thoughtful questions.",
]
DROP_TEXTS = {
    "coffee cup " * 20: "repetition",
    "The cat. " * 8: "repetition",
    "我喜欢猫。" * 4: "repetition",
    "好的" * 12: "repetition",
    "ありがとうございます。" * 5: "repetition",
    "   ": "empty_response",
    "": "empty_response",
    "CafÃ© au lait costs â‚¬3 and itâ€™s good": "abnormal_chars",
    "ab\x00\x01\x02cd\ufffd\ufffd": "abnormal_chars",
    "As an AI language model, I cannot see the image.": "synthetic_keywords",
    "<|im_start|>assistant\nSure": "synthetic_keywords",
    "作为一个人工智能语言模型，我无法看到图片。": "synthetic_keywords",
    "lorem " * 200_001: "response_too_long",  # 1.2 MB
}


def test_defaults_keep_ordinary_and_drop_hostile_texts():
    texts = KEEP_TEXTS + list(DROP_TEXTS)
    cfg = FiltersConfig()
    d = decide(measure_all([[t] for t in texts], cfg), cfg)
    kept = [t for t, v in zip(texts, d.first) if v.keep]
    assert kept == KEEP_TEXTS
    assert [v.reason for v in d.first[len(KEEP_TEXTS) :]] == list(DROP_TEXTS.values())
    assert d.counts()["repetition"] == 5


def test_verdict_records_measure_against_threshold():
    cfg = FiltersConfig()
    v = decide(measure_all([["The cat. The cat. The cat. The cat."]], cfg), cfg).first[0]
    assert (v.reason, v.measure, v.value, v.op, v.threshold) == ("repetition", "dup_segment_char_share", 0.75, ">", 0.3)
    assert v.describe() == "repetition: dup_segment_char_share=0.75 > 0.3"


def test_threshold_change_needs_no_recompute():
    cfg = FiltersConfig()
    columns = measure_all([["The cat. The cat."], ["fine text"]], cfg)
    strict = decide(columns, cfg)
    loose = decide(columns, FiltersConfig(repetition=RepetitionConfig(max_dup_segment_share=0.9)))
    assert strict.keep_mask().tolist() == [False, True] and loose.keep_mask().tolist() == [True, True]
    assert (
        FiltersConfig().measure_identity()
        == FiltersConfig(repetition=RepetitionConfig(max_dup_segment_share=0.9)).measure_identity()
    )


def test_disabled_filter_neither_measures_nor_drops():
    cfg = FiltersConfig(repetition={"enabled": False})
    columns = measure_all([["coffee cup " * 20]], cfg)
    assert "dup_segment_char_share" not in columns and decide(columns, cfg).first[0].keep


def test_all_failures_are_recorded():
    cfg = FiltersConfig()
    d = decide(measure_all([["As an AI language model \ufffd\ufffd. " * 10]], cfg), cfg)
    assert [v.reason for v in d.failures[0]] == ["abnormal_chars", "synthetic_keywords", "repetition"]
    assert d.first[0].reason == "abnormal_chars"  # registry order


def test_hostile_batch_never_crashes():
    hostile = [[], [""], ["\x00" * 10], ["\ud800"], ["a" * 2_000_000], ["🙂" * 500], ["\u202e\u202dtxt"], ["\n\n\n"]]
    cfg = FiltersConfig()
    d = decide(measure_all(hostile, cfg), cfg)
    assert len(d.first) == len(hostile)
    assert d.first[0].reason == "empty_response" and d.first[4].reason == "response_too_long"


def test_config_is_strict_and_validated():
    with pytest.raises(ValueError, match="extra"):
        FiltersConfig.model_validate({"repetition": {"max_dup_share": 0.2}})
    with pytest.raises(ValueError, match="keys must be among"):
        RepetitionConfig(max_top_ngram_share={7: 0.1})
    assert list(FILTERS) == ["response_length", "abnormal_chars", "synthetic_keywords", "repetition"]
    assert list(FiltersConfig.model_fields) == list(FILTERS)  # one config entry per registered filter
    for name, f in FILTERS.items():
        assert isinstance(FiltersConfig().of(name), f.config)


def test_responses_of_takes_assistant_turns():
    conv = [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    assert responses_of([conv, conv[:2]]) == [["a"], []]


def test_every_filter_disabled_keeps_every_sample():
    """Issue 20, defect 1: with no filter enabled there are no columns, yet every sample gets a decision."""
    off = {n: {"enabled": False} for n in ("response_length", "abnormal_chars", "synthetic_keywords", "repetition")}
    cfg = FiltersConfig(**off)
    columns = measure_all([["As an AI language model, " * 10], [""]], cfg)
    assert columns == {}
    d = decide(columns, cfg, n=2)
    assert d.keep_mask().tolist() == [True, True] and d.counts() == {}
