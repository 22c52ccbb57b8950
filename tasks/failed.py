"""The one error a step raises when its units cannot all run (``executor``, ``capacity``)."""

from __future__ import annotations


class StepFailed(RuntimeError):
    """Some units of a step raised (not bad records: those are quarantined), or none could start. Rerun resumes."""
