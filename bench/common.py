"""Shared set-up for the pipeline benchmarks: scaled sample data, a recipe, a CLI run in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SIGNALS = {
    "token_length": {"tokenizer": "models/tokenizer"},
    "type_token_ratio": {"tokenizer": "models/tokenizer", "unit": "token"},
    "image_entropy": {"max_side": 512},
}


def prepare(work: Path, records: int) -> Path:
    """Sample data scaled to ``records`` (generated once) and the tiny tokenizer, under ``work``."""
    from magicvl.sample_data import generate
    from magicvl.model.tiny import build_tokenizer, is_tiny

    work.mkdir(parents=True, exist_ok=True)
    if not is_tiny(work / "models" / "tokenizer"):
        build_tokenizer(work / "models" / "tokenizer")
    data = work / f"data-{records}"
    if not (data / "sample_manifest.json").is_file():
        generate(data, n_records=records)
    return data


def write_recipe(work: Path, records: int, output: str, chunk_records: int = 250) -> Path:
    """The demo's recipe pointed at the scaled data (every dataset, every model-free signal)."""
    recipe = yaml.safe_load((REPO / "flows" / "recipes" / "demo.yaml").read_text())
    for d in recipe["datasets"]:
        d["path"] = d["path"].replace("data/", f"data-{records}/")
        if d.get("image_root"):
            d["image_root"] = d["image_root"].replace("data/", f"data-{records}/")
    recipe["output"] = output
    recipe["ingest"]["chunk_records"] = chunk_records
    recipe["signals"] = SIGNALS
    path = work / f"recipe-{records}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


_RUNNER = """
import json, resource, sys, time
t = time.perf_counter()
from magicvl.flows.cli import main
rc = main(sys.argv[1:])
print("BENCH " + json.dumps({"rc": rc, "seconds": time.perf_counter() - t,
      "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def run_curate(recipe: Path, output: Path) -> dict:
    """Run ``magicvl curate`` in a fresh process; its wall time, peak RSS and run manifest."""
    env = {**os.environ, "PREFECT_HOME": str(REPO / "work" / ".prefect")}
    if output.exists():
        import shutil

        shutil.rmtree(output)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, "curate", str(recipe), "--output", str(output)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"curate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    res = json.loads(line[6:])
    manifest = json.loads((output / "_manifest.json").read_text())
    steps = manifest["steps"]
    res["wall"] = wall
    res["steps_seconds"] = steps["ingest"]["seconds"] + steps["signals"]["seconds"] + steps["combine"]["seconds"]
    res["records_in"] = manifest["accounting"]["records_in"]
    res["accounting"] = manifest["accounting"]
    return res


def table(rows: list[dict], cols: list[str]) -> str:
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    out = ["  ".join(c.ljust(width[c]) for c in cols), "  ".join("-" * width[c] for c in cols)]
    out += ["  ".join(str(r.get(c, "")).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(out)
