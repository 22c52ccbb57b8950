"""The combine step: ``step`` (the step), ``units`` (``CombineUnit``, shard statistics), ``retune``
(stage transitions between runs)."""
