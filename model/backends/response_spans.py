"""Which tokens of a chat-templated conversation are "the response": one rule for every loss signal.

``perplexity`` (a causal LM) and ``vlm_loss`` (a VLM) both score an
assistant turn given everything before it. Both locate the response the same
way: the turn starts where the template's generation prompt for it ends; it
covers the turn's content, and with ``count_end_of_turn`` also the template's
end-of-turn text after it (``<|im_end|>`` for ChatML; trailing whitespace
excluded). A token belongs to the response when its characters overlap a
response span.

Default (``count_end_of_turn: false``): content only. The paper does not say;
this project counts content only because (1) the end-of-turn token's loss
says nothing about the response's complexity, and under a base LM that never
learnt the chat format (the paper's P model is Qwen2.5-1.5B base) it is a
large, content-free term that weighs most on short answers; (2) templates
differ in end-of-turn tokens (one, two, or none), so content-only losses
compare across model families; (3) L counts the same content tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# render(n, add_generation_prompt): the first n messages as the template renders them
Render = Callable[[int, bool], str]


class NotPrefixStable(ValueError):
    """The template does not render each turn as a prefix of the whole conversation."""


def response_spans(
    render: Render, roles: Sequence[str], contents: Sequence[str], count_end_of_turn: bool
) -> tuple[str, list[tuple[int, int]]]:
    """The whole rendered conversation and the character span ``[start, end)`` of each assistant turn."""
    n = len(roles)
    full = render(n, False)
    spans: list[tuple[int, int]] = []
    for k, role in enumerate(roles):
        if role != "assistant":
            continue
        prompt = render(k, True)
        upto = full if k == n - 1 else render(k + 1, False)
        if not (upto.startswith(prompt) and full.startswith(upto)):
            raise NotPrefixStable("the chat template is not prefix-stable: cannot locate the response")
        start = len(prompt)
        if not upto.startswith(contents[k], start):
            raise NotPrefixStable("the chat template does not render the assistant turn right after its prompt")
        end = len(upto.rstrip()) if count_end_of_turn else start + len(contents[k])
        if end > start:
            spans.append((start, end))
    return full, spans


def turn_span(text: str, content: str, count_end_of_turn: bool) -> tuple[int, int]:
    """The span of the last assistant turn of ``text`` (a rendering that ends with that turn)."""
    start = text.rfind(content)
    if start < 0:
        raise ValueError("the chat template does not reproduce the assistant turn's text")
    return start, len(text.rstrip()) if count_end_of_turn else start + len(content)


def mark_tokens(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[bool]:
    """Per token: True when its characters ``[a, b)`` overlap a response span."""
    return [any(a < e and b > s for s, e in spans) for a, b in offsets]
