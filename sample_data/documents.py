"""Rendered documents (invoices, receipts, forms, text pages) with the exact text drawn on them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from magicvl.sample_data import words as W
from magicvl.sample_data.words import pick

PAGE_SIZES = ((850, 1100), (1240, 1754))  # US letter and A4 at about 100 / 150 dpi
INK, BLUE, GREY = (20, 20, 20), (25, 45, 140), (120, 120, 120)


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled default font at ``size`` px."""
    return ImageFont.load_default(size=size)


@dataclass
class Document:
    """A rendered page: pixels, its text lines in reading order and named fields."""

    kind: str
    image: Image.Image | None  # None once encoded (pools keep only the bytes)
    lines: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class _Pen:
    """Draws text lines top to bottom and records what it wrote."""

    def __init__(self, doc: Document, margin: int) -> None:
        self.doc, self.draw, self.margin, self.y = doc, ImageDraw.Draw(doc.image), margin, margin

    def line(
        self, text: str, size: int, fill: tuple[int, int, int] = INK, x: int | None = None, gap: float = 0.6
    ) -> None:
        self.draw.text((self.margin if x is None else x, self.y), text, font=font(size), fill=fill)
        self.doc.lines.append(text)
        self.y += int(size * (1 + gap))

    def row(self, cells: list[str], xs: list[int], size: int, fill: tuple[int, int, int] = INK) -> None:
        for text, x in zip(cells, xs):
            self.draw.text((x, self.y), text, font=font(size), fill=fill)
        self.doc.lines.append(" ".join(cells))
        self.y += int(size * 1.6)

    def rule(self, width: int) -> None:
        self.draw.line((self.margin, self.y, width - self.margin, self.y), fill=GREY, width=2)
        self.y += 12


def _date(rnd: random.Random) -> str:
    return f"{rnd.randint(2019, 2024)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"


