"""Reporting on a run: accounting and the run manifest (``accounting``), ``magicvl inspect`` (``inspect``),
the HTML report (``report_data``, ``report_page``, ``report_html``, ``plots``, tables from ``analysis``),
the end-of-run artifact (``run_summary``) and flow-run names (``runs``)."""
