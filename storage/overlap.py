"""Outputs must not live inside inputs (a rerun would ingest its own shards), nor inputs inside outputs."""

from __future__ import annotations

import os
from pathlib import Path

_GLOB_CHARS = "*?["


def _real(p: Path) -> Path:
    return Path(os.path.realpath(p))


def _glob_anchor(pattern: Path) -> tuple[Path, tuple[str, ...]]:
    """Fixed leading folder of a glob and the pattern parts after it."""
    parts = pattern.parts
    i = next(i for i, part in enumerate(parts) if any(c in part for c in _GLOB_CHARS))
    return Path(*parts[:i]), parts[i:]


def _reaches(output: Path, pattern: Path) -> bool:
    """Could files somewhere under ``output`` be read as input ``pattern`` (file, folder or glob)?"""
    if not any(c in str(pattern) for c in _GLOB_CHARS):
        return output.is_relative_to(_real(pattern))
    anchor, rest = _glob_anchor(pattern)
    anchor = _real(anchor)
    if not output.is_relative_to(anchor):
        return False
    depth = len(output.relative_to(anchor).parts)  # output files lie deeper than this below the anchor
    return "**" in rest or len(rest) > depth


def output_overlap(output: Path, inputs: list[tuple[str, Path]]) -> str | None:
    """Why ``output`` clashes with one of ``inputs`` (``(field name, path or glob)`` pairs), or None."""
    out = _real(output)
    for field, path in inputs:
        if _reaches(out, path):
            return (
                f"output root {out} is inside {field} ({path}): a rerun would read its own outputs as input; "
                "choose an output folder outside every dataset path and image root"
            )
        fixed = _glob_anchor(path)[0] if any(c in str(path) for c in _GLOB_CHARS) else path
        if _real(fixed).is_relative_to(out):
            return f"{field} ({path}) is inside the output root {out}: keep inputs and outputs apart"
    return None
