"""Seller statements: what was reported about each seller, for the seller (issue of DAC7 Annex V,
Section III(A); in Germany PStTG § 22(2) with § 14, the record of it § 24).

``filed`` reads the seller records back from the published XML, ``locale`` gives a statement its
language and formats, ``page`` writes the readable page, ``feed`` the statement object and the
files (``DIR/statements/statements.jsonl`` and a page per seller), ``pdf`` a PDF on demand.
"""
