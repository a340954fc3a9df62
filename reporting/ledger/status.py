"""Importing an authority's status document into the ledger.

One adapter per format, in a registry keyed by the root element (namespace, local name):

* the EU DAC7 status message (``urn:oecd:ties:dsm:v1``, root ``DAC7StatusMessage``; reference
  §4.1, schema DAC7StatusMessageXML_v1.0.xsd): ``ValidationResult/Status`` Accepted or Rejected,
  ``FileError`` and ``RecordError`` (Code, Details, DocRefIDInError, FieldsInError/FieldPath).
  Accepted with record errors that name DocRefIds is a partial rejection: the message is
  accepted, the named records are rejected.
* the German BZSt DIP protocol (``dipResponse`` or ``dipProtocol`` in a DIP namespace
  ``http://itzbund.de/ozg/bzst/post/dip/v1/`` or ``.../v2/``): ``processStatus`` OK,
  PARTIALLY_REJECTED or ERROR (``processStatusType`` of dip-types.xsd). The reference DIP schemas
  hold only that type; the elements around it (``dipResponse/dipProtocol`` with ``consignment``,
  ``processStatus``, ``dipResult{code, message}``, ``payloadResult``) follow the response schema
  of the third-party client the DE profile is based on (reference §6.1). The message is found by
  the ``transferticketId`` of the consignment (the DIP delivery id the ledger records with the
  message), or by the ``OriginalMessageRefID`` of a DAC7 status message inside ``payloadResult``,
  whose record errors then name the rejected records. A ``payloadResult`` in another form is kept
  as an error text, and the import says that it could not tell which records were rejected.
* HMRC's business rules error report (GB), what the operator downloads from HMRC's service after
  a rejection: a tab-separated file ``<uploaded file name, dots as _>-errors.tsv`` with the header
  ``Code, Detail, DocRef`` (see :func:`hmrc_errors_tsv`; hmrc/digital-platform-reporting-
  submission-frontend ``FileErrorsController.listErrors``). Told by its header, not by an XML root.
* HMRC's business rule result (``http://www.hmrc.gsi.gov.uk/gsm``, root ``BREResponse``; schema
  "AEOI Business Rule Result schema v0.3", hmrc/digital-platform-reporting ``app/xsd``), the
  document behind that report, which HMRC's systems exchange and an operator does not normally
  receive: ``requestCommon/conversationID`` (HMRC's id of the submission), and in
  ``requestDetail/GenericStatusMessage`` the ``ValidationErrors`` (``FileError`` and
  ``RecordError``: Code, Details, DocRefIDInError) and ``ValidationResult/Status`` Accepted or
  Rejected.

  HMRC reads any FileError or RecordError as a rejection of the whole file, whatever the Status
  says (``CadxResultService.getImpliedStatus``), and its service tells the operator "We cannot
  accept the file" and to submit it again: the message is rejected as a whole, and the next run
  files its records again. Neither document names a MessageRefId; :func:`_hmrc_message` finds it
  (``--message-ref-id``; the report's file name; the one message carrying every DocRefId in
  error, where a PlatformOperator resent unchanged, OECD0, is carried by several).

The parser is hardened against hostile documents: the size is checked before anything is read
(:data:`MAX_STATUS_BYTES`), a DOCTYPE is refused (no entity of any kind is expanded, no DTD
loaded, nothing fetched from the network), and lxml's limits for huge documents stay on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from lxml import etree

from reporting import safexml
from reporting.ledger.db import Ledger, StatusOutcome
from reporting.ledger.errors import StatusFormatError
from reporting.ledger.model import PUBLISHED, FileError, RecordError, StatusReport

DSM_NS = "urn:oecd:ties:dsm:v1"
HMRC_GSM_NS = "http://www.hmrc.gsi.gov.uk/gsm"
DIP_NAMESPACES = ("http://itzbund.de/ozg/bzst/post/dip/v1/", "http://itzbund.de/ozg/bzst/post/dip/v2/")
HMRC_FORMATS = ("gb-hmrc-bre", "gb-hmrc-errors-tsv")
HMRC_ERRORS_TSV_HEADER = ("Code", "Detail", "DocRef")
HMRC_ERRORS_TSV_SUFFIX = "-errors.tsv"
MAX_STATUS_BYTES = 50 * 1024 * 1024
_DETAILS_MAX = 4000

Adapter = Callable[[etree._Element], StatusReport]
_ADAPTERS: dict[tuple[str, str], Adapter] = {}


def register_adapter(namespace: str, local_name: str, adapter: Adapter) -> Adapter:
    """Register the adapter of a status format, by its root element."""
    _ADAPTERS[(namespace, local_name)] = adapter
    return adapter


def import_status(
    ledger: Ledger,
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_STATUS_BYTES,
    message_ref_id: str | None = None,
) -> StatusOutcome:
    """Read a status document and apply it to its message in the ledger (see
    :meth:`reporting.ledger.Ledger.record_status`). Importing the same file twice changes nothing.
    ``message_ref_id``: the message a document answers that names none itself (an HMRC business
    rule result with file errors only); a document that names one is matched by its own."""
    data = read_status_bytes(path, max_bytes=max_bytes)
    return import_status_bytes(
        ledger,
        data,
        name=str(path),
        max_bytes=max_bytes,
        expected_message_ref_id=message_ref_id,
        matched_by="the MessageRefId given with --message-ref-id",
    )


def import_status_bytes(
    ledger: Ledger,
    data: bytes,
    *,
    name: str,
    max_bytes: int = MAX_STATUS_BYTES,
    expected_message_ref_id: str | None = None,
    matched_by: str = "the DIP transfer it answers",
) -> StatusOutcome:
    """:func:`import_status` of a document already read (an upload in the DAC7 view): the same
    size limit, parser and import. ``name`` names it in messages; its last part is recorded.
    ``expected_message_ref_id``: see :func:`parse_status`."""
    if len(data) > max_bytes:
        raise StatusFormatError(
            f"{name}: {len(data)} bytes, more than the {max_bytes} bytes a status document may have; it was not read"
        )
    report = parse_status(
        data, name=name, expected_message_ref_id=expected_message_ref_id, matched_by=matched_by, ledger=ledger
    )
    return ledger.record_status(report, file_name=Path(name).name, sha256=hashlib.sha256(data).hexdigest())


def read_status_bytes(path: str | os.PathLike[str], *, max_bytes: int = MAX_STATUS_BYTES) -> bytes:
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise StatusFormatError(f"{p}: no such file") from None
    if size > max_bytes:
        raise StatusFormatError(
            f"{p}: {size} bytes, more than the {max_bytes} bytes a status document may have; it was not read"
        )
    with p.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after the check
        raise StatusFormatError(f"{p}: more than {max_bytes} bytes; it was not read")
    return data


def parse_status(
    data: bytes,
    *,
    name: str = "<status>",
    expected_message_ref_id: str | None = None,
    matched_by: str = "the DIP transfer it answers",
    ledger: Ledger | None = None,
) -> StatusReport:
    """The status document's content, through the adapter of its format. ``expected_message_ref_id``:
    the message the document answers when the caller knows it (the DIP transfer it fetched the
    protocol of); used when the document itself names no message, and always for HMRC's documents,
    which name none (see :func:`_hmrc_message`; ``ledger`` helps to find it)."""
    root = None if is_hmrc_errors_tsv(data) else _parse(data, name)
    try:
        report = hmrc_errors_tsv(data) if root is None else _xml_report(root)
    except StatusFormatError as exc:
        raise StatusFormatError(f"{name}: {exc}") from None
    if report.format in HMRC_FORMATS:
        return _hmrc_message(report, name, expected_message_ref_id, matched_by, ledger)
    if report.message_ref_id is None and report.transfer_id is None:
        if expected_message_ref_id is None:
            raise StatusFormatError(
                f"{name}: the document names neither a MessageRefId nor a transfer (for a DIP "
                "protocol: no consignment transferticketId, no OriginalMessageRefID): it cannot be matched to a "
                "message; name it with --message-ref-id"
            )
        report = replace(
            report,
            message_ref_id=expected_message_ref_id,
            notes=(
                *report.notes,
                f"the document names no message; it was matched by {matched_by}",
            ),
        )
    return report


def _xml_report(root: etree._Element) -> StatusReport:
    qname = etree.QName(root)
    adapter = _ADAPTERS.get((qname.namespace or "", qname.localname))
    if adapter is None:
        raise StatusFormatError(
            f"no status adapter for this format (root element {qname.localname!r} in namespace "
            f"{qname.namespace or 'none'!r}); known: EU DAC7 status message, BZSt DIP protocol, HMRC business "
            "rule result, HMRC business rules error report (TSV)"
        )
    return adapter(root)


def _parse(data: bytes, name: str) -> etree._Element:
    try:
        return safexml.parse_bytes(data, name, utf8_only=False)
    except safexml.XmlFileError as exc:
        raise StatusFormatError(str(exc)) from None


def _text(elem: etree._Element | None) -> str | None:
    if elem is None:
        return None
    text = " ".join("".join(elem.itertext()).split())
    return text[:_DETAILS_MAX] or None


# ------------------------------------------------------------------------------ EU status message


def _dsm(tag: str) -> str:
    return f"{{{DSM_NS}}}{tag}"


def _eu_errors(body: etree._Element) -> tuple[tuple[FileError, ...], tuple[RecordError, ...]]:
    errors = body.find(_dsm("ValidationErrors"))
    if errors is None:
        return (), ()
    files = tuple(
        FileError(code=_text(e.find(_dsm("Code"))) or "", details=_text(e.find(_dsm("Details"))))
        for e in errors.iterfind(_dsm("FileError"))
    )
    records = tuple(
        RecordError(
            code=_text(e.find(_dsm("Code"))) or "",
            details=_text(e.find(_dsm("Details"))),
            doc_ref_ids=tuple(x for x in (_text(d) for d in e.iterfind(_dsm("DocRefIDInError"))) if x),
            fields=tuple(
                x for x in (_text(f) for f in e.iterfind(f"{_dsm('FieldsInError')}/{_dsm('FieldPath')}")) if x
            ),
        )
        for e in errors.iterfind(_dsm("RecordError"))
    )
    return files, records


def eu_status_message(root: etree._Element) -> StatusReport:
    body = root.find(_dsm("DSMBody"))
    if body is None:
        raise StatusFormatError("a DAC7 status message without DSMBody")
    original = _text(body.find(f"{_dsm('OriginalMessage')}/{_dsm('OriginalMessageRefID')}"))
    if not original:
        raise StatusFormatError("the status message names no OriginalMessageRefID: it cannot be matched to a message")
    status = _text(body.find(f"{_dsm('ValidationResult')}/{_dsm('Status')}"))
    if status not in ("Accepted", "Rejected"):
        raise StatusFormatError(f"ValidationResult/Status is {status!r}; expected Accepted or Rejected")
    files, records = _eu_errors(body)
    if status == "Rejected":
        outcome = "rejected"
    else:
        outcome = "partially_rejected" if any(e.doc_ref_ids for e in records) else "accepted"
    return StatusReport(
        format="eu-dac7-status",
        outcome=outcome,
        message_ref_id=original,
        status_message_ref_id=_text(root.find(f"{_dsm('MessageSpec')}/{_dsm('MessageRefId')}")),
        file_errors=files,
        record_errors=records,
    )


register_adapter(DSM_NS, "DAC7StatusMessage", eu_status_message)


# ---------------------------------------------------------------------------------- BZSt DIP


_DIP_OUTCOMES = {"OK": "accepted", "PARTIALLY_REJECTED": "partially_rejected", "ERROR": "rejected"}


def dip_protocol(root: etree._Element) -> StatusReport:
    ns = etree.QName(root).namespace

    def q(tag: str) -> str:
        return f"{{{ns}}}{tag}"

    protocol = root if etree.QName(root).localname == "dipProtocol" else root.find(q("dipProtocol"))
    if protocol is None:
        raise StatusFormatError("a DIP response without dipProtocol")
    status = _text(protocol.find(q("processStatus")))
    if status not in _DIP_OUTCOMES:
        raise StatusFormatError(f"processStatus is {status!r}; expected OK, PARTIALLY_REJECTED or ERROR")
    transfer = _text(protocol.find(f"{q('consignment')}/{q('transferticketId')}"))
    files = [
        FileError(code=_text(e.find(q("code"))) or "", details=_text(e.find(q("message"))))
        for e in protocol.iterfind(q("dipResult"))
    ]
    records: list[RecordError] = []
    message_ref_id = None
    notes: list[str] = []
    for payload in protocol.iterfind(q("payloadResult")):
        dsm = next(payload.iter(_dsm("DAC7StatusMessage")), None)
        if dsm is not None:
            inner = eu_status_message(dsm)
            message_ref_id = message_ref_id or inner.message_ref_id
            files += inner.file_errors
            records += inner.record_errors
        elif _text(payload):
            files.append(FileError(code="payload", details=_text(payload)))
    outcome = _DIP_OUTCOMES[status]
    if outcome == "partially_rejected" and not any(e.doc_ref_ids for e in records):
        notes.append(
            "the protocol says PARTIALLY_REJECTED but names no DocRefId: no record was marked rejected; "
            "read its errors (dac7 ledger list) and decide by hand"
        )
    # neither a consignment nor an OriginalMessageRefID (an ERROR found before the document was
    # read, e.g. a virus scan: consignment has minOccurs=0): the caller who knows the transfer
    # matches it (parse_status's expected_message_ref_id), else parse_status refuses it
    return StatusReport(
        format="de-dip-protocol",
        outcome=outcome,
        message_ref_id=message_ref_id,
        transfer_id=transfer,
        status_message_ref_id=_text(root.find(q("responseTransferticketId"))),
        file_errors=tuple(files),
        record_errors=tuple(records),
        notes=tuple(notes),
    )


for _ns in DIP_NAMESPACES:
    register_adapter(_ns, "dipResponse", dip_protocol)
    register_adapter(_ns, "dipProtocol", dip_protocol)


# ---------------------------------------------------------------------------------- HMRC (GB)


def _local(elem: etree._Element | None, *path: str) -> etree._Element | None:
    """The first descendant along ``path`` by local names: the schema's local elements are
    unqualified (no elementFormDefault), but a document that qualifies them is read the same."""
    for name in path:
        if elem is None:
            return None
        elem = next((c for c in elem if isinstance(c.tag, str) and etree.QName(c).localname == name), None)
    return elem


def _all(elem: etree._Element | None, name: str) -> list[etree._Element]:
    if elem is None:
        return []
    return [c for c in elem if isinstance(c.tag, str) and etree.QName(c).localname == name]


def _message_of(doc_ref_ids: list[str]) -> str | None:
    """The MessageRefId the DocRefIds in error begin with (``<MessageRefId>_<unique>``); they must
    all name the same one. Read without a ledger only: a PlatformOperator resent unchanged (OECD0)
    keeps the DocRefId of an earlier message, so the prefix may name the wrong one."""
    messages = {d.rpartition("_")[0] for d in doc_ref_ids}
    if "" in messages:
        raise StatusFormatError("a DocRefIDInError is not of the form <MessageRefId>_<unique> of an HMRC filing")
    if len(messages) > 1:
        raise StatusFormatError(f"the DocRefIDInError name {len(messages)} messages; a result answers one file")
    return next(iter(messages), None)


def _message_holding(doc_ref_ids: list[str], ledger: Ledger) -> str | None:
    """The one message of the ledger that carries every DocRefId in error (HMRC's result answers
    one file, so its file holds them all). A PlatformOperator resent unchanged (OECD0) is carried
    by the message that first sent it and by each that resent it: of several messages that carry
    them all, the one still awaiting its status is meant. None: the ledger knows none of them."""
    holders = ledger.messages_holding(doc_ref_ids)
    if not holders:
        return None
    whole = {ref: status for ref, (status, held) in holders.items() if held >= set(doc_ref_ids)}
    waiting = [ref for ref, status in whole.items() if status == PUBLISHED]
    if len(whole) == 1:
        return next(iter(whole))
    if len(waiting) == 1:
        return waiting[0]
    if not whole:
        raise StatusFormatError(
            f"no one message of the ledger carries all {len(set(doc_ref_ids))} DocRefIds in error (they are in "
            f"{', '.join(sorted(holders))}); a result answers one file: name it with --message-ref-id"
        )
    raise StatusFormatError(
        f"the DocRefIds in error are carried by {len(whole)} messages ({', '.join(sorted(whole))}; a PlatformOperator "
        "resent unchanged keeps its DocRefId), and not one of them alone awaits its status: name the file HMRC "
        "answered with --message-ref-id"
    )


def _message_by_upload_name(name: str, ledger: Ledger) -> str | None:
    """The message whose file the error report is named after: HMRC names it
    ``<uploaded file name, dots replaced by _>-errors.tsv`` (``FileErrorsController.listErrors``);
    the outbox names a GB file ``<MessageRefId>.xml``, and the ledger records that name."""
    base = Path(name).name
    if not base.endswith(HMRC_ERRORS_TSV_SUFFIX):
        return None
    uploaded = base[: -len(HMRC_ERRORS_TSV_SUFFIX)]
    found = [
        x.message_ref_id
        for x in ledger.messages(authority="GB")
        if Path(x.file_name).name.replace(".", "_") == uploaded
    ]
    return found[0] if len(found) == 1 else None


def _hmrc_message(
    report: StatusReport, name: str, given: str | None, matched_by: str, ledger: Ledger | None
) -> StatusReport:
    """HMRC's documents name no MessageRefId. Their message is, first found: the one given
    (``dac7 status-import --message-ref-id``, which always wins); for an error report, the one
    whose file it is named after; the one message that carries every DocRefId in error (with a
    ledger, see :func:`_message_holding`; without one, their prefix, :func:`_message_of`)."""
    refs = sorted({d for e in report.record_errors for d in e.doc_ref_ids})
    message, how = given, matched_by
    if message is None and ledger is not None and report.format == "gb-hmrc-errors-tsv":
        message, how = _message_by_upload_name(name, ledger), "the file name of the error report"
    if message is None and refs:
        try:
            message = (_message_holding(refs, ledger) if ledger is not None else None) or _message_of(refs)
        except StatusFormatError as exc:
            raise StatusFormatError(f"{name}: {exc}") from None
        how = "the DocRefIds in error"
    if message is None:
        raise StatusFormatError(
            f"{name}: the document names no MessageRefId and no DocRefIDInError (file errors only): it cannot be "
            "matched to a message; name it with --message-ref-id"
        )
    note = f"the document names no message; it was matched by {how}"
    return replace(report, message_ref_id=message, notes=(*report.notes, note))


def hmrc_bre_result(root: etree._Element) -> StatusReport:
    detail = _local(root, "requestDetail", "GenericStatusMessage")
    if detail is None:
        raise StatusFormatError("an HMRC business rule result without requestDetail/GenericStatusMessage")
    status = _text(_local(detail, "ValidationResult", "Status"))
    if status not in ("Accepted", "Rejected"):
        raise StatusFormatError(f"ValidationResult/Status is {status!r}; expected Accepted or Rejected")
    errors = _local(detail, "ValidationErrors")
    files = tuple(
        FileError(code=_text(_local(e, "Code")) or "", details=_text(_local(e, "Details")))
        for e in _all(errors, "FileError")
    )
    records = tuple(
        RecordError(
            code=_text(_local(e, "Code")) or "",
            details=_text(_local(e, "Details")),
            doc_ref_ids=tuple(x for x in (_text(d) for d in _all(e, "DocRefIDInError")) if x),
        )
        for e in _all(errors, "RecordError")
    )
    notes = []
    if status == "Accepted" and (files or records):
        notes.append(
            "Status says Accepted but the result lists errors: HMRC reads any error as a rejection of the file "
            "(CadxResultService), and so does this import"
        )
    return StatusReport(
        format="gb-hmrc-bre",
        outcome="rejected" if status == "Rejected" or files or records else "accepted",
        message_ref_id=None,  # matched by _hmrc_message
        status_message_ref_id=_text(_local(root, "requestCommon", "conversationID")),
        file_errors=files,
        record_errors=records,
        notes=tuple(notes),
    )


register_adapter(HMRC_GSM_NS, "BREResponse", hmrc_bre_result)


def is_hmrc_errors_tsv(data: bytes) -> bool:
    """Whether the document is HMRC's business rules error report: its first line is the header
    ``Code<TAB>Detail<TAB>DocRef``."""
    first = data.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].rstrip(b"\r")
    return tuple(first.split(b"\t")) == tuple(h.encode() for h in HMRC_ERRORS_TSV_HEADER)


def hmrc_errors_tsv(data: bytes) -> StatusReport:
    """HMRC's business rules error report, what the operator downloads from HMRC's service after a
    rejection ("Download business rules error report"), read as
    hmrc/digital-platform-reporting-submission-frontend writes it
    (``app/controllers/submission/FileErrorsController.scala`` ``listErrors``, ``conf/messages.en``
    ``fileErrors.tsv.*``; commit 7f317eb507f26838c6d2c29e2de42b1e25e6041b): a header row
    ``Code, Detail, DocRef``, then one row an error: its code, its detail (blank if none) and the
    DocRefId in error, blank for an error of the file. It is formatted by Pekko's
    ``CsvFormatting.format(delimiter = Tab)`` with its defaults: UTF-8, lines ending CRLF, a field
    quoted with ``"`` only when it holds a tab, CR, LF, ``"`` or ``\\``, and inside quotes ``"``
    written ``""`` and ``\\`` written ``\\\\``. HMRC offers it only for a rejected file
    (``listErrors`` answers the Rejected state only): the message is rejected as a whole."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StatusFormatError(f"the error report is not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter="\t", quotechar='"', doublequote=True, escapechar="\\", strict=True
    )
    files: list[FileError] = []
    records: list[RecordError] = []
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise StatusFormatError(f"the error report, line {reader.line_num}: {exc}") from None
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(HMRC_ERRORS_TSV_HEADER):
            raise StatusFormatError(
                f"the error report, row {line}: {len(row)} column(s); expected 3 (Code, Detail, DocRef)"
            )
        code, detail, doc_ref = (" ".join(x.split()) for x in row)
        if not code:
            raise StatusFormatError(f"the error report, row {line}: no Code")
        details = detail[:_DETAILS_MAX] or None
        if doc_ref:
            records.append(RecordError(code=code, details=details, doc_ref_ids=(doc_ref,)))
        else:
            files.append(FileError(code=code, details=details))
    notes = () if files or records else ("the error report lists no error; HMRC offers it for a rejected file only",)
    return StatusReport(
        format="gb-hmrc-errors-tsv",
        outcome="rejected",
        message_ref_id=None,  # matched by _hmrc_message
        file_errors=tuple(files),
        record_errors=tuple(records),
        notes=notes,
    )
