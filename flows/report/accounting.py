"""Accounting, the run manifest, and the summary a person reads at the end of a run.

Every input record ends in exactly one place: kept (with a stage), dropped
(with a reason) or quarantined (with its error). ``in = kept + dropped +
quarantined`` is checked from the step summaries and again from the row
counts of the files on disk.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicvl.storage.fingerprint import code_version
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_folder_manifest
from magicvl.storage.readers import list_shards, num_rows
from magicvl.storage.runs import write_run_record
from magicvl.storage.schema import CATEGORIES

if TYPE_CHECKING:  # handed down by the flows
    from magicvl.flows.recipe import Recipe


class AccountingError(RuntimeError):
    """Records went missing or were counted twice."""


def ingest_totals(layout: OutputLayout, datasets: list[str]) -> list[dict]:
    """Per dataset: records in, samples written, quarantined by kind, later duplicates (samples manifests)."""
    out = []
    for ds in datasets:
        m = read_folder_manifest(layout.samples_dir(ds))
        if m is None:
            raise FileNotFoundError(f"dataset {ds!r} is not ingested yet (no manifest for {layout.samples_dir(ds)})")
        out.append(m["ingest"])
    return out


def _rows_on_disk(folder: Path) -> int:
    return sum(num_rows(p) for p in list_shards(folder))


def accounting(layout: OutputLayout, datasets: list[str], combine_results: list[dict]) -> dict[str, Any]:
    """Counts of the whole run and whether they balance (from summaries and from the files).

    in = kept + dropped + quarantined, where quarantined = ingest's kinds + the
    later duplicates (``duplicate_id``) + combine's signal errors, and every
    sample combine scored (samples − duplicates) is kept, dropped or quarantined.
    """
    ing = ingest_totals(layout, datasets)
    q_kinds: Counter[str] = Counter()
    for s in ing:
        q_kinds.update(s["quarantined"])
    n_dups = sum(s["duplicates"] for s in ing)
    if n_dups:
        q_kinds["duplicate_id"] += n_dups
    kept: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    q_combine = 0
    for r in combine_results:
        kept.update(r["kept"])
        dropped.update(r["dropped"])
        for rule, ex in r.get("drop_examples", {}).items():
            examples[rule] = (examples.get(rule, []) + ex)[:3]
        q_combine += r["quarantined"]
    if q_combine:
        q_kinds["signal_error"] += q_combine
    n_in = sum(s["records_in"] for s in ing)
    n_samples = sum(s["samples"] for s in ing) - n_dups
    n_kept, n_dropped, n_q = sum(kept.values()), sum(dropped.values()), sum(q_kinds.values())
    on_disk = {
        "curated": _rows_on_disk(layout.curated),
        "dropped": _rows_on_disk(layout.dropped),
        "quarantine": sum(_rows_on_disk(layout.quarantine_dir(ds)) for ds in datasets),
    }
    return {
        "records_in": n_in,
        "kept": n_kept,
        "dropped": n_dropped,
        "quarantined": n_q,
        "samples_after_ingest": n_samples,
        "kept_by_stage_category": {k: kept[k] for k in sorted(kept)},
        "eval_split": sum(v for k, v in kept.items() if k.startswith("eval|")),  # kept, held out (curated/eval/)
        "dropped_by_reason": dict(dropped.most_common()),
        "drop_examples": examples,
        "quarantined_by_error": dict(q_kinds.most_common()),
        "rows_on_disk": on_disk,
        "balanced": n_in == n_kept + n_dropped + n_q
        and n_samples == n_kept + n_dropped + q_combine
        and on_disk == {"curated": n_kept, "dropped": n_dropped, "quarantine": n_q},
    }


def slim(step: dict[str, Any]) -> dict[str, Any]:
    """A step result without its per-unit lists (for the run manifest)."""
    out = {k: v for k, v in step.items() if k not in ("results", "datasets")}
    for k, v in list(out.items()):
        if isinstance(v, dict) and ("results" in v or "image_results" in v):
            out[k] = {kk: vv for kk, vv in v.items() if kk not in ("results", "image_results")}
    return out


def ingest_stats(res: dict[str, Any]) -> dict[str, Any]:
    """Counts of the ingest step (chunks, cache hits, records, samples after dedup) for the run manifest."""
    chunks = [s for ss in res["datasets"].values() for s in ss]
    dups = sum(d["duplicates"] for d in res["dedup"])
    return {
        "chunks": len(chunks),
        "cached_chunks": sum(s.get("cached", False) for s in chunks),
        "records_in": sum(s["records_in"] for s in chunks),
        "kept": sum(s["kept"] for s in chunks) - dups,
        "duplicates": dups,
        "seconds": res["seconds"],
        **({"sample": res["sample"]} if res.get("sample") else {}),  # curate --sample-chunks: what it stands for
    }


def run_notes(recipe: Recipe, decision: dict[str, Any]) -> list[str]:
    """What the summary should say besides the counts: axes left out, tiny local checkpoints."""
    from magicvl.model.tiny import is_tiny

    notes = []
    if decision["absent_axes"]:
        notes.append(f"axes not computed (left out of S, weights renormalised): {', '.join(decision['absent_axes'])}")
    for name in recipe.signals:
        ref = recipe.signal_params(name)
        for attr in ("tokenizer", "model"):
            path = getattr(ref, attr, None)
            if path and is_tiny(path):
                notes.append(f"{name}: {attr} {path} is a tiny checkpoint built locally (random/toy, not real weights)")
    return notes


def check(acc: dict[str, Any]) -> None:
    if not acc["balanced"]:
        raise AccountingError(
            f"accounting does not balance: in={acc['records_in']} kept={acc['kept']} dropped={acc['dropped']} "
            f"quarantined={acc['quarantined']} on disk={acc['rows_on_disk']}"
        )


def write_run_manifest(
    layout: OutputLayout,
    recipe_path: str,
    recipe_hash: str,
    started: dt.datetime,
    steps: dict[str, Any],
    acc: dict[str, Any],
    run_id: str | None,
    costs: dict[str, Any] | None = None,
) -> Path:
    """The run manifest: inputs, config hash, code version, per-step counts and timings, accounting, and
    (a ``curate`` run) each step's costs, the calibration of ``magicvl plan`` (``tasks.costs``)."""
    body = {
        "run_id": run_id,
        "recipe": str(Path(recipe_path).resolve()),
        "recipe_hash": recipe_hash,
        "code_version": code_version(),
        "started": started.isoformat(),
        "finished": dt.datetime.now(dt.UTC).isoformat(),
        "steps": steps,
        "accounting": acc,
        **({"costs": costs} if costs else {}),
        "outputs": {
            name: str(getattr(layout, name))
            for name in ("samples", "quarantine", "signals", "scores", "dropped", "curated")
        },
    }
    return write_run_record(layout, body, recipe_path)


