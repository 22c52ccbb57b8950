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
STEPS = ("ingest", "quality", "signals", "combine")  # the timed steps of a curate run (run manifest)
# functions that fan a step out on Ray; their `name` argument tags RSS samples (flows.fanout, tasks.executor)
FAN_OUTS = {"fan_out", "run_tasks", "run_units", "run_on_actors"}
SIGNALS = {
    "token_length": {"tokenizer": "models/tokenizer"},
    "type_token_ratio": {"tokenizer": "models/tokenizer", "unit": "token"},
    "image_entropy": {"max_side": 512},
}


def prepare(work: Path, records: int, models: bool = False) -> Path:
    """Sample data scaled to ``records`` (generated once) and the tiny tokenizer (``models``: every tiny
    checkpoint the six signals need: causal LM, Grounding DINO), under ``work``."""
    from magicvl.model.tiny import TINY_BUILDERS, is_tiny
    from magicvl.sample_data import generate

    work.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer", "causal_lm", "grounding_dino") if models else ("tokenizer",):
        if not is_tiny(work / "models" / name):
            TINY_BUILDERS[name](work / "models" / name)
    data = work / f"data-{records}"
    if not (data / "sample_manifest.json").is_file():
        generate(data, n_records=records)
    return data


def write_recipe(work: Path, records: int, output: str, chunk_records: int = 250, all_signals: bool = False) -> Path:
    """The demo's recipe pointed at the scaled data (every dataset; every model-free signal, or all six)."""
    base = "demo-models.yaml" if all_signals else "demo.yaml"
    recipe = yaml.safe_load((REPO / "flows" / "recipes" / base).read_text())
    for d in recipe["datasets"]:
        d["path"] = d["path"].replace("data/", f"data-{records}/")
        if d.get("image_root"):
            d["image_root"] = d["image_root"].replace("data/", f"data-{records}/")
    recipe["output"] = output
    recipe["ingest"]["chunk_records"] = chunk_records
    if not all_signals:
        recipe["signals"] = SIGNALS
    path = work / f"recipe-{records}{'-all' if all_signals else ''}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


_RUNNER = """
import json, resource, sys, time
from bench.common import RssSampler
t = time.perf_counter()
sampler = RssSampler(0.2).start()
from magicvl.flows.cli import main
import_s = time.perf_counter() - t
rc = main(sys.argv[1:])
sampler.stop()
from magicvl.flows import runtime
print("BENCH " + json.dumps({"rc": rc, "seconds": time.perf_counter() - t, "import_s": import_s,
      "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      "rss_by_phase": sampler.by_phase(), "startup": getattr(runtime, "STARTUP", {})}))
"""


def _rss_kib() -> dict[str, int]:
    """VmRSS and its parts (anonymous, file-backed, shared memory such as Ray's object store) in KiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(line.split()[1])
    return out


def current_phase() -> str:
    """What the flow process is doing now: the fan-out's name if inside one, else the innermost magicvl function.

    Read from the live stacks of every thread (``sys._current_frames``), so the
    pipeline needs no hooks for it; "startup/other" outside any magicvl frame.
    """
    import threading

    me = threading.get_ident()
    for tid, frame in sys._current_frames().items():
        if tid == me:
            continue
        inner, fan, f = None, None, frame
        while f is not None:
            mod = f.f_globals.get("__name__", "")
            if mod.startswith("magicvl.") and not mod.startswith("magicvl.flows.cli"):
                if inner is None:
                    inner = f"{mod.removeprefix('magicvl.')}.{f.f_code.co_name}"
                if f.f_code.co_name in FAN_OUTS and fan is None:
                    fan = f.f_locals.get("name")
            f = f.f_back
        if fan or inner:
            return str(fan or inner)
    return "startup/other"


class RssSampler:
    """Samples this process's VmRSS every ``interval`` seconds, tagged with ``current_phase()``."""

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        self.interval = interval
        self.samples: list[tuple[float, str, dict[str, int]]] = []  # (seconds since start, phase, RSS parts KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((time.perf_counter() - self._t0, current_phase(), _rss_kib()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def by_phase(self) -> dict[str, dict[str, float]]:
        """Per phase, in order of first appearance: peak RSS MiB (and its anonymous and shared-memory
        parts at that moment), first and last sample time (s)."""
        out: dict[str, dict[str, float]] = {}
        for t, phase, kib in self.samples:
            d = out.setdefault(phase, {"peak_mib": 0.0, "anon_mib": 0.0, "shmem_mib": 0.0, "from_s": round(t, 1)})
            if kib.get("VmRSS", 0) / 1024 > d["peak_mib"]:
                d["peak_mib"] = round(kib["VmRSS"] / 1024, 1)
                d["anon_mib"] = round(kib.get("RssAnon", 0) / 1024, 1)
                d["shmem_mib"] = round(kib.get("RssShmem", 0) / 1024, 1)
            d["to_s"] = round(t, 1)
        return out


