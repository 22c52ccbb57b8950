"""tasks: units of work (``tasks.unit.Unit``) and the steps built from them, run on Ray."""
