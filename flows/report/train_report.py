"""The training page of the HTML report: ``<report>/train.html``.

From the stage folders of a run (``<root>/train/stage=<k>/`` by default): the
held-out evaluation per category across stages (``eval.json``: NLL and
next-token accuracy, table and plot), the training loss and learning-rate
curves (``metrics.jsonl``, stages one after the other) and tokens/s per stage.
Written only when the run has trained something; ``write_report`` links it from
``index.html``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

TRAIN_PAGE = "train.html"


def stage_folders(train_root: Path) -> dict[int, Path]:
    """``{stage: folder}`` of the stage folders that hold metrics or an evaluation."""
    out = {}
    for p in sorted(train_root.glob("stage=*")):
        if p.name.split("=", 1)[1].isdigit() and ((p / "metrics.jsonl").is_file() or (p / "eval.json").is_file()):
            out[int(p.name.split("=", 1)[1])] = p
    return out


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def read_eval(folder: Path) -> dict[str, Any] | None:
    path = folder / "eval.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(6, 3.2), dpi=80)


def plot_curves(metrics: dict[int, list[dict]], path: Path) -> Path:
    """Loss and LR against the optimizer step, stages one after the other (a dashed line between stages)."""
    fig = _figure()
    ax_loss, ax_lr = fig.subplots(1, 2)
    offset = 0
    for stage, rows in sorted(metrics.items()):
        steps = [offset + r["step"] for r in rows]
        ax_loss.plot(steps, [r["loss"] for r in rows], marker=".", label=f"stage {stage}")
        ax_lr.plot(steps, [r["lr"] for r in rows], marker=".", label=f"stage {stage}")
        offset = steps[-1] if steps else offset
        for ax in (ax_loss, ax_lr):
            ax.axvline(offset, color="grey", lw=0.5, ls="--")
    ax_loss.set(xlabel="optimizer step", ylabel="loss (assistant tokens)")
    ax_lr.set(xlabel="optimizer step", ylabel="learning rate")
    ax_loss.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_eval(evals: dict[int, dict], path: Path) -> Path:
    """Held-out NLL per category against the stage."""
    fig = _figure()
    ax = fig.add_subplot()
    cats = sorted({c for e in evals.values() for c in e["categories"]})
    for cat in [*cats, "all"]:
        points = [(k, _metric(e, cat, "nll")) for k, e in sorted(evals.items())]
        points = [(k, v) for k, v in points if v is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label=cat, lw=2 if cat == "all" else 1)
    ax.set(xlabel="training stage", ylabel="held-out NLL (response tokens)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _metric(e: dict, cat: str, key: str) -> float | None:
    m = e["all"] if cat == "all" else e["categories"].get(cat)
    return None if m is None else m[key]


def _fmt(v: float | None, digits: int = 4) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def eval_table(evals: dict[int, dict]) -> str:
    """Category × stage: NLL / accuracy."""
    stages = sorted(evals)
    cats = sorted({c for e in evals.values() for c in e["categories"]}) + ["all"]
    rows = [
        [cat]
        + [f"{_fmt(_metric(evals[k], cat, 'nll'))} / {_fmt(_metric(evals[k], cat, 'accuracy'), 3)}" for k in stages]
        for cat in cats
    ]
    return _table(["category"] + [f"stage {k} NLL / accuracy" for k in stages], rows)


def stage_table(metrics: dict[int, list[dict]]) -> str:
    rows = []
    for stage, r in sorted(metrics.items()):
        if r:
            tps = sum(x["tokens_per_s"] for x in r) / len(r)
            rows.append([str(stage), str(r[-1]["step"]), _fmt(r[0]["loss"]), _fmt(r[-1]["loss"]), f"{tps:.0f}"])
    return _table(["stage", "steps", "first loss", "last loss", "mean tokens/s"], rows)


def write_train_page(root: str | Path, folder: str | Path, train_root: str | Path | None = None) -> Path | None:
    """Write ``train.html`` (and its PNGs) into the report ``folder``; None when nothing was trained."""
    root, folder = Path(root), Path(folder)
    stages = stage_folders(Path(train_root) if train_root else root / "train")
    if not stages:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {k: m for k, p in stages.items() if (m := read_metrics(p))}
    evals = {k: e for k, p in stages.items() if (e := read_eval(p)) is not None}
    parts = ["<h1>Training</h1>", f"<p>Stage folders: {html.escape(str(next(iter(stages.values())).parent))}</p>"]
    parts.append("<h2>Held-out evaluation (curated/eval/)</h2>")
    if evals:
        plot_eval(evals, folder / "train_eval.png")
        parts += [eval_table(evals), '<p><img src="train_eval.png" alt="held-out NLL per category"></p>']
    else:
        parts.append("<p>No stage has been evaluated (no eval.json).</p>")
    if metrics:
        plot_curves(metrics, folder / "train_curves.png")
        parts += ["<h2>Training loss, learning rate and throughput</h2>", stage_table(metrics)]
        parts.append('<p><img src="train_curves.png" alt="loss and learning rate"></p>')
    style = "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font:13px sans-serif}"
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>Training</title><style>{style}</style></head>"
    page += "<body>" + "\n".join(parts) + '<p><a href="index.html">back to the report</a></p></body></html>\n'
    path = folder / TRAIN_PAGE
    path.write_text(page, encoding="utf-8")
    return path


def link_html() -> str:
    """The line ``index.html`` carries when a training page exists."""
    return f'<p><a href="{TRAIN_PAGE}">Training: loss, learning rate, held-out evaluation per stage</a></p>'
