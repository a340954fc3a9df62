"""The report writers: what a run tells people besides the XML it files.

- :mod:`reporting.reports.sellers`: one row per seller (the decision in plain words) and the figures
  behind it, as Parquet and CSV under ``<out>/reports/``;
- :mod:`reporting.reports.summary`: the run summary page (``run_summary.html``);
- :mod:`reporting.reports.due_diligence`: the due-diligence report of the reported sellers'
  identifiers (HTML and CSV);
- :mod:`reporting.reports.csvcells`: CSV cells that a spreadsheet never reads as a formula.
"""
