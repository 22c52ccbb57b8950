"""The quality step: ``step`` (the step), ``units`` (its units), ``shard`` (per-shard work),
``verdicts`` (``VerdictUnit``), ``dedup_near`` (cross-dataset duplicates)."""
