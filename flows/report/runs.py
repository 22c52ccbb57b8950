"""Run identity: Prefect flow-run names from the recipe (the run records themselves: ``storage.runs``)."""

from __future__ import annotations

from magicvl.storage.runs import recipe_label


def flow_run_name() -> str:
    """Prefect ``flow_run_name``: the step and the recipe (``curate demo``, ``score demo: image_entropy``,
    ``train-stage demo stage 2``)."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    name = f"{flow_run.flow_name} {recipe_label(params.get('recipe_path', '?'))}"
    if params.get("stage") is not None:
        name += f" stage {params['stage']}"
    only = params.get("signals")
    return f"{name}: {', '.join(only)}" if only else name
