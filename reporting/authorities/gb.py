"""United Kingdom (HMRC): the OECD edition of the DPI message, uploaded to HMRC's digital platform
reporting service.

The law is the OECD Model Rules as the UK transposed them (SI 2023/817; the rules of residence,
listings, reportable jurisdictions and scope: :data:`reporting.jurisdictions.UNITED_KINGDOM`).
The message is the OECD DPI XML Schema v1.0 (namespace ``urn:oecd:ties:dpi:v1``), the schema HMRC's
upload validates against (hmrc/digital-platform-reporting ``conf/schemas/DPIXML_v1.0.xsd``, read by
``validation.schema-path`` in ``conf/application.conf``; our copy is ``xsd/gb/v1.0``, proven
equivalent in tests/unit/test_xsd_gb_equivalence.py). HMRC's direction IEIM904300
(https://www.gov.uk/hmrc-internal-manuals/international-exchange-of-information/ieim904300): use the
OECD XML schema and the digital platform reporting service.

What this profile does, each with where it comes from:

* **TransmittingCountry and ReceivingCountry** ``GB``; **SendingEntityIN** the platform operator ID
  HMRC issues (``[authorities.GB] platform_operator_id``, the POID, not the registration or
  subscription id): HMRC's upload reads ``DPI_OECD/MessageSpec/SendingEntityIN`` and refuses the
  file when it is missing (``PlatformOperatorIdMissing``) or not the ID of the operator chosen in
  the service (``PlatformOperatorIdMismatch``): ``app/services/ValidationService.scala``,
  ``ValidatingSaxHandler``.
* **MessageRefId** ``GB<year>GB-<POID>-<32 hex>`` and **DocRefId** ``<MessageRefId>_<32 hex>``: the
  ids HMRC's own service writes (``AssumedReportingService.createMessageRefId`` and
  ``createDocRefId``: a random UUID without dashes; here a UUIDv5 of the run id, so that a rerun
  is the same). Each DocRefId starts with the MessageRefId of the message that carries the record
  (:meth:`GbProfile.bind_doc_ref_id`). HMRC enforces no id format at upload (no such check in its
  code); whether its business rules do is not known (its business rules document was not read).
* **Nexus** and **PermanentEstablishments** are not written: both are "[EU Specific]" in the OECD
  schema's annotations, and HMRC's service writes no Nexus (``Nexus = None``).
* **Assumed reporting**: an operator whose reporting another operator assumes files a DPI401 with
  ``AssumedReporting`` true, the AssumingPlatformOperator and no seller (OECD1), as
  ``AssumedReportingService.createSubmissionPayload`` writes it and HMRC's sample
  ``SubmissionSampleAssumed.xml`` shows. It is withdrawn with a DPI402 whose two records are OECD3
  with CorrDocRefId (``createDeleteSubmissionPayload``; here the ledger planner's withdrawal, EU
  rule 80009). It is corrected with a DPI402 in which the changed record is OECD2 with CorrDocRefId, as in every
  profile: a changed AssumingPlatformOperator is OECD2 and the PlatformOperator, when unchanged, is
  resent under its DocRefId (OECD0, the resend the OECD schema's DocTypeIndic annotation allows
  for the PlatformOperator only). HMRC's own form differs there: ``createSubmissionPayload``
  rebuilds the whole report from the form and so sends the PlatformOperator as OECD2 with
  CorrDocRefId even when only the assuming operator changed. Both are valid OECD corrections;
  HMRC's upload checks neither (``ValidationService``); whether its business rules accept a
  resent PlatformOperator in an assumed report is not known (its business rules document was not
  read).
  Corrections and deletions of sellers are DPI402 with OECD2/OECD3 and CorrDocRefId, as in every
  profile (the OECD schema's annotations of DocTypeIndic and MessageTypeIndic).
* **Files**: UTF-8, no XML comment, at most 104,857,600 bytes (100 MB), a name of at most 100
  characters before its extension, ending ``.xml``; a larger message is split into several
  messages. :func:`upload_checks` runs HMRC's checks at upload before the file is published (see
  there), and the outbox again before the upload.
* **Timestamp** in UTC without an offset (HMRC's service writes ``LocalDateTime.now(clock)``; the
  schema's ``xsd:dateTime`` takes any).

What is unsure: the POID's format (HMRC's code checks none; its stub issues numbers): this profile
takes 1 to 58 letters and digits, the most that keeps the file name within 100 characters.
Whether HMRC expects a nil report (DPI403) for a period without reportable sellers: no source was
found; none is filed (:attr:`GbProfile.expects_nil`). Whether DocTypeIndic ``OECD10``-``OECD13``
(the test markers this project writes in the test environment) is accepted by HMRC: HMRC has no
test upload for operators; only production files are for upload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from lxml import etree

from reporting import safexml
from reporting.authorities.base import DocIds, UploadCheck
from reporting.authorities.eu import EuProfile
from reporting.checks.business import EU_DOMESTIC
from reporting.checks.schema import load_schema
from reporting.errors import ConfigError, ReportingError
from reporting.records import MessageHeader

#: HMRC's upload limits: ``maximum-file-size = 104857600b`` and ``minimum-file-size = 1b`` of
#: upscan-initiate (hmrc/digital-platform-reporting-submission-frontend, ``conf/application.conf``;
#: GOV.UK "Create a digital platform report": not "bigger than 100MB"), and ``max-filename-size =
#: 100`` (hmrc/digital-platform-reporting, ``conf/application.conf``), the name without its extension.
MAX_FILE_BYTES = 104_857_600
MAX_FILE_NAME = 100
#: the POID as this profile takes it (HMRC publishes no format): letters and digits, so that
#: ``GB<year>GB-<POID>-<32 hex>`` (42 characters besides the POID) names a file of at most 100
POID = re.compile(r"[A-Za-z0-9]{1,58}")
POID_KEY = "platform_operator_id"
MESSAGE_REF_ID = re.compile(r"GB(?P<year>[0-9]{4})GB-(?P<poid>[A-Za-z0-9]+)-[0-9a-f]{32}")

#: The rules HMRC applies, as far as they are the OECD edition's: the EU domestic rules without
#: those the OECD schema marks "[EU Specific]" (30030 no GVS, 40020 an IIN for a foreign operator,
#: 40100 the operator's TIN for an EU address, 90010 a DPIBody) and without the two rules HMRC's own
#: assumed-reporting declaration breaks (20010: AssumedReporting true in a DPI401; 20040: a DPI401
#: without a seller: AssumedReportingService). HMRC's own business rules were not read.
HMRC_RULES = EU_DOMESTIC.derive(
    "HMRC (OECD Model Rules)", exclude={"30030", "40020", "40100", "90010", "20010", "20040"}
)

SOURCES = {
    "code": "hmrc/digital-platform-reporting @321e469b (app/services/ValidationService.scala, "
    "AssumedReportingService.scala, CadxResultService.scala, conf/application.conf)",
    "frontend": "hmrc/digital-platform-reporting-submission-frontend @7f317eb5 (conf/application.conf, "
    "conf/messages.en, app/models/submission/Submission.scala)",
    "guidance": "GOV.UK, Create a digital platform report (https://www.gov.uk/guidance/create-a-digital-platform-report)",
}


class GbProfile(EuProfile):
    code = "GB"
    domestic = "GB"
    edition = "HMRC digital platform reporting, OECD DPI XML v1.0"
    schema_resource = "gb/v1.0/DPIXML_v1.0.xsd"
    rule_set = HMRC_RULES
    required_identifiers: tuple[str, ...] = (POID_KEY,)
    max_file_bytes: int | None = MAX_FILE_BYTES
    # no source says HMRC expects a nil report: unsure (the module's text)
    expects_nil: bool = False
    # HMRC's assumed-reporting service files a DPI401 with AssumedReporting true and no seller
    assumed_message_type = "DPI401"
    writes_nexus = False
    writes_permanent_establishments = False

    def identifier_problem(self, identifiers: dict[str, str]) -> str | None:
        if not POID.fullmatch(identifiers.get(POID_KEY, "")):
            return (
                f"{POID_KEY} must be the platform operator ID HMRC issued for this operator (letters and digits, "
                "at most 58): it is SendingEntityIN, not the registration (subscription) id"
            )
        return None

    @staticmethod
    def poid(ids: DocIds | MessageHeader) -> str:
        value = ids.identifiers.get(POID_KEY, "")
        if not POID.fullmatch(value):
            raise ConfigError(f"the GB profile needs [authorities.GB] {POID_KEY} for SendingEntityIN and its ids")
        return value

    def message_ref_id(self, ids: DocIds, part: int) -> str:
        return f"GB{ids.year}GB-{self.poid(ids)}-{ids.unique('message', 'GB', str(part)).lower()}"

    def doc_ref_id(self, ids: DocIds, record_key: str) -> str:
        """``<MessageRefId>_<32 hex>``, first with the MessageRefId of the run's first message; the
        render gives each record the MessageRefId of the message it goes in (:meth:`bind_doc_ref_id`)."""
        return f"{self.message_ref_id(ids, 1)}_{ids.unique('doc', 'GB', record_key).lower()}"

    def bind_doc_ref_id(self, doc_ref_id: str, message_ref_id: str) -> str:
        """The DocRefId of a new record (new, corrected, deleted) in the message ``message_ref_id``."""
        return f"{message_ref_id}{doc_ref_id[doc_ref_id.rindex('_') :]}"

    def file_name(self, header: MessageHeader) -> str:
        name = f"{header.message_ref_id}.xml"
        if len(name) - len(".xml") > MAX_FILE_NAME:
            raise ReportingError(f"file name {name} is longer than HMRC's {MAX_FILE_NAME} characters")
        return name

    def follows_naming(self, name: str, message_ref_id: str, reporting_year: int) -> bool:
        """``<MessageRefId>.xml`` of the reporting year, at most 100 characters before ``.xml``."""
        m = MESSAGE_REF_ID.fullmatch(message_ref_id)
        return (
            m is not None
            and int(m["year"]) == reporting_year
            and name == f"{message_ref_id}.xml"
            and len(message_ref_id) <= MAX_FILE_NAME
        )

    def sending_entity_in(self, header: MessageHeader) -> str | None:
        return self.poid(header)

    def message_timestamp(self, utc: datetime) -> datetime:
        aware = utc if utc.tzinfo is not None else utc.replace(tzinfo=UTC)
        return aware.astimezone(UTC).replace(tzinfo=None, microsecond=0)

    def upload_checks(
        self, path: Path, identifiers: Mapping[str, str], *, name: str | None = None, schema: Path | None = None
    ) -> list[UploadCheck]:
        """HMRC's checks at upload (:func:`upload_checks`), with the configured POID where given."""
        return upload_checks(path, platform_operator_id=identifiers.get(POID_KEY), name=name, schema=schema)


