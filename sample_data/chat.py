"""Text-only instruction and chat conversations (no image, no ``<image>`` placeholder)."""

from __future__ import annotations

import random

from magicvl.sample_data import words as W
from magicvl.sample_data.words import pick


def _bank(rnd: random.Random) -> list[tuple[str, str]]:
    q, a, fq, fa = pick(rnd, W.CHATS)
    pairs = [(q, a)]
    if fq and rnd.random() < 0.6:
        pairs.append((fq, fa))
    return pairs


def _convert(rnd: random.Random) -> list[tuple[str, str]]:
    src, dst, k = pick(rnd, W.UNITS)
    x = rnd.randint(2, 250)
    answer = f"{x} {src} × {k} = {x * k:.2f} {dst}. So {x} {src} is about {x * k:.1f} {dst}."
    return [(f"Convert {x} {src} to {dst}.", answer)]


def _sort_words(rnd: random.Random) -> list[tuple[str, str]]:
    ws = rnd.sample(W.WORDS_TO_SORT, rnd.randint(4, 9))
    pairs = [(f"Sort these words alphabetically: {', '.join(ws)}.", ", ".join(sorted(ws)))]
    if rnd.random() < 0.4:
        pairs.append(("Now in reverse order.", ", ".join(sorted(ws, reverse=True))))
    return pairs


def _arithmetic(rnd: random.Random) -> list[tuple[str, str]]:
    who, n, price = W.person(rnd).split()[0], rnd.randint(3, 40), rnd.randint(2, 30)
    paid = n * price + rnd.randint(0, 50)
    q = (
        f"{who} buys {n} tickets at ${price} each and pays ${paid}. How much change should {who} receive? "
        "Explain step by step."
    )
    a = (
        f"The tickets cost {n} × ${price} = ${n * price}. The change is ${paid} - ${n * price} = "
        f"${paid - n * price}. The answer is ${paid - n * price}."
    )
    return [(q, a)]


def _summarize(rnd: random.Random) -> list[tuple[str, str]]:
    sentences = rnd.sample(W.SENTENCES, rnd.randint(3, 7))
    text = " ".join(sentences)
    q = f"Summarize the following text in one sentence.\n\n{text}"
    a = f"In short: {sentences[0][0].lower()}{sentences[0][1:-1]}, among {len(sentences) - 1} other updates."
    pairs = [(q, a)]
    if rnd.random() < 0.5:
        pairs.append(("How many sentences were in the text?", f"There were {len(sentences)} sentences."))
    return pairs


_TASKS = (_bank, _bank, _bank, _convert, _sort_words, _arithmetic, _summarize)


def text_conversation(rnd: random.Random) -> list[dict[str, str]]:
    """A one- to four-turn text-only conversation, sometimes with a system prompt."""
    pairs = pick(rnd, _TASKS)(rnd)
    if rnd.random() < 0.3:
        pairs += pick(rnd, (_bank, _convert, _arithmetic))(rnd)
    turns: list[dict[str, str]] = []
    if rnd.random() < 0.3:
        turns.append({"from": "system", "value": pick(rnd, W.SYSTEM_PROMPTS)})
    for q, a in pairs:
        turns += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return turns
