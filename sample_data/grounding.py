"""Grounding: coloured shapes drawn on photos at known positions, and questions that locate them."""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from magicvl.sample_data.photos import photo_variant
from magicvl.sample_data.words import pick

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 210, 20),
    "magenta": (200, 40, 200),
    "cyan": (20, 200, 210),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle", "diamond")
MIN_SHORT_SIDE = 320


@dataclass(frozen=True)
class Shape:
    """One drawn object: its name and pixel box (x1, y1, x2, y2, exclusive ends)."""

    color: str
    shape: str
    box: tuple[int, int, int, int]

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class GroundingImage:
    """A photo with shapes on it."""

    image: Image.Image | None  # None once encoded (pools keep only the bytes)
    size: tuple[int, int]
    shapes: tuple[Shape, ...]


def _draw(draw: ImageDraw.ImageDraw, s: Shape) -> None:
    x1, y1, x2, y2 = s.box
    fill, outline = COLORS[s.color], (255, 255, 255)
    box = (x1, y1, x2 - 1, y2 - 1)
    if s.shape == "circle":
        draw.ellipse(box, fill=fill, outline=outline, width=2)
    elif s.shape == "square":
        draw.rectangle(box, fill=fill, outline=outline, width=2)
    elif s.shape == "triangle":
        draw.polygon([((x1 + x2) // 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=fill, outline=outline, width=2)
    else:
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        draw.polygon([(cx, y1), (x2 - 1, cy), (cx, y2 - 1), (x1, cy)], fill=fill, outline=outline, width=2)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def grounding_image(seed: int, index: int) -> GroundingImage:
    """Photo variant ``index`` with two to four non-overlapping shapes of distinct colours."""
    rnd = random.Random(f"{seed}:grounding-shapes:{index}")
    im = photo_variant(seed, "grounding", index).image.convert("RGB")
    if min(im.size) < MIN_SHORT_SIDE:
        f = MIN_SHORT_SIDE / min(im.size)
        im = im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.BICUBIC)
    w, h = im.size
    colors = rnd.sample(sorted(COLORS), rnd.randint(2, 4))
    shapes: list[Shape] = []
    for color in colors:
        for _ in range(50):  # rejection sampling; deterministic through rnd
            side = int(min(w, h) * rnd.uniform(0.12, 0.25))
            x1, y1 = rnd.randint(0, w - side), rnd.randint(0, h - side)
            box = (x1, y1, x1 + side, y1 + side)
            if not any(_overlaps(box, s.box, 8) for s in shapes):
                shapes.append(Shape(color, pick(rnd, SHAPES), box))
                break
    draw = ImageDraw.Draw(im)
    for s in shapes:
        _draw(draw, s)
    return GroundingImage(im, im.size, tuple(shapes))


def norm_box(box: tuple[int, int, int, int], size: tuple[int, int]) -> list[float]:
    """Box as ``[x1, y1, x2, y2]`` fractions of width/height, 3 decimals."""
    w, h = size
    return [round(box[0] / w, 3), round(box[1] / h, 3), round(box[2] / w, 3), round(box[3] / h, 3)]


def qwen_box(box: tuple[int, int, int, int], size: tuple[int, int]) -> str:
    """Qwen-VL box string with 0-1000 integer coordinates."""
    w, h = size
    x1, y1 = round(box[0] / w * 1000), round(box[1] / h * 1000)
    x2, y2 = round(box[2] / w * 1000), round(box[3] / h * 1000)
    return f"<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>"


def _fmt(b: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in b) + "]"


def _ask(s: Shape, size: tuple[int, int], rnd: random.Random) -> tuple[str, str]:
    style = rnd.randrange(4)
    if style == 0:
        return f"Locate the {s.name} in the image.", _fmt(norm_box(s.box, size))
    if style == 1:
        q = f"Please provide the bounding box coordinate of the region this sentence describes: the {s.name}."
        return q, _fmt(norm_box(s.box, size))
    if style == 2:
        q = f"Find the {s.name} and output its bounding box."
        return q, f"<|object_ref_start|>the {s.name}<|object_ref_end|>{qwen_box(s.box, size)}"
    return f"What object is inside the region {_fmt(norm_box(s.box, size))}?", f"A {s.name}."


def grounding_conversation(item: GroundingImage, rnd: random.Random) -> list[dict[str, str]]:
    """One or two grounding questions (normalised boxes, Qwen boxes, or region naming)."""
    asked = rnd.sample(item.shapes, min(len(item.shapes), rnd.choice((1, 1, 2))))
    turns: list[dict[str, str]] = []
    for i, s in enumerate(asked):
        q, a = _ask(s, item.size, rnd)
        turns += [{"from": "human", "value": f"<image>\n{q}" if i == 0 else q}, {"from": "gpt", "value": a}]
    return turns
