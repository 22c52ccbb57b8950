"""The comparisons for bench.throughput: a plain single-process loop and the image-decode floor.

``plain_loop`` does the model-free path the way a short script would: read each
source record by record, decode each image with PIL (full decode, then luma,
then shrink to 512 px for the entropy and the perceptual hash), tokenize prompt
and response per record with the same tokenizer, apply the same default text
filters (``scoring.filters``) and drop exact and near-image duplicates with the
same hashes and rules as the quality step, build a pandas DataFrame, min-max
normalise, score with the same weights, split each category at the same shares,
and write one Parquet file per stage with the image bytes. No quarantine, no
manifests, no resumption.

``decode_floor`` only decodes every image once (``Image.open(...).load()``), on
all cores: no pipeline that checks every image by decoding it can beat it.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from magicvl.scoring.combine import DEFAULT_WEIGHTS


def iter_records(data: Path):
    """(category, conversations, image bytes or path) of every readable record of the sample layout."""
    import pyarrow.parquet as pq

    for tar in sorted((data / "captions").glob("*.tar")):
        with tarfile.open(tar) as tf:
            parts: dict[str, dict[str, bytes]] = {}
            for m in tf:
                if m.isfile():
                    key, _, ext = m.name.partition(".")
                    parts.setdefault(key, {})[ext] = tf.extractfile(m).read()
        for p in parts.values():
            if "jpg" in p and "txt" in p:
                turns = [
                    {"from": "human", "value": "<image>\nDescribe the image briefly."},
                    {"from": "gpt", "value": p["txt"].decode("utf-8", "replace")},
                ]
                yield "caption", turns, p["jpg"]
    for r in json.loads((data / "instruct" / "instruct.json").read_text()):
        if isinstance(r, dict) and isinstance(r.get("conversations"), list):
            img = r.get("image")
            yield r.get("category"), r["conversations"], (data / "instruct" / "images" / img) if img else None
    with open(data / "docs" / "docs.jsonl", "rb") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and isinstance(r.get("conversations"), list):
                img = r.get("image")
                yield "ocr", r["conversations"], (data / "docs" / "images" / img) if img else None
    for r in pq.read_table(data / "charts" / "charts.parquet").to_pylist():
        yield r.get("category") or "chart", r["conversations"], r["image"]["bytes"]


def _entropy(path_or_bytes) -> tuple[float, bytes | None, int]:
    """(entropy of the 512 px luma, the encoded bytes, perceptual hash of that luma)."""
    from PIL import Image

    from magicvl.scoring.dedup import phash_gray

    try:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        img = Image.open(io.BytesIO(data))
        img.load()
        gray = img.convert("L")
        gray.thumbnail((512, 512), Image.Resampling.BOX)
        counts = np.bincount(np.asarray(gray).ravel(), minlength=256)
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log2(p)).sum()), data, phash_gray(gray)
    except Exception:
        return float("nan"), None, 0


def _quality_keep(df) -> np.ndarray:
    """The quality step's model-free work on the loop's rows: default filters, exact and near-image dedup."""
    from magicvl.scoring.dedup import DedupConfig, exact_key, image_digest, normalize_text
    from magicvl.scoring.filters.config import FiltersConfig, decide, measure_all, responses_of
    from magicvl.tasks.steps.quality.dedup_near import ShardHashes, resolve

    convs = [json.loads(c) for c in df["conversations"]]
    keep = decide(measure_all(responses_of(convs), FiltersConfig()), FiltersConfig()).keep_mask()
    norm = [normalize_text(c) for c in convs]
    digests = [image_digest(b) if b is not None else None for b in df["image"]]
    n = len(df)
    ids = [str(i) for i in range(n)]
    hashes = ShardHashes(
        ids,
        ["loop"] * n,
        np.stack([np.frombuffer(exact_key(t, d), dtype=np.uint64) for t, d in zip(norm, digests)]).reshape(n, 2),
        np.array([np.frombuffer(exact_key(t, None)[:8], dtype=np.uint64)[0] for t in norm], dtype=np.uint64),
        df["phash"].to_numpy(np.uint64),
        np.array([d is not None for d in digests], dtype=bool),
        None,
    )
    dropped = {int(i) for i in resolve([hashes], DedupConfig()).column("sample_id").to_pylist()}
    return keep & ~np.isin(np.arange(n), list(dropped))


def plain_loop(data: Path, tokenizer_dir: Path, out: Path) -> int:
    """The whole model-free path in one process; returns the number of records written."""
    import pandas as pd
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rows = []
    for cat, turns, image in iter_records(data):
        prompt = "\n".join(t["value"].replace("<image>", "") for t in turns if t.get("from") == "human")
        response = "\n".join(t["value"] for t in turns if t.get("from") == "gpt")
        ids = tok(response, add_special_tokens=False)["input_ids"]
        both = tok(prompt + "\n" + response, add_special_tokens=False)["input_ids"]
        ent, img_bytes, ph = _entropy(image) if image is not None else (float("nan"), None, 0)
        if image is not None and img_bytes is None:
            continue  # broken image: skipped (the pipeline quarantines it)
        rows.append(
            {
                "category": cat,
                "conversations": json.dumps(turns),
                "image": img_bytes,
                "L": np.log1p(len(ids)),
                "T": len(set(both)) / max(len(both), 1),
                "E": ent,
                "phash": ph,
            }
        )
    df = pd.DataFrame(rows)
    df = df[_quality_keep(df)].drop(columns="phash").reset_index(drop=True)
    for m in ("L", "T", "E"):
        lo, hi = df[m].min(), df[m].max()
        df[m + "n"] = (df[m] - lo) / (hi - lo)
    df["s_text"] = df[["Ln", "Tn"]].mean(axis=1)
    df["s_image"] = df["En"]
    lam = df["category"].map(lambda c: DEFAULT_WEIGHTS[c].as_array())
    lt, li = lam.map(lambda a: a[0]), lam.map(lambda a: a[1])
    has_img = df["s_image"].notna()
    df["S"] = np.where(has_img, (lt * df["s_text"] + li * df["s_image"].fillna(0)) / (lt + li), df["s_text"])
    share = df["category"].map(lambda c: 0.30 if c == "caption" else 0.45)
    rank = df.groupby("category")["S"].rank(method="first") / df.groupby("category")["S"].transform("count")
    low = rank <= share
    df["stage"] = np.where(df["category"] == "caption", np.where(low, 1, 2), np.where(low, 3, 4))
    out.mkdir(parents=True, exist_ok=True)
    for stage, part in df.groupby("stage"):
        part.to_parquet(out / f"stage={stage}.parquet", index=False)
    return len(df)


def _decode(item) -> int:
    from PIL import Image

    try:
        data = item if isinstance(item, bytes) else Path(item).read_bytes()
        Image.open(io.BytesIO(data)).load()
        return 1
    except Exception:
        return 0


def decode_floor(data: Path, processes: int) -> tuple[float, int]:
    """Seconds to decode every record's image once on ``processes`` cores (records read beforehand)."""
    images = [img for _, _, img in iter_records(data) if img is not None]
    t = time.perf_counter()
    with Pool(processes) as pool:
        n = sum(pool.imap_unordered(_decode, images, chunksize=32))
    return time.perf_counter() - t, n
