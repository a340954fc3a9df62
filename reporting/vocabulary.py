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
#: Under the OECD Model Rules: resident outside the filing jurisdiction's reportable
#: jurisdictions (or in one that does not take the activities) and no property located in one
NOT_REPORTABLE_JURISDICTION = "not_reportable:not_reportable_jurisdiction"
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
    NOT_REPORTABLE_JURISDICTION,
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

# --------------------------------------------------------------------------- due diligence

#: The data items of a seller's due diligence (PStTG § 17 with § 14(2) Nr. 1-5, (3) Nr. 1-6 and
#: (4) Nr. 1 and 6), in the order the feed and the ledger list them. The financial account is
#: none of them: it is reported where available and never requested (no seller is blocked for it).
DD_NAME = "name"
DD_PRIMARY_ADDRESS = "primary_address"
DD_TIN = "tin"
DD_BIRTH_PLACE = "birth_place"  # individuals without a TIN only
DD_BIRTH_DATE = "birth_date"  # individuals
DD_VAT = "vat"
DD_BUSINESS_REGISTRATION = "business_registration"  # entities
DD_PERMANENT_ESTABLISHMENT = "permanent_establishment"  # entities
DD_PROPERTY_ADDRESS = "property_address"  # sellers renting out immovable property
DD_LAND_REGISTRATION = "land_registration"  # ... where the seller has one
DUE_DILIGENCE_ITEMS: tuple[str, ...] = (
    DD_NAME,
    DD_PRIMARY_ADDRESS,
    DD_TIN,
    DD_BIRTH_PLACE,
    DD_BIRTH_DATE,
    DD_VAT,
    DD_BUSINESS_REGISTRATION,
    DD_PERMANENT_ESTABLISHMENT,
    DD_PROPERTY_ADDRESS,
    DD_LAND_REGISTRATION,
)

#: The state of one item: not in the source; checked and found wrong; in the source, not
#: verified (yet, or any more); verified; not required of this seller.
ITEM_MISSING = "missing"
ITEM_INVALID = "invalid"
ITEM_UNVERIFIED = "unverified"
ITEM_VERIFIED = "verified"
ITEM_NOT_APPLICABLE = "not_applicable"
ITEM_STATES: tuple[str, ...] = (ITEM_MISSING, ITEM_INVALID, ITEM_UNVERIFIED, ITEM_VERIFIED, ITEM_NOT_APPLICABLE)
#: What a verification (an adapter's answer) may set an item to.
VERIFICATION_RESULTS: tuple[str, ...] = (ITEM_VERIFIED, ITEM_INVALID)

#: The actions of the due-diligence feed (``due_diligence/actions.jsonl``, a public contract), in
#: the order of the cycle, and the measures among them (``[due_diligence] measure``).
PRE_REPORT_NOTICE = "pre_report_notice"
REQUEST = "request"
REMINDER_1 = "reminder_1"
REMINDER_2 = "reminder_2"
WITHHOLD_PAYOUTS = "withhold_payouts"
CLOSE_ACCOUNT = "close_account"
RELEASE = "release"
DUE_DILIGENCE_ACTIONS: tuple[str, ...] = (
    PRE_REPORT_NOTICE,
    REQUEST,
    REMINDER_1,
    REMINDER_2,
    WITHHOLD_PAYOUTS,
    CLOSE_ACCOUNT,
    RELEASE,
)
MEASURES: tuple[str, ...] = (WITHHOLD_PAYOUTS, CLOSE_ACCOUNT)

#: The columns of a seller's request cycle in the ledger's due-diligence state (what a report of
#: actions changes), in the table's order: the source of the cycle's columns of the compliance
#: desk (``ledger_due_diligence_desk``) and of its CSV export.
DUE_DILIGENCE_CYCLE_COLUMNS: tuple[str, ...] = (
    "notice_due",
    "notice_on",
    "request_due",
    "requested_on",
    "requested_items",
    "reminder_1_on",
    "reminder_2_on",
    "measure",
    "measure_on",
    "release_due",
    "cycles",
)

#: Whether a seller is in the scope of due diligence today: active in the period and not excluded
#: (the other values are the rules' decision codes of the exclusion, or ``not_active``).
IN_SCOPE = "in_scope"
NOT_ACTIVE = "not_active"

#: Where the feed lies in the output directory (a public contract): ``due_diligence/actions.jsonl``
#: (a further operator of a group: ``operators/<ID>/due_diligence/actions.jsonl``).
DUE_DILIGENCE_DIR = "due_diligence"
ACTIONS_FEED = "actions.jsonl"
