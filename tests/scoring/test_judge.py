"""The judge's strict parser, its policy, and judge + classifier end to end with tiny local models."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from magicvl.model.backends.generate import GeneratorLoadError, load_generator
from magicvl.scoring.categorize import categorize_batch
from magicvl.scoring.judge import (
    ClassifierConfig,
    CoherenceJudgeConfig,
    HallucinationJudgeConfig,
    JudgesConfig,
    classify,
    judge,
    parse_category,
    parse_verdict,
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny matmuls are faster on one thread on a busy 2-core box."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


WELL_FORMED = [
    ('{"verdict": "pass", "reason": "fine"}', "pass"),
    ('  {"verdict": "FAIL", "reason": "contradicts itself"}\n', "fail"),
    ('```json\n{"reason": "ok", "verdict": "pass"}\n```', "pass"),
    ('{"verdict": "pass", "reason": "答案与图片一致"}', "pass"),
]
MALFORMED = [
    ("", "not a single JSON object"),
    ("pass", "not a single JSON object"),
    ('{"verdict": "pass", "reason": "fine"', "not a single JSON object"),
    ("{'verdict': 'pass', 'reason': 'x'}", "invalid JSON"),
    ('{"verdict": "pass"}', "expected exactly"),
    ('{"verdict": "maybe", "reason": "x"}', "expected one of"),
    ('{"verdict": 1, "reason": "x"}', "must be a string"),
    ('[{"verdict": "pass", "reason": "x"}]', "not a single JSON object"),
]
ADVERSARIAL = [
    ('Sure! {"verdict": "pass", "reason": "x"}', "not a single JSON object"),
    ('{"verdict": "fail", "reason": "x"} {"verdict": "pass", "reason": "y"}', "invalid JSON"),
    ('{"verdict": "fail", "verdict": "pass", "reason": "x"}', "duplicate keys"),
    ('{"verdict": "pass", "reason": "x", "score": 10}', "expected exactly"),
    ('{"verdict": "pass", "reason": NaN}', "not allowed"),
    ('{"verdict": "pass", "reason": "' + "a" * 600 + '"}', "longer than 500"),
    ('{"verdict": "pass", "reason": "' + "a" * 5000 + '"}', "characters (max 2000)"),
    ("{" * 1000 + "}" * 1000, "invalid JSON"),
    ('```json\n{"verdict": "pass", "reason": "x"}\n```\nIgnore that, it fails.', "not a single JSON object"),
]


@pytest.mark.parametrize(("text", "verdict"), WELL_FORMED)
def test_parser_accepts_well_formed(text, verdict):
    p = parse_verdict(text)
    assert p.ok and p.values["verdict"] == verdict and p.error is None


@pytest.mark.parametrize(("text", "error"), MALFORMED + ADVERSARIAL)
def test_parser_refuses_malformed_and_adversarial(text, error):
    p = parse_verdict(text)
    assert not p.ok and p.values is None
    assert error in p.error


def test_category_parser():
    assert parse_category('{"category": "Chart"}').values == {"category": "chart"}
    assert "expected one of" in parse_category('{"category": "poetry"}').error
    assert not parse_category('{"category": "chart", "confidence": "high"}').ok


class _Scripted:
    """A generator returning fixed answers (tests the policy, not a model)."""

    identity = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)

    def generate(self, requests, max_new_tokens):
        out, self.answers = self.answers[: len(requests)], self.answers[len(requests) :]
        return out


@pytest.mark.parametrize(("policy", "kept"), [("keep", [True, False, True]), ("drop", [True, False, False])])
def test_policy_decides_unparseable(policy, kept):
    gen = _Scripted(['{"verdict": "pass", "reason": "ok"}', '{"verdict": "fail", "reason": "no"}', "garbage"])
    cfg = CoherenceJudgeConfig(model="unused", on_unparseable=policy, batch_size=2)
    res = judge(gen, cfg, ["q1", "q2", "q3"], ["a1", "a2", "a3"], [None] * 3)
    assert res.status == ["pass", "fail", "unparseable"]
    assert res.keep == kept
    assert res.detail[2] == "answer is not a single JSON object"


class _Flaky:
    """Fails any batch holding the request 'boom' (as a processor refusing one image would)."""

    identity = "flaky"

    def generate(self, requests, max_new_tokens):
        if any("boom" in r.prompt for r in requests):
            raise ValueError("cannot process this image")
        return ['{"verdict": "pass", "reason": "ok"}'] * len(requests)


@pytest.mark.parametrize(("policy", "kept"), [("keep", [True, True, True]), ("drop", [True, False, True])])
def test_a_failing_request_is_isolated_and_recorded(policy, kept):
    cfg = CoherenceJudgeConfig(model="unused", on_unparseable=policy, batch_size=3)
    res = judge(_Flaky(), cfg, ["q", "boom", "q"], ["a", "a", "a"], [None] * 3)
    assert res.status == ["pass", "error", "pass"] and res.keep == kept
    assert res.detail[1] == "generation failed: ValueError: cannot process this image"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("policy", ["keep", "drop"])
def test_llm_judge_end_to_end_with_tiny_model(tiny_lm_dir, policy):
    cfg = CoherenceJudgeConfig(model=str(tiny_lm_dir), max_new_tokens=12, batch_size=2, on_unparseable=policy)
    gen = load_generator(cfg.backend, cfg.model)
    res = judge(gen, cfg, ["What is 2+2?", "Name a colour.", "وصف"], ["4", "Red", "أحمر"], [None] * 3)
    assert len(res.status) == 3 and all(isinstance(a, str) for a in res.answers)
    # a random model's answers are garbage: every one is recorded unparseable and the policy decides
    assert res.status == ["unparseable"] * 3
    assert res.keep == [policy == "keep"] * 3


def test_vlm_judge_and_classifier_end_to_end_with_tiny_magicvl(tiny_vlm_dir):
    hcfg = HallucinationJudgeConfig(model=str(tiny_vlm_dir), max_new_tokens=8, batch_size=2, on_unparseable="drop")
    gen = load_generator(hcfg.backend, hcfg.model)
    images = [_png(), None]
    res = judge(gen, hcfg, ["What colour is it?", "Say hi"], ["Red", "hi"], images)
    assert res.status == ["unparseable", "unparseable"] and res.keep == [False, False]
    ccfg = ClassifierConfig(backend="magicvl", model=str(tiny_vlm_dir), max_new_tokens=8)
    cats, errors = classify(gen, ccfg, ["Describe the image."], ["A red square."], [_png()])
    assert cats == [None] and errors[0]
    convs = [[{"from": "human", "value": "<image>\nDescribe the image."}, {"from": "gpt", "value": "A red square."}]]
    assert categorize_batch(convs, [True], [None], vlm=cats) == (["caption"], ["rules"])  # unparseable → rules


def test_unloadable_model_is_one_clear_error(tmp_path):
    with pytest.raises(GeneratorLoadError, match="cannot load transformers generation model"):
        load_generator("transformers", str(tmp_path / "missing"))
    with pytest.raises(GeneratorLoadError, match="unknown generation backend"):
        load_generator("onnx", "x")


def test_judges_config_is_strict():
    with pytest.raises(ValueError, match="extra"):
        JudgesConfig.model_validate({"coherence": {"model": "m", "temperature": 0.7}})
    assert JudgesConfig().coherence is None
