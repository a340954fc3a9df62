"""The words every part of the project shares: activities, decision codes, routings,
environments, filing modes and the name the audit of the decisions runs under.

A leaf: it imports nothing but the standard library (nothing at all, in fact), so that the DAG
files read it at parse time and every layer of :mod:`reporting` may import it. The values are
public contracts (columns of the staged files, keys of the configuration, Params of the DAGs,
CLI choices): they never change.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- activities

GOODS = "sale_of_goods"
SERVICES = "personal_services"
TRANSPORT = "transportation_rental"
PROPERTY = "immovable_property"
#: The relevant activities in the order of the source's data contract (``transactions.activity``).
ACTIVITIES = (GOODS, SERVICES, TRANSPORT, PROPERTY)
#: The order of a seller's activities in a DPI message (and in the rules' reports).
ACTIVITY_ORDER = (PROPERTY, SERVICES, GOODS, TRANSPORT)

# --------------------------------------------------------------------------- decisions

REPORTED = "reported"
EXCLUDED_GOVERNMENTAL = "excluded:governmental"
EXCLUDED_LISTED = "excluded:listed"
EXCLUDED_DE_MINIMIS = "excluded:de_minimis"
EXCLUDED_LISTING = "excluded_listing:over_2000_rentals"
NOT_REPORTABLE_NON_EU = "not_reportable:non_eu"
NOT_REPORTABLE_NO_ACTIVITY = "not_reportable:no_activity"
QUARANTINED = "quarantined:"  # + the first rule (by name) that set the seller aside
#: Every fixed decision code (a quarantine's code is ``QUARANTINED`` + its rule).
DECISION_CODES: tuple[str, ...] = (
    REPORTED,
    EXCLUDED_GOVERNMENTAL,
    EXCLUDED_LISTED,
    EXCLUDED_DE_MINIMIS,
    EXCLUDED_LISTING,
    NOT_REPORTABLE_NON_EU,
    NOT_REPORTABLE_NO_ACTIVITY,
)

# --------------------------------------------------------------------------- routings

#: ``[reporting] routing``: the filing (to the state the operator files in) ...
NEXUS = "nexus"
#: ... or a preview of what each member state receives from it through the exchange.
JURISDICTION = "jurisdiction"
ROUTINGS = (JURISDICTION, NEXUS)

# --------------------------------------------------------------------------- environments

TEST = "test"
PROD = "prod"
#: ``[reporting] environment``; also the ledger's: test filings and production filings apart.
ENVIRONMENTS = (TEST, PROD)

# --------------------------------------------------------------------------- filing modes

#: What a run files (``--mode``): ``auto`` lets the ledger decide between new data and corrections.
MODES = ("auto", "new", "correction", "deletion", "nil")

# --------------------------------------------------------------------------- other platform operators

#: The role of another operator in a filing (its ledger record's content): one whose reporting
#: this operator assumes (``AssumedPlatformOperator``), or the one that assumes this operator's
#: reporting (``AssumingPlatformOperator``).
ASSUMED = "assumed"
ASSUMING = "assuming"
OTHER_OPERATOR_ROLES = (ASSUMED, ASSUMING)

# --------------------------------------------------------------------------- the audit

#: The audit of the decisions (:mod:`reporting.stages.audit`): it runs within the rules step, right
#: after the rules, and logs and times itself under this name.
AUDIT = "audit"

# --------------------------------------------------------------------------- seller statements

#: Where a filing's seller statements lie in its output directory (a public contract):
#: ``statements/statements.jsonl``, each run's own copy ``statements/runs/<run_id>.jsonl``, and
#: the pages ``statements/<shard>/<statement_id>.html``.
STATEMENTS_DIR = "statements"
STATEMENTS_FEED = "statements.jsonl"
STATEMENTS_RUNS_DIR = "runs"

# --------------------------------------------------------------------------- groups of operators

#: The id of ``[operator]``, the default operator: the transactions without an ``operator_id``
#: (or with this one) are its own, and it keeps the output layout and ledger of a single operator.
DEFAULT_OPERATOR = "default"
#: ``[operators.ID]``: an operator's id, part of paths, task labels and the ledger's keys: a
#: lower-case letter, then lower-case letters, digits and ``_``, 32 characters at most.
OPERATOR_ID_PATTERN = "[a-z][a-z0-9_]{0,31}"
#: Where a further operator's files lie in the run's output directory (a public contract):
#: ``operators/<ID>/``, with the layout of the default operator's output inside.
OPERATORS_DIR = "operators"
