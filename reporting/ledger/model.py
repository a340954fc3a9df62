"""The ledger's vocabulary: record kinds, document types, statuses, and the plain records that the
planner works on. Nothing here touches a database.

A *record* is one correctable element of a DPI message: the ``PlatformOperator``, one
``AssumedPlatformOperator`` or the ``AssumingPlatformOperator`` of ``OtherPlatformOperators``
(each with a DocSpec of its own, kind ``other_platform_operators``), or one ``ReportableSeller``.
Its key is ``(kind, seller_key)``: ``seller_key`` is the seller_id for sellers, the other
operator's role and key for an other operator (``assumed:FR-aeb7f408080c6eaa``: the role, the
TIN's issuing country and a digest of the TIN, :attr:`reporting.config.OtherOperator.key`), and
``None`` for the PlatformOperator (the column keeps its name: a public contract).
Its *content* is the canonical JSON of what was reported (personal data: the ledger that keeps it
must be protected like the output files).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

PLATFORM_OPERATOR = "platform_operator"
OTHER_PLATFORM_OPERATORS = "other_platform_operators"
SELLER = "seller"
KINDS = (PLATFORM_OPERATOR, OTHER_PLATFORM_OPERATORS, SELLER)

#: What a record does in its message; :func:`doc_type_indic` maps it to the OECD code.
NEW, RESEND, CORRECTION, DELETION = "new", "resend", "correction", "deletion"
DOC_TYPES = (NEW, RESEND, CORRECTION, DELETION)
#: The names that :meth:`reporting.authorities.base.AuthorityProfile.doc_type_indic` takes.
PROFILE_KINDS = {NEW: "new", RESEND: "resent", CORRECTION: "corrected", DELETION: "deleted"}

DPI401, DPI402, DPI403 = "DPI401", "DPI402", "DPI403"
MESSAGE_TYPES = (DPI401, DPI402, DPI403)

#: rendered -> published -> accepted | rejected; a rendered message may be discarded instead.
RENDERED, PUBLISHED, ACCEPTED, REJECTED, DISCARDED = "rendered", "published", "accepted", "rejected", "discarded"
MESSAGE_STATUSES = (RENDERED, PUBLISHED, ACCEPTED, REJECTED, DISCARDED)
#: The messages whose records count as filed.
LIVE_MESSAGE_STATUSES = (PUBLISHED, ACCEPTED)
#: How a published message reaches its authority (``ledger_transmissions``, revision
#: 0007_transmissions): an outbox package is ``prepared`` and ``uploaded`` by a person; a DIP
#: transfer is ``started``, then ``transmitted`` (or ``aborted``: its ticket is never used again),
#: and its protocol ``confirmed`` once fetched.
PREPARED, UPLOADED, STARTED, ABORTED, TRANSMITTED, CONFIRMED = (
    "prepared",
    "uploaded",
    "started",
    "aborted",
    "transmitted",
    "confirmed",
)
TRANSMISSION_EVENTS = (PREPARED, UPLOADED, STARTED, ABORTED, TRANSMITTED, CONFIRMED)
DIP, OUTBOX = "dip", "outbox"
TRANSMISSION_CHANNELS = (DIP, OUTBOX)
#: sent (with its message) -> accepted | rejected; superseded by a correction, deleted by a deletion.
SENT, SUPERSEDED, DELETED = "sent", "superseded", "deleted"
RECORD_STATUSES = (SENT, ACCEPTED, REJECTED, SUPERSEDED, DELETED)

#: A seller statement (``ledger_statements``): the first one of a seller's filing, or one that
#: replaces an earlier statement after a correction or deletion of the filed record.
INITIAL = "initial"
STATEMENT_KINDS = (INITIAL, CORRECTION, DELETION)
#: Where a statement's delivery stands: pending until the platform's delivery report says sent
#: or failed (``dac7 statements mark-sent``).
PENDING, FAILED = "pending", "failed"
DELIVERY_STATUSES = (PENDING, SENT, FAILED)
#: What a delivery report may say of a statement.
REPORTED_STATUSES = (SENT, FAILED)

RecordKey = tuple[str, str | None]
PO_KEY: RecordKey = (PLATFORM_OPERATOR, None)


def opo_key(key: str) -> RecordKey:
    """The record key of the other operator (an assumed or the assuming one) with ledger key ``key``."""
    return (OTHER_PLATFORM_OPERATORS, key)


_INDIC = {RESEND: 0, NEW: 1, CORRECTION: 2, DELETION: 3}


def doc_type_indic(doc_type: str, environment: str) -> str:
    """The DocTypeIndic of a record: ``OECD0..3`` in production, ``OECD10..13`` for test data
    (reference §3.1). A profile that marks test files elsewhere (DE: the envelope) passes its own
    mapping to :func:`reporting.ledger.plan_filing`."""
    n = _INDIC[doc_type]
    return f"OECD1{n}" if environment == "test" else f"OECD{n}"


DocTypeIndic = Callable[[str, str], str]


#: The encoder :func:`json.dumps` would make for these options on every call (it makes one per
#: call when any option differs from the defaults): made once, the same text (twice per record
#: of a render: its hash, then its row in the ledger).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(content: Any) -> str:
    """The one text form of a record's content: sorted keys, no spaces, UTF-8 characters kept.

    The content must be JSON data already (str, int, bool, None, lists, dicts with str keys):
    dates and Decimals are the caller's to turn into strings, so that a hash never depends on
    how a library prints them.
    """
    return _CANONICAL.encode(content)


def content_hash(content: Any) -> str:
    """sha256 (hex) of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def period_label(authority: str, year: int | None, environment: str) -> str:
    """``DE 2025 (test)``: how messages name a period."""
    parts = [p for p in (authority, str(year) if year is not None else "") if p]
    return f"{' '.join(parts) or 'this period'} ({environment})"


