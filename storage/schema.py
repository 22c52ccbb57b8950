"""Explicit Arrow schemas for every table the pipeline writes.

Images are a struct ``{bytes, path}``: the layout of Hugging Face ``datasets``'
``Image`` feature, so shards open there unchanged. Conversations are a list of
``{from, value}`` turns (LLaVA / ShareGPT style).
"""

from __future__ import annotations

import json

import pyarrow as pa

CATEGORIES: tuple[str, ...] = (
    "reasoning",
    "gui",
    "ocr",
    "text_only",
    "chart",
    "caption",
    "vqa",
    "grounding",
)
CAPTION = "caption"

TURN_TYPE = pa.struct([("from", pa.string()), ("value", pa.string())])
CONVERSATIONS_TYPE = pa.list_(TURN_TYPE)
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])

# Hugging Face `datasets` reads this key to restore feature types (Image, not a plain struct).
_HF_FEATURES = {
    "sample_id": {"dtype": "string", "_type": "Value"},
    "dataset": {"dtype": "string", "_type": "Value"},
    "source_key": {"dtype": "string", "_type": "Value"},
    "source": {"dtype": "string", "_type": "Value"},
    "category": {"dtype": "string", "_type": "Value"},
    "conversations": {
        "feature": {
            "from": {"dtype": "string", "_type": "Value"},
            "value": {"dtype": "string", "_type": "Value"},
        },
        "_type": "List",
    },
    "image": {"_type": "Image"},
    "width": {"dtype": "int32", "_type": "Value"},
    "height": {"dtype": "int32", "_type": "Value"},
    "image_format": {"dtype": "string", "_type": "Value"},
    "image_digest": {"dtype": "binary", "_type": "Value"},
    "image_phash": {"dtype": "uint64", "_type": "Value"},
    "image_dhash": {"dtype": "uint64", "_type": "Value"},
}

_SAMPLE_FIELDS = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("source_key", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),  # where the record came from: file and line/index/member
    pa.field("category", pa.string()),  # the dataset's own label, if any; null = not yet categorized
    pa.field("conversations", CONVERSATIONS_TYPE, nullable=False),
    pa.field("image", IMAGE_TYPE),  # null for text-only samples
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("image_format", pa.string()),
]


def _with_hf_features(fields: list[pa.Field], extra: dict | None = None) -> pa.Schema:
    features = dict(_HF_FEATURES)
    features.update(extra or {})
    names = {f.name for f in fields}
    meta = {"features": {k: v for k, v in features.items() if k in names}}
    return pa.schema(fields, metadata={b"huggingface": json.dumps({"info": meta}).encode()})


# Filled by ingestion from the decode it makes anyway, read by dedup (``scoring.dedup.hash_columns``).
IMAGE_HASH_FIELDS = [
    pa.field("image_digest", pa.binary()),  # BLAKE2b-128 of the encoded bytes
    pa.field("image_phash", pa.uint64()),  # perceptual hash of the luma at scoring.dedup.HASH_SIDE
    pa.field("image_dhash", pa.uint64()),  # difference hash, same luma
]

SAMPLE_SCHEMA = _with_hf_features(_SAMPLE_FIELDS + IMAGE_HASH_FIELDS)