def run_curate(recipe: Path, output: Path, warm: bool = True, extra: tuple[str, ...] = ()) -> dict:
    """Run ``magicvl curate`` in a fresh process; its wall time, peak RSS, start-up record and run manifest.

    ``warm=False`` sets ``MAGICVL_WARM_START=0``: Prefect API, Ray and worker
    imports one after another, as before the concurrent start-up. ``extra``: more curate arguments.
    """
    env = {**os.environ, "PREFECT_HOME": str(REPO / "work" / ".prefect"), "MAGICVL_WARM_START": "1" if warm else "0"}
    if output.exists():
        import shutil

        shutil.rmtree(output)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, "curate", str(recipe), "--output", str(output), *extra],
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
    res["steps_seconds"] = sum(steps[k]["seconds"] for k in STEPS if k in steps)
    res["records_in"] = manifest["accounting"]["records_in"]
    res["accounting"] = manifest["accounting"]
    res["manifest_steps"] = steps
    return res


def breakdown(res: dict) -> list[tuple[str, float | None, str]]:
    """Where the end-to-end seconds of one ``run_curate`` went: (part, seconds, note); None = not measured."""
    st = res.get("startup", {})
    ready = st.get("ready_s")
    in_main = res["seconds"] - res["import_s"]
    flow = in_main - (ready or 0) - res["steps_seconds"] - st.get("ray_stop_s", 0)
    concurrent = st.get("mode") == "concurrent"
    return [
        ("python start/exit + CLI import", res["wall"] - res["seconds"] + res["import_s"], "exit: Prefect API stop"),
        ("start-up before the flow (critical path)", ready, st.get("mode", "")),
        ("  Prefect API ready", st.get("prefect_api_s"), f"{st.get('prefect_api_source', '')}"),
        ("  Ray ready", st.get("ray_s"), st.get("ray", "")),
        ("  Ray workers warm (from Ray start)", st.get("workers_warm_s"), f"{st.get('warm_workers', '?')} workers"),
        ("    task-module import in a worker", st.get("worker_import_s"), "slowest worker"),
        ("  flow module import (Prefect client)", st.get("flow_import_s"), "after the API is up, while workers warm"),
        (
            "flow: Prefect runs, Ray start if not warm, report",
            flow,
            "Prefect API + Ray + first imports land here when sequential" if not concurrent else "",
        ),
        ("steps (ingest + quality + signals + combine)", res["steps_seconds"], "from the run manifest"),
        ("Ray stop", st.get("ray_stop_s"), "in the flow row when sequential"),
    ]


def table(rows: list[dict], cols: list[str]) -> str:
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    out = ["  ".join(c.ljust(width[c]) for c in cols), "  ".join("-" * width[c] for c in cols)]
    out += ["  ".join(str(r.get(c, "")).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(out)
