"""The four checkers, each named after what it checks and run at its own point of the flow.

- :mod:`reporting.checks.staged`: SQL rules over the staged extract (keys, references, sums that
  would overflow), run by the extract stage; an error finding stops the run.
- :mod:`reporting.checks.data`: the Great Expectations suites over each stage's Parquet files (the
  "audit" of write-audit-publish); a failing seller is quarantined, a failing table stops the run.
- :mod:`reporting.checks.business`: the EU DG TAXUD business rules over a rendered DPI message, with
  the codes an authority's status message would carry.
- :mod:`reporting.checks.schema`: XSD validation of a rendered file, streamed in bounded memory.
"""
