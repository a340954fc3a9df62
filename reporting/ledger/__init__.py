"""The filing ledger: what was sent to which authority, so that a rerun corrects, deletes or adds
instead of filing the same sellers again, and never reuses an id.

    with open_ledger(url) as ledger, ledger.lock(env, "DE", 2025, holder=run_id):
        live = ledger.live_records(env, "DE", 2025)
        plan = plan_filing(current, live, profile_expects_nil=..., new_id=..., environment=env,
                           authority="DE", year=2025)
        problems = ledger.problems(plan, environment=env, authority="DE", year=2025)
        for message in plan:                      # render each, then
            ledger.record_message(message, message_ref_id=..., ...)
        for message in plan:                      # in order
            with ledger.publishing(message_ref_id):
                os.replace(staged, published)     # a failing rename rolls the ledger back

The ledger holds personal data (the content of every record sent, needed to render a later
deletion): protect it like the output files. The default SQLite file is created with mode 0600.
Test and production filings share a ledger but never each other's state: every query is scoped by
environment, authority and reporting year; ids are unique across all of them.
"""

from reporting.ledger.db import (
    ErrorInfo,
    Ledger,
    LockInfo,
    MessageInfo,
    RecordInfo,
    StatusOutcome,
    open_ledger,
)
from reporting.ledger.errors import (
    ApprovalMissingError,
    DeliveryReportError,
    DueDiligenceReportError,
    LedgerError,
    LedgerLockedError,
    LedgerModeError,
    MessageStateError,
    RetentionError,
    StatementFeedError,
    StatusFormatError,
    UnknownMessageError,
)
from reporting.ledger.model import (
    CORRECTION,
    DELETION,
    NEW,
    OTHER_PLATFORM_OPERATORS,
    PLATFORM_OPERATOR,
    PO_KEY,
    PROFILE_KINDS,
    RESEND,
    SELLER,
    KnownRecord,
    LiveRecord,
    PlannedMessage,
    PlannedRecord,
    RecordKey,
    StatusReport,
    canonical_json,
    content_hash,
    doc_type_indic,
    opo_key,
)
from reporting.ledger.plan import apply_message, ledger_problems, plan_filing, plan_filing_sorted
from reporting.ledger.rejections import Rejection
from reporting.ledger.transmissions import FILING_STATES, FilingState, FilingStep, TransmissionEvent
from reporting.ledger.url import LEDGER_FILE, default_ledger_url, resolve_ledger_url

__all__ = [
    "CORRECTION",
    "DELETION",
    "FILING_STATES",
    "LEDGER_FILE",
    "NEW",
    "OTHER_PLATFORM_OPERATORS",
    "PLATFORM_OPERATOR",
    "PO_KEY",
    "PROFILE_KINDS",
    "RESEND",
    "SELLER",
    "ApprovalMissingError",
    "DeliveryReportError",
    "DueDiligenceReportError",
    "ErrorInfo",
    "FilingState",
    "FilingStep",
    "KnownRecord",
    "Ledger",
    "LedgerError",
    "LedgerLockedError",
    "LedgerModeError",
    "LiveRecord",
    "LockInfo",
    "MessageInfo",
    "MessageStateError",
    "PlannedMessage",
    "PlannedRecord",
    "RecordInfo",
    "RecordKey",
    "Rejection",
    "RetentionError",
    "StatementFeedError",
    "StatusFormatError",
    "StatusOutcome",
    "StatusReport",
    "TransmissionEvent",
    "UnknownMessageError",
    "apply_message",
    "canonical_json",
    "content_hash",
    "default_ledger_url",
    "doc_type_indic",
    "ledger_problems",
    "open_ledger",
    "opo_key",
    "plan_filing",
    "plan_filing_sorted",
    "resolve_ledger_url",
]
