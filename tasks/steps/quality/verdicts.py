"""One fate per sample from the quality step's stored outputs: ``VerdictUnit``.

Reads no text: the stored filter measures (thresholds applied here, so a
threshold edit recomputes only this), the categories, the judges' verdicts
and this shard's part of the run's duplicates table (``quality/duplicates/<dataset>/<shard>.parquet``:
only its own rows are read). The first reason wins, in this order: filter,
dedup, judge, uncategorized (only when ``categorize.drop_uncategorized``).
Writes ``quality/verdicts/<dataset>/<shard>.parquet`` (rows in shard order)
and ``quality/filter_decisions/<dataset>/<shard>.parquet``; combine leaves
the dropped rows out of scoring and writes them to ``dropped/`` with step,
rule and reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa

from magicvl.scoring.filters.config import FiltersConfig
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import read_table
from magicvl.tasks.steps.quality.shard import decide_table
from magicvl.tasks.steps.quality.units import QUALITY_VERSION, ShardUnit
from magicvl.tasks.unit import Outputs, UnitKey

VERDICT_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("keep", pa.bool_(), nullable=False),
        pa.field("step", pa.string()),  # filter | dedup | judge | categorize (null when kept)
        pa.field("rule", pa.string()),  # e.g. filter:repetition, dedup:exact, judge:coherence:fail
        pa.field("reason", pa.string()),  # e.g. "repetition: dup_line_char_share=0.75 > 0.3"
        pa.field("category", pa.string()),
        pa.field("category_source", pa.string()),  # label | inspection | vlm | rules
    ]
)
Input = tuple[str, str]  # (path, cache key) of a stored quality output


class VerdictUnit(ShardUnit):
    """The fate of every sample of one shard, from the quality outputs named in ``inputs``."""

    step = "verdicts"

    def __init__(self, dataset: str, shard: dict, filters: FiltersConfig, drop_uncategorized: bool,
                 measures: Input, categories: Input, judges: dict[str, Input], duplicates: Input,
                 out_root: str, storage: StorageOptions) -> None:  # fmt: skip
        super().__init__(dataset, shard, out_root, storage)
        self.filters, self.drop_uncategorized = filters, drop_uncategorized
        self.measures, self.categories, self.judges, self.duplicates = measures, categories, judges, duplicates

    def key(self) -> UnitKey:
        params = {
            "filters": self.filters.model_dump(mode="json"),
            "drop_uncategorized": self.drop_uncategorized,
            "inputs": [self.measures[1], self.categories[1], self.duplicates[1]],
            "judges": {n: k for n, (_, k) in sorted(self.judges.items())},
        }
        return UnitKey(self.shard["sha256"], self.step, QUALITY_VERSION, params)

    def path(self, kind: str = "verdicts"):
        return self.layout.quality_dir(kind, self.dataset) / f"{self.stem}.parquet"

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        meta = read_table(self.shard["path"], columns=["sample_id", "source"]).to_pydict()
        decisions = decide_table(read_table(self.measures[0]), self.filters)
        out.table(self.path("filter_decisions"), decisions, f"{self.stem}.")
        t = self.fates(meta, decisions.to_pydict())
        out.table(self.path(), t, f"{self.stem}.")
        rules = Counter(r for r in t.column("rule").to_pylist() if r is not None)
        return {"dataset": self.dataset, "shard": self.stem, "rows": t.num_rows, "dropped": dict(rules),
                "sources": dict(Counter(t.column("category_source").to_pylist()))}  # fmt: skip

    def fates(self, meta: dict[str, list], dec: dict[str, list]) -> pa.Table:
        ids = meta["sample_id"]
        cats = read_table(self.categories[0]).to_pydict()
        if cats["sample_id"] != ids or dec["sample_id"] != ids:
            raise ValueError(f"{self.dataset}/{self.stem}: stored categories or measures do not follow the shard")
        dups = self._duplicates()
        judged = {n: read_table(p).to_pydict() for n, (p, _) in sorted(self.judges.items())}
        rows: dict[str, list] = {k: [] for k in VERDICT_SCHEMA.names}
        for i, sid in enumerate(ids):
            step, rule, reason = None, None, None
            if not dec["keep"][i]:
                step, rule, reason = "filter", f"filter:{dec['reason'][i]}", dec["detail"][i]
            elif sid in dups:
                step, rule, reason = "dedup", f"dedup:{dups[sid]['kind']}", _dup_reason(dups[sid])
            else:
                for name, j in judged.items():
                    if not j["keep"][i]:
                        rule = f"judge:{name}:{j['status'][i]}"
                        step, reason = "judge", f"{rule}: {(j['detail'][i] or '')[:300]}"
                        break
            source = cats["category_source"][i]
            if step is None and self.drop_uncategorized and source not in ("label", "inspection"):
                step, rule = "categorize", "categorize:uncategorized"
                reason = "uncategorized: no label or inspection decision (categorize.drop_uncategorized)"
            for k, v in (("sample_id", sid), ("source", meta["source"][i]), ("keep", step is None), ("step", step),
                         ("rule", rule), ("reason", reason), ("category", cats["category"][i]),
                         ("category_source", source)):  # fmt: skip
                rows[k].append(v)
        return pa.table(rows, schema=VERDICT_SCHEMA)

    def _duplicates(self) -> dict[str, dict]:
        """This shard's later copies (the per-shard file holds only its rows)."""
        return {r["sample_id"]: r for r in read_table(self.duplicates[0]).to_pylist() if r["dataset"] == self.dataset}


def _dup_reason(d: dict) -> str:
    text = f"{d['kind']} duplicate of {d['kept_dataset']}/{d['kept_sample_id']}"
    if d["value"] is not None:
        text += f": hamming={d['value']:.0f} <= {d['threshold']:.0f}"
    return text
