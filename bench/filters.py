"""Heuristic + repetition filters vs Data-Juicer's character-repetition, word-repetition and
special-characters filters (their defaults), on the same texts in the same run, one core each.

    python -m bench.filters [--records 50000] [--dj-python work/dj-venv/bin/python] [--labelled-only]

Then precision and recall per rule on the labelled set (bench/data/repetition_set.jsonl: real texts
from this machine's files vs planted loops; ``bench.repetition_set``), ours beside Data-Juicer's.

Texts: the sample data's clean responses (``magicvl sample-data``), cycled to ``--records``,
with a planted share of bad ones (repetition, mojibake, control characters, AI boilerplate,
empty). Data-Juicer runs in its own venv (py-data-juicer 1.6.1, python 3.11) as a subprocess.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, table

DJ_FILTERS = ("character_repetition", "word_repetition", "special_characters")


def sample_responses(work: Path) -> list[tuple[str, str]]:
    """(dataset/category, response) of every clean record of the default sample data."""
    from magicvl.flows.recipe import load_recipe
    from magicvl.sample_data import generate
    from magicvl.storage.ingest.preview import iter_records

    data = work / "data-default"
    if not (data / "sample_manifest.json").is_file():
        generate(data)
    recipe = load_recipe(REPO / "flows" / "recipes" / "demo.yaml")
    out = []
    for cfg in recipe.datasets:
        cfg = cfg.model_copy(
            update={
                "path": cfg.path.replace("data/", ""),
                "image_root": cfg.image_root and cfg.image_root.replace("data/", ""),
            }
        )
        for r in iter_records(cfg, data):
            if r.error is None:
                out.append(
                    (f"{r.dataset}/{r.category}", "\n".join(t["value"] for t in r.conversations if t["from"] == "gpt"))
                )
    return out


PLANTS = {
    "repeat_phrase": lambda t, rng: " ".join([rng.choice(["coffee cup", "the cat", "very good"])] * rng.randint(8, 40)),
    "repeat_sentence": lambda t, rng: " ".join([t.split(".")[0].strip() + "."] * rng.randint(3, 10)),
    "mojibake": lambda t, rng: t.encode("utf-8").decode("latin-1", errors="replace") + " Ã©tÃ© â€™",
    "control": lambda t, rng: "".join(c + ("\x00\ufffd" if i % 4 == 0 else "") for i, c in enumerate(t)),
    "ai_boilerplate": lambda t, rng: "As an AI language model, I cannot see the image. " + t,
    "empty": lambda t, rng: "",
}


def build_texts(clean: list[tuple[str, str]], n: int, plant_share: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` texts and their kind (``clean:<dataset/category>`` or a planted kind)."""
    rng = random.Random(seed)
    texts, kinds = [], []
    for i in range(n):
        where, text = clean[i % len(clean)]
        if rng.random() < plant_share:
            kind = rng.choice(sorted(PLANTS))
            texts.append(PLANTS[kind](text, rng))
            kinds.append(kind)
        else:
            texts.append(text)
            kinds.append(f"clean:{where}")
    return texts, kinds


def run_ours(texts: list[str]) -> tuple[np.ndarray, float, dict[str, int]]:
    from magicvl.scoring.filters.config import FiltersConfig, decide, measure_all

    cfg = FiltersConfig()
    t0 = time.process_time()  # CPU seconds: fair per core on a shared, loaded machine
    d = decide(measure_all([[t] for t in texts], cfg), cfg)
    return d.keep_mask(), time.process_time() - t0, d.counts()


def run_dj(texts: list[str], dj_python: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(texts), encoding="utf-8")
        subprocess.run(
            [dj_python, str(REPO / "bench" / "_dj_worker.py"), str(src), str(dst)], check=True, capture_output=True
        )
        res = json.loads(dst.read_text())
    return {k: np.array(v, dtype=bool) for k, v in res["keep"].items()}, res["seconds"]


def agreement(kinds: list[str], ours: np.ndarray, dj: np.ndarray) -> list[dict]:
    """Per kind of text: records, dropped by us, by DJ, by both, only us, only DJ."""
    rows = []
    groups = sorted({k if not k.startswith("clean:") else "clean (all)" for k in kinds}) + sorted(
        {k for k in kinds if k.startswith("clean:")}
    )
    for g in groups:
        m = np.array([(k == g) or (g == "clean (all)" and k.startswith("clean:")) for k in kinds])
        o, d = ~ours[m], ~dj[m]
        rows.append(
            {
                "texts": g,
                "n": int(m.sum()),
                "ours drop": int(o.sum()),
                "DJ drop": int(d.sum()),
                "both": int((o & d).sum()),
                "only ours": int((o & ~d).sum()),
                "only DJ": int((~o & d).sum()),
            }
        )
    return rows


