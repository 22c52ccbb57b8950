"""LLM judge (coherence), VLM judge (hallucination) and VLM classifier: prompts, strict parsing, policy.

The model must answer with exactly one JSON object and nothing else (one
```json fence around it is tolerated). Duplicate keys, extra or missing keys,
NaN/Infinity, values outside the allowed set and answers over ``max_answer_chars``
are refused. A refused answer is recorded as ``unparseable`` with the parse
error, and ``on_unparseable`` (keep | drop) decides the sample's fate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from magicvl.model.backends.generate import GenerationRequest, Generator
from magicvl.storage.schema import CATEGORIES

VERDICTS = ("pass", "fail")
_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(.*)\n```\Z", re.DOTALL)

COHERENCE_PROMPT = (
    "You check training data for a vision-language model. Is the answer below logically coherent, "
    "consistent with itself and a sensible reply to the question?\n\nQuestion:\n{prompt}\n\nAnswer:\n{response}\n\n"
    'Reply with only a JSON object: {{"verdict": "pass" or "fail", "reason": "<one short sentence>"}}'
)
HALLUCINATION_PROMPT = (
    "<image>\nDoes the answer below describe only what is really in the image (no invented objects, text "
    "or numbers)?\n\nQuestion:\n{prompt}\n\nAnswer:\n{response}\n\n"
    'Reply with only a JSON object: {{"verdict": "pass" or "fail", "reason": "<one short sentence>"}}'
)
CLASSIFY_PROMPT = (
    "<image>\nWhich task does this training sample belong to? One of: " + ", ".join(CATEGORIES) + ".\n\n"
    "Question:\n{prompt}\n\nAnswer:\n{response}\n\n"
    'Reply with only a JSON object: {{"category": "<one of the tasks>"}}'
)


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["transformers", "magicvl", "vllm"] = Field(
        default="transformers", description="Generation backend (model.backends.generate.GENERATORS)."
    )
    model: str = Field(description="Model path or id (from_pretrained).")
    max_new_tokens: int = Field(default=64, gt=0)
    batch_size: int = Field(default=8, gt=0)
    max_prompt_chars: int = Field(default=4000, gt=0, description="Question/answer text is cut to this length.")
    max_answer_chars: int = Field(default=2000, gt=0, description="Longer model answers are unparseable.")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] | None = Field(
        default=None, description="Weights dtype; unset: the backend's own (float32; vllm: the checkpoint's)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", exclude=True, description="auto: the actor's GPU when it has one (num_gpus > 0), else cpu."
    )
    tensor_parallel: int = Field(
        default=1, ge=1, exclude=True, description="backend vllm: GPUs one model spans; equals the step's num_gpus."
    )

    @model_validator(mode="after")
    def _tensor_parallel(self) -> ModelRef:
        if self.tensor_parallel > 1 and self.backend != "vllm":
            raise ValueError(f"tensor_parallel applies to backend vllm, not {self.backend!r}")
        return self

    @model_serializer(mode="wrap")
    def _dtype_when_set(self, handler: Any) -> dict[str, Any]:
        """An unset dtype is left out of the dump (cache keys of runs made before it existed stay valid)."""
        out = handler(self)
        if self.dtype is None:
            out.pop("dtype", None)
        return out

    def load_options(self) -> dict[str, Any]:
        """Keyword arguments of ``load_generator`` besides backend and model."""
        return {"dtype": self.dtype, "device": self.device, "tensor_parallel": self.tensor_parallel}


class JudgeConfig(ModelRef):
    """One judge (the recipe's ``judge.coherence`` or ``judge.hallucination``)."""

    prompt: str = Field(description="Template with {prompt} and {response}; '<image>' sends the sample's image.")
    on_unparseable: Literal["keep", "drop"] = Field(default="keep", description="Fate of an unparseable answer.")


class CoherenceJudgeConfig(JudgeConfig):
    prompt: str = Field(default=COHERENCE_PROMPT, description="Template with {prompt} and {response}.")


class HallucinationJudgeConfig(JudgeConfig):
    backend: Literal["transformers", "magicvl", "vllm"] = Field(default="magicvl", description="A VLM backend.")
    prompt: str = Field(default=HALLUCINATION_PROMPT, description="Template with {prompt}, {response} and <image>.")


class JudgesConfig(BaseModel):
    """The recipe's ``judge:`` section: each judge runs only when configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    coherence: CoherenceJudgeConfig | None = None
    hallucination: HallucinationJudgeConfig | None = None


class ClassifierConfig(ModelRef):
    """The VLM classifier for unlabelled or mixed datasets (the recipe's ``categorize.vlm``)."""

    prompt: str = Field(default=CLASSIFY_PROMPT, description="Template with {prompt} and {response}.")


@dataclass(frozen=True)
class Parsed:
    """A model answer: the validated object, or why it was refused."""

    values: dict[str, Any] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.values is not None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"duplicate keys {dup}")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def parse_answer(text: str, schema: dict[str, tuple[str, ...] | None], max_chars: int = 2000) -> Parsed:
    """Parse exactly one JSON object whose keys are ``schema``'s (None: any string ≤ 500 chars)."""
    if not isinstance(text, str):
        return Parsed(None, f"answer is {type(text).__name__}, not text")
    if len(text) > max_chars:
        return Parsed(None, f"answer is {len(text)} characters (max {max_chars})")
    body = text.strip()
    fenced = _FENCE.match(body)
    body = fenced.group(1).strip() if fenced else body
    if not (body.startswith("{") and body.endswith("}")):
        return Parsed(None, "answer is not a single JSON object")
    try:
        obj = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:
        return Parsed(None, f"invalid JSON: {e}")
    if not isinstance(obj, dict):
        return Parsed(None, "answer is not a JSON object")
    if set(obj) != set(schema):
        return Parsed(None, f"keys {sorted(obj)} (expected exactly {sorted(schema)})")
    for key, allowed in schema.items():
        v = obj[key]
        if not isinstance(v, str):
            return Parsed(None, f"{key!r} must be a string, got {type(v).__name__}")
        if allowed is not None and v.strip().lower() not in allowed:
            return Parsed(None, f"{key!r} is {v[:40]!r}; expected one of {', '.join(allowed)}")
        if allowed is None and len(v) > 500:
            return Parsed(None, f"{key!r} is longer than 500 characters")
    return Parsed({k: (v.strip().lower() if schema[k] is not None else v) for k, v in obj.items()})


def parse_verdict(text: str, max_chars: int = 2000) -> Parsed:
    return parse_answer(text, {"verdict": VERDICTS, "reason": None}, max_chars)


def parse_category(text: str, max_chars: int = 2000) -> Parsed:
    return parse_answer(text, {"category": CATEGORIES}, max_chars)


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n] + " …"


