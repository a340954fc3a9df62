"""HMRC's checks of an uploaded DPI file (reporting.authorities.gb.upload_checks), each at its
boundary, and HMRC's business rule result read by the status import (reporting.ledger.status).

The checks follow hmrc/digital-platform-reporting ``ValidationService`` (file name at most 100
characters before ``.xml``, the extension in any case, UTF-8, SendingEntityIN present and the
operator's, ReportingPeriod an ISO date), the submission frontend's upscan limits (1 to 104,857,600
bytes) and GOV.UK's "Create a digital platform report" (no comments). The business rule results
are validated against HMRC's schema (tests/reference/xsd/uk-hmrc) before they are read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders import hmrc_bre
from lxml import etree
from resources import require_file, vendored

from reporting.authorities.base import DocIds
from reporting.authorities.gb import GB, MAX_FILE_BYTES, MESSAGE_REF_ID, sending_entity_in, upload_checks
from reporting.checks.schema import schema_path
from reporting.ledger.errors import StatusFormatError
from reporting.ledger.status import parse_status

SAMPLES = vendored("samples", "uk-hmrc-test-resources")
BRE_XSD = vendored("xsd", "uk-hmrc", "AEOI Business Rule Result schema v0.3.xsd")
OFFICIAL = vendored("xsd", "oecd-dpi-v1.0__hmrc-copy", "DPIXML_v1.0.xsd")
POID = "XMDPI0001234567"
MRI = f"GB2025GB-{POID}-0123456789abcdef0123456789abcdef"


def message(tmp_path: Path, *, spec: str | None = None, name: str = f"{MRI}.xml", before: str = "") -> Path:
    """HMRC's sample message with ``spec`` (default: SendingEntityIN the POID) and GB as
    Transmitting and ReceivingCountry in its MessageSpec before MessageType, written under ``name``."""
    require_file(SAMPLES / "SubmissionSample.xml")
    text = (SAMPLES / "SubmissionSample.xml").read_bytes().decode("utf-8")
    start, end = text.index("<dpi:MessageSpec>"), text.index("<dpi:MessageType>")
    head = spec if spec is not None else f"<dpi:SendingEntityIN>{POID}</dpi:SendingEntityIN>"
    head += "<dpi:TransmittingCountry>GB</dpi:TransmittingCountry><dpi:ReceivingCountry>GB</dpi:ReceivingCountry>"
    text = text[: start + len("<dpi:MessageSpec>")] + head + text[end:]
    # from the root on: the sample's XMLSpy comment before it is left out (``before`` may add one)
    body = '<?xml version="1.0" encoding="UTF-8"?>' + before + text[text.index("<dpi:DPI_OECD") :]
    path = tmp_path / name
    path.write_bytes(body.encode("utf-8"))
    return path


def failed(checks: list) -> list[str]:  # type: ignore[type-arg]
    return [c.name for c in checks if not c.ok]


def test_a_file_as_hmrc_wants_it_passes_every_check(tmp_path: Path) -> None:
    path = message(tmp_path)
    checks = upload_checks(path, platform_operator_id=POID, schema=OFFICIAL)
    assert failed(checks) == []
    assert [c.name for c in checks] == [
        "FileNameTooLong",
        "InvalidFileNameExtension",
        "EntityTooSmall",
        "EntityTooLarge",
        "NotXml",
        "SchemaValidationError",
        "PlatformOperatorIdMissing",
        "PlatformOperatorIdMismatch",
        "ReportingPeriodInvalid",
        "XmlComments",
    ]
    assert sending_entity_in(path) == POID


@pytest.mark.parametrize(("stem", "ok"), [("a" * 100, True), ("a" * 101, False)])
def test_the_file_name_has_at_most_100_characters_before_its_extension(tmp_path: Path, stem: str, ok: bool) -> None:
    path = message(tmp_path, name=f"{stem}.xml")
    assert ("FileNameTooLong" in failed(upload_checks(path, platform_operator_id=POID))) is not ok


@pytest.mark.parametrize(("name", "ok"), [("a.xml", True), ("a.XML", True), ("a.xml.gz", False), ("a", False)])
def test_the_name_ends_xml_in_any_case(tmp_path: Path, name: str, ok: bool) -> None:
    path = message(tmp_path, name=name)
    assert ("InvalidFileNameExtension" in failed(upload_checks(path, platform_operator_id=POID))) is not ok


def test_an_empty_file_and_one_over_100_mb_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    assert {"EntityTooSmall", "NotXml"} <= set(failed(upload_checks(empty, platform_operator_id=POID)))
    big = message(tmp_path)
    with big.open("ab") as fh:  # a sparse tail: one byte over the limit, without writing 100 MB
        fh.truncate(MAX_FILE_BYTES + 1)
    assert "EntityTooLarge" in failed(upload_checks(big, platform_operator_id=POID))
    at_limit = message(tmp_path, name="limit.xml")
    with at_limit.open("ab") as fh:
        fh.truncate(MAX_FILE_BYTES)
    names = failed(upload_checks(at_limit, platform_operator_id=POID))
    assert "EntityTooLarge" not in names and "EntityTooSmall" not in names
    os.remove(big)
    os.remove(at_limit)


@pytest.mark.parametrize(
    "prolog",
    [
        '<?xml version="1.0" encoding="ISO-8859-1"?>',  # HMRC: "XML encoding must be UTF-8"
        '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE x [<!ENTITY e "e">]>',  # disallow-doctype-decl
    ],
)
def test_another_encoding_or_a_doctype_is_refused(tmp_path: Path, prolog: str) -> None:
    path = message(tmp_path)
    path.write_bytes(path.read_bytes().replace(b'<?xml version="1.0" encoding="UTF-8"?>', prolog.encode(), 1))
    checks = upload_checks(path, platform_operator_id=POID)
    assert failed(checks) == ["NotXml"]
    assert [c.name for c in checks][-1] == "NotXml"  # nothing is read after that


def test_the_sending_entity_in_is_the_poid(tmp_path: Path) -> None:
    missing = message(tmp_path, spec="", name="missing.xml")
    assert failed(upload_checks(missing, platform_operator_id=POID)) == ["PlatformOperatorIdMissing"]
    other = message(tmp_path, spec="<dpi:SendingEntityIN>XMDPI0009999999</dpi:SendingEntityIN>", name="other.xml")
    assert failed(upload_checks(other, platform_operator_id=POID)) == ["PlatformOperatorIdMismatch"]
    # the outbox does not know the configured POID: the person chooses the operator in the service
    assert failed(upload_checks(other, platform_operator_id=None)) == []


def test_the_reporting_period_is_an_iso_date(tmp_path: Path) -> None:
    path = message(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"<dpi:ReportingPeriod>", b"<dpi:ReportingPeriod>x", 1))
    assert failed(upload_checks(path, platform_operator_id=POID)) == ["ReportingPeriodInvalid"]


@pytest.mark.parametrize("where", ["before", "inside"])
def test_a_comment_anywhere_fails_the_business_rules(tmp_path: Path, where: str) -> None:
    path = message(tmp_path, before="<!-- made by hand -->" if where == "before" else "")
    if where == "inside":
        path.write_bytes(path.read_bytes().replace(b"<dpi:DPIBody>", b"<dpi:DPIBody><!-- a note -->", 1))
    checks = upload_checks(path, platform_operator_id=POID, schema=OFFICIAL)
    assert failed(checks) == ["XmlComments"]
    assert "1 XML comment(s)" in next(c.text for c in checks if c.name == "XmlComments")


def test_hmrcs_own_sample_carries_a_comment_and_no_sending_entity_in() -> None:
    # HMRC's XMLSpy test file: valid against the schema; its upload would fail on the POID
    require_file(SAMPLES / "SubmissionSample.xml")
    checks = upload_checks(SAMPLES / "SubmissionSample.xml", platform_operator_id=POID, schema=OFFICIAL)
    assert "SchemaValidationError" not in failed(checks)
    assert {"XmlComments", "PlatformOperatorIdMismatch"} <= set(failed(checks))


def test_our_schema_of_the_profile_is_the_one_validated_against() -> None:
    assert schema_path(GB.schema_resource, None).name == "DPIXML_v1.0.xsd"
    assert "gb" in schema_path(GB.schema_resource, None).parts


# --------------------------------------------------------------------------- ids


def test_the_ids_are_hmrcs_format_and_the_same_on_a_rerun() -> None:
    ids = DocIds("6f1c2a4e-8d1b-4c7e-9a51-0c2f3d4e5a6b", "GB", "GB", 2025, {"platform_operator_id": POID})
    mri = GB.message_ref_id(ids, 1)
    assert MESSAGE_REF_ID.fullmatch(mri) and mri.startswith(f"GB2025GB-{POID}-")
    assert mri == GB.message_ref_id(ids, 1) != GB.message_ref_id(ids, 2)
    doc = GB.doc_ref_id(ids, "new:seller:S1")
    assert doc.startswith(f"{mri}_") and len(doc) == len(mri) + 33
    # a record of the second message takes its MessageRefId
    bound = GB.bind_doc_ref_id(doc, GB.message_ref_id(ids, 2))
    assert bound == f"{GB.message_ref_id(ids, 2)}_{doc.rpartition('_')[2]}"
    assert GB.follows_naming(f"{mri}.xml", mri, 2025)
    assert not GB.follows_naming(f"{mri}.xml", mri, 2024) and not GB.follows_naming("x.xml", mri, 2025)


# --------------------------------------------------------------------------- business rule result


def bre(
    status: str, file_errors: list[str] | None = None, record_errors: list[tuple[str, list[str]]] | None = None
) -> bytes:
    """An HMRC business rule result, checked against HMRC's schema."""
    data = hmrc_bre(status, file_errors=file_errors, record_errors=record_errors)
    require_file(BRE_XSD)
    schema = etree.XMLSchema(etree.parse(str(BRE_XSD)))
    assert schema.validate(etree.fromstring(data)), schema.error_log
    return data


