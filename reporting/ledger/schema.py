"""The ledger's tables (SQLAlchemy Core), as the migrations in ``migrations/versions`` build them.

A test compares this metadata with a database upgraded to head, so that the two never drift.
Timestamps are naive UTC. The ``content`` of a record is personal data.

DocRefIds are never reused: ``doc_ref_id`` is unique among the records that are not resends
(a partial unique index, on SQLite and PostgreSQL alike); a resend (OECD0) repeats the DocRefId of
the PlatformOperator record it resends (EU rules 80013/80014), at most once per message.
"""

from __future__ import annotations

import sqlalchemy as sa

from reporting.ledger.model import (
    CACHED_STATES,
    DD_EVENT_KINDS,
    DELIVERY_STATUSES,
    DESK_STAGES,
    DOC_TYPES,
    IDENTIFIER_KINDS,
    KINDS,
    MESSAGE_STATUSES,
    MESSAGE_TYPES,
    RECORD_STATUSES,
    STATEMENT_KINDS,
    TRANSMISSION_CHANNELS,
    TRANSMISSION_EVENTS,
    VERIFICATION_STATES,
)
from reporting.vocabulary import (
    DEFAULT_OPERATOR,
    DUE_DILIGENCE_ACTIONS,
    DUE_DILIGENCE_ITEMS,
    ENVIRONMENTS,
    ITEM_STATES,
    MEASURES,
)

#: Alembic's version table for the ledger: its own name, so that a ledger may share a PostgreSQL
#: database with Airflow's metadata (whose version table is ``alembic_version``).
VERSION_TABLE = "dac7_ledger_version"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


messages = sa.Table(
    "ledger_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_ref_id", sa.String(170), nullable=False),
    sa.Column("environment", sa.String(4), nullable=False),
    sa.Column("authority", sa.String(2), nullable=False),
    sa.Column("operator", sa.String(400), nullable=False),
    sa.Column("reporting_year", sa.Integer, nullable=False),
    sa.Column("message_type_indic", sa.String(6), nullable=False),
    sa.Column("file_name", sa.String(400), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("transfer_id", sa.String(170)),  # an envelope's delivery id (DE DIP transferticketId)
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("published", sa.DateTime),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("status_changed", sa.DateTime),
    sa.Column("triggered_by", sa.String(200)),
    sa.Column("params", sa.Text),  # the run's Params, JSON
    sa.Column("approved_by", sa.String(200)),
    sa.Column("approved_at", sa.DateTime),
    # the configuration's id of the operator that filed it ([operators.ID]; "default": [operator]):
    # a period's live state, pending messages and lock are each operator's own (revision 0004)
    sa.Column("operator_id", sa.String(32), nullable=False, server_default=DEFAULT_OPERATOR),
    sa.UniqueConstraint("message_ref_id"),
    sa.CheckConstraint(_one_of("environment", ENVIRONMENTS), name="environment"),
    sa.CheckConstraint(_one_of("status", MESSAGE_STATUSES), name="status"),
    sa.CheckConstraint(_one_of("message_type_indic", MESSAGE_TYPES), name="message_type_indic"),
    sa.Index(None, "environment", "authority", "reporting_year"),
    sa.Index(None, "transfer_id"),
    sa.Index("ix_ledger_messages_operator_period", "operator_id", "environment", "authority", "reporting_year"),
)