def requests_for(
    template: str, prompts: Sequence[str], responses: Sequence[str], images: Sequence[bytes | None], max_chars: int
) -> list[GenerationRequest]:
    """One request per sample; the image is sent only when the template names ``<image>``."""
    wants_image = "<image>" in template
    out = []
    for p, r, img in zip(prompts, responses, images):
        text = template.format(prompt=_cut(p, max_chars), response=_cut(r, max_chars))
        if img is None or not wants_image:
            out.append(GenerationRequest(text.replace("<image>", "").strip()))
        else:
            out.append(GenerationRequest(text, img))
    return out


@dataclass(frozen=True)
class Failed:
    """A request the model could not answer (e.g. an image its processor refused)."""

    error: str


def _generate(generator: Generator, batch: list[GenerationRequest], max_new_tokens: int) -> list[str]:
    answers = generator.generate(batch, max_new_tokens)
    if len(answers) != len(batch):
        raise RuntimeError(f"{generator.identity} returned {len(answers)} answers for {len(batch)} requests")
    return answers


def generate_all(generator: Generator, requests: list[GenerationRequest], cfg: ModelRef) -> list[str | Failed]:
    """Answers for every request, ``cfg.batch_size`` at a time; a failing batch is retried one by one,
    and a request that still fails becomes ``Failed`` (one bad sample never stops the shard)."""
    out: list[str | Failed] = []
    for i in range(0, len(requests), cfg.batch_size):
        batch = requests[i : i + cfg.batch_size]
        try:
            out += _generate(generator, batch, cfg.max_new_tokens)
            continue
        except Exception:  # noqa: BLE001 - find the culprit below
            pass
        for r in batch:
            try:
                out += _generate(generator, [r], cfg.max_new_tokens)
            except Exception as e:  # noqa: BLE001
                out.append(Failed(f"generation failed: {type(e).__name__}: {e}"))
    return out


@dataclass(frozen=True)
class JudgeResult:
    """Per sample: ``status`` pass | fail | unparseable | error (generation failed), kept or not, the evidence.

    ``unparseable`` and ``error`` are kept or dropped by the judge's ``on_unparseable`` policy.
    """

    status: list[str]
    keep: list[bool]
    detail: list[str]  # the model's reason, or the parse error
    answers: list[str]  # raw model answers (truncated to max_answer_chars)


def judge(
    generator: Generator,
    cfg: JudgeConfig,
    prompts: Sequence[str],
    responses: Sequence[str],
    images: Sequence[bytes | None],
) -> JudgeResult:
    """Ask the judge about every sample and apply the policy (fail → drop; unparseable → cfg.on_unparseable)."""
    answers = generate_all(generator, requests_for(cfg.prompt, prompts, responses, images, cfg.max_prompt_chars), cfg)
    status, keep, detail = [], [], []
    for a in answers:
        p = parse_verdict(a, cfg.max_answer_chars) if not isinstance(a, Failed) else Parsed(None, a.error)
        if isinstance(a, Failed):
            status.append("error")
            keep.append(cfg.on_unparseable == "keep")
            detail.append(a.error)
        elif not p.ok:
            status.append("unparseable")
            keep.append(cfg.on_unparseable == "keep")
            detail.append(p.error or "")
        else:
            status.append(p.values["verdict"])
            keep.append(p.values["verdict"] == "pass")
            detail.append(p.values["reason"])
    return JudgeResult(status, keep, detail, [a[: cfg.max_answer_chars] if isinstance(a, str) else "" for a in answers])


def classify(
    generator: Generator,
    cfg: ClassifierConfig,
    prompts: Sequence[str],
    responses: Sequence[str],
    images: Sequence[bytes | None],
) -> tuple[list[str | None], list[str | None]]:
    """Per sample: the VLM's category (None when unparseable, so the rules decide) and the parse error."""
    answers = generate_all(generator, requests_for(cfg.prompt, prompts, responses, images, cfg.max_prompt_chars), cfg)
    parsed = [parse_category(a, cfg.max_answer_chars) if isinstance(a, str) else Parsed(None, a.error) for a in answers]
    return [p.values["category"] if p.ok else None for p in parsed], [p.error for p in parsed]
