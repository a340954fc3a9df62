"""Verification of the identifiers sellers give: their TINs and VAT numbers, by adapters behind one
interface, each with its own cache and a record of every call in the ledger database.

    from reporting.verification import Item, build_adapters, hash_key, results_by_item, verify_batch

    items = [Item("S1", "vat", "DE", "DE136695976"), Item("S2", "tin", "DE", "...")]
    with open_ledger(url) as ledger:
        results = verify_batch(items, build_adapters(config), ledger, today, key=hash_key(os.environ[KEY_ENV]))
    for outcome in results_by_item(items, results):   # one per item, in the order of items
        outcome.item, outcome.state, outcome.detail, outcome.checked
        outcome.decided_by                            # the VerificationResult that decides; None: not checked
        for r in outcome.results:                     # every adapter's VerificationResult
            r.adapter, r.state, r.level, r.source, r.checked_at, r.evidence, r.detail

The adapters (``[verification.NAME]`` of dac7.toml):

* ``stdnum``: format and check digits with python-stdnum (:mod:`reporting.identifiers`);
* ``vies``: the European Commission's VIES, SOAP or REST (:mod:`.vies`), the consultation number
  (requestIdentifier) kept as evidence;
* ``tin_on_the_web``: the Commission's TIN on the Web check (:mod:`.tin_web`).

A result's state is ``verified``, ``invalid`` or ``unverified`` (could not be checked); the due
diligence state records it (:func:`results_by_item` gives each item's outcome, with
:func:`conclusion` picking the result that decides it). The guide:
docs/guide/verification.md.
"""

from reporting.ledger.verifications import ExpiredVerifications, delete_expired, retention_cutoff
from reporting.verification.base import Adapter, RateLimiter
from reporting.verification.batch import (
    OVER_LIMIT,
    ItemOutcome,
    add_months,
    conclusion,
    oldest_reusable,
    results_by_item,
    verify_batch,
)
from reporting.verification.model import (
    FORMAT,
    KEY_ENV,
    LEVELS,
    OFFICIAL_FORMAT,
    REGISTRATION,
    STATES,
    Answer,
    Item,
    VerificationError,
    VerificationResult,
    hash_key,
    identifier_hash,
)
from reporting.verification.registry import ADAPTERS, build_adapters

__all__ = [
    "ADAPTERS",
    "FORMAT",
    "KEY_ENV",
    "LEVELS",
    "OFFICIAL_FORMAT",
    "OVER_LIMIT",
    "REGISTRATION",
    "STATES",
    "Adapter",
    "Answer",
    "ExpiredVerifications",
    "Item",
    "ItemOutcome",
    "RateLimiter",
    "VerificationError",
    "VerificationResult",
    "add_months",
    "build_adapters",
    "conclusion",
    "delete_expired",
    "hash_key",
    "identifier_hash",
    "oldest_reusable",
    "results_by_item",
    "retention_cutoff",
    "verify_batch",
]
