"""HMRC's business rules error report (the TSV its service offers after a rejection) read by the
status import, and how an HMRC document, which names no MessageRefId, is matched to its message
(reporting.ledger.status).

The report's form is that of hmrc/digital-platform-reporting-submission-frontend
``FileErrorsController.listErrors`` (commit 7f317eb507f26838c6d2c29e2de42b1e25e6041b): header
``Code<TAB>Detail<TAB>DocRef``, CRLF, Pekko CsvFormatting's quoting (a field quoted only when it
holds a tab, CR, LF, ``"`` or a backslash; inside quotes ``"`` doubled and ``\\`` doubled), a blank
DocRef for an error of the file, and the name ``<uploaded name, dots as _>-errors.tsv``. The
documents below are written by hand to those rules.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from builders import hmrc_bre

from reporting.ledger.db import Ledger
from reporting.ledger.errors import StatusFormatError
from reporting.ledger.status import is_hmrc_errors_tsv, parse_status

MRI = "GB2025GB-XMDPI0001234567-0123456789abcdef0123456789abcdef"
EARLIER = "GB2025GB-XMDPI0001234567-fedcba9876543210fedcba9876543210"
HEADER = b"Code\tDetail\tDocRef\r\n"


class FakeLedger:
    """What the matching asks of a ledger: its GB messages (MessageRefId, file name, status) and
    which of them carry which DocRefIds."""

    def __init__(self, messages: dict[str, str], holding: dict[str, set[str]]) -> None:
        self._messages, self._holding = messages, holding

    def messages(self, authority: str | None = None) -> list[Any]:
        assert authority == "GB"
        return [type("M", (), {"message_ref_id": ref, "file_name": f"{ref}.xml"})() for ref in self._messages]

    def messages_holding(self, doc_ref_ids: Any) -> dict[str, tuple[str, frozenset[str]]]:
        wanted = set(doc_ref_ids)
        return {
            ref: (self._messages[ref], frozenset(held & wanted)) for ref, held in self._holding.items() if held & wanted
        }


def ledger(messages: dict[str, str], holding: dict[str, set[str]] | None = None) -> Ledger:
    return cast(Ledger, FakeLedger(messages, holding or {}))


def test_the_error_report_is_read_as_pekko_writes_it() -> None:
    data = (
        HEADER
        + b"DPI-FILE-07\tThe file is not valid\t\r\n"  # a file error: blank DocRef
        + b'DPI-RS-015\t"TIN of\tCA invalid"\t'
        + f"{MRI}_a\r\n".encode()  # a tab in the detail: quoted
        + f'DPI-RS-016\t"Name ""Roy"" \\\\ N/A"\t{MRI}_b\r\n'.encode()
        + b"DPI-FILE-09\t\t\r\n"  # no detail
    )
    assert is_hmrc_errors_tsv(data)
    report = parse_status(data, expected_message_ref_id=MRI, matched_by="the MessageRefId given")
    assert (report.format, report.outcome, report.message_ref_id) == ("gb-hmrc-errors-tsv", "rejected", MRI)
    assert [(e.code, e.details) for e in report.file_errors] == [
        ("DPI-FILE-07", "The file is not valid"),
        ("DPI-FILE-09", None),
    ]
    assert [(e.code, e.details, e.doc_ref_ids) for e in report.record_errors] == [
        ("DPI-RS-015", "TIN of CA invalid", (f"{MRI}_a",)),  # the quoted tab read as a space
        ("DPI-RS-016", 'Name "Roy" \\ N/A', (f"{MRI}_b",)),  # "" -> ", \\ -> \
    ]
    assert report.rejected_doc_ref_ids == {f"{MRI}_a", f"{MRI}_b"}


@pytest.mark.parametrize(
    ("first_line", "tsv"),
    [
        (b"Code\tDetail\tDocRef\r\n", True),
        (b"\xef\xbb\xbfCode\tDetail\tDocRef\n", True),  # a BOM and LF, as an editor may save it
        (b"Code\tDetail\r\n", False),
        (b"Code,Detail,DocRef\r\n", False),
        (b"<?xml version='1.0'?>", False),
    ],
)
def test_the_error_report_is_told_by_its_header(first_line: bytes, tsv: bool) -> None:
    assert is_hmrc_errors_tsv(first_line + b"X\tY\t\r\n") is tsv


def test_the_error_report_is_matched_by_its_file_name_to_the_uploaded_file() -> None:
    # file errors only: nothing in the report names the message; its name does
    data = HEADER + b"DPI-FILE-07\tThe file is not valid\t\r\n"
    led = ledger({EARLIER: "accepted", MRI: "published"})
    report = parse_status(data, name=f"/downloads/{MRI}_xml-errors.tsv", ledger=led)
    assert report.message_ref_id == MRI and "matched by the file name of the error report" in report.notes[-1]
    with pytest.raises(StatusFormatError, match="name it with --message-ref-id"):
        parse_status(data, name="/downloads/renamed-errors.tsv", ledger=led)


def test_the_message_ref_id_given_always_wins() -> None:
    # the DocRefId begins with the earlier message, the report's name names MRI: the one given wins
    data = HEADER + f"DPI-RS-015\tx\t{EARLIER}_po\r\n".encode()
    led = ledger({EARLIER: "accepted", MRI: "published"}, {EARLIER: {f"{EARLIER}_po"}})
    given = parse_status(
        data,
        name=f"{MRI}_xml-errors.tsv",
        expected_message_ref_id="GB-OTHER",
        matched_by="--message-ref-id",
        ledger=led,
    )
    assert given.message_ref_id == "GB-OTHER" and given.notes[-1].endswith("matched by --message-ref-id")
    bre = hmrc_bre("Rejected", record_errors=[("X", [f"{EARLIER}_po"])])
    assert parse_status(bre, expected_message_ref_id=MRI, matched_by="--message-ref-id").message_ref_id == MRI


def test_a_resent_platform_operator_is_matched_to_the_message_awaiting_its_status() -> None:
    # the PlatformOperator filed in EARLIER (accepted) is resent unchanged (OECD0) in MRI under
    # its DocRefId: a rejection naming only it answers MRI, not the message its prefix names
    po, seller = f"{EARLIER}_po", f"{MRI}_s1"
    holding = {EARLIER: {po}, MRI: {po, seller}}
    bre = hmrc_bre("Rejected", record_errors=[("DPI-RS-001", [po])])
    assert parse_status(bre).message_ref_id == EARLIER  # without a ledger: the prefix
    report = parse_status(bre, ledger=ledger({EARLIER: "accepted", MRI: "published"}, holding))
    assert report.message_ref_id == MRI and "matched by the DocRefIds in error" in report.notes[-1]
    # with a record of its own beside it, the one message carrying both
    both = hmrc_bre("Rejected", record_errors=[("DPI-RS-001", [po, seller])])
    assert parse_status(both, ledger=ledger({EARLIER: "published", MRI: "published"}, holding)).message_ref_id == MRI
    # two messages awaiting a status that both carry it: which one is not known
    with pytest.raises(StatusFormatError, match="carried by 2 messages"):
        parse_status(bre, ledger=ledger({EARLIER: "published", MRI: "published"}, holding))
    # DocRefIds that no one message carries together
    apart = hmrc_bre("Rejected", record_errors=[("X", [po, f"{EARLIER}_z"])])
    with pytest.raises(StatusFormatError, match="no one message of the ledger carries all 2"):
        parse_status(
            apart, ledger=ledger({EARLIER: "accepted", MRI: "published"}, {MRI: {po}, EARLIER: {f"{EARLIER}_z"}})
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"DPI-1\tx\r\n", "row 2: 2 column"),
        (b"\tx\t\r\n", "row 2: no Code"),
        (b'DPI-1\t"open\t\r\n', "line"),  # a quote never closed
        (b"DPI-1\t\xff\t\r\n", "not UTF-8"),
    ],
)
def test_a_malformed_error_report_is_refused_with_its_row(body: bytes, message: str) -> None:
    with pytest.raises(StatusFormatError, match=message):
        parse_status(HEADER + body, name="x-errors.tsv", expected_message_ref_id=MRI)


def test_an_error_report_that_lists_nothing_still_rejects_and_says_so() -> None:
    report = parse_status(HEADER, expected_message_ref_id=MRI)
    assert report.outcome == "rejected" and "lists no error" in report.notes[0]
