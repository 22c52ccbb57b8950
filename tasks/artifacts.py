"""Prefect artifact keys: every artifact this project publishes has one (``prefect artifact ls`` needs it)."""

from __future__ import annotations

import re


def artifact_key(*parts: str) -> str:
    """A valid Prefect artifact key (lower-case letters, digits, dashes) from free text."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", "-".join(parts).lower())).strip("-")[:100]