GB = GbProfile()


def upload_checks(
    path: Path,
    *,
    platform_operator_id: str | None,
    name: str | None = None,
    schema: Path | None = None,
) -> list[UploadCheck]:
    """HMRC's checks of an uploaded DPI file, in the order its service runs them, each with its
    result. ``name``: the name the file is uploaded under (default: its own); ``schema``: the main
    XSD file of the OECD DPI schema to validate against (None: not checked here, as the validate
    stage does it).

    From hmrc/digital-platform-reporting, ``ValidationService.validateXml`` and
    ``ValidatingSaxHandler``: the name without its extension at most ``max-filename-size`` (100)
    characters (``FileNameTooLong``); a name ending ``.xml`` in any case
    (``InvalidFileNameExtension``); no DOCTYPE, no external entity; UTF-8 ("XML encoding must be
    UTF-8"); valid against ``DPIXML_v1.0.xsd`` (``SchemaValidationError``); SendingEntityIN present
    (``PlatformOperatorIdMissing``) and the operator's ID (``PlatformOperatorIdMismatch``);
    ReportingPeriod an ISO date (``ReportingPeriodInvalid``). From the submission frontend's upscan
    settings: 1 to 104,857,600 bytes (``EntityTooSmall``, ``EntityTooLarge``). From GOV.UK's
    "Create a digital platform report": every comment removed, "to pass business rules"
    (``XmlComments``; HMRC's upload itself does not refuse a comment, its business rules do).
    Not checkable here: HMRC refuses an upload for a POID and year that has a manual assumed
    report in the service (``ManualAssumedReportExists``): the outbox's checklist says so."""
    name = name or path.name
    stem = name[: name.rindex(".")] if "." in name else name
    checks = [
        UploadCheck(
            "FileNameTooLong",
            len(stem) <= MAX_FILE_NAME,
            f"the name has {len(stem)} characters before its extension (HMRC: at most {MAX_FILE_NAME})",
        ),
        UploadCheck("InvalidFileNameExtension", name.lower().endswith(".xml"), f"{name} must end .xml"),
    ]
    size = path.stat().st_size
    checks.append(UploadCheck("EntityTooSmall", size >= 1, f"{size} bytes (HMRC: the file must not be empty)"))
    checks.append(
        UploadCheck("EntityTooLarge", size <= MAX_FILE_BYTES, f"{size} bytes (HMRC: at most {MAX_FILE_BYTES})")
    )
    scan = _scan(path)
    checks.append(UploadCheck("NotXml", scan.error is None, scan.error or "well-formed UTF-8 XML without a DOCTYPE"))
    if scan.error is not None:
        return checks
    if schema is not None:
        valid = safexml.validate_stream(path, load_schema(str(schema)))
        checks.append(
            UploadCheck(
                "SchemaValidationError",
                valid,
                "valid against the OECD DPI schema v1.0"
                if valid
                else "not valid against the OECD DPI schema v1.0: dac7 validate lists the errors",
            )
        )
    poid = scan.sending_entity_in
    checks.append(UploadCheck("PlatformOperatorIdMissing", bool(poid), "MessageSpec/SendingEntityIN holds the POID"))
    if poid and platform_operator_id is not None:
        checks.append(
            UploadCheck(
                "PlatformOperatorIdMismatch",
                poid == platform_operator_id,
                "SendingEntityIN is the configured platform operator ID ([authorities.GB] platform_operator_id)",
            )
        )
    checks.append(
        UploadCheck(
            "ReportingPeriodInvalid",
            _iso_date(scan.reporting_period),
            f"MessageSpec/ReportingPeriod {scan.reporting_period!r} is an ISO date",
        )
    )
    checks.append(
        UploadCheck(
            "XmlComments",
            scan.comments == 0,
            f"{scan.comments} XML comment(s) (GOV.UK: remove all comments to pass business rules)",
        )
    )
    return checks


