"""Turn a raw record into a validated sample (text part), or say exactly what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from magicvl.storage.fingerprint import sample_id
from magicvl.storage.ingest.spec import DatasetConfig, RawRecord
from magicvl.storage.schema import CATEGORIES

IMAGE_PLACEHOLDER = "<image>"
_ROLES = {
    "human": "human",
    "user": "human",
    "gpt": "gpt",
    "assistant": "gpt",
    "model": "gpt",
    "system": "system",
}


class RecordError(ValueError):
    """A record that cannot become a sample; ``kind`` is a short code for counting."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class ParsedRecord:
    """The text part of a sample plus where its image is (not yet read or checked)."""

    sample_id: str
    source_key: str
    category: str | None
    conversations: list[dict[str, str]]
    image_ref: str | None  # path reference to resolve under the image root
    has_image: bool


def _check_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"{where} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RecordError("invalid_unicode", f"{where} is not valid Unicode ({e.reason} at {e.start})") from None
    return value


def parse_conversations(value: Any, field: str) -> list[dict[str, str]]:
    """Validate turns and normalise roles to ``human`` / ``gpt`` / ``system``."""
    if value is None:
        raise RecordError("missing_conversations", f"record has no {field!r}")
    if not isinstance(value, list):
        raise RecordError("wrong_type", f"{field!r} must be a list of turns, got {type(value).__name__}")
    if not value:
        raise RecordError("empty_conversations", f"{field!r} is empty")
    turns = []
    for i, turn in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise RecordError("wrong_type", f"{where} must be an object, got {type(turn).__name__}")
        role = turn.get("from", turn.get("role"))
        text = turn.get("value", turn.get("content"))
        if not isinstance(role, str) or role.lower() not in _ROLES:
            raise RecordError("bad_role", f"{where}.from must be one of {sorted(_ROLES)}, got {role!r}")
        turns.append({"from": _ROLES[role.lower()], "value": _check_text(text, f"{where}.value")})
    if not any(t["from"] == "gpt" for t in turns):
        raise RecordError("no_response", f"{field!r} has no assistant (gpt) turn")
    return turns


def place_image_token(turns: list[dict[str, str]], has_image: bool) -> list[dict[str, str]]:
    """Exactly one ``<image>`` for an image sample, none otherwise.

    An image sample without the placeholder gets it at the start of its first
    human turn (LLaVA convention), or as a human turn of its own if it has none.
    """
    count = sum(t["value"].count(IMAGE_PLACEHOLDER) for t in turns)
    if not has_image:
        if count:
            raise RecordError("image_token_without_image", f"conversation has {count} {IMAGE_PLACEHOLDER} but no image")
        return turns
    if count > 1:
        raise RecordError(
            "multi_image", f"conversation has {count} {IMAGE_PLACEHOLDER}; multi-image samples are not supported yet"
        )
    if count == 1:
        return turns
    out = [dict(t) for t in turns]
    first = next((t for t in out if t["from"] == "human"), None)
    if first is None:  # e.g. a bare caption: the image becomes the prompt
        return [{"from": "human", "value": IMAGE_PLACEHOLDER}, *out]
    first["value"] = f"{IMAGE_PLACEHOLDER}\n{first['value']}"
    return out


def _record_key(raw: RawRecord, obj: dict[str, Any], cfg: DatasetConfig) -> str:
    if raw.key is not None:
        return raw.key
    key = obj.get(cfg.id_field)
    if key is None:
        return f"@{raw.locator.split(' (byte')[0]}"  # no id: the location is the key
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise RecordError("wrong_type", f"{cfg.id_field!r} must be a string or integer, got {type(key).__name__}")
    return _check_text(str(key), cfg.id_field)


def _category(obj: dict[str, Any], cfg: DatasetConfig) -> str | None:
    if cfg.label_field:
        label = obj.get(cfg.label_field)
        if label is not None:
            label = cfg.label_map.get(str(label), str(label))
            if label in CATEGORIES:
                return label
            return None  # unknown label: left for the categorize step
    return cfg.category


def parse_record(raw: RawRecord, cfg: DatasetConfig) -> ParsedRecord:
    """Validate a readable record's text fields; raise RecordError naming the problem."""
    obj = raw.obj
    assert obj is not None
    key = _record_key(raw, obj, cfg)
    turns = parse_conversations(obj.get(cfg.conversations_field), cfg.conversations_field)
    image_ref = None
    if raw.image_bytes is None:
        ref = obj.get(cfg.image_field)
        if isinstance(ref, list):
            if len(ref) > 1:
                raise RecordError(
                    "multi_image",
                    f"{cfg.image_field!r} lists {len(ref)} images; multi-image samples are not supported yet",
                )
            ref = ref[0] if ref else None
        if ref is not None and not isinstance(ref, str):
            raise RecordError("wrong_type", f"{cfg.image_field!r} must be a path string, got {type(ref).__name__}")
        image_ref = ref
    has_image = raw.image_bytes is not None or image_ref is not None
    turns = place_image_token(turns, has_image)
    return ParsedRecord(sample_id(cfg.name, key), key, _category(obj, cfg), turns, image_ref, has_image)
