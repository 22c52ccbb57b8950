"""GUI screenshots: phone and desktop screens drawn with PIL, with every element's name and box."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from magicvl.sample_data import words as W
from magicvl.sample_data.documents import font
from magicvl.sample_data.grounding import qwen_box
from magicvl.sample_data.words import pick

PHONE, PHONE_LONG = (1080, 2340), (1080, 4800)
DESKTOPS = ((1280, 800), (1920, 1080))
THEMES = (
    ((255, 255, 255), (28, 28, 30), (0, 122, 255)),
    ((18, 18, 20), (235, 235, 240), (48, 209, 88)),
    ((246, 244, 250), (40, 30, 60), (103, 80, 164)),
)  # (background, text, accent)


@dataclass(frozen=True)
class Element:
    """A UI element: what a user would call it, its kind, its pixel box and state."""

    name: str
    kind: str  # button | field | tab | toggle | item | menu
    box: tuple[int, int, int, int]
    state: str = ""  # "on"/"off" for toggles, "selected" for the active tab

    @property
    def center(self) -> tuple[int, int]:
        return (self.box[0] + self.box[2]) // 2, (self.box[1] + self.box[3]) // 2


@dataclass
class Screen:
    """A screenshot and its elements."""

    app: str
    platform: str  # phone | desktop
    image: Image.Image | None  # None once encoded (pools keep only the bytes)
    size: tuple[int, int]
    elements: list[Element] = field(default_factory=list)


class _Canvas:
    def __init__(self, screen: Screen, theme: tuple) -> None:
        self.s, self.d = screen, ImageDraw.Draw(screen.image)
        self.bg, self.fg, self.accent = theme
        self.muted = tuple((a + b) // 2 for a, b in zip(self.bg, self.fg))

    def text(self, xy: tuple[int, int], text: str, size: int, fill: tuple | None = None) -> None:
        self.d.text(xy, text, font=font(size), fill=fill or self.fg)

    def add(self, name: str, kind: str, box: tuple[int, int, int, int], state: str = "") -> None:
        self.s.elements.append(Element(name, kind, box, state))

    def button(self, label: str, box: tuple[int, int, int, int], size: int, filled: bool = True) -> None:
        fill, ink = (self.accent, (255, 255, 255)) if filled else (self.bg, self.accent)
        self.d.rounded_rectangle(box, radius=(box[3] - box[1]) // 2, fill=fill, outline=self.accent, width=3)
        tw = font(size).getlength(label)
        self.text((int((box[0] + box[2] - tw) / 2), (box[1] + box[3] - size) // 2), label, size, ink)
        self.add(label, "button", box)

    def field(self, hint: str, box: tuple[int, int, int, int], size: int) -> None:
        self.d.rounded_rectangle(box, radius=12, outline=self.muted, width=3)
        self.text((box[0] + size, (box[1] + box[3] - size) // 2), hint, size, self.muted)
        self.add(hint, "field", box)

    def toggle(self, label: str, on: bool, y: int, w: int, size: int) -> None:
        self.text((60, y), label, size)
        box = (w - 200, y - 10, w - 60, y + 60)
        self.d.rounded_rectangle(box, radius=35, fill=self.accent if on else self.muted)
        kx = box[2] - 68 if on else box[0] + 8
        self.d.ellipse((kx, box[1] + 8, kx + 60, box[3] - 8), fill=(255, 255, 255))
        self.add(label, "toggle", box, "on" if on else "off")


def _phone_chrome(c: _Canvas, title: str, tabs: tuple[str, ...], selected: int, w: int, h: int) -> None:
    c.text((60, 25), f"9:{41 + selected:02d}", 40)
    c.text((w - 200, 25), "87%", 40)
    c.text((60, 140), "<", 64, c.accent)
    c.add("Back", "button", (40, 130, 130, 230))
    c.text((170, 145), title, 60)
    c.d.rectangle((0, h - 200, w, h), fill=c.muted)
    step = w // len(tabs)
    for i, tab in enumerate(tabs):
        x = i * step + (step - int(font(36).getlength(tab))) // 2
        c.text((x, h - 120), tab, 36, c.accent if i == selected else c.fg)
        c.add(tab, "tab", (i * step, h - 200, (i + 1) * step, h), "selected" if i == selected else "")


def phone_screen(rnd: random.Random) -> Screen:
    """A phone screen: login, settings, shop or (long scrolling capture) inbox."""
    app = pick(rnd, ("login", "settings", "shop", "inbox"))
    w, h = PHONE_LONG if app == "inbox" else PHONE
    theme = pick(rnd, THEMES)
    s = Screen(app, "phone", Image.new("RGB", (w, h), theme[0]), (w, h))
    c = _Canvas(s, theme)
    tabs = ("Home", "Search", "Library", "Profile")
    title = {"login": "Welcome back", "settings": "Settings", "shop": pick(rnd, W.COMPANIES), "inbox": "Inbox"}[app]
    _phone_chrome(c, title, tabs, rnd.randrange(len(tabs)), w, h)
    y = 320
    if app == "login":
        for hint in ("Email", "Password"):
            c.field(hint, (60, y, w - 60, y + 140), 44)
            y += 200
        c.button("Sign in", (60, y + 40, w - 60, y + 180), 48)
        c.text((60, y + 240), "Forgot password?", 40, c.accent)
        c.add("Forgot password?", "button", (60, y + 230, 420, y + 300))
        c.button("Create account", (60, y + 360, w - 60, y + 500), 48, filled=False)
    elif app == "settings":
        for label in rnd.sample(
            (
                "Wi-Fi",
                "Bluetooth",
                "Dark mode",
                "Notifications",
                "Location",
                "Airplane mode",
                "Auto-rotate",
                "Battery saver",
            ),
            6,
        ):
            c.toggle(label, rnd.random() < 0.5, y, w, 48)
            y += 170
    elif app == "shop":
        c.field("Search products", (60, y, w - 60, y + 130), 44)
        y += 190
        for name, price in rnd.sample(W.PRODUCTS, 4):
            c.text((60, y), name, 44)
            c.text((60, y + 70), W.money(price), 40, c.muted)
            c.button("Add to cart", (w - 420, y, w - 60, y + 120), 40)
            s.elements[-1] = Element(f"Add to cart ({name})", "button", s.elements[-1].box)
            c.add(name, "item", (60, y, w - 440, y + 120))
            y += 380
    else:
        while y < h - 420:
            sender, subject = W.person(rnd), pick(rnd, W.SENTENCES)[:38].rstrip() + "..."
            c.text((60, y), sender, 44)
            c.text((60, y + 70), subject, 36, c.muted)
            c.add(sender, "item", (0, y - 20, w, y + 140))
            y += 200
        c.d.ellipse((w - 240, h - 420, w - 80, h - 260), fill=c.accent)
        c.text((w - 180, h - 375), "+", 64, (255, 255, 255))
        c.add("Compose", "button", (w - 240, h - 420, w - 80, h - 260))
    return s


def desktop_screen(rnd: random.Random) -> Screen:
    """A desktop window: title bar, menu bar, sidebar and a form with buttons."""
    w, h = pick(rnd, DESKTOPS)
    theme = pick(rnd, THEMES)
    app = pick(rnd, ("Project Tracker", "Mail", "Inventory Manager"))
    s = Screen(app, "desktop", Image.new("RGB", (w, h), theme[0]), (w, h))
    c = _Canvas(s, theme)
    k = w / 1280  # scale factor
    c.d.rectangle((0, 0, w, int(36 * k)), fill=c.muted)
    c.text((int(90 * k), int(8 * k)), app, int(18 * k))
    for i, (col, name) in enumerate(
        (((255, 95, 86), "Close"), ((255, 189, 46), "Minimize"), ((39, 201, 63), "Maximize"))
    ):
        x = int((14 + 22 * i) * k)
        c.d.ellipse((x, int(11 * k), x + int(14 * k), int(25 * k)), fill=col)
        c.add(name, "button", (x, int(11 * k), x + int(14 * k), int(25 * k)))
    x = int(12 * k)
    for menu in ("File", "Edit", "View", "Insert", "Help"):
        c.text((x, int(46 * k)), menu, int(16 * k))
        mw = int(font(int(16 * k)).getlength(menu))
        c.add(menu, "menu", (x - 4, int(42 * k), x + mw + 4, int(68 * k)))
        x += mw + int(24 * k)
    side = (
        ("Dashboard", "Projects", "Reports", "Team", "Settings")
        if app != "Mail"
        else ("Inbox", "Drafts", "Sent", "Archive", "Trash")
    )
    active = rnd.randrange(len(side))
    for i, item in enumerate(side):
        y = int((100 + 44 * i) * k)
        if i == active:
            c.d.rectangle((0, y - int(8 * k), int(220 * k), y + int(30 * k)), fill=c.muted)
        c.text((int(24 * k), y), item, int(18 * k))
        c.add(item, "item", (0, y - int(8 * k), int(220 * k), y + int(30 * k)), "selected" if i == active else "")
    fx, y = int(260 * k), int(100 * k)
    c.text((fx, y), pick(rnd, ("New project", "New message", "Add item")), int(26 * k))
    y += int(60 * k)
    for label in rnd.sample(("Name", "Owner", "Due date", "Subject", "Recipient", "Quantity", "Notes"), 3):
        c.text((fx, y), label, int(16 * k))
        c.field(label, (fx, y + int(24 * k), w - int(60 * k), y + int(64 * k)), int(16 * k))
        y += int(90 * k)
    c.button("Save", (fx, y, fx + int(120 * k), y + int(44 * k)), int(18 * k))
    c.button("Cancel", (fx + int(140 * k), y, fx + int(260 * k), y + int(44 * k)), int(18 * k), filled=False)
    return s


def screen(seed: int, index: int) -> Screen:
    """Screenshot ``index``: phones and desktops alternate."""
    rnd = random.Random(f"{seed}:gui:{index}")
    return phone_screen(rnd) if index % 3 != 2 else desktop_screen(rnd)


def _question(s: Screen, e: Element, rnd: random.Random) -> tuple[str, str]:
    verb = "Tap" if s.platform == "phone" else "Click"
    x, y = e.center
    if e.kind == "toggle" and rnd.random() < 0.5:
        return f"Is {e.name} turned on?", "Yes" if e.state == "on" else "No"
    style = rnd.randrange(3)
    if style == 0:
        return f'Where should I {verb.lower()} to use "{e.name}"? Give the point in pixels.', f"{verb} at ({x}, {y})."
    if style == 1:
        return f'Output the bounding box of the {e.kind} "{e.name}".', qwen_box(e.box, s.size)
    return f"What is the name of the {e.kind} at pixel ({x}, {y})?", e.name


def gui_conversation(s: Screen, rnd: random.Random) -> list[dict[str, str]]:
    """Questions about elements: click points, boxes (0-1000), names, toggle and tab states."""
    turns: list[dict[str, str]] = []
    if rnd.random() < 0.25:
        tabs = [e.name for e in s.elements if e.kind in ("tab", "menu")]
        if tabs:
            q = "List the items of the navigation bar in order." if s.platform == "phone" else "List the menus."
            turns += [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": ", ".join(tabs)}]
    for e in rnd.sample(s.elements, rnd.choice((1, 1, 2))):
        q, a = _question(s, e, rnd)
        turns += [{"from": "human", "value": q if turns else f"<image>\n{q}"}, {"from": "gpt", "value": a}]
    return turns
