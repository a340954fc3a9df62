"""What stops a filing because of the ledger: one branch of :class:`reporting.errors.ReportingError`.

Messages name the period (authority, year, environment), MessageRefIds and DocRefIds, never the
content of a record (names, TINs, birth dates are personal data).
"""

from __future__ import annotations

from reporting.errors import PermanentError, ReportingError


class LedgerError(ReportingError):
    """The ledger refuses an operation (an id already used, a message in the wrong state ...)."""


class LedgerLockedError(LedgerError):
    """Another run holds the filing lock of this period and authority."""


class ApprovalMissingError(LedgerError, PermanentError):
    """A production message without a second person's recorded approval (four eyes): retrying
    changes nothing until someone other than the one who triggered the run approves it."""


class MessageStateError(LedgerError, PermanentError):
    """An operation asked of a message whose state does not allow it: a message transmitted
    while it is not published (never published, or answered by the authority already). A retry
    finds the same state: the run or the command must change first."""


class LedgerModeError(LedgerError, PermanentError):
    """An explicit filing mode (new, correction, deletion, nil) does not fit the ledger state."""


class UnknownMessageError(LedgerError, PermanentError):
    """A MessageRefId (or DIP transfer ticket) that this ledger never recorded."""


class StatusFormatError(LedgerError, PermanentError):
    """A status document that cannot be read: too large, not XML, a DOCTYPE, or a format
    without an adapter."""


class StatementFeedError(LedgerError, PermanentError):
    """A statements feed (``statements.jsonl``) that cannot be recorded: a malformed line, a
    statement that names no filing of this ledger, or one recorded before with other content."""


class RetentionError(LedgerError, PermanentError):
    """The retention of seller statements could not delete everything due: a statement's page is
    not where the ledger says. Its ledger content is kept until the page is found or the operator
    acknowledges that it is gone."""


class DeliveryReportError(LedgerError, PermanentError):
    """A delivery report of seller statements that cannot be applied: the file, the line and the
    rule are named, and nothing of the report was applied."""


class DueDiligenceReportError(LedgerError, PermanentError):
    """A report of due-diligence actions (``dac7 due-diligence mark``), or of verifications, that
    cannot be applied: the file, the line and the field or rule are named, and nothing of it was
    applied."""


class ContentStoreError(LedgerError):
    """The render's store of record contents (:class:`reporting.ledger.contents.ContentStore`)
    failed: a record stored twice, or its file could not be made, written or read (a full disk,
    an unwritable folder). The message names the file, the operation, the period and the key."""


class PlanInputError(LedgerError, ValueError):
    """The records given to :func:`reporting.ledger.plan_filing_sorted` are not in body order,
    name a key twice or a malformed key, or lack the PlatformOperator: the caller's fault, never
    the ledger's. A ValueError as well, as the plan's other refusals of its arguments."""


class DocRefIdTakenError(LedgerError):
    """A record written to a file of planned records (:meth:`reporting.ledger.contents.ContentStore.planned_records`)
    whose DocRefId an earlier record of the file has: the plan turns it into the refusal of an id made twice."""

    def __init__(self, doc_type: str, key: tuple[str, str | None], doc_ref_id: str) -> None:
        super().__init__(f"DocRefId {doc_ref_id} is already used by a planned record")
        self.doc_type = doc_type
        self.key = key
        self.doc_ref_id = doc_ref_id
