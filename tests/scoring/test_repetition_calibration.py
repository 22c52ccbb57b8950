"""The repetition rules on the shipped labelled set (bench/data/repetition_set.jsonl): real texts from this
machine's files kept, planted loops dropped (issue 20, defect 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from magicvl.scoring.filters.config import FiltersConfig, decide, measure_all
from magicvl.scoring.filters.repetition import RepetitionConfig, measure_one, ngram_limit

SET = Path(__file__).resolve().parents[2] / "bench" / "data" / "repetition_set.jsonl"


@pytest.fixture(scope="module")
def labelled() -> list[dict]:
    return [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines() if line]


def test_the_set_is_labelled_and_sourced(labelled):
    real = [r for r in labelled if r["label"] == "real"]
    bad = [r for r in labelled if r["label"] == "bad"]
    assert len(real) >= 60 and len(bad) >= 25 and all(r["source"] for r in labelled)
    assert len({r["text"] for r in real}) == len(real)  # distinct passages
    assert {"vim tutor zh_cn", "vim tutor ja", "vim tutor ru", "docs quoting a traceback"} <= {r["kind"] for r in real}


def test_no_real_text_is_dropped_and_every_planted_loop_is(labelled):
    cfg = FiltersConfig()
    verdicts = decide(measure_all([[r["text"]] for r in labelled], cfg), cfg).first
    wrong = [(r["id"], r["kind"], v.describe() if not v.keep else "kept") for r, v in zip(labelled, verdicts)
             if v.keep != (r["label"] == "real")]  # fmt: skip
    assert wrong == []
    assert all(v.reason == "repetition" for r, v in zip(labelled, verdicts) if r["label"] == "bad")


def test_the_chinese_passage_the_old_rules_dropped_is_measured_in_characters_with_words_whole(labelled):
    big5 = next(r for r in labelled if r["kind"] == "CPython codec test big5-utf8.txt")
    values = dict(zip(("seg", "t2", "t3", "t4", "d5"), measure_one([big5["text"]], RepetitionConfig())))
    assert values["d5"] < 0.15  # was 0.1935 > 0.15 when "programming language" counted as 20 characters


def test_limits_are_length_aware_and_capped():
    assert ngram_limit(0.15, 20 / 1000, 0.45) == 0.17  # a long text: about Gopher's limit
    assert ngram_limit(0.15, 20 / 100, 0.45) == 0.35  # a 100-unit answer may repeat a code line
    assert ngram_limit(0.15, 20 / 10, 0.45) == 0.45  # never 0.5: a text said twice is dropped
