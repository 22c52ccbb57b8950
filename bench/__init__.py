"""Benchmarks: ``python -m bench.<name>`` prints a table (no assertions)."""
