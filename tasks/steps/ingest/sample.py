"""A calibration run on a deterministic sample of every dataset's chunks (``curate --sample-chunks F``).

``every = round(1 / F)``; of each dataset's planned chunks (numbered per dataset
in source order, ``plan_chunks``) the ones whose index is a multiple of
``every`` are ingested, so chunk 0 of every dataset is always read and the
calibration does the same per-chunk work as the full run. Records of the other
chunks are neither read nor counted: the run's accounting balances over the
records it read. ``sample_info`` says what the sample stands for, per dataset:
chunks planned and kept, records read and the records the whole dataset is
estimated to hold (the records a chunk holds are known from the next chunk's
``first_record`` in the same file; a file's last chunk and WebDataset tars count
their records as read, or, unread, from their bytes at the file's records per byte
(JSON Lines, LLaVA JSON), else as the mean of the dataset's read chunks).
"""

from __future__ import annotations

from typing import Any

from magicvl.storage.ingest import Chunk, DatasetConfig


def sample_every(fraction: float) -> int:
    """Keep every k-th chunk: k = round(1 / fraction) (fraction in (0, 1])."""
    if not 0 < fraction <= 1:
        raise ValueError(f"--sample-chunks must be in (0, 1], got {fraction}")
    return max(1, round(1 / fraction))


def keep_chunks(chunks: list[tuple[DatasetConfig, Chunk]], every: int) -> list[tuple[DatasetConfig, Chunk]]:
    """The chunks whose per-dataset index is a multiple of ``every`` (order kept)."""
    return [(cfg, ch) for cfg, ch in chunks if ch.index % every == 0]


def known_records(chunks: list[Chunk]) -> list[int | None]:
    """Records of each chunk where the plan tells them (``first_record`` of the next chunk of the same
    file, for formats that number records: JSON Lines, LLaVA JSON, Parquet); None elsewhere."""
    out: list[int | None] = []
    for i, ch in enumerate(chunks):
        nxt = chunks[i + 1] if i + 1 < len(chunks) else None
        same = nxt is not None and nxt.path == ch.path and ch.format != "webdataset"
        out.append(nxt.first_record - ch.first_record if same and nxt.first_record >= ch.first_record else None)
    return out


def _by_bytes(ch: Chunk, chunks: list[Chunk], known: list[int | None], mean: float) -> float:
    """Records of an unread chunk whose count the plan does not tell (a file's last): its bytes at the
    records per byte of the file's counted chunks (JSON Lines, LLaVA JSON: byte ranges), else ``mean``."""
    pairs = [(c.end - c.start, n) for c, n in zip(chunks, known) if n is not None and c.path == ch.path]
    nbytes = sum(b for b, _ in pairs)
    if ch.format not in ("jsonl", "llava_json") or ch.end < ch.start or nbytes <= 0:
        return mean
    return min(max(n for _, n in pairs), (ch.end - ch.start) * sum(n for _, n in pairs) / nbytes)  # ≤ a chunk


def sample_info(
    fraction: float, every: int, planned: list[tuple[DatasetConfig, Chunk]], results: list[dict[str, Any]]
) -> dict[str, Any]:
    """The run's ``sample`` block: per dataset chunks planned/kept, records read and estimated."""
    read = {(r["dataset"], r["chunk"]): r["records_in"] for r in results}
    datasets: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(cfg.name for cfg, _ in planned):
        chunks = [ch for cfg, ch in planned if cfg.name == name]
        got = [read[(name, ch.index)] for ch in chunks if (name, ch.index) in read]
        mean = sum(got) / len(got) if got else 0.0
        known = known_records(chunks)
        est = 0.0
        for ch, n in zip(chunks, known):
            if n is None:
                n = read.get((name, ch.index))
            est += n if n is not None else _by_bytes(ch, chunks, known, mean)
        datasets[name] = {"chunks_planned": len(chunks), "chunks_kept": len(got), "records_read": sum(got),
                          "records_estimated": round(est, 1)}  # fmt: skip
    kept = sum(d["chunks_kept"] for d in datasets.values())
    return {
        "fraction": fraction,
        "every": every,
        "chunks_planned": len(planned),
        "chunks_kept": kept,
        "records_read": sum(d["records_read"] for d in datasets.values()),
        "records_estimated": round(sum(d["records_estimated"] for d in datasets.values()), 1),
        "datasets": datasets,
    }
