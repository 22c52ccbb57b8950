"""A tiny offline lmms-eval task over a `magicvl export --format hf` folder (questions from the sample data).

Used by ``magicvl_tiny_gen.yaml`` (generate_until, exact match) and
``magicvl_tiny_mc.yaml`` (multiple_choice: the right answer against two
answers of other questions, scored by log-likelihood).
"""

from __future__ import annotations


def _human(doc: dict) -> str:
    return next(t["value"] for t in doc["conversations"] if t["from"] == "human")


def _answer(doc: dict) -> str:
    return next(t["value"] for t in doc["conversations"] if t["from"] == "gpt")


def doc_to_visual(doc: dict) -> list:
    return [doc["image"].convert("RGB")] if doc["image"] is not None else []


def doc_to_text(doc: dict) -> str:
    return _human(doc).replace("<image>\n", "").replace("<image>", "")


def doc_to_target(doc: dict) -> str:
    return _answer(doc)


def doc_to_choice(doc: dict) -> list[str]:
    return [_answer(doc), "Yes", "42"]


def process_results(doc: dict, results: list[str]) -> dict:
    return {"exact_match": float(results[0].strip().lower() == _answer(doc).strip().lower())}