_KIND_LABELS = {PLATFORM_OPERATOR: "PlatformOperator", OTHER_PLATFORM_OPERATORS: "OtherPlatformOperators"}


def key_label(key: RecordKey) -> str:
    """``seller S-1``, ``PlatformOperator``, ``OtherPlatformOperators FR-3f2a…``: how messages
    name a record (never by its content)."""
    kind, seller_key = key
    if kind == SELLER:
        return f"seller {seller_key}"
    return _KIND_LABELS[kind] + (f" {seller_key}" if seller_key is not None else "")


@dataclass(frozen=True, slots=True)
class LiveRecord:
    """The version of a record that counts as filed: its DocRefId is what a correction, a
    deletion or a resend must name. ``rejected``: the authority rejected this record inside an
    otherwise accepted message, so the next run sends it again as a correction."""

    kind: str
    seller_key: str | None
    doc_ref_id: str
    doc_type_indic: str
    content_hash: str
    content: Any
    message_ref_id: str
    rejected: bool = False

    @property
    def key(self) -> RecordKey:
        return (self.kind, self.seller_key)


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """One record of a planned message, in body order."""

    kind: str
    seller_key: str | None
    doc_type: str  # new | resend | correction | deletion
    doc_type_indic: str  # the OECD code for the message's environment
    doc_ref_id: str
    corr_doc_ref_id: str | None
    content_hash: str
    content: Any

    @property
    def key(self) -> RecordKey:
        return (self.kind, self.seller_key)