def test_a_rejected_record_rejects_the_file_and_names_its_message() -> None:
    doc = f"{MRI}_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    report = parse_status(bre("Rejected", record_errors=[("DPI-RS-12", [doc])]))
    assert (report.format, report.outcome, report.message_ref_id) == ("gb-hmrc-bre", "rejected", MRI)
    assert report.status_message_ref_id == "c0ffee00-1234-4abc-8def-000000000001"
    assert [(e.code, e.doc_ref_ids) for e in report.record_errors] == [("DPI-RS-12", (doc,))]
    assert report.rejected_doc_ref_ids == {doc}


def test_an_accepted_result_with_errors_is_a_rejection_as_hmrc_reads_it() -> None:
    # CadxResultService.getImpliedStatus: a FileError or RecordError means Rejected
    report = parse_status(bre("Accepted", record_errors=[("X1", [f"{MRI}_b"])]))
    assert report.outcome == "rejected" and "HMRC reads any error as a rejection" in report.notes[0]
    assert parse_status(bre("Accepted"), expected_message_ref_id=MRI).outcome == "accepted"


def test_a_result_that_names_no_record_needs_its_message_named() -> None:
    with pytest.raises(StatusFormatError, match="name it with --message-ref-id"):
        parse_status(bre("Rejected", file_errors=["DPI-FILE-1"]))
    report = parse_status(
        bre("Rejected", file_errors=["DPI-FILE-1"]),
        expected_message_ref_id=MRI,
        matched_by="the MessageRefId given with --message-ref-id",
    )
    assert (report.message_ref_id, [e.code for e in report.file_errors]) == (MRI, ["DPI-FILE-1"])
    assert "matched by the MessageRefId given with --message-ref-id" in report.notes[0]


@pytest.mark.parametrize(
    ("refs", "message"),
    [
        (["nounderscore"], "not of the form <MessageRefId>_<unique>"),
        ([f"{MRI}_a", "GB2025GB-X-1_b"], "name 2 messages"),
    ],
)
def test_doc_ref_ids_of_no_or_several_messages_are_refused(refs: list[str], message: str) -> None:
    with pytest.raises(StatusFormatError, match=message):
        parse_status(bre("Rejected", record_errors=[("X", refs)]))


def test_a_status_that_is_neither_is_refused() -> None:
    data = bre("Accepted").replace(b"<Status>Accepted</Status>", b"<Status>Pending</Status>")
    with pytest.raises(StatusFormatError, match="expected Accepted or Rejected"):
        parse_status(data, expected_message_ref_id=MRI)


def test_dac7_validate_for_gb_runs_hmrcs_upload_checks(capsys: pytest.CaptureFixture[str]) -> None:
    from reporting.cli import main

    require_file(SAMPLES / "SubmissionSample.xml")
    assert main(["validate", "--authority", "GB", str(SAMPLES / "SubmissionSample.xml")]) == 1
    out = capsys.readouterr().out
    assert "[XmlComments upload] error" in out and "1 XML comment(s)" in out