def stage_table(acc: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of kept samples: one per category, a column per stage (for the artifact and the printout)."""
    counts: Counter = Counter()
    for key, n in acc["kept_by_stage_category"].items():
        stage, cat = key.split("|", 1)
        counts[(cat, stage if stage == "eval" else int(stage))] += n
    cols = [1, 2, 3, 4] + (["eval"] if any(k == "eval" for _, k in counts) else [])  # eval: the held-out split
    name = lambda k: k if k == "eval" else f"stage {k}"  # noqa: E731
    cats = [c for c in CATEGORIES if any(counts[(c, k)] for k in cols)]
    rows = [
        {"category": c, **{name(k): counts[(c, k)] for k in cols}, "total": sum(counts[(c, k)] for k in cols)}
        for c in cats
    ]
    rows.append(
        {
            "category": "total",
            **{name(k): sum(counts[(c, k)] for c in cats) for k in cols},
            "total": sum(r["total"] for r in rows),
        }
    )
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    width = {c: max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in cols}

    def line(r: dict[str, Any]) -> str:
        return "  ".join(str(r[c]).rjust(width[c]) if i else str(r[c]).ljust(width[c]) for i, c in enumerate(cols))

    return "\n".join([line({c: c for c in cols}), line({c: "-" * width[c] for c in cols})] + [line(r) for r in rows])


def format_summary(acc: dict[str, Any], layout: OutputLayout, notes: list[str], step: str = "curate") -> str:
    """The end-of-run summary: accounting, where the shards are, how to inspect them."""
    ok = "OK" if acc["balanced"] else "DOES NOT BALANCE"
    out = [
        "",
        f"== {step}: summary",
        f"records in {acc['records_in']} = kept {acc['kept']} + dropped {acc['dropped']} "
        f"+ quarantined {acc['quarantined']}   [{ok}]",
        "",
        "kept per category and stage:",
        _table(stage_table(acc)),
    ]
    if acc.get("stage_shares"):  # low-stage share per split unit: the rule's target vs what the run achieved
        out += ["", "low-stage share, target vs achieved:", _table(acc["stage_shares"])]
    if acc["dropped_by_reason"]:
        out += ["", "dropped by reason:"]
        for r, n in acc["dropped_by_reason"].items():
            out.append(f"  {r}: {n}")
            out += [f"      e.g. {ex[:160]}" for ex in acc.get("drop_examples", {}).get(r, [])]
    if acc["quarantined_by_error"]:
        out += ["", "quarantined by error:"] + [f"  {k}: {n}" for k, n in acc["quarantined_by_error"].items()]
    out += ["", *notes] if notes else []
    out += [
        "",
        f"curriculum shards: {layout.curated}/stage-<1..4>/   (manifest: {layout.folder_manifest(layout.curated)})",
        *_eval_line(acc, layout),
        f"quarantine:        {layout.quarantine}/<dataset>/",
        f"per-sample scores: {layout.scores}/   run manifest: {layout.manifest}",
        f"inspect with:      magicvl inspect {layout.curated}   (or {layout.quarantine}, {layout.scores}, ...)",
    ]
    return "\n".join(out)


def _eval_line(acc: dict[str, Any], layout: OutputLayout) -> list[str]:
    """Where the held-out split is and its size (nothing when the recipe carves none)."""
    n = sum(v for k, v in acc["kept_by_stage_category"].items() if k.startswith("eval|"))
    return [f"eval split:        {layout.curated}/eval/   ({n} kept samples held out, in no stage)"] if n else []


def publish_artifact(acc: dict[str, Any], layout: OutputLayout, step: str = "curate") -> None:
    """A Prefect table artifact of the accounting (no-op outside a Prefect run)."""
    try:
        from prefect.artifacts import create_table_artifact
        from prefect.context import get_run_context

        get_run_context()
    except Exception:
        return
    rows = stage_table(acc)
    rows += [{"category": f"dropped: {r}", "total": n} for r, n in acc["dropped_by_reason"].items()]
    rows += [{"category": f"quarantined: {k}", "total": n} for k, n in acc["quarantined_by_error"].items()]
    create_table_artifact(
        key=f"{step}-accounting",
        table=rows,
        description=(
            f"records in {acc['records_in']} = kept {acc['kept']} + dropped {acc['dropped']} + "
            f"quarantined {acc['quarantined']} (balanced: {acc['balanced']}). Output: {layout.root}"
        ),
    )
