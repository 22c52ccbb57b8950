"""Where a model comes from: a local checkpoint folder or a Hugging Face hub id, checked before anything loads.

``from_pretrained(x)`` treats anything that is not a local folder as a hub id,
so a mistyped path (``/data/qwen``, ``./models/lm``) fails late, inside a
worker, with ``HFValidationError``. Checking the syntax up front lets the
recipe refuse it in one line. A syntactically valid id is accepted without
asking the hub (real runs have it cached or can download it).
"""

from __future__ import annotations

from pathlib import Path


def is_hub_id(value: str) -> bool:
    """True when ``value`` is a syntactically valid hub id (``name`` or ``org/name``); no network access."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def ref_problem(value: str, base_dir: Path) -> str | None:
    """Why ``value`` cannot be loaded by ``from_pretrained`` (None when it is a local folder or a hub id).

    Relative paths are looked up in ``base_dir`` (the recipe's folder) and in the current directory.
    """
    raw = Path(value).expanduser()
    candidates = [raw] if raw.is_absolute() else [base_dir / raw, raw]
    if any(c.is_dir() for c in candidates):
        return None
    if any(c.exists() for c in candidates):
        return f"{value!r} is a file; expected a model folder (config + weights/tokenizer files) or a hub id"
    if is_hub_id(value):
        return None
    where = "" if raw.is_absolute() else f" (looked in {base_dir.resolve()})"
    return f"{value!r} is neither an existing local folder{where} nor a hub id like org/name"
