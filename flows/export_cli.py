"""The ``magicvl export`` subcommand (kept free of Prefect and the writers until it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

FORMAT_NAMES = ("llava", "sharegpt", "internvl", "webdataset", "hf")  # = storage.export.FORMATS (a test checks)


def parse_stages(text: str | None) -> list[int] | None:
    """``"1,2,4"`` → ``[1, 2, 4]``; None or empty → every stage."""
    if not text:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--stages must be stage numbers separated by commas, got {text!r}") from None


def summary_table(manifest: dict[str, Any]) -> str:
    """Per-stage counts as a markdown table (the CLI prints it, the flow publishes it)."""
    lines = [
        f"export `{manifest['format']}` of {manifest['curated']} (recipe {manifest['recipe_hash']})",
        "",
        "| stage | samples | with image | text tokens | visual tokens | skipped | files |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for s in manifest["stages"]:
        skipped = ", ".join(f"{k} {v}" for k, v in s["skipped"].items()) or "0"
        lines.append(
            f"| {s['stage']} | {s['samples']} | {s['samples_with_image']} | {s['text_tokens']} | "
            f"{s['visual_tokens']} | {skipped} | {len(s['files'])} |"
        )
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    """Export a run's curated/ stages as LLaVA, LLaMA-Factory ShareGPT, InternVL, WebDataset or Hugging Face files."""
    from magicvl.storage.export.base import ExportOptions
    from magicvl.storage.export.run import export_curated

    options = ExportOptions(name=args.name, shard_max_samples=args.shard_samples, shard_max_bytes=args.shard_mb << 20)
    manifest = export_curated(args.curated, args.format, args.out, args.stages, options, overwrite=args.overwrite)
    print(summary_table(manifest))
    if manifest["skipped"]:
        print(f"{manifest['skipped']} samples not exported (listed in {Path(args.out) / manifest['errors_file']})")
    print(f"written to {args.out} (export_manifest.json lists every stage's files in order)")
    return 0


def add_parser(add) -> None:
    """The ``export`` subcommand (``add(name, fn)`` is the CLI's registry helper)."""
    e = add("export", cmd_export)
    e.add_argument("curated", type=Path, help="a run's curated/ folder")
    e.add_argument("--format", required=True, choices=FORMAT_NAMES, help="target layout")
    e.add_argument("--out", type=Path, required=True, help="folder to write (must be new, empty or an export)")
    e.add_argument("--stages", type=parse_stages, help="stages to export, e.g. 1,2 (default: all, in order)")
    e.add_argument("--name", default="magicvl", help="dataset name prefix in index files (default magicvl)")
    e.add_argument("--shard-samples", type=int, default=10_000, help="webdataset/hf: samples per shard (10000)")
    e.add_argument("--shard-mb", type=int, default=1024, help="webdataset/hf: MiB per shard at most (1024)")
    e.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
