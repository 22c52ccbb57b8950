"""Reasoning: geometry figures and price tables drawn with PIL, with worked, step-by-step answers."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from magicvl.sample_data import words as W
from magicvl.sample_data.documents import font
from magicvl.sample_data.words import pick

TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (6, 8, 10), (7, 24, 25), (9, 12, 15), (20, 21, 29))
INK, ACCENT = (15, 15, 15), (200, 40, 40)


@dataclass
class Figure:
    """A drawn problem: the image and its conversation (question, worked answer, optional follow-up)."""

    kind: str
    image: Image.Image | None  # None once encoded (pools keep only the bytes)
    turns: list[tuple[str, str]] = field(default_factory=list)


def _canvas(rnd: random.Random) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("RGB", pick(rnd, ((640, 480), (800, 600), (900, 700))), (255, 255, 255))
    return im, ImageDraw.Draw(im)


def right_triangle(rnd: random.Random) -> Figure:
    """Legs labelled, hypotenuse asked (Pythagoras)."""
    m = rnd.choice((1, 1, 2, 3))
    a, b, c = (k * m for k in pick(rnd, TRIPLES))
    im, d = _canvas(rnd)
    w, h = im.size
    s = min((w - 200) / b, (h - 200) / a)
    p0, p1, p2 = (100, h - 100), (100 + int(b * s), h - 100), (100, h - 100 - int(a * s))
    d.polygon([p0, p1, p2], outline=INK, width=4)
    d.rectangle((p0[0], p0[1] - 24, p0[0] + 24, p0[1]), outline=INK, width=2)
    d.text((40, (p0[1] + p2[1]) // 2), str(a), font=font(32), fill=INK)
    d.text(((p0[0] + p1[0]) // 2, p0[1] + 20), str(b), font=font(32), fill=INK)
    d.text(((p1[0] + p2[0]) // 2 + 20, (p1[1] + p2[1]) // 2 - 30), "?", font=font(40), fill=ACCENT)
    q = "The figure shows a right triangle. Find the length of the side marked with a question mark."
    ans = (
        f"The two legs are {a} and {b}, and the unknown side is the hypotenuse. By the Pythagorean theorem, "
        f"c² = {a}² + {b}² = {a * a} + {b * b} = {c * c}, so c = √{c * c} = {c}. The answer is {c}."
    )
    follow = (
        "What is the area of the triangle?",
        (
            f"The area of a right triangle is half the product of its legs: ½ × {a} × {b} = {a * b / 2:g}. "
            f"The answer is {a * b / 2:g}."
        ),
    )
    return Figure("right_triangle", im, [(q, ans), follow])


def rectangle(rnd: random.Random) -> Figure:
    """Sides labelled; area or perimeter asked."""
    wv, hv = rnd.randint(3, 25), rnd.randint(2, 18)
    unit = pick(rnd, ("cm", "m", "in"))
    im, d = _canvas(rnd)
    w, h = im.size
    s = min((w - 220) / wv, (h - 220) / hv)
    x0, y0 = 110, 110
    d.rectangle((x0, y0, x0 + int(wv * s), y0 + int(hv * s)), outline=INK, width=4, fill=(225, 236, 250))
    d.text((x0 + int(wv * s) // 2 - 30, y0 - 50), f"{wv} {unit}", font=font(30), fill=INK)
    d.text((x0 + int(wv * s) + 15, y0 + int(hv * s) // 2 - 15), f"{hv} {unit}", font=font(30), fill=INK)
    area, per = wv * hv, 2 * (wv + hv)
    if rnd.random() < 0.5:
        q = "What is the area of the rectangle? Show your steps."
        ans = f"Area = width × height = {wv} × {hv} = {area}. The answer is {area} {unit}²."
    else:
        q = "What is the perimeter of the rectangle? Show your steps."
        ans = (
            f"Perimeter = 2 × (width + height) = 2 × ({wv} + {hv}) = 2 × {wv + hv} = {per}. The answer is {per} {unit}."
        )
    follow = (
        "If both sides were doubled, what would the area be?",
        (
            f"Doubling both sides multiplies the area by 2 × 2 = 4: 4 × {area} = {4 * area}. "
            f"The answer is {4 * area} {unit}²."
        ),
    )
    return Figure("rectangle", im, [(q, ans), follow])


def circle(rnd: random.Random) -> Figure:
    """Radius labelled; area or circumference asked (π ≈ 3.14)."""
    r = rnd.randint(2, 15)
    im, d = _canvas(rnd)
    w, h = im.size
    cx, cy, R = w // 2, h // 2, min(w, h) // 2 - 60
    d.ellipse((cx - R, cy - R, cx + R, cy + R), outline=INK, width=4)
    d.line((cx, cy, cx + R, cy), fill=ACCENT, width=3)
    d.ellipse((cx - 5, cy - 5, cx + 5, cy + 5), fill=INK)
    d.text((cx + R // 2 - 20, cy - 45), f"r = {r}", font=font(30), fill=ACCENT)
    if rnd.random() < 0.5:
        q = "Find the area of the circle. Use π ≈ 3.14."
        ans = f"Area = π r² = 3.14 × {r}² = 3.14 × {r * r} = {3.14 * r * r:.2f}. The answer is {3.14 * r * r:.2f}."
    else:
        q = "Find the circumference of the circle. Use π ≈ 3.14."
        ans = f"Circumference = 2 π r = 2 × 3.14 × {r} = {6.28 * r:.2f}. The answer is {6.28 * r:.2f}."
    return Figure("circle", im, [(q, ans)])


def triangle_angles(rnd: random.Random) -> Figure:
    """Two angles labelled; the third asked."""
    a1, a2 = rnd.randint(25, 90), rnd.randint(20, 70)
    a3 = 180 - a1 - a2
    im, d = _canvas(rnd)
    w, h = im.size
    p0, p1 = (120, h - 120), (w - 120, h - 120)
    base = p1[0] - p0[0]
    t1, t2 = math.tan(math.radians(a1)), math.tan(math.radians(a2))
    x = base * t2 / (t1 + t2)
    apex = (p0[0] + int(x), p0[1] - int(min(x * t1, h - 200)))
    d.polygon([p0, p1, apex], outline=INK, width=4)
    d.text((p0[0] + 30, p0[1] - 50), f"{a1}°", font=font(30), fill=INK)
    d.text((p1[0] - 90, p1[1] - 50), f"{a2}°", font=font(30), fill=INK)
    d.text((apex[0] - 12, apex[1] + 30), "x", font=font(34), fill=ACCENT)
    q = "Find the angle x in the triangle."
    ans = f"The angles of a triangle add up to 180°. So x = 180° - {a1}° - {a2}° = {a3}°. The answer is {a3}°."
    return Figure("triangle_angles", im, [(q, ans)])


def price_table(rnd: random.Random) -> Figure:
    """A small price list; a shopping word problem over it."""
    items = rnd.sample(W.PRODUCTS, 4)
    im = Image.new("RGB", (700, 120 + 64 * len(items)), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.text((40, 30), "Price list", font=font(36), fill=INK)
    for i, (name, price) in enumerate(items):
        y = 100 + 64 * i
        d.line((40, y - 8, 660, y - 8), fill=(200, 200, 200), width=2)
        d.text((40, y), name, font=font(28), fill=INK)
        d.text((520, y), W.money(price), font=font(28), fill=INK)
    (n1, p1), (n2, p2) = rnd.sample(items, 2)
    k1, k2 = rnd.randint(1, 4), rnd.randint(1, 4)
    budget = math.ceil(k1 * p1 + k2 * p2) + rnd.choice((0, 5, 10, 20))
    total = k1 * p1 + k2 * p2
    who = W.person(rnd).split()[0]
    q = (
        f"{who} buys {k1} × {n1} and {k2} × {n2} and pays with {W.money(budget)}. How much change does "
        f"{who} get? Use the price list."
    )
    ans = (
        f"{n1} costs {W.money(p1)}, so {k1} of them cost {k1} × {W.money(p1)} = {W.money(k1 * p1)}. "
        f"{n2} costs {W.money(p2)}, so {k2} of them cost {W.money(k2 * p2)}. Together: {W.money(total)}. "
        f"Change: {W.money(budget)} - {W.money(total)} = {W.money(budget - total)}. "
        f"The answer is {W.money(budget - total)}."
    )
    return Figure("price_table", im, [(q, ans)])


FIGURE_KINDS = (right_triangle, rectangle, circle, triangle_angles, price_table)


def figure(seed: int, index: int) -> Figure:
    """Reasoning figure ``index``: the kinds in turn, numbers drawn from the seed."""
    rnd = random.Random(f"{seed}:figure:{index}")
    return FIGURE_KINDS[index % len(FIGURE_KINDS)](rnd)


def reasoning_conversation(fig: Figure, rnd: random.Random) -> list[dict[str, str]]:
    """The problem with its worked answer; sometimes the follow-up turn too (multi-turn)."""
    n = len(fig.turns) if len(fig.turns) > 1 and rnd.random() < 0.5 else 1
    lead = pick(rnd, _LEADS)
    turns: list[dict[str, str]] = []
    for i, (q, a) in enumerate(fig.turns[:n]):
        q = f"<image>\n{lead}{q}" if i == 0 else q
        turns += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return turns


_LEADS = (
    "",
    "",
    "Look at the figure. ",
    "Solve the problem in the image. ",
    "Answer carefully. ",
    "Here is a math problem. ",
)
