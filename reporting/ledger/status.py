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
* HMRC's business rule result (``http://www.hmrc.gsi.gov.uk/gsm``, root ``BREResponse``; schema
  "AEOI Business Rule Result schema v0.3", hmrc/digital-platform-reporting ``app/xsd``):
  ``requestCommon/conversationID`` (HMRC's id of the submission), and in
  ``requestDetail/GenericStatusMessage`` the ``ValidationErrors`` (``FileError`` and
  ``RecordError``: Code, Details, DocRefIDInError) and ``ValidationResult/Status`` Accepted or
  Rejected. HMRC reads any FileError or RecordError as a rejection of the whole file, whatever the
  Status says (``CadxResultService.getImpliedStatus``), and its service tells the operator "We
  cannot accept the file" and to submit it again: the message is rejected as a whole, and the next
  run files its records again. The document names no MessageRefId: the message is the one whose
  MessageRefId the DocRefIds in error begin with (the GB profile's DocRefId is
  ``<MessageRefId>_<unique>``), else the one ``dac7 status-import --message-ref-id`` names.

The parser is hardened against hostile documents: the size is checked before anything is read
(:data:`MAX_STATUS_BYTES`), a DOCTYPE is refused (no entity of any kind is expanded, no DTD
loaded, nothing fetched from the network), and lxml's limits for huge documents stay on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from lxml import etree

from reporting import safexml
from reporting.ledger.db import Ledger, StatusOutcome
from reporting.ledger.errors import StatusFormatError
from reporting.ledger.model import FileError, RecordError, StatusReport

DSM_NS = "urn:oecd:ties:dsm:v1"
HMRC_GSM_NS = "http://www.hmrc.gsi.gov.uk/gsm"
DIP_NAMESPACES = ("http://itzbund.de/ozg/bzst/post/dip/v1/", "http://itzbund.de/ozg/bzst/post/dip/v2/")
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
    report = parse_status(data, name=name, expected_message_ref_id=expected_message_ref_id, matched_by=matched_by)
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
) -> StatusReport:
    """The status document's content, through the adapter of its format. ``expected_message_ref_id``:
    the message the document answers when the caller knows it (the DIP transfer it fetched the
    protocol of); used only when the document itself names no message."""
    root = _parse(data, name)
    qname = etree.QName(root)
    adapter = _ADAPTERS.get((qname.namespace or "", qname.localname))
    if adapter is None:
        raise StatusFormatError(
            f"{name}: no status adapter for this format (root element {qname.localname!r} in namespace "
            f"{qname.namespace or 'none'!r}); known: EU DAC7 status message, BZSt DIP protocol, HMRC business "
            "rule result"
        )
    try:
        report = adapter(root)
    except StatusFormatError as exc:
        raise StatusFormatError(f"{name}: {exc}") from None
    if report.message_ref_id is None and report.transfer_id is None:
        if expected_message_ref_id is None:
            raise StatusFormatError(
                f"{name}: the document names neither a MessageRefId nor a transfer (for a DIP protocol: no "
                "consignment transferticketId, no OriginalMessageRefID; for an HMRC business rule result: no "
                "DocRefIDInError): it cannot be matched to a message; name it with --message-ref-id"
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
    all name the same one."""
    messages = {d.rpartition("_")[0] for d in doc_ref_ids}
    if "" in messages:
        raise StatusFormatError("a DocRefIDInError is not of the form <MessageRefId>_<unique> of an HMRC filing")
    if len(messages) > 1:
        raise StatusFormatError(f"the DocRefIDInError name {len(messages)} messages; a result answers one file")
    return next(iter(messages), None)


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
        message_ref_id=_message_of([d for e in records for d in e.doc_ref_ids]),
        status_message_ref_id=_text(_local(root, "requestCommon", "conversationID")),
        file_errors=files,
        record_errors=records,
        notes=tuple(notes),
    )


register_adapter(HMRC_GSM_NS, "BREResponse", hmrc_bre_result)
