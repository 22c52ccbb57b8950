"""Translate English samples into Chinese with an LLM, keeping what must not change untouched.

``<image>``, special tokens, box/coordinate lists, numbers, inline and fenced
code and URLs are replaced by placeholders ``⟦0⟧, ⟦1⟧ …`` before the model sees
the text and restored afterwards. A translation that loses, repeats or invents
a placeholder is refused (recorded with the reason), never half-restored.
Translated records point back to their source sample. ``tasks.translate`` runs
this over the recipe's chosen datasets on an actor pool.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field

from magicvl.model.backends.generate import GenerationRequest, Generator
from magicvl.scoring.judge import Failed, ModelRef, generate_all
from magicvl.storage.fingerprint import sample_id
from magicvl.storage.ingest.spec import DatasetConfig

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
    """The recipe's ``translate:`` section (off unless configured).

    Each sample of ``datasets`` whose text is English (``min_latin_share``) and
    that the seeded draw picks (``share``) is translated; the translations form
    a new dataset ``<name>_<suffix>`` that then runs through quality, signals
    and combine like any other.
    """

    prompt: str = Field(default=TRANSLATE_PROMPT, description="Template with {text}.")
    datasets: list[str] = Field(min_length=1, description="Recipe datasets whose samples are translated.")
    share: float = Field(default=1.0, gt=0, le=1, description="Share of each dataset's English samples to translate.")
    seed: int = Field(default=0, description="Seed of the per-sample draw (a sample's pick depends on it and its id).")
    min_latin_share: float = Field(
        default=0.9, ge=0, le=1, description="A sample is English when this share of its letters are A-Z/a-z."
    )
    suffix: str = Field(default="zh", pattern=r"^[A-Za-z0-9]+$", description="The new dataset is <name>_<suffix>.")
    max_new_tokens: int = Field(default=512, gt=0, description="Longest translation of one turn, in tokens.")

    def target(self, dataset: str) -> str:
        """The name of the dataset holding ``dataset``'s translations."""
        return f"{dataset}_{self.suffix}"


def picked(sample_id: str, seed: int, share: float) -> bool:
    """The seeded draw: a sample is picked when its hash with ``seed`` falls under ``share`` (stable, order-free)."""
    h = hashlib.blake2b(f"{seed}\x1f{sample_id}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(h, "big") < share * 2**64


def is_english(conversation: list[dict[str, str]], min_latin_share: float) -> bool:
    """True when the turns have letters and at least ``min_latin_share`` of them are ASCII letters."""
    letters = [c for t in conversation for c in mask(t["value"])[0] if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) >= min_latin_share * len(letters)


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


def source_pointer(dataset: str, sample_id: str) -> str:
    """The ``source`` of a translated record: ``translate:<dataset>/<sample_id>`` of the sample it translates."""
    return f"translate:{dataset}/{sample_id}"


def translated_row(row: dict, conversation: list[dict[str, str]], target: str) -> dict:
    """A samples row for the translation of ``row`` into dataset ``target``: new id, same image reference,
    ``source_key`` = the source sample's id and ``source`` = ``source_pointer`` (dataset + id)."""
    return {
        **row,
        "sample_id": sample_id(target, row["sample_id"]),
        "dataset": target,
        "source_key": row["sample_id"],
        "source": source_pointer(row["dataset"], row["sample_id"]),
        "conversations": conversation,
    }


def translated_datasets(datasets: Sequence[DatasetConfig], cfg: TranslateConfig | None) -> list[DatasetConfig]:
    """The datasets translation adds: each chosen one's config under its target name (same labels and
    review decision as its source), in ``cfg.datasets`` order."""
    if cfg is None:
        return []
    by_name = {d.name: d for d in datasets}
    return [by_name[n].model_copy(update={"name": cfg.target(n)}) for n in cfg.datasets]
