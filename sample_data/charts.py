"""Charts: bar, line and pie charts of known data (matplotlib, Agg), with answers computed from the data."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image

from magicvl.sample_data.words import pick

KINDS = ("bar", "line", "pie")
FIGSIZES = ((8.0, 6.0), (6.4, 4.8), (10.0, 6.0))
_BAR_SETS = (
    ("Sales by region", "Revenue (million USD)", ("North", "South", "East", "West", "Central", "Overseas")),
    ("Students per course", "Enrolled students", ("Math", "Biology", "History", "Art", "Physics", "Music", "Law")),
    ("Fruit harvested", "Tonnes", ("Apples", "Pears", "Plums", "Cherries", "Grapes")),
    ("Support tickets by team", "Tickets", ("Billing", "Accounts", "Mobile", "Web", "Hardware", "Shipping")),
)
_LINE_SETS = (
    ("Monthly active users", "Users (thousands)"),
    ("Average rainfall", "Rainfall (mm)"),
    ("Units produced", "Units"),
    ("Website visits", "Visits (thousands)"),
)
_PIE_SETS = (
    ("Household budget", ("Housing", "Food", "Transport", "Leisure", "Savings", "Health")),
    ("Energy mix", ("Solar", "Wind", "Hydro", "Gas", "Nuclear")),
    ("Time spent per day", ("Sleep", "Work", "Commute", "Exercise", "Family", "Reading")),
)


@dataclass(frozen=True)
class ChartSpec:
    """The data behind one chart. Values are integers; pie values are percentages summing to 100."""

    kind: str
    title: str
    ylabel: str
    labels: tuple[str, ...]
    values: tuple[int, ...]
    figsize: tuple[float, float]

    def top(self) -> str:
        return self.labels[self.values.index(max(self.values))]

    def bottom(self) -> str:
        return self.labels[self.values.index(min(self.values))]

    def value(self, label: str) -> int:
        return self.values[self.labels.index(label)]


def _distinct_extremes(values: list[int]) -> bool:
    return values.count(max(values)) == 1 and values.count(min(values)) == 1


def chart_spec(seed: int, index: int) -> ChartSpec:
    """Chart ``index``: bar, line and pie in turn, with a unique maximum and minimum."""
    rnd = random.Random(f"{seed}:chart:{index}")
    kind = KINDS[index % len(KINDS)]
    size = pick(rnd, FIGSIZES)
    while True:
        if kind == "bar":
            title, ylabel, pool = pick(rnd, _BAR_SETS)
            labels = tuple(rnd.sample(pool, rnd.randint(3, min(7, len(pool)))))
            values = [rnd.randint(5, 120) for _ in labels]
        elif kind == "line":
            title, ylabel = pick(rnd, _LINE_SETS)
            start = rnd.randint(2010, 2016)
            labels = tuple(str(y) for y in range(start, start + rnd.randint(5, 9)))
            level, values = rnd.randint(20, 200), []
            for _ in labels:
                level = max(1, level + rnd.randint(-25, 30))
                values.append(level)
        else:
            title, pool = pick(rnd, _PIE_SETS)
            ylabel = "Share (%)"
            labels = tuple(rnd.sample(pool, rnd.randint(3, min(6, len(pool)))))
            cuts = sorted(rnd.sample(range(4, 97), len(labels) - 1))
            values = [b - a for a, b in zip([0, *cuts], [*cuts, 100])]
        if _distinct_extremes(values) and min(values) > 0:
            return ChartSpec(kind, title, ylabel, labels, tuple(values), size)


def render_chart(spec: ChartSpec) -> bytes:
    """PNG bytes of ``spec`` drawn with matplotlib's Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=spec.figsize, dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if spec.kind == "bar":
        bars = ax.bar(spec.labels, spec.values, color="#4C72B0")
        ax.bar_label(bars, fmt="%d")
        ax.set_ylabel(spec.ylabel)
    elif spec.kind == "line":
        ax.plot(spec.labels, spec.values, marker="o", color="#DD8452")
        for x, y in zip(spec.labels, spec.values):
            ax.annotate(str(y), (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=9)
        ax.set_ylabel(spec.ylabel)
        ax.set_xlabel("Year")
    else:
        ax.pie(spec.values, labels=spec.labels, autopct=lambda p: f"{round(p)}%", startangle=90, counterclock=False)
        ax.axis("equal")
    if spec.kind != "pie":
        ax.margins(y=0.12)  # room for the value labels under the title
    ax.set_title(spec.title)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.1, top=0.92)  # fixed margins: tight_layout costs 40%
    canvas.draw()
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    rgba.convert("RGB").save(buf, format="PNG", compress_level=3)  # PIL's encoder: faster than savefig's
    return buf.getvalue()