def rule_flags(texts: list[str]) -> dict[str, np.ndarray]:
    """Per repetition rule (and for our repetition filter and all our filters): which texts it drops."""
    from magicvl.scoring.filters.config import FiltersConfig, decide, measure_all
    from magicvl.scoring.filters.repetition import _rules, ngram_limit

    cfg = FiltersConfig()
    rep = cfg.repetition
    cols = measure_all([[t] for t in texts], cfg)
    units = cols["repetition_units"]
    slack = np.where(units > 0, rep.slack_units / np.maximum(units, 1), 0.0)
    out: dict[str, np.ndarray] = {}
    for col, base, guarded in _rules(rep):
        limit = (
            np.full(len(texts), base)
            if col == "dup_segment_char_share"
            else np.array([ngram_limit(base, s, rep.max_ngram_limit) for s in slack])
        )
        hit = cols[col] > limit
        out[f"ours {col}"] = hit & (units >= rep.min_units_top_ngram) if guarded else hit
    d = decide(cols, cfg)
    out["ours repetition (any rule)"] = np.array([not v.keep and v.reason == "repetition" for v in d.first])
    out["ours all filters"] = ~d.keep_mask()
    return out


def precision_recall(flags: dict[str, np.ndarray], bad: np.ndarray) -> list[dict]:
    rows = []
    for name, hit in flags.items():
        tp = int((hit & bad).sum())
        rows.append(
            {
                "rule": name,
                "drops": int(hit.sum()),
                "real dropped": int((hit & ~bad).sum()),
                "bad dropped": tp,
                "precision": f"{tp / hit.sum():.2f}" if hit.sum() else "-",
                "recall": f"{tp / bad.sum():.2f}",
            }
        )
    return rows


def labelled(dj_python: str) -> None:
    """Precision and recall per rule on the labelled set, ours and Data-Juicer's (same texts, same run)."""
    from bench.repetition_set import load, mild_loops

    rows = load()
    texts = [r["text"] for r in rows]
    bad = np.array([r["label"] == "bad" for r in rows])
    flags = rule_flags(texts)
    dj_keep, _ = run_dj(texts, dj_python)
    for k in DJ_FILTERS:
        flags[f"DJ {k}"] = ~dj_keep[k]
    flags["DJ all three"] = ~np.logical_and.reduce([dj_keep[k] for k in DJ_FILTERS])
    where = "bench/data/repetition_set.jsonl"
    print(f"\nlabelled set: {int((~bad).sum())} real texts, {int(bad.sum())} planted bad ({where})\n")
    print(table(precision_recall(flags, bad), ["rule", "drops", "real dropped", "bad dropped", "precision", "recall"]))
    mild = mild_loops(rows)
    dropped = int(rule_flags(mild)["ours repetition (any rule)"].sum())
    dj_mild, _ = run_dj(mild, dj_python)
    dj_dropped = int((~np.logical_and(dj_mild["character_repetition"], dj_mild["word_repetition"])).sum())
    print(f"\nborderline mild loops (a sentence said 3 more times after 600 characters; not in the set): "
          f"ours drop {dropped} of {len(mild)}, DJ's repetition filters {dj_dropped} of {len(mild)}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--plant-share", type=float, default=0.1)
    ap.add_argument("--dj-python", default=str(REPO / "work" / "dj-venv" / "bin" / "python"))
    ap.add_argument("--labelled-only", action="store_true", help="only the labelled-set precision/recall table")
    args = ap.parse_args()
    if args.labelled_only:
        labelled(args.dj_python)
        return
    clean = sample_responses(REPO / "work" / "bench-filters")
    texts, kinds = build_texts(clean, args.records, args.plant_share)
    keep, ours_s, counts = run_ours(texts)
    dj_keep, dj_s = run_dj(texts, args.dj_python)
    dj_all = np.logical_and.reduce([dj_keep[k] for k in DJ_FILTERS])
    dj_total = sum(dj_s.values())
    n = len(texts)
    rows = [
        {
            "filters": "ours: length + abnormal chars + keywords + repetition",
            "seconds": f"{ours_s:.2f}",
            "records/s": f"{n / ours_s:,.0f}",
            "× DJ": f"{dj_total / ours_s:.2f}",
            "dropped": int((~keep).sum()),
        },
        {
            "filters": "DJ: char rep + word rep + special chars",
            "seconds": f"{dj_total:.2f}",
            "records/s": f"{n / dj_total:,.0f}",
            "× DJ": "1.00",
            "dropped": int((~dj_all).sum()),
        },
    ]
    rows += [
        {
            "filters": f"  DJ {k}",
            "seconds": f"{dj_s[k]:.2f}",
            "records/s": f"{n / dj_s[k]:,.0f}",
            "dropped": int((~dj_keep[k]).sum()),
        }
        for k in DJ_FILTERS
    ]
    print(f"filters, {n} records ({args.plant_share:.0%} planted bad), one process each, same texts, CPU seconds\n")
    print(table(rows, ["filters", "seconds", "records/s", "× DJ", "dropped"]))
    print(f"\nour drops by reason: {counts}\n")
    print(table(agreement(kinds, keep, dj_all), ["texts", "n", "ours drop", "DJ drop", "both", "only ours", "only DJ"]))
    labelled(args.dj_python)


if __name__ == "__main__":
    main()