records = sa.Table(
    "ledger_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("ledger_messages.id", ondelete="RESTRICT"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("seller_key", sa.String(200)),
    sa.Column("doc_type", sa.String(10), nullable=False),
    sa.Column("doc_type_indic", sa.String(6), nullable=False),
    sa.Column("doc_ref_id", sa.String(200), nullable=False),
    sa.Column("corr_doc_ref_id", sa.String(200)),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # canonical JSON of what was reported: personal data
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("prior_status", sa.String(10)),  # before superseded/deleted, to restore if that is rejected
    sa.Column("superseded_by", sa.String(200)),  # DocRefId of the correction or deletion
    sa.UniqueConstraint("message_id", "position"),
    sa.UniqueConstraint("message_id", "doc_ref_id"),
    sa.CheckConstraint(_one_of("kind", KINDS), name="kind"),
    sa.CheckConstraint(_one_of("doc_type", DOC_TYPES), name="doc_type"),
    sa.CheckConstraint(_one_of("status", RECORD_STATUSES), name="status"),
    # Every record but the PlatformOperator has a key: a seller its seller_id, another operator of
    # OtherPlatformOperators its ledger key (revision 0003; before it, other operators had none).
    sa.CheckConstraint("(kind = 'platform_operator') = (seller_key IS NULL)", name="seller_key"),
    sa.CheckConstraint(
        "(doc_type IN ('correction', 'deletion')) = (corr_doc_ref_id IS NOT NULL)",
        name="corr_doc_ref_id",
    ),
    sa.CheckConstraint("doc_type <> 'resend' OR kind = 'platform_operator'", name="resend_operator_only"),
    sa.Index(
        "uq_ledger_records_doc_ref_id",
        "doc_ref_id",
        unique=True,
        sqlite_where=sa.text("doc_type <> 'resend'"),
        postgresql_where=sa.text("doc_type <> 'resend'"),
    ),
    sa.Index(None, "corr_doc_ref_id"),
    sa.Index(None, "kind", "seller_key"),
)

