"""Population-level decisions and per-row scoring: the arithmetic of ``combine``, pure.

Three steps, each mergeable across shards:

1. ``gather_stats`` per shard → merged ``PopulationStats`` (moments of every
   metric over eligible samples; per-unit sums for dataset granularity).
2. ``decide`` turns them into a ``Decision``: normalisation constants, and for
   dataset granularity each unit's scores and stage. Sample granularity
   needs one more pass: ``score_rows`` → S histograms per split unit → ``cutoffs``.
3. ``score_rows`` applies the decision to a shard's rows.

A *unit* is (dataset, category): the paper scores whole datasets, and splits
mixed datasets into task-specific subsets first.

Stored VLM losses (metrics ``vlm_loss@<model>``) are not normalised into an
axis themselves: they feed the cross-modal value ``cross_modal`` (C per unit,
or the per-sample indicator / normalised difference), which is the task axis
(see ``scoring.crossmodal``). β, δ and the pairs come from ``cfg.task``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from magicvl.scoring import crossmodal as cm
from magicvl.scoring.combine import AXES, CombineConfig, axis_scores, category_codes, complexity, fates
from magicvl.scoring.normalize import Moments, normalize, transform
from magicvl.scoring.stages import StageRule, bin_of, group_of, histogram, low_bin_cutoff, split_units, stage_of

UNIT_SEP = "/"


def unit_of(dataset: str, category: str | None) -> str:
    return f"{dataset}{UNIT_SEP}{category}"


@dataclass
class PopulationStats:
    """Mergeable statistics of the eligible (not quarantined, categorised) samples."""

    moments: dict[str, Moments] = field(default_factory=dict)  # per metric, transformed values
    unit_n: dict[str, int] = field(default_factory=dict)
    unit_sums: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # unit → metric → [sum, count]
    pair_counts: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # unit → C(s,l) → [hits, n]

    def merge(self, other: PopulationStats) -> PopulationStats:
        out = PopulationStats(
            dict(self.moments),
            dict(self.unit_n),
            {u: {m: list(v) for m, v in d.items()} for u, d in self.unit_sums.items()},
            {u: {m: list(v) for m, v in d.items()} for u, d in self.pair_counts.items()},
        )
        for m, mo in other.moments.items():
            out.moments[m] = out.moments.get(m, Moments()).merge(mo)
        for u, n in other.unit_n.items():
            out.unit_n[u] = out.unit_n.get(u, 0) + n
        for mine, theirs in ((out.unit_sums, other.unit_sums), (out.pair_counts, other.pair_counts)):
            for u, d in theirs.items():
                tgt = mine.setdefault(u, {})
                for m, (s, c) in d.items():
                    cur = tgt.setdefault(m, [0.0, 0])
                    cur[0] += s
                    cur[1] += c
        return out

    def to_dict(self) -> dict:
        return {
            "moments": {m: v.to_dict() for m, v in self.moments.items()},
            "unit_n": self.unit_n,
            "unit_sums": self.unit_sums,
            "pair_counts": self.pair_counts,
        }

    @classmethod
    def from_dict(cls, d: dict) -> PopulationStats:
        return cls(
            {m: Moments.from_dict(v) for m, v in d["moments"].items()},
            dict(d["unit_n"]),
            {u: {m: list(v) for m, v in x.items()} for u, x in d["unit_sums"].items()},
            {u: {m: list(v) for m, v in x.items()} for u, x in d.get("pair_counts", {}).items()},
        )


@dataclass
class RowScores:
    fate: list[str]
    reason: list[str | None]
    stage: np.ndarray  # int8, 0 where not kept
    complexity: np.ndarray
    axes: dict[str, np.ndarray]
    normalized: dict[str, np.ndarray]


def eligible(categories: list[str | None], errors: list[list[str]]) -> np.ndarray:
    return np.array([c is not None and not e for c, e in zip(categories, errors)], dtype=bool)


def gather_stats(
    datasets: list[str],
    categories: list[str | None],
    metrics: dict[str, np.ndarray],
    errors: list[list[str]],
    cfg: CombineConfig,
) -> PopulationStats:
    """Statistics of one shard's eligible rows."""
    ok = eligible(categories, errors)
    stats = PopulationStats()
    for m, v in metrics.items():
        stats.moments[m] = Moments.of(transform(v[ok], m in cfg.log1p))
    units = [unit_of(d, c) for d, c in zip(datasets, categories)]
    _gather_units(stats, units, ok, metrics)
    _gather_pairs(stats, units, ok, metrics, cfg)
    return stats


