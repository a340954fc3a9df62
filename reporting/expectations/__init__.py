"""Versioned Great Expectations suites of the data checks (see :mod:`reporting.checks.data`).

One JSON file per stage: the tables it checks, the columns handed to Great Expectations (the
privacy boundary: personal columns are masked or reduced in SQL before any check sees them),
and the expectations in Great Expectations 1.x configuration form. Values known only at run
time (the period, the code lists) are ``{"$PARAMETER": name}`` references.
"""
