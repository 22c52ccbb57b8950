"""The signals step: ``step`` (the step), ``units`` (``SignalJob``, ``SignalUnit``), ``rows`` (rows a
signal skips or reuses), ``crossmodal`` (the recipe's signal jobs, cross-modal models as jobs)."""