@dataclass(slots=True)
class _Scan:
    error: str | None = None
    sending_entity_in: str | None = None
    reporting_period: str | None = None
    comments: int = 0


def _scan(path: Path) -> _Scan:
    """One streaming read of the file: the two MessageSpec values HMRC's handler reads, and the
    comments (bounded memory; no personal data is kept)."""
    scan = _Scan()
    wanted = {
        ("MessageSpec", "SendingEntityIN"): "sending_entity_in",
        ("MessageSpec", "ReportingPeriod"): "reporting_period",
    }
    try:
        for event, elem in safexml.iterparse(path, events=("end", "comment")):
            if event == "comment":
                scan.comments += 1
                continue
            parent = elem.getparent()
            if parent is None:
                continue
            grandparent = parent.getparent()
            key = (etree.QName(parent).localname, etree.QName(elem).localname)
            if key in wanted and grandparent is not None and grandparent.getparent() is None:
                setattr(scan, wanted[key], (elem.text or "").strip())
            safexml.release(elem)
    except safexml.XmlFileError as exc:
        scan.error = str(exc)
    return scan


def sending_entity_in(path: Path) -> str | None:
    """The SendingEntityIN (the POID) of a DPI file, as HMRC's upload reads it."""
    return _scan(path).sending_entity_in


def _iso_date(value: str | None) -> bool:
    try:
        date.fromisoformat(value or "")
    except ValueError:
        return False
    return True
