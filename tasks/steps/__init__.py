"""The run's steps over a recipe, one package or module each, in run order: ``ingest`` (+ id dedup),
``translate``, ``quality``, ``signals``, ``combine``.

Each step builds its units (``tasks.unit.Unit``), runs them on Ray
(``tasks.executor``: plain tasks, or an actor pool for model-backed work),
gathers the small summaries, removes outputs the recipe no longer produces
(``tasks.unit.sweep``) and writes the folder manifests. The Prefect flows in
``flows.curate`` wrap these as tasks.
"""