class RecordsView(Sequence[PlannedRecord]):
    """The records of a planned message kept in a file rather than in memory
    (:meth:`reporting.ledger.contents.ContentStore.planned_records`): sized, read back in order
    each time it is iterated. Its records' DocRefIds are distinct (the file's unique index), so
    :func:`reporting.ledger.ledger_problems` need not hold them to tell an id used twice."""

    def of_kind(self, kind: str) -> Sequence[PlannedRecord]:  # pragma: no cover - abstract
        """The records of ``kind``, in order, as a view of the same file."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """One message to render: its MessageTypeIndic and its records (PlatformOperator first, then
    the other operators of OtherPlatformOperators by key, then the sellers by seller_key). The
    MessageRefId, file name and timestamps are the caller's:
    :meth:`reporting.ledger.Ledger.record_message` takes them."""

    message_type_indic: str
    records: Sequence[PlannedRecord]  # a tuple, or a RecordsView read back from a file
    environment: str
    authority: str = ""
    year: int | None = None

    @property
    def platform_operator(self) -> PlannedRecord:
        return next(r for r in self.records if r.kind == PLATFORM_OPERATOR)

    @property
    def other_platform_operators(self) -> tuple[PlannedRecord, ...]:
        """The records of OtherPlatformOperators: assumed operators, or the assuming one."""
        return tuple(r for r in self.records if r.kind == OTHER_PLATFORM_OPERATORS)

    @property
    def sellers(self) -> Sequence[PlannedRecord]:
        """The seller records, in order: a tuple, or a view of the file where the records are one."""
        if isinstance(self.records, RecordsView):
            return self.records.of_kind(SELLER)
        return tuple(r for r in self.records if r.kind == SELLER)

    def describe(self) -> str:
        """``DPI402: PlatformOperator resend; other records: 1 correction, 1 deletion``."""
        counts: dict[str, int] = {}
        for r in self.records:
            if r.kind != PLATFORM_OPERATOR:
                counts[r.doc_type] = counts.get(r.doc_type, 0) + 1
        text = f"{self.message_type_indic}: PlatformOperator {self.platform_operator.doc_type}"
        if counts:
            text += "; other records: " + ", ".join(f"{n} {t}" for t, n in counts.items())
        return text


@dataclass(frozen=True, slots=True)
class KnownRecord:
    """What the ledger knows of a DocRefId, whatever its state: for the checks that tell an
    unknown record (80002, 80013) from an outdated one (80003, 80014), and a reused id (80000)."""

    doc_ref_id: str
    kind: str
    seller_key: str | None
    doc_type: str
    status: str
    message_ref_id: str
    message_status: str
    environment: str
    authority: str
    year: int


# ------------------------------------------------------------------------------- status documents

OUTCOMES = ("accepted", "partially_rejected", "rejected")


@dataclass(frozen=True, slots=True)
class FileError:
    code: str
    details: str | None = None


@dataclass(frozen=True, slots=True)
class RecordError:
    code: str
    details: str | None = None
    doc_ref_ids: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # FieldPaths in error


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What an authority's status document says, whatever its format (one adapter per format).

    ``outcome``: ``accepted``; ``partially_rejected`` (the message is accepted, the records named
    in record errors are rejected); ``rejected`` (the whole message). The message is named by its
    MessageRefId or, for envelopes that answer with their own delivery id, by ``transfer_id``.
    """

    format: str
    outcome: str
    message_ref_id: str | None
    transfer_id: str | None = None
    status_message_ref_id: str | None = None
    file_errors: tuple[FileError, ...] = ()
    record_errors: tuple[RecordError, ...] = ()
    notes: tuple[str, ...] = ()  # what the adapter could not map (said to the user, never silent)

    @property
    def rejected_doc_ref_ids(self) -> frozenset[str]:
        return frozenset(d for e in self.record_errors for d in e.doc_ref_ids)


#: The answer of a verification adapter about one identifier (``ledger_verification_calls``,
#: :mod:`reporting.verification`): it passed the adapter's check, it failed it, or it could not be
#: checked (the service did not answer, or the adapter has no rule for it). Only the first two are
#: kept in the cache (``ledger_verification_cache``): an identifier not checked is asked again.
VERIFIED, INVALID, UNVERIFIED = "verified", "invalid", "unverified"
VERIFICATION_STATES = (VERIFIED, INVALID, UNVERIFIED)
CACHED_STATES = (VERIFIED, INVALID)
#: What an identifier is: a taxpayer identification number or a VAT identification number.
IDENTIFIER_KINDS = ("tin", "vat")
#: The events of a seller's due-diligence history (``ledger_due_diligence_events.kind``): what a
#: run found (its scope, its items' states, the requested data come in, a cycle closed), what a
#: verification answered, and each action the platform reported sent (the feed's action names).
DD_SCOPE = "scope"
DD_ITEMS = "items"
DD_VERIFICATION = "verification"
DD_DATA_RECEIVED = "data_received"
DD_CYCLE_CLOSED = "cycle_closed"
DD_EVENT_KINDS = (DD_SCOPE, DD_ITEMS, DD_VERIFICATION, DD_DATA_RECEIVED, DD_CYCLE_CLOSED)
#: A seller's stage on the compliance desk (``ledger_due_diligence_desk.stage``): a request cycle
#: open before its second reminder, both reminders sent and no measure yet, under a measure, or
#: none of these (an item lacking before a request, a notice or a release due).
DESK_REQUESTED = "requested"
DESK_REMINDED_TWICE = "reminded_twice"
DESK_BLOCKED = "blocked"
DESK_OTHER = "other"
DESK_STAGES = (DESK_REQUESTED, DESK_REMINDED_TWICE, DESK_BLOCKED, DESK_OTHER)
