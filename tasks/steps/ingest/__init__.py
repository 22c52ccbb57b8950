"""The ingest step: ``step`` (the step), ``units`` (``IngestUnit``), ``dedup`` (id dedup, ``DedupUnit``)."""
