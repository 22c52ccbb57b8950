"""Hostile inputs: time and peak RSS of ingesting a dataset with and without each attack.

Each case ingests 200 good records (JSON Lines or Parquet, small JPEGs) in a
fresh process, once as is and once with one hostile record (or file) added,
through the real ingestion task (``tasks.steps.ingest.units.ingest_chunk``, no Ray) and the
default recipe limits. Target: no attack adds more than the per-image decode
time limit (``ingest.max_decode_seconds``, 10 s) or more memory than the limit
that applies to it (column ``limit``): ``max_record_bytes`` (16 MiB) for a record,
and for an embedded Parquet image 2 x ``max_image_bytes`` (its page, compressed
and decompressed; the image bytes are views of the page).

    python -m bench.hostile            # every case
    python -m bench.hostile --case scan_bomb
    python -m bench.hostile --case parquet_image_blob --blob-bytes 83886080   # over max_image_bytes
    python -m bench.hostile --case parquet_image_blob --set max_parquet_page_bytes=16777216
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from magicvl.sample_data import hostile

N_GOOD = 200
TURNS = [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A test pattern."}]
CASES = {
    "deep_nesting_jsonl": "a record nested 1,000 levels deep (JSONL)",
    "deep_nesting_json": "a record nested 1,000 levels deep (JSON array)",
    "huge_json_element": "a 200 MB element in a JSON array",
    "whitespace_run": "200 MB of whitespace between two JSON array elements",
    "scan_bomb": "a 1 MB progressive JPEG with 100,000 empty scans",
    "parquet_image_blob": "a 50 MB blob as a Parquet row's embedded image (in a dictionary page with the others)",
    "parquet_image_page": "the same blob in a data page of its own (no dictionary, one value per page)",
    "parquet_column_blob": "a 50 MB blob in another Parquet column",
    "non_utf8_name": "a dataset file whose name is not valid UTF-8",
}


def _records(n: int) -> list[dict]:
    return [{"id": f"r{i}", "image": f"{i % 8}.jpg", "conversations": TURNS} for i in range(n)]


def limit_mib(case: str, limits: dict[str, int]) -> float:
    """The memory an attack may add: 2 x max_image_bytes for an embedded image, else max_record_bytes."""
    from magicvl.storage.ingest import IngestOptions

    opts = IngestOptions(**limits)
    return (2 * opts.max_image_bytes if case.startswith("parquet_image") else opts.max_record_bytes) / (1 << 20)


def build(case: str, attacked: bool, root: Path, blob: int = 50 << 20) -> tuple[dict, Path]:
    """Write the case's dataset under ``root``; returns (dataset config dict, base folder)."""
    img = root / "img"
    img.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        (img / f"{i}.jpg").write_bytes(hostile.jpeg_bytes(256 + 8 * i, 192))
    recs = _records(N_GOOD)
    lines = [json.dumps(r).encode() for r in recs]
    if case.startswith("parquet"):
        column = "image" if case.startswith("parquet_image") else "extra"
        own_page = case == "parquet_image_page"
        size = blob if attacked else 1
        hostile.write_parquet_with_blob(root / "d.parquet", recs, size, column, row=100, page_per_value=own_page)
        return {"name": "d", "format": "parquet", "path": "d.parquet"}, root
    if case in ("deep_nesting_json", "huge_json_element", "whitespace_run"):
        if case == "huge_json_element" and attacked:
            hostile.write_json_array_with_huge_element(root / "d.json", recs, 200 << 20, at=100)
        else:
            extra = [hostile.deeply_nested_json(1000)] if attacked and case == "deep_nesting_json" else []
            gap = b" " * (200 << 20) if attacked and case == "whitespace_run" else b""
            body = b",".join(lines[:100] + extra) + b"," + gap + b",".join(lines[100:])
            (root / "d.json").write_bytes(b"[" + body + b"]")
        return {"name": "d", "format": "llava_json", "path": "d.json", "image_root": "img"}, root
    data = root / "data"
    data.mkdir()
    if attacked and case == "deep_nesting_jsonl":
        lines.insert(100, hostile.deeply_nested_json(1000))
    if attacked and case == "scan_bomb":
        (img / "bomb.jpg").write_bytes(hostile.jpeg_scan_bomb_bytes(100_000, 512))
        lines.insert(100, json.dumps({"id": "bomb", "image": "bomb.jpg", "conversations": TURNS}).encode())
    (data / "d.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    if attacked and case == "non_utf8_name":
        hostile.write_non_utf8_name(data, ".jsonl", lines[0] + b"\n")
    return {"name": "d", "format": "jsonl", "path": "data", "image_root": "img"}, root


def _peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would include the parent's peak from before the fork)."""
    with open("/proc/self/status", encoding="ascii") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run_one(cfg_dict: dict, base: Path, out: Path, limits: dict[str, int]) -> dict:
    """Ingest one prepared case in this process; returns seconds, peak RSS and the outcome."""
    from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
    from magicvl.storage.options import StorageOptions
    from magicvl.tasks.steps.ingest.units import ingest_chunk

    cfg, opts = DatasetConfig(**cfg_dict), IngestOptions(chunk_records=1000, **limits)
    t0 = time.perf_counter()
    kept, quarantined = 0, {}
    for chunk in plan_dataset(cfg, base, opts):
        s = ingest_chunk(chunk, cfg, opts, StorageOptions(), str(out), str(base), [])
        kept += s["kept"]
        for k, v in s["quarantined"].items():
            quarantined[k] = quarantined.get(k, 0) + v
    seconds = time.perf_counter() - t0
    rss = _peak_rss_mib()
    return {"seconds": seconds, "peak_rss_mib": rss, "kept": kept, "quarantined": quarantined}


def measure(case: str, attacked: bool, limits: dict[str, int], blob: int = 50 << 20) -> dict:
    """Build the case here, ingest it in a fresh process (peak RSS is the ingestion's alone)."""
    with tempfile.TemporaryDirectory(prefix="mvl-hostile-") as tmp:
        cfg_dict, base = build(case, attacked, Path(tmp) / "src", blob)
        job = json.dumps({"cfg": cfg_dict, "base": str(base), "out": str(Path(tmp) / "out"), "limits": limits})
        cmd = [sys.executable, "-m", "bench.hostile", "--one", job]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases (repeatable)")
    p.add_argument(
        "--set", action="append", default=[], metavar="FIELD=BYTES", help="an ingest limit other than its default"
    )
    p.add_argument("--blob-bytes", type=int, default=50 << 20, help="size of the Parquet blob (default 50 MiB)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: ingest one prepared case (JSON)
    args = p.parse_args()
    if args.one:
        job = json.loads(args.one)
        print(json.dumps(run_one(job["cfg"], Path(job["base"]), Path(job["out"]), job["limits"])))
        return
    limits = {k: int(v) for k, v in (item.split("=", 1) for item in args.set)}
    shown = ", ".join(f"{k}={v}" for k, v in limits.items()) or "default limits (10 s/image, 16 MiB/record)"
    print(f"hostile inputs: {N_GOOD} good records + one attack, {shown}, Parquet blob {args.blob_bytes} bytes\n")
    head = (
        f"{'case':<20} {'s clean':>8} {'s att.':>7} {'+s':>6} {'MiB clean':>9} {'MiB att.':>8} {'+MiB':>5} "
        f"{'limit':>5} {'ok':>3}  outcome"
    )
    print(head)
    print("-" * len(head))
    from magicvl.storage.ingest import IngestOptions

    seconds = IngestOptions(**limits).max_decode_seconds  # the time an attack may add
    for case in args.case or list(CASES):
        clean, bad = measure(case, False, limits, args.blob_bytes), measure(case, True, limits, args.blob_bytes)
        outcome = ", ".join(f"{k}: {v}" for k, v in sorted(bad["quarantined"].items())) or "-"
        plus_s, plus_mib = bad["seconds"] - clean["seconds"], bad["peak_rss_mib"] - clean["peak_rss_mib"]
        limit = limit_mib(case, limits)
        ok = "yes" if plus_mib <= limit and plus_s <= seconds else "NO"
        print(
            f"{case:<20} {clean['seconds']:>8.2f} {bad['seconds']:>7.2f} {plus_s:>6.2f} "
            f"{clean['peak_rss_mib']:>9.0f} {bad['peak_rss_mib']:>8.0f} {plus_mib:>5.0f} {limit:>5.0f} {ok:>3}  "
            f"kept {bad['kept']}, {outcome}"
        )
    print("\n" + "\n".join(f"{k}: {v}" for k, v in CASES.items()))


if __name__ == "__main__":
    main()
