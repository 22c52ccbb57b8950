"""``magicvl review``: a static HTML review sheet of N random records, and the sidecar YAML for the decision.

A person opens the sheet from disk, looks at thumbnails, prompts and responses,
and writes the dataset's category (or ``mixed``) into the sidecar file; the
recipe names that file in the dataset's ``review`` field and the categorize
step uses the decision (source ``inspection``). ``mixed`` (or no decision)
leaves per-sample classification to the VLM or the rules.
"""

from __future__ import annotations

import base64
import html
import io
import random
from pathlib import Path

import yaml
from PIL import Image

from magicvl.scoring.categorize import rule_category
from magicvl.scoring.review import ReviewDecision
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.ingest.preview import PreviewRecord, iter_records
from magicvl.storage.ingest.spec import DatasetConfig, IngestOptions
from magicvl.storage.schema import CATEGORIES

_FORMATS = {".json": "llava_json", ".jsonl": "jsonl", ".parquet": "parquet", ".tar": "webdataset"}


def draw(records, n: int, seed: int) -> list[PreviewRecord]:
    """``n`` records drawn uniformly (reservoir sampling: memory holds n, not the dataset), in source order."""
    rng = random.Random(seed)
    picked: list[tuple[int, PreviewRecord]] = []
    for i, rec in enumerate(records):
        if len(picked) < n:
            picked.append((i, rec))
        elif (j := rng.randint(0, i)) < n:
            picked[j] = (i, rec)
    return [r for _, r in sorted(picked, key=lambda p: p[0])]


def thumbnail(data: bytes | None, side: int = 256) -> str:
    """An inline ``<img>`` (JPEG, base64) or a note why there is none."""
    if data is None:
        return '<div class="noimg">no image</div>'
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (side, side))
            im = im.convert("RGB")
            im.thumbnail((side, side))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
    except Exception as e:  # noqa: BLE001 - a broken image is shown as such
        return f'<div class="noimg">image cannot be shown: {html.escape(str(e))}</div>'
    return f'<img alt="thumbnail" src="data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _turns(rec: PreviewRecord, max_chars: int) -> str:
    if rec.error is not None:
        return f'<p class="err">{html.escape(rec.error)}</p>'
    out = []
    for t in rec.conversations or []:
        v = t["value"] if len(t["value"]) <= max_chars else t["value"][:max_chars] + f" … [{len(t['value'])} chars]"
        out.append(f'<div class="turn {t["from"]}"><b>{t["from"]}</b><pre dir="auto">{html.escape(v)}</pre></div>')
    return "".join(out)


_STYLE = """body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;width:100%}
td{border:1px solid #ccc;vertical-align:top;padding:6px}pre{white-space:pre-wrap;margin:2px 0}
.human pre{color:#124}.gpt pre{color:#141}.err{color:#a00}.noimg{color:#888;width:256px}"""


def _labels(rec: PreviewRecord) -> str:
    rules = rule_category(rec.conversations, rec.image is not None) if rec.conversations else "-"
    return f"<small>label: {html.escape(str(rec.category))}</small><br><small>rules: {rules}</small>"


def render_sheet(dataset: str, records: list[PreviewRecord], sidecar: str, max_chars: int = 2000) -> str:
    """The whole HTML page (self-contained: images inline, no scripts, no network)."""
    rows = "".join(
        f"<tr><td>{i + 1}<br><small>{html.escape(r.source)}</small><br>{_labels(r)}"
        f"</td><td>{thumbnail(r.image)}</td><td>{_turns(r, max_chars)}</td></tr>"
        for i, r in enumerate(records)
    )
    choices = " · ".join((*CATEGORIES, "mixed"))
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>review: {html.escape(dataset)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>Review: {html.escape(dataset)}</h1>"
        f"<p>{len(records)} random records. Decide the dataset's category ({choices}) and write it as "
        f"<code>decision:</code> in <code>{html.escape(sidecar)}</code>; name that file as the dataset's "
        f"<code>review:</code> in the recipe.</p><table>{rows}</table></body></html>"
    )


def dataset_from_path(path: Path, image_root: str | None) -> DatasetConfig:
    """A DatasetConfig for a raw file given directly (format from its suffix)."""
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the format of {path} (expected one of {', '.join(_FORMATS)}) or a recipe")
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem) or "dataset"
    return DatasetConfig(name=name, format=fmt, path=str(path.resolve()), image_root=image_root)


def write_review(
    cfg: DatasetConfig,
    base: Path,
    out_dir: Path,
    n: int = 24,
    seed: int = 0,
    options: IngestOptions | None = None,
    store: ObjectStoreOptions | None = None,
) -> tuple[Path, Path]:
    """Write ``<name>.review.html`` and (unless it exists) ``<name>.review.yaml`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = draw(iter_records(cfg, base, options, store), n, seed)
    sheet, sidecar = out_dir / f"{cfg.name}.review.html", out_dir / f"{cfg.name}.review.yaml"
    sheet.write_text(render_sheet(cfg.name, records, sidecar.name), encoding="utf-8")
    if not sidecar.exists():  # never overwrite a decision someone wrote
        template = ReviewDecision(dataset=cfg.name, sampled=[r.source for r in records])
        text = f"# decision: one of {', '.join(CATEGORIES)}, or mixed\n"
        sidecar.write_text(text + yaml.safe_dump(template.model_dump(), sort_keys=False, allow_unicode=True))
    return sheet, sidecar


def review_main(source: Path, datasets: list[str] | None, out: Path, n: int, seed: int, image_root: str | None) -> int:
    """The CLI body: sheets for a recipe's datasets (or one raw file); prints where they are."""
    if source.suffix.lower() in (".yaml", ".yml"):
        from magicvl.flows.recipe import load_recipe

        recipe = load_recipe(source)
        known = [d.name for d in recipe.datasets]
        unknown = sorted(set(datasets or []) - set(known))
        if unknown:
            raise ValueError(f"datasets {unknown} are not in the recipe (it has {known})")
        store = recipe.storage.s3
        jobs = [
            (d, recipe.base_dir, recipe.ingest, store) for d in recipe.datasets if not datasets or d.name in datasets
        ]
    else:
        root = str(Path(image_root).resolve()) if image_root else None
        jobs = [(dataset_from_path(source, root), source.resolve().parent, None, None)]
    for cfg, base, options, store in jobs:
        sheet, sidecar = write_review(cfg, base, out, n, seed, options, store)
        print(f"{cfg.name}: open {sheet}; write the decision into {sidecar}")
    return 0