def chart_qa(spec: ChartSpec, rnd: random.Random) -> tuple[str, str]:
    """One question about ``spec`` and its answer, computed from the data."""
    pct = "%" if spec.kind == "pie" else ""
    style = rnd.randrange(4)
    if style == 0:
        noun = (
            "segment has the largest share"
            if spec.kind == "pie"
            else ("year has the highest value" if spec.kind == "line" else "category has the highest value")
        )
        return f"Which {noun}?", spec.top()
    if style == 1:
        noun = (
            "segment has the smallest share"
            if spec.kind == "pie"
            else ("year has the lowest value" if spec.kind == "line" else "category has the lowest value")
        )
        return f"Which {noun}?", spec.bottom()
    if style == 2:
        label = pick(rnd, spec.labels)
        where = f"in {label}" if spec.kind == "line" else f"for {label}"
        return f"What is the value {where}?", f"{spec.value(label)}{pct}"
    diff = max(spec.values) - min(spec.values)
    return "What is the difference between the highest and the lowest value?", f"{diff}{pct}"


def chart_conversation(spec: ChartSpec, rnd: random.Random) -> list[dict[str, str]]:
    """One to three chart questions (ChartQA style: short answers)."""
    turns: list[dict[str, str]] = []
    asked: set[str] = set()
    for i in range(rnd.choice((1, 1, 2, 3))):
        q, a = chart_qa(spec, rnd)
        if q in asked:
            continue
        asked.add(q)
        if i == 0:
            q = f"<image>\n{q}" + (" Answer with a single word or number." if rnd.random() < 0.5 else "")
        turns += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return turns


def chart_reasoning(spec: ChartSpec, rnd: random.Random) -> list[dict[str, str]]:
    """A multi-step question about the chart with a worked answer."""
    if spec.kind == "pie":
        total = rnd.choice((1200, 2500, 4000, 60000))
        label = pick(rnd, spec.labels)
        share = spec.value(label)
        amount = total * share / 100
        q = f"If the total is {total:,}, how much goes to {label}? Explain your reasoning."
        a = (
            f"The chart shows that {label} has a share of {share}%. {share}% of {total:,} is "
            f"{share} / 100 × {total:,} = {amount:,.0f}. The answer is {amount:,.0f}."
        )
    elif spec.kind == "line":
        a_lab, b_lab = spec.labels[0], spec.labels[-1]
        va, vb = spec.value(a_lab), spec.value(b_lab)
        change = (vb - va) / va * 100
        q = f"By what percentage did the value change from {a_lab} to {b_lab}? Think step by step."
        a = (
            f"In {a_lab} the value was {va}; in {b_lab} it was {vb}. The change is {vb} - {va} = {vb - va}. "
            f"Relative to {va} that is {vb - va} / {va} × 100 ≈ {change:.1f}%. The answer is {change:.1f}%."
        )
    else:
        parts = " + ".join(str(v) for v in spec.values)
        total = sum(spec.values)
        q = "What is the total over all categories, and which category contributes the most? Show your work."
        a = (
            f"Adding the bars: {parts} = {total}. The tallest bar is {spec.top()} with {max(spec.values)}, "
            f"which is {max(spec.values) / total * 100:.1f}% of the total. The answer is {total}, led by {spec.top()}."
        )
    return [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}]
