"""Translate English samples into Chinese with an LLM, keeping what must not change untouched.

``<image>``, special tokens, box/coordinate lists, numbers, inline and fenced
code and URLs are replaced by placeholders ``⟦0⟧, ⟦1⟧ …`` before the model sees
the text and restored afterwards. A translation that loses, repeats or invents
a placeholder is refused (recorded with the reason), never half-restored.
Translated records point back to their source sample.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field

from magicvl.model.backends.generate import GenerationRequest, Generator
from magicvl.scoring.judge import Failed, ModelRef, generate_all
from magicvl.storage.fingerprint import sample_id

_NUM = r"-?\d+(?:[.,]\d+)*%?"
_PROTECTED = re.compile(
    r"```.*?```"  # fenced code
    r"|`[^`\n]+`"  # inline code
    r"|<\|[a-z_]+\|>"  # special tokens such as <|box_start|>
    r"|<image>"
    r"|https?://\S+"
    rf"|[\[(]\s*{_NUM}(?:\s*,\s*{_NUM})+\s*[\])]"  # coordinate lists and tuples
    rf"|{_NUM}",
    re.DOTALL,
)
_SLOT = re.compile(r"⟦(\d+)⟧")
TRANSLATE_PROMPT = (
    "Translate the following text from English into Simplified Chinese. Copy every marker such as ⟦0⟧ "
    "exactly once and unchanged. Reply with the translation only.\n\n{text}"
)


class TranslateConfig(ModelRef):
    """The recipe's ``translate:`` section (off unless configured)."""

    prompt: str = Field(default=TRANSLATE_PROMPT, description="Template with {text}.")
    datasets: list[str] = Field(default_factory=list, description="Datasets whose samples are translated.")
    share: float = Field(default=1.0, gt=0, le=1, description="Share of each dataset's samples to translate.")
    suffix: str = Field(default="zh", description="The new dataset is <name>-<suffix>.")


def mask(text: str) -> tuple[str, list[str]]:
    """Text with protected spans replaced by ``⟦i⟧``, and the spans in order."""
    spans: list[str] = []

    def slot(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"⟦{len(spans) - 1}⟧"

    return _PROTECTED.sub(slot, text), spans


def unmask(text: str, spans: list[str]) -> str:
    """Restore spans; ValueError when a placeholder is missing, repeated or unknown."""
    found = [int(i) for i in _SLOT.findall(text)]
    if sorted(found) != list(range(len(spans))):
        raise ValueError(f"placeholders {sorted(found)} in the translation, expected 0..{len(spans) - 1} once each")
    return _SLOT.sub(lambda m: spans[int(m.group(1))], text)


@dataclass(frozen=True)
class Translation:
    conversation: list[dict[str, str]] | None  # None when any turn failed
    error: str | None


def translate_conversations(
    generator: Generator, cfg: TranslateConfig, conversations: Sequence[list[dict[str, str]]]
) -> list[Translation]:
    """Translate every turn of every conversation (one request per turn, batched)."""
    masked = [[mask(t["value"]) for t in conv] for conv in conversations]
    requests = [GenerationRequest(cfg.prompt.format(text=m)) for conv in masked for m, _ in conv]
    answers = iter(generate_all(generator, requests, cfg))
    out = []
    for conv, parts in zip(conversations, masked):
        turns, error = [], None
        for i, (turn, (_, spans)) in enumerate(zip(conv, parts)):
            answer = next(answers)
            try:
                if isinstance(answer, Failed):
                    raise ValueError(answer.error)
                turns.append({"from": turn["from"], "value": unmask(answer.strip(), spans)})
            except ValueError as e:
                error = error or f"turn {i}: {e}"
        out.append(Translation(None if error else turns, error))
    return out


def translated_row(row: dict, conversation: list[dict[str, str]], suffix: str = "zh") -> dict:
    """A samples row for the translation of ``row``: new dataset and id, pointing back to the source."""
    dataset = f"{row['dataset']}-{suffix}"
    return {
        **row,
        "sample_id": sample_id(dataset, row["sample_id"]),
        "dataset": dataset,
        "source_key": row["sample_id"],
        "source": f"translation of {row['sample_id']} ({row['source']})",
        "conversations": conversation,
    }