CURATED_EXTRA_FIELDS = [
    pa.field("category_source", pa.string()),  # label | inspection | vlm | rules
    pa.field("stage", pa.int8(), nullable=False),
    pa.field("complexity", pa.float64()),
    pa.field("s_text", pa.float64()),
    pa.field("s_image", pa.float64()),
    pa.field("s_task", pa.float64()),
]
# curated/ rows reference their image (samples shard + row) instead of copying its bytes: re-tuning
# rewrites metadata only (``tasks.retune.with_images`` attaches the images back when a reader wants them)
CURATED_REF_FIELDS = [
    pa.field("samples_shard", pa.string(), nullable=False),  # the samples shard, relative to the output root
    pa.field("samples_row", pa.int64(), nullable=False),  # the row in that shard
]
# packing costs counted at curation (``model.costs``): the training planner reads them instead of recounting
CURATED_COST_FIELDS = [
    pa.field("text_tokens", pa.int32()),  # chat-templated text tokens (incl. vision start/end); null: not counted
    pa.field("visual_tokens", pa.int32()),  # image tokens from the resolution rule and width/height (0: no image)
    pa.field("token_counter", pa.string()),  # digest of the tokenizer + resolution settings that counted them
]
CURATED_SCHEMA = _with_hf_features(
    [f for f in _SAMPLE_FIELDS if f.name != "image"] + CURATED_EXTRA_FIELDS + CURATED_REF_FIELDS + CURATED_COST_FIELDS,
    {
        "category_source": {"dtype": "string", "_type": "Value"},
        "stage": {"dtype": "int8", "_type": "Value"},
        "complexity": {"dtype": "float64", "_type": "Value"},
        "s_text": {"dtype": "float64", "_type": "Value"},
        "s_image": {"dtype": "float64", "_type": "Value"},
        "s_task": {"dtype": "float64", "_type": "Value"},
        "samples_shard": {"dtype": "string", "_type": "Value"},
        "samples_row": {"dtype": "int64", "_type": "Value"},
        "text_tokens": {"dtype": "int32", "_type": "Value"},
        "visual_tokens": {"dtype": "int32", "_type": "Value"},
        "token_counter": {"dtype": "string", "_type": "Value"},
    },
)

# curated rows with their image attached back (``tasks.retune.with_images``): the self-contained form
CURATED_WITH_IMAGE_SCHEMA = _with_hf_features(
    list(CURATED_SCHEMA) + [f for f in _SAMPLE_FIELDS if f.name == "image"],
    json.loads(CURATED_SCHEMA.metadata[b"huggingface"])["info"]["features"],
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("sample_id", pa.string()),  # null when the record could not be parsed far enough
        pa.field("step", pa.string(), nullable=False),  # ingest | dedup | signal:<name> | combine
        pa.field("error_kind", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("raw", pa.string()),  # the record as read (repr for bytes), truncated
        pa.field("raw_truncated", pa.bool_(), nullable=False),
    ]
)

DROPPED_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("category", pa.string()),
        pa.field("step", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("rule", pa.string()),  # what dropped it, without values: filter:repetition, dedup:exact, ...
    ]
)

# One row per sample that reached `combine`: the ledger of scores and fates.
SCORES_BASE_FIELDS = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("category", pa.string()),
    pa.field("category_source", pa.string()),  # label | inspection | vlm | rules
    pa.field("fate", pa.string(), nullable=False),  # kept | dropped | quarantined
    pa.field("reason", pa.string()),  # drop reason or quarantine error
    pa.field("stage", pa.int8()),
    pa.field("complexity", pa.float64()),
    pa.field("s_text", pa.float64()),
    pa.field("s_image", pa.float64()),
    pa.field("s_task", pa.float64()),
]


def signal_schema(columns: tuple[str, ...], text_columns: tuple[str, ...] = ()) -> pa.Schema:
    """Schema of one signal's output: the sample key, its float columns, string extras (e.g. JSON), an error."""
    fields = [pa.field("sample_id", pa.string(), nullable=False)]
    fields += [pa.field(c, pa.float64()) for c in columns]
    fields += [pa.field(c, pa.string()) for c in text_columns]
    fields.append(pa.field("error", pa.string()))
    return pa.schema(fields)


def scores_schema(metrics: tuple[str, ...]) -> pa.Schema:
    """Schema of the scores ledger: base fields plus each metric raw and normalized."""
    fields = list(SCORES_BASE_FIELDS)
    for m in metrics:
        fields.append(pa.field(m, pa.float64()))
        fields.append(pa.field(f"{m}_norm", pa.float64()))
    return pa.schema(fields)