def _gather_units(stats: PopulationStats, units: list[str], ok: np.ndarray, metrics: dict[str, np.ndarray]) -> None:
    """Per unit: eligible rows, and per metric the sum and count of its values (vectorised per unit)."""
    rows = np.flatnonzero(ok)
    code: dict[str, int] = {}
    inv = np.array([code.setdefault(units[i], len(code)) for i in rows], dtype=np.int64)  # first-seen order
    names = list(code)
    counts = np.bincount(inv, minlength=len(names))
    for k, u in enumerate(names):
        stats.unit_n[u] = stats.unit_n.get(u, 0) + int(counts[k])
        stats.unit_sums.setdefault(u, {})
    for m, v in metrics.items():
        vv = v[rows]
        fin = ~np.isnan(vv)
        sums = np.bincount(inv[fin], weights=vv[fin], minlength=len(names))
        cnt = np.bincount(inv[fin], minlength=len(names))
        for k, u in enumerate(names):
            if cnt[k]:
                cur = stats.unit_sums[u].setdefault(m, [0.0, 0])
                cur[0] += float(sums[k])
                cur[1] += int(cnt[k])


def task_pairs(metric_names: list[str], cfg: CombineConfig) -> list[tuple[str, str]]:
    """The (small, large) loss-metric pairs of ``cfg.task``; an error names a pair without losses."""
    pairs = cm.resolve_pairs(cfg.task, metric_names)
    missing = sorted({m for p in pairs for m in p} - set(metric_names))
    if missing:
        raise ValueError(f"combine.task.pairs: no stored losses for {missing} (is the model in cross_modal.models?)")
    return pairs