status_imports = sa.Table(
    "ledger_status_imports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("ledger_messages.id", ondelete="RESTRICT"), nullable=False),
    sa.Column("format", sa.String(40), nullable=False),
    sa.Column("status_message_ref_id", sa.String(170)),
    sa.Column("outcome", sa.String(20), nullable=False),  # accepted | partially_rejected | rejected
    sa.Column("file_name", sa.String(400), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("imported", sa.DateTime, nullable=False),
    sa.UniqueConstraint("sha256"),
)

errors = sa.Table(
    "ledger_errors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("ledger_messages.id", ondelete="RESTRICT"), nullable=False),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("ledger_status_imports.id", ondelete="RESTRICT"), nullable=False),
    sa.Column("scope", sa.String(6), nullable=False),  # file | record
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("details", sa.Text),
    sa.Column("doc_ref_id", sa.String(200)),  # the DocRefId in error (record errors)
    sa.Column("fields", sa.Text),  # JSON list of the FieldPaths in error
    sa.CheckConstraint("scope IN ('file', 'record')", name="scope"),
    sa.Index(None, "message_id"),
    sa.Index(None, "doc_ref_id"),
)

locks = sa.Table(
    "ledger_locks",
    metadata,
    sa.Column("environment", sa.String(4), primary_key=True),
    sa.Column("authority", sa.String(2), primary_key=True),
    sa.Column("reporting_year", sa.Integer, primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired", sa.DateTime, nullable=False),
    sa.Column("host", sa.String(200)),
    sa.Column("pid", sa.Integer),
    # each operator of a group files a period under its own lock (revision 0004)
    sa.Column("operator_id", sa.String(32), primary_key=True, server_default=DEFAULT_OPERATOR),
)

# Seller statements (revision 0002): one row per statement of the statements feed
# (``statements/statements.jsonl``), the record of each notice's content and date that PStTG
# § 24(1) Nr. 4 requires (made by 31 January, § 24(2) Nr. 3; kept ten years from the end of the
# year it was made, then deleted, § 24(3)). ``content`` is the canonical JSON of the feed's
# object: personal data, erased (with ``seller_id`` and ``html_path``) when the retention ends;
# the row, its hashes and its delivery events stay.
statements = sa.Table(
    "ledger_statements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("statement_id", sa.String(200), nullable=False),
    sa.Column("replaces", sa.String(200)),  # the statement_id this one replaces
    # whether ``replaces`` named a statement recorded here when this one was recorded (NULL for an
    # initial statement; false after an upgrade mid-year: the earlier notice predates the ledger)
    sa.Column("replaces_recorded", sa.Boolean),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("seller_id", sa.String(200)),  # NULL once erased
    sa.Column(
        "message_ref_id",
        sa.String(170),
        sa.ForeignKey("ledger_messages.message_ref_id", ondelete="RESTRICT"),
        nullable=False,
    ),
    sa.Column("doc_ref_id", sa.String(200), nullable=False),
    sa.Column("environment", sa.String(4), nullable=False),
    sa.Column("authority", sa.String(2), nullable=False),
    sa.Column("reporting_year", sa.Integer, nullable=False),
    sa.Column("language", sa.String(35), nullable=False),
    sa.Column("html_path", sa.String(400)),  # relative to the run's output directory; NULL once erased
    sa.Column("out_dir", sa.String(1000)),  # that output directory, absolute (where retention finds the page)
    sa.Column("sha256", sa.String(64), nullable=False),  # of the HTML file
    sa.Column("content_hash", sa.String(64), nullable=False),  # sha256 of the canonical JSON object
    sa.Column("content", sa.Text),  # canonical JSON of the feed's object: personal data; NULL once erased
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("status_changed", sa.DateTime, nullable=False),
    sa.Column("erased", sa.DateTime),  # when the retention of PStTG § 24(3) ended and the content went
    sa.UniqueConstraint("statement_id"),
    sa.CheckConstraint(_one_of("kind", STATEMENT_KINDS), name="kind"),
    sa.CheckConstraint(_one_of("status", DELIVERY_STATUSES), name="status"),
    sa.CheckConstraint(_one_of("environment", ENVIRONMENTS), name="environment"),
    sa.CheckConstraint("(kind = 'initial') = (replaces IS NULL)", name="replaces"),
    sa.Index("ix_ledger_statements_period_status", "environment", "authority", "reporting_year", "status"),
    sa.Index(None, "replaces"),
    sa.Index(None, "created"),
)

statement_events = sa.Table(
    "ledger_statement_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "statement_id",
        sa.String(200),
        sa.ForeignKey("ledger_statements.statement_id", ondelete="RESTRICT"),
        nullable=False,
    ),
    sa.Column("at", sa.DateTime, nullable=False),  # when it happened (the report's time, UTC)
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("detail", sa.String(500)),  # the platform's words; never personal data
    sa.Column("source", sa.String(400), nullable=False),  # the file it came from (its name)
    sa.Column("recorded", sa.DateTime, nullable=False),
    sa.UniqueConstraint("statement_id", "at", "status"),
    sa.CheckConstraint(_one_of("status", DELIVERY_STATUSES), name="status"),
)

# How each published message reached its authority (revision 0007_transmissions): one row per
# event, with who acted and when (``reporting.ledger.transmissions``). ``ticket``: the DIP data
# transfer number of a transfer to the BZSt; ``detail``: short, never personal data.
transmissions = sa.Table(
    "ledger_transmissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("ledger_messages.id", ondelete="RESTRICT"), nullable=False),
    sa.Column("event", sa.String(12), nullable=False),
    sa.Column("channel", sa.String(8), nullable=False),
    sa.Column("ticket", sa.String(170)),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("detail", sa.String(500)),
    sa.CheckConstraint(_one_of("event", TRANSMISSION_EVENTS), name="event"),
    sa.CheckConstraint(_one_of("channel", TRANSMISSION_CHANNELS), name="channel"),
    sa.Index(None, "message_id"),
    sa.Index(None, "ticket"),
)

# Verification of identifiers (revision 0006_verification, reporting.verification): one row per
# call of a verification adapter (``ledger_verification_calls``: each HTTP request to VIES or TIN
# on the Web, each python-stdnum check), the record of the information processed, its time and its
# outcome that PStTG § 24(1) Nr. 2 requires (made at the time of the processing, § 24(2) Nr. 2;
# kept ten years from the end of the year, then deleted, § 24(3)); and each adapter's cache of
# its conclusive answers (``ledger_verification_cache``). Neither holds the identifier: a keyed
# hash (HMAC-SHA256 of kind, country and the compact value) and its last three characters. In the
# cache, ``identifier_hash`` is the cache key: for a TIN the keyed hash also covers the seller type
# (individual or entity), whose answers differ (reporting.verification.model.cache_key).
verification_calls = sa.Table(
    "ledger_verification_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),  # when the answer came (or the call failed), UTC
    sa.Column("adapter", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(3), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("identifier_hash", sa.String(64), nullable=False),
    sa.Column("identifier_masked", sa.String(40), nullable=False),
    sa.Column("seller_id", sa.String(200)),
    sa.Column("attempt", sa.Integer, nullable=False),  # 1 for the first request about the item in a batch
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("detail", sa.String(300)),  # the service's answer or fault, never the identifier
    sa.Column("evidence", sa.String(100)),  # VIES's consultation number (requestIdentifier)
    sa.Column("request_date", sa.Date),  # the service's requestDate
    sa.Column("source", sa.String(400), nullable=False),  # the service, its operation and its URL
    sa.Column("duration_ms", sa.Integer),
    sa.CheckConstraint(_one_of("kind", IDENTIFIER_KINDS), name="kind"),
    sa.CheckConstraint(_one_of("outcome", VERIFICATION_STATES), name="outcome"),
    sa.Index(None, "adapter", "identifier_hash"),
    sa.Index(None, "seller_id"),
    sa.Index(None, "at"),
)

verification_cache = sa.Table(
    "ledger_verification_cache",
    metadata,
    sa.Column("adapter", sa.String(20), primary_key=True),
    sa.Column("identifier_hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(3), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("detail", sa.String(300)),
    sa.Column("evidence", sa.String(100)),
    sa.Column("request_date", sa.Date),
    sa.Column("source", sa.String(400), nullable=False),
    sa.Column("checked_at", sa.DateTime, nullable=False),  # the answer's time, UTC
    sa.CheckConstraint(_one_of("kind", IDENTIFIER_KINDS), name="kind"),
    sa.CheckConstraint(_one_of("state", CACHED_STATES), name="state"),
    sa.Index(None, "checked_at"),
)

# Due diligence (revision 0005): the state of each seller of each operator (one row: whether it
# is in scope, each data item's state, and where its request cycle stands), its history (one
# append-only row per event: PStTG § 24(1) Nr. 2 and 5, kept ten years from the end of the year
# recorded, then deleted, § 24(3)), and each daily run. No value of an item is stored: an item's
# ``_hash`` is a digest of its value (to tell a changed value, whose verification no longer
# holds), its ``_checked`` the day of its last verification. Dates are the filing state's days.


def _item_columns() -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = []
    for item in DUE_DILIGENCE_ITEMS:
        columns += [
            sa.Column(f"{item}_state", sa.String(14), nullable=False),
            sa.Column(f"{item}_hash", sa.String(16)),
            sa.Column(f"{item}_checked", sa.Date),
        ]
    return columns


due_diligence = sa.Table(
    "ledger_due_diligence",
    metadata,
    sa.Column("operator_id", sa.String(32), primary_key=True),
    sa.Column("seller_id", sa.String(200), primary_key=True),
    sa.Column("seller_type", sa.String(16)),
    sa.Column("country", sa.String(2)),  # the residence country the source gives (the view's filter)
    sa.Column("registered_at", sa.Date),  # sellers.registered_at: a pre-existing seller (PStTG § 4(3))
    sa.Column("scope", sa.String(40), nullable=False),  # in_scope, not_active, or the exclusion's decision code
    sa.Column("period", sa.Integer, nullable=False),  # the reporting period the scope was decided for
    sa.Column("fingerprint", sa.String(64), nullable=False),  # digest of everything an item state reads
    sa.Column("needs", sa.String(300), nullable=False),  # the items missing or invalid, comma-separated
    *_item_columns(),
    sa.Column("reverify_on", sa.Date),  # the first day a verification runs out (36 months, PStTG § 20(2))
    sa.Column("notice_due", sa.Date),  # first day the pre-report notice was due
    sa.Column("notice_on", sa.Date),  # ... and the day it was sent
    sa.Column("request_due", sa.Date),  # first day the request (of the next cycle) was due
    sa.Column("requested_on", sa.Date),  # the open cycle: the original request's day ...
    sa.Column("requested_items", sa.String(300)),  # ... the items it asked for
    sa.Column("reminder_1_on", sa.Date),
    sa.Column("reminder_2_on", sa.Date),
    sa.Column("measure", sa.String(20)),  # the measure taken (withhold_payouts | close_account)
    sa.Column("measure_on", sa.Date),
    sa.Column("release_due", sa.Date),  # first day the release was due (the requested data came in)
    sa.Column("cycles", sa.Integer, nullable=False, server_default="0"),  # cycles closed
    sa.Column("first_seen", sa.Date, nullable=False),
    sa.Column("updated", sa.Date, nullable=False),  # the day of the last change (a run's or a report's)
    sa.Column("changed", sa.DateTime, nullable=False),  # when it was written (UTC)
    *(sa.CheckConstraint(_one_of(f"{item}_state", ITEM_STATES), name=f"{item}_state") for item in DUE_DILIGENCE_ITEMS),
    sa.CheckConstraint(f"measure IS NULL OR {_one_of('measure', MEASURES)}", name="measure"),
    sa.Index(None, "operator_id", "scope"),
    sa.Index(None, "operator_id", "updated"),
)

due_diligence_events = sa.Table(
    "ledger_due_diligence_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("operator_id", sa.String(32), nullable=False),
    sa.Column("seller_id", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),  # when it happened (UTC)
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("detail", sa.Text),  # JSON: item names, states, dates; never a value of an item
    sa.Column("source", sa.String(400), nullable=False),  # the run, the report file, the adapter
    sa.Column("recorded", sa.DateTime, nullable=False),  # when the record was made (UTC): its retention
    sa.CheckConstraint(_one_of("kind", DD_EVENT_KINDS + DUE_DILIGENCE_ACTIONS), name="kind"),
    sa.Index(None, "operator_id", "seller_id", "at"),
    sa.Index(None, "recorded"),
)

due_diligence_runs = sa.Table(
    "ledger_due_diligence_runs",
    metadata,
    sa.Column("operator_id", sa.String(32), primary_key=True),
    sa.Column("run_date", sa.Date, primary_key=True),  # the day whose actions the run computed
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("finished", sa.DateTime, nullable=False),
    sa.Column("sellers", sa.Integer, nullable=False),  # sellers with a state
    sa.Column("in_scope", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),  # states written by the run
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("actions", sa.Text, nullable=False),  # JSON: actions due per kind
    sa.Column("feed_sha256", sa.String(64)),
    # JSON: the [due_diligence] settings the run scheduled with (revision 0008_due_diligence_run_settings)
    sa.Column("settings", sa.Text),
    # the sellers the desk lists after the run (revision 0009_due_diligence_desk; NULL: a run before it)
    sa.Column("desk", sa.Integer),
)

#: The compliance desk's list (revision 0009_due_diligence_desk): per operator and seller that needs
#: attention, what the DAC7 view shows, as of the state and the settings of the latest daily run;
#: written with the state (the run's changed sellers, a report of actions, a verification). Ids,
#: codes and dates only: no value of an item, no name.
due_diligence_desk = sa.Table(
    "ledger_due_diligence_desk",
    metadata,
    sa.Column("operator_id", sa.String(32), primary_key=True),
    sa.Column("seller_id", sa.String(200), primary_key=True),
    sa.Column("period", sa.Integer, nullable=False),
    sa.Column("country", sa.String(2)),
    sa.Column("seller_type", sa.String(16)),
    sa.Column("scope", sa.String(40), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),  # requested | reminded_twice | blocked | other
    sa.Column("items_missing", sa.String(300), nullable=False),  # item codes, comma-separated
    sa.Column("items_invalid", sa.String(300), nullable=False),
    sa.Column("items_unverified", sa.String(300), nullable=False),
    sa.Column("notice_on", sa.Date),
    sa.Column("requested_on", sa.Date),
    sa.Column("requested_items", sa.String(300)),
    sa.Column("reminder_1_on", sa.Date),
    sa.Column("reminder_2_on", sa.Date),
    sa.Column("measure", sa.String(20)),
    sa.Column("measure_on", sa.Date),
    sa.Column("release_due", sa.Date),
    sa.Column("notice_from", sa.Date),  # the pre-report notice due since (NULL: not due)
    sa.Column("request_from", sa.Date),  # the request due since ...
    sa.Column("request_latest", sa.Date),  # ... and its last day
    sa.Column("step", sa.String(20)),  # the open cycle's next step, due or not yet ...
    sa.Column("step_from", sa.Date),  # ... its first day ...
    sa.Column("step_latest", sa.Date),  # ... and its last day
    sa.Column("release_from", sa.Date),  # the release due since
    sa.Column("next_action", sa.String(20)),  # the next action (NULL: none) ...
    sa.Column("next_on", sa.Date),  # ... and the day it is (or was first) due
    sa.CheckConstraint(_one_of("stage", DESK_STAGES), name="stage"),
    sa.Index(None, "operator_id", "country", "seller_id"),
    sa.Index(None, "operator_id", "stage"),
    sa.Index(None, "step", "operator_id", "seller_id"),
    sa.Index(None, "next_action", "operator_id", "seller_id"),
)