def invoice(rnd: random.Random) -> Document:
    """A one-page invoice with an item table and totals."""
    w, h = pick(rnd, PAGE_SIZES)
    s = w // 40  # body text size scales with the page
    doc = Document("invoice", Image.new("RGB", (w, h), (255, 255, 255)))
    pen = _Pen(doc, w // 14)
    company, number = pick(rnd, W.COMPANIES), f"INV-{rnd.randint(2019, 2024)}-{rnd.randint(1, 9999):04d}"
    date, client = _date(rnd), W.person(rnd)
    pen.line(company, int(s * 1.8), BLUE)
    pen.line(W.address(rnd), s, GREY, gap=1.5)
    pen.line("INVOICE", int(s * 1.5))
    pen.line(f"Invoice No: {number}", s)
    pen.line(f"Date: {date}", s)
    pen.line(f"Bill to: {client}", s, gap=1.5)
    xs = [pen.margin, int(w * 0.55), int(w * 0.66), int(w * 0.8)]
    pen.row(["Description", "Qty", "Price", "Amount"], xs, s, GREY)
    pen.rule(w)
    subtotal = 0.0
    items = rnd.sample(W.PRODUCTS + tuple((sv, float(rnd.randint(80, 900))) for sv in W.SERVICES), rnd.randint(2, 7))
    for name, price in items:
        qty = rnd.randint(1, 5)
        subtotal += qty * price
        pen.row([name, str(qty), W.money(price), W.money(qty * price)], xs, s)
    pen.rule(w)
    tax = round(subtotal * 0.08, 2)
    total = round(subtotal + tax, 2)
    for label, value in (("Subtotal", subtotal), ("Tax (8%)", tax), ("Total due", total)):
        pen.row([f"{label}:", W.money(value)], [xs[2] - s * 4, xs[3]], s)
    pen.y += s
    pen.line("Payment is due within thirty days of the invoice date.", int(s * 0.8), GREY)
    doc.fields = {
        "invoice number": number,
        "date": date,
        "client": client,
        "company": company,
        "total": W.money(total),
        "number of line items": str(len(items)),
    }
    return doc


def receipt(rnd: random.Random) -> Document:
    """A narrow till receipt."""
    n = rnd.randint(3, 12)
    w, s = 576, 22
    doc = Document("receipt", Image.new("RGB", (w, 330 + n * 36), (250, 249, 244)))
    pen = _Pen(doc, 30)
    store = pick(rnd, ("Corner Market", "Larkspur Bakery", "Riverside Hardware", "City Pharmacy", "Green Grocer"))
    date = _date(rnd)
    pen.line(store.upper(), 30)
    pen.line(W.address(rnd), 18, GREY)
    pen.line(f"{date} {rnd.randint(7, 21):02d}:{rnd.randint(0, 59):02d}", 18, GREY, gap=1.2)
    total = 0.0
    for name, price in rnd.sample(W.PRODUCTS, n):
        total += price
        pen.row([name, W.money(price)], [30, 430], s)
    pen.rule(w)
    pen.row(["TOTAL", W.money(total)], [30, 430], 26)
    pen.line(f"CARD **** {rnd.randint(1000, 9999)}", 18, GREY)
    pen.line("Thank you for shopping with us!", 18)
    doc.fields = {"store": store, "date": date, "total": W.money(total), "number of items": str(n)}
    return doc


def form(rnd: random.Random) -> Document:
    """A filled-in application form: printed labels, values in blue."""
    w, h = PAGE_SIZES[0]
    doc = Document("form", Image.new("RGB", (w, h), (255, 255, 255)))
    pen = _Pen(doc, 70)
    name = W.person(rnd)
    first = name.split()[0].lower()
    values = {
        "Full name": name,
        "Date of birth": f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/{rnd.randint(1950, 2005)}",
        "Email": f"{first}.{rnd.randint(10, 99)}@example.org",
        "Phone": f"+1 555 {rnd.randint(100, 999)} {rnd.randint(1000, 9999)}",
        "Address": W.address(rnd),
        "Membership": pick(rnd, ("Standard", "Student", "Family", "Senior")),
    }
    pen.line(pick(rnd, ("Membership Application", "Library Card Application", "Gym Registration Form")), 34, gap=1.0)
    for label, value in values.items():
        pen.draw.rectangle((pen.margin + 250, pen.y - 6, w - pen.margin, pen.y + 34), outline=GREY, width=1)
        pen.draw.text((pen.margin, pen.y), f"{label}:", font=font(22), fill=INK)
        pen.draw.text((pen.margin + 262, pen.y), value, font=font(22), fill=BLUE)
        doc.lines.append(f"{label}: {value}")
        pen.y += 56
    pen.y += 20
    pen.line("I confirm that the information above is correct.", 18, GREY)
    doc.fields = {k.lower(): v for k, v in values.items()}
    return doc


def _wrap(text: str, size: int, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if font(size).getlength(trial) > width and current:
            lines.append(current)
            current = word
        else:
            current = trial
    return lines + ([current] if current else [])


def text_page(rnd: random.Random) -> Document:
    """A page of running text: a title and wrapped paragraphs."""
    w, h = pick(rnd, PAGE_SIZES)
    s = rnd.choice((w // 44, w // 38, w // 32))
    doc = Document("page", Image.new("RGB", (w, h), (255, 255, 255)))
    pen = _Pen(doc, w // 12)
    title = pick(rnd, W.TITLES)
    pen.line(title, int(s * 1.6), gap=1.0)
    first_lines = []
    sentences = rnd.sample(W.SENTENCES, len(W.SENTENCES))  # no sentence twice on a page
    for _ in range(rnd.randint(1, 4)):
        n = rnd.randint(2, 6)
        para = _wrap(" ".join(sentences[:n]), s, w - 2 * pen.margin)
        sentences = sentences[n:] or sentences
        if pen.y + len(para) * int(s * 1.5) > h - pen.margin:
            break
        first_lines.append(para[0])
        for text in para:
            pen.line(text, s, gap=0.5)
        pen.y += s
    doc.fields = {"title": title, "first line": first_lines[0]} if first_lines else {"title": title}
    return doc


DOC_KINDS = {"invoice": invoice, "receipt": receipt, "form": form, "page": text_page}


def document(seed: int, index: int) -> Document:
    """Document ``index``: the four kinds in turn, contents drawn from the seed."""
    rnd = random.Random(f"{seed}:doc:{index}")
    kind = tuple(DOC_KINDS)[index % len(DOC_KINDS)]
    return DOC_KINDS[kind](rnd)


_READ_ALL = (
    "Read all the text in the image.",
    "Transcribe the text in this document.",
    "What is written in this image? Give the full text.",
    "OCR this document, keeping the line breaks.",
)


def ocr_conversation(doc: Document, rnd: random.Random) -> list[dict[str, str]]:
    """Either a full transcription or one to two questions about named fields; answers are the exact text."""
    if rnd.random() < 0.5 or not doc.fields:
        return [{"from": "human", "value": f"<image>\n{pick(rnd, _READ_ALL)}"}, {"from": "gpt", "value": doc.text}]
    keys = rnd.sample(sorted(doc.fields), min(len(doc.fields), rnd.choice((1, 2))))
    turns: list[dict[str, str]] = []
    for i, key in enumerate(keys):
        q = pick(
            rnd,
            (
                f"What is the {key} on this {doc.kind}?",
                f"According to the {doc.kind}, what is the {key}?",
                f"Read the {key} from the image.",
            ),
        )
        turns += [
            {"from": "human", "value": f"<image>\n{q}" if i == 0 else q},
            {"from": "gpt", "value": doc.fields[key]},
        ]
    return turns