def axis_of_metrics(metric_axes: dict[str, str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The metrics that enter an axis directly: every non-loss metric, plus ``cross_modal`` when pairs exist."""
    out = {m: a for m, a in metric_axes.items() if not cm.is_loss_metric(m)}
    if pairs:
        out[cm.TASK_METRIC] = "task"
    return out


def _gather_pairs(
    stats: PopulationStats, units: list[str], ok: np.ndarray, metrics: dict[str, np.ndarray], cfg: CombineConfig
) -> None:
    """Per unit and pair, [hits, n] of the C indicator; moments of loss differences (sample granularity)."""
    pairs = task_pairs(list(metrics), cfg)
    if not pairs or not ok.any():
        return
    names, inverse = np.unique(np.array(units, dtype=object)[ok], return_inverse=True)
    for pair in pairs:
        key = cm.pair_key(pair)
        hits = cm.indicator(metrics[pair[0]][ok], metrics[pair[1]][ok], cfg.task.beta, cfg.task.delta)
        valid = ~np.isnan(hits)
        h = np.bincount(inverse, weights=np.where(valid, hits, 0.0), minlength=len(names))
        n = np.bincount(inverse, weights=valid.astype(np.float64), minlength=len(names))
        for u, hu, nu in zip(names, h, n):
            if nu > 0:
                stats.pair_counts.setdefault(str(u), {})[key] = [float(hu), int(nu)]
        if cfg.granularity == "sample" and cfg.task.per_sample == "difference":
            stats.moments[key] = Moments.of(cm.difference(metrics[pair[0]][ok], metrics[pair[1]][ok]))


@dataclass
class Decision:
    """Everything ``score_rows`` needs from the whole population (small, JSON-able)."""

    granularity: str
    metric_axes: dict[str, str]
    moments: dict[str, Moments] = field(default_factory=dict)  # sample granularity
    cutoffs: dict[str, int] = field(default_factory=dict)  # sample granularity: split unit → highest low bin
    units: dict[str, dict] = field(default_factory=dict)  # dataset granularity: unit → scores and stage
    absent_axes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "granularity": self.granularity,
            "metric_axes": self.metric_axes,
            "moments": {m: v.to_dict() for m, v in self.moments.items()},
            "cutoffs": self.cutoffs,
            "units": self.units,
            "absent_axes": self.absent_axes,
        }


def decide(stats: PopulationStats, metric_axes: dict[str, str], cfg: CombineConfig) -> Decision:
    """Normalisation constants (and, for dataset granularity, every unit's stage)."""
    pairs = task_pairs(list(metric_axes), cfg)
    axis_of = axis_of_metrics(metric_axes, pairs)
    present = set(axis_of.values())
    absent = [a for a in AXES if a not in present]
    d = Decision(cfg.granularity, dict(metric_axes), absent_axes=absent)
    if cfg.granularity == "sample":
        d.moments = dict(stats.moments)
        return d
    names = sorted(stats.unit_n)
    means = {m: np.array([_unit_mean(stats, u, m) for u in names]) for m in metric_axes}
    trans = {m: transform(v, m in cfg.log1p) for m, v in means.items() if m in axis_of}
    norm = {m: normalize(v, Moments.of(v), cfg.normalization) for m, v in trans.items()}
    shares = {cm.pair_key(p): np.array([_unit_share(stats, u, cm.pair_key(p)) for u in names]) for p in pairs}
    if pairs:
        norm[cm.TASK_METRIC] = cm.mean_over_pairs(list(shares.values()))
    cats = [u.split(UNIT_SEP, 1)[1] for u in names]
    axes = axis_scores(norm, axis_of, len(names))
    s = complexity(axes, cats, cfg.weights)
    rule = cfg.stages
    for key in sorted({rule.split_key(c) for c in cats}):
        idx = [i for i, c in enumerate(cats) if rule.split_key(c) == key and not np.isnan(s[i])]
        low = split_units(
            [float(s[i]) for i in idx],
            [stats.unit_n[names[i]] for i in idx],
            [names[i] for i in idx],
            rule.low_share(key),
        )
        for i in idx:
            d.units[names[i]] = {
                "n": stats.unit_n[names[i]],
                "complexity": float(s[i]),
                "stage": stage_of(group_of(key), names[i] not in low),
                **{f"s_{a}": _f(axes[a][i]) for a in AXES},
                **{m: _f(means[m][i]) for m in metric_axes},
                **{f"{m}_norm": _f(norm[m][i]) if m in norm else None for m in metric_axes},
                **{k: _f(v[i]) for k, v in shares.items()},
            }
    return d


def _unit_mean(stats: PopulationStats, unit: str, metric: str) -> float:
    s, c = stats.unit_sums.get(unit, {}).get(metric, [0.0, 0])
    return s / c if c else float("nan")


def _unit_share(stats: PopulationStats, unit: str, key: str) -> float:
    """C of one unit and pair: hits / n (NaN when no sample of the unit has both losses)."""
    h, n = stats.pair_counts.get(unit, {}).get(key, [0.0, 0])
    return h / n if n else float("nan")


def _f(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def score_rows(
    datasets: list[str],
    categories: list[str | None],
    metrics: dict[str, np.ndarray],
    errors: list[list[str]],
    cfg: CombineConfig,
    decision: Decision,
) -> RowScores:
    """Fate, stage and scores of each row of a shard under ``decision``."""
    n = len(categories)
    if decision.granularity == "sample":
        pairs = task_pairs(list(decision.metric_axes), cfg)
        axis_of = axis_of_metrics(decision.metric_axes, pairs)
        norm = {
            m: normalize(transform(v, m in cfg.log1p), decision.moments[m], cfg.normalization)
            for m, v in metrics.items()
            if m in axis_of
        }
        if pairs:
            norm[cm.TASK_METRIC] = _sample_task(metrics, pairs, cfg, decision)
        axes = axis_scores(norm, axis_of, n)
        s = complexity(axes, categories, cfg.weights)
        norm = {m: norm.get(m, np.full(n, np.nan)) for m in metrics}
    else:
        codes, uniq = category_codes([unit_of(d, c) for d, c in zip(datasets, categories)])
        units = [decision.units.get(u) for u in uniq]  # one lookup per distinct unit
        column = lambda key: np.array([_nan(u, key) for u in units], dtype=np.float64)[codes]  # noqa: E731
        norm = {m: column(f"{m}_norm") for m in metrics}
        axes = {a: column(f"s_{a}") for a in AXES}
        s = column("complexity")
    fate_list, reasons = fates(errors, categories, s)
    kept = np.array([f == "kept" for f in fate_list], dtype=bool)
    stages = _stages(decision, datasets, categories, kept, s, cfg.stages)
    return RowScores(fate_list, reasons, stages, s, axes, norm)


def _stages(decision: Decision, datasets: list[str], categories: list[str | None], kept: np.ndarray,
            s: np.ndarray, rule: StageRule) -> np.ndarray:  # fmt: skip
    """Stage of every kept row (0 elsewhere), decided once per distinct category (or unit)."""
    n = len(categories)
    stages = np.zeros(n, dtype=np.int8)
    if decision.granularity == "sample":
        bins = bin_of(np.nan_to_num(s))
        codes, uniq = category_codes(categories)
        for k, cat in enumerate(uniq):
            rows = np.flatnonzero((codes == k) & kept)
            if len(rows):
                high = bins[rows] > decision.cutoffs.get(rule.split_key(cat), -1)
                g = group_of(cat)
                stages[rows] = np.where(high, stage_of(g, True), stage_of(g, False))
        return stages
    codes, uniq = category_codes([unit_of(d, c) for d, c in zip(datasets, categories)])
    for k, u in enumerate(uniq):
        rows = np.flatnonzero((codes == k) & kept)
        if len(rows):
            stages[rows] = int(decision.units[u]["stage"])
    return stages


def _sample_task(
    metrics: dict[str, np.ndarray], pairs: list[tuple[str, str]], cfg: CombineConfig, decision: Decision
) -> np.ndarray:
    """Per-sample task value: mean over pairs of the indicator, or of the normalised loss difference."""
    t = cfg.task
    if t.per_sample == "indicator":
        values = [cm.indicator(metrics[s], metrics[lg], t.beta, t.delta) for s, lg in pairs]
    else:
        values = [
            normalize(cm.difference(metrics[s], metrics[lg]), decision.moments[cm.pair_key((s, lg))], cfg.normalization)
            for s, lg in pairs
        ]
    return cm.mean_over_pairs(values)


def _nan(unit: dict | None, key: str) -> float:
    v = None if unit is None else unit.get(key)
    return float("nan") if v is None else float(v)


def split_histograms(categories: list[str | None], rows: RowScores, rule: StageRule) -> dict[str, np.ndarray]:
    """Histograms of S of kept rows, per split unit (sample granularity's second pass)."""
    kept = np.array([f == "kept" for f in rows.fate], dtype=bool)
    codes, uniq = category_codes(categories)
    by_key: dict[str, list[int]] = {}
    for k, cat in enumerate(uniq):
        if cat is not None:
            by_key.setdefault(rule.split_key(cat), []).append(k)
    out = {}
    for key in sorted(by_key):
        rows_k = kept & np.isin(codes, by_key[key])
        if rows_k.any():
            out[key] = histogram(rows.complexity[rows_k])
    return out


def cutoffs(hists: dict[str, np.ndarray], cfg: CombineConfig) -> dict[str, int]:
    """Per split unit, the highest bin that is still 'low'."""
    return {k: low_bin_cutoff(h, cfg.stages.low_share(k)) for k, h in hists.items()}
