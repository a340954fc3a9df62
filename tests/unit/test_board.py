"""The DAC7 view's deadline and status board (``plugins/dac7_board.py``): its counts from a
ledger of hand-made messages, and the upload of a status document through a real multipart
request (Starlette's test client on the board's handler; the Airflow login is tested in
``tests/dags/test_ui_board.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import GROUP_TOML, write_config
from integration.test_ledger_db import Filer, current
from integration.test_ledger_lifecycle import DSM, status_message
from ledger_filing import send
from lxml import etree
from lxml import html as lhtml

from reporting.ledger import Ledger, open_ledger

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
TODAY = date(2026, 2, 1)  # the day after the 2025 filing's due day
SECRET = "board-test-secret"
SESSION = "the.users.jwt"


@pytest.fixture
def board(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_board

    return dac7_board


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(ledger_url) as led:
        yield led


def publish(
    f: Filer, sellers: dict[str, int], at: datetime, *, sent: bool = True, sent_at: datetime | None = None
) -> str:
    """A message of ``sellers`` recorded and published at ``at``, then (unless ``sent`` is False)
    sent its authority's way at ``sent_at`` (else ``at``): filed (``ledger_filing.send``)."""
    [ref] = f.record(f.plan(current(sellers=sellers)))
    f.ledger.mark_published(ref, at=at)
    if sent:
        send(f.ledger, ref, sent_at or at)
    return ref


def status_xml(original: str, rejected: list[str], *, whole: bool = False) -> bytes:
    doc = status_message(original, rejected)
    if whole:
        doc.find(f"{{{DSM}}}DSMBody/{{{DSM}}}ValidationResult/{{{DSM}}}Status").text = "Rejected"
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def import_bytes(ledger: Ledger, data: bytes) -> Any:
    from reporting.ledger.status import import_status_bytes

    return import_status_bytes(ledger, data, name="status.xml")


@pytest.fixture
def history(ledger: Ledger) -> dict[str, str]:
    """Production: LT 2025 filed (uploaded) in time, one seller record rejected by the authority;
    FR 2025 published three days late and never sent (not filed); DE 2024 transmitted, rejected as
    a whole. Test: LT 2025 filed, accepted, then corrected (DPI402), and a message rendered and
    never published."""
    lt = Filer(ledger, environment="prod", authority="LT", year=2025)
    lt_ref = publish(lt, {"S1": 1, "S2": 1, "S3": 1}, datetime(2026, 1, 20, 10))
    s2 = next(r.doc_ref_id for r in ledger.records(lt_ref) if r.seller_key == "S2")
    import_bytes(ledger, status_xml(lt_ref, [s2]))
    fr = Filer(ledger, environment="prod", authority="FR", year=2025)
    fr_ref = publish(fr, {"S1": 1}, datetime(2026, 2, 3), sent=False)
    de_ref = publish(Filer(ledger, environment="prod", authority="DE", year=2024), {"S4": 1}, datetime(2025, 1, 10))
    import_bytes(ledger, status_xml(de_ref, [], whole=True))
    test = Filer(ledger, environment="test", authority="LT", year=2025)
    first = publish(test, {"S1": 1}, datetime(2026, 1, 5))
    import_bytes(ledger, status_xml(first, []))
    correction = publish(test, {"S1": 2}, datetime(2026, 1, 6))
    test.record(test.plan(current(sellers={"S1": 3})))  # rendered, never published
    return {"lt": lt_ref, "fr": fr_ref, "de": de_ref, "test": first, "correction": correction, "s2": s2}


def test_the_board_counts_the_ledgers_messages(
    board: Any, ledger_url: str, history: dict[str, str], tmp_path: Path
) -> None:
    env = {"DAC7_CONFIG": str(write_config(tmp_path / "dac7.toml"))}  # the demo operator files in LT
    view = board.board_view(board.Sources(ledger_url, None), TODAY, env)
    assert view.filing_state == "LT" and view.problems == ()
    keyed = {(r.environment, r.authority, r.year): r for r in view.rows}
    # production first, newest year first, the filing state before the others
    assert list(keyed) == [
        ("prod", "LT", 2026),  # the year in progress: nothing filed yet, a row all the same
        ("prod", "LT", 2025),
        ("prod", "FR", 2025),
        ("prod", "DE", 2024),
        ("test", "LT", 2025),
    ]
    lt, fr, de, test = (
        keyed["prod", "LT", 2025],
        keyed["prod", "FR", 2025],
        keyed["prod", "DE", 2024],
        keyed["test", "LT", 2025],
    )
    assert (lt.filed, lt.accepted, lt.partly_rejected, lt.rejected_records, lt.open_rejected_records) == (1, 0, 1, 1, 1)
    assert (lt.rejected, lt.awaiting, lt.corrections, lt.error_codes) == (0, 0, 0, ("40080",))
    assert lt.first_filed == datetime(2026, 1, 20, 10) and lt.statements_sent is None
    # published, never sent: not filed (as the calendar counts it)
    assert (fr.filed, fr.awaiting, fr.unsent, fr.live, fr.accepted, fr.partly_rejected) == (0, 0, 1, False, 0, 0)
    assert (de.filed, de.rejected, de.live, de.error_codes) == (1, 1, False, ("40080",))
    assert (test.filed, test.accepted, test.corrections, test.not_published, test.awaiting) == (2, 1, 1, 1, 1)

    page = lhtml.fromstring(board.board_page(view, token="t", may_import=True))
    rows = [[c.text_content().strip() for c in tr.xpath("td")] for tr in page.xpath("//table[@id='board-prod']/tr[td]")]
    assert [r[:2] for r in rows] == [
        ["LT Lithuania", "2026"],
        ["LT Lithuania", "2025"],
        ["FR France", "2025"],
        ["DE Germany", "2024"],
    ]
    # Authority, Year, Due, Deadline, State, Filed, Accepted, Partly rejected, Rejected, Awaiting,
    # DPI402, error codes, statements
    assert rows[0][2:5] == ["2027-01-31 (note)", "period in progress; 364 days left", "not filed yet"]
    assert rows[1][2:] == [
        "2026-01-31 (note)",
        "filed 2026-01-20, in time",
        "warning: 1 record rejected",
        "1",
        "0",
        "1 (1 record rejected)",
        "0",
        "0",
        "0",
        "40080",
        "none recorded (due 2026-01-31)",
    ]
    assert rows[2][3:6] == [
        "1 day overdue",
        "overdue: nothing filed (1 published, not sent yet)",
        "0 (+1 published, not sent)",
    ]
    assert rows[3][2:5] == ["2025-01-31", "366 days overdue", "rejected: file again"]
    [test_row] = [
        [c.text_content().strip() for c in tr.xpath("td")] for tr in page.xpath("//table[@id='board-test']/tr[td]")
    ]
    assert test_row == [
        "LT Lithuania",
        "2025",
        "filed: awaiting the authority's status",
        "2 (+1 not published)",
        "1",
        "0",
        "0",
        "1",
        "1",
        "40080",
    ]
    sources = page.xpath("//table[@id='deadlines']")[0].text_content()
    assert "Article 8ac(2)" in sources and "PStTG § 13(1)" in sources and "BOI-INT-AEA-30-40" in sources
    assert page.xpath("//form[@id='status-import']/@action") == ["status-import"]


def test_the_filing_due_day_itself_is_not_overdue(board: Any) -> None:
    row = board.BoardRow("prod", "LT", 2025)
    due = date(2026, 1, 31)
    assert board.state(row, due, date(2026, 1, 31)) == ("todo", "not filed yet")
    assert board.deadline_words(row, due, date(2026, 1, 31)) == "due today"
    assert board.state(row, due, date(2026, 2, 1)) == ("rejected", "overdue: nothing filed")
    assert board.deadline_words(row, due, date(2026, 2, 1)) == "1 day overdue"
    # the ledger's times are UTC: 21:59 UTC on 31 January is 23:59 in Vilnius (EET), in time
    on_time = board.BoardRow("prod", "LT", 2025, filed=1, awaiting=1, first_filed=datetime(2026, 1, 31, 21, 59))
    assert board.deadline_words(on_time, due, date(2026, 3, 1)) == "filed 2026-01-31, in time"
    # 23:59 UTC is already 1 February in Vilnius: a day late (it was in time in UTC)
    late = board.BoardRow("prod", "LT", 2025, filed=1, awaiting=1, first_filed=datetime(2026, 1, 31, 23, 59))
    assert board.deadline_words(late, due, date(2026, 3, 1)) == "filed 2026-02-01, 1 day late"


@pytest.mark.parametrize(
    ("at", "words", "kind", "filed"),
    [
        (datetime(2026, 1, 31, 22, 59, 59, tzinfo=UTC), "due today", "todo", "filed 2026-01-31, in time"),
        (datetime(2026, 1, 31, 23, 0, 0, tzinfo=UTC), "1 day overdue", "rejected", "filed 2026-02-01, 1 day late"),
    ],
)
def test_31_january_ends_at_midnight_in_a_cet_state_not_in_utc(
    board: Any, at: datetime, words: str, kind: str, filed: str
) -> None:
    """Germany in winter (CET, UTC+1): the due day ends at 23:00 UTC."""
    due = date(2026, 1, 31)
    row = board.BoardRow("prod", "DE", 2025)
    assert board.deadline_words(row, due, at) == words
    assert board.state(row, due, at)[0] == kind
    naive_utc = at.replace(tzinfo=None)  # as the ledger keeps its times
    published = board.BoardRow("prod", "DE", 2025, filed=1, awaiting=1, first_filed=naive_utc)
    assert board.deadline_words(published, due, date(2026, 3, 1)) == filed
    # the board of a moment judges each row on its state's day (the 2024 filing: 31 January 2025 is a
    # Friday; the 2025 filing's day, a Saturday, moves to 2 February: AO § 108(3))
    row, at = board.BoardRow("prod", "DE", 2024), at.replace(year=2025)
    page = lhtml.fromstring(board.board_page(board.Board(at.date(), (row,), "DE", now=at)))
    assert words in page.xpath("//table[@id='board-prod']")[0].text_content()


def test_a_viewer_sees_no_form_but_a_sentence(board: Any) -> None:
    page = board.board_page(board.Board(TODAY, (), "LT"), token=None, may_import=False)
    assert lhtml.fromstring(page).xpath("//form") == []
    assert "needs the &#x27;DAC7 status import&#x27; permission" in page and "role op or admin" in page


# ------------------------------------------------------------------------------------- the upload


@pytest.fixture
def client(board: Any, ledger: Ledger, ledger_url: str, tmp_path: Path) -> Iterator[Any]:
    """The board's upload handler in a bare Starlette app: the user and the permission come from
    test headers (in the api-server: Airflow's login and ``dac7_plugin.may_import``)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    env = {"DAC7_CONFIG": str(write_config(tmp_path / "dac7.toml"))}

    async def upload(request: Request) -> HTMLResponse:
        src = board.Sources(ledger_url, None)
        code, page = await board.status_import(
            request,
            request.headers.get("x-test-user", "alice"),
            allowed=request.headers.get("x-test-allowed") == "yes",
            secret=SECRET,
            src=src,
            today=TODAY,
        )
        return HTMLResponse(page, status_code=code)

    original = board.board_view
    board.board_view = lambda src, today=None, e=None: original(src, today, env)
    app = Starlette(routes=[Route("/dac7/status-import", upload, methods=["POST"])])
    try:
        with TestClient(app, base_url="http://airflow.example:8080") as c:
            c.cookies.set("_token", SESSION)
            yield c
    finally:
        board.board_view = original


def post(client: Any, board: Any, data: bytes | None, **over: Any) -> Any:
    headers = {"origin": "http://airflow.example:8080", "x-test-allowed": "yes"} | over.pop("headers", {})
    token = over.pop("token", board.form_token(SECRET, SESSION))
    files = {"document": ("answer from VMI.xml", data, "application/xml")} if data is not None else None
    fields = {"csrf_token": token} if token is not None else {}
    return client.post("/dac7/status-import", data=fields, files=files, headers=headers)


def result(response: Any) -> str:
    page = lhtml.fromstring(response.text)
    [box] = page.xpath("//*[@id='import-result']")
    return " ".join(box.text_content().split())


def test_an_upload_imports_the_status_document_once(
    board: Any, client: Any, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    ref = publish(
        Filer(ledger, environment="prod", authority="LT", year=2025), {"S1": 1, "S2": 1}, datetime(2026, 1, 20)
    )
    s1 = next(r.doc_ref_id for r in ledger.records(ref) if r.seller_key == "S1")
    data = status_xml(ref, [s1])
    caplog.set_level("INFO", logger="dac7.view")
    first = post(client, board, data)
    assert first.status_code == 200, first.text
    said = result(first)
    assert said.startswith(f"Imported: the authority accepted {ref} but rejected 1 record.")
    assert f"Message {ref} (LT, 2025, production, DPI401): rejected DocRefIds {s1}." in said
    assert "The message is now accepted; its records: 2 accepted, 1 rejected." in said
    assert "Error codes from the authority: 40080." in said
    assert ledger.message(ref).status == "accepted" and ledger.message(ref).rejected_records == 1
    # the board below the answer already shows it
    assert (
        "warning: 1 record rejected"
        in lhtml.fromstring(first.text).xpath("//table[@id='board-prod']")[0].text_content()
    )
    digest = __import__("hashlib").sha256(data).hexdigest()
    assert f"DAC7 status import by alice: document sha256 {digest}, message {ref}, partially_rejected" in caplog.text
    assert "S1" not in caplog.text  # seller ids, names: never in the audit line

    again = post(client, board, data)
    assert again.status_code == 200
    assert result(again).startswith("This status document was already imported: nothing changed.")
    assert len(ledger.errors(ref)) == 1  # applied once


@pytest.mark.parametrize(
    ("data", "code", "sentence"),
    [
        (b"<not xml", 422, "Nothing was imported: answer_from_VMI.xml"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>',
            422,
            "Nothing was imported: answer_from_VMI.xml",
        ),
        (b"<other xmlns='urn:x'/>", 422, "no status adapter for this format"),
        (b"", 400, "No status document was chosen (or the file is empty)"),
    ],
)
def test_a_bad_document_is_refused_with_a_sentence(
    board: Any, client: Any, data: bytes, code: int, sentence: str
) -> None:
    response = post(client, board, data)
    assert response.status_code == code
    assert "Nothing was imported." in result(response) and sentence in result(response)
    assert "Traceback" not in response.text


def test_an_answer_to_an_unknown_message_says_so(board: Any, client: Any, ledger: Ledger) -> None:
    response = post(client, board, status_xml("LT2025LTUNKNOWN", []))
    assert response.status_code == 422
    assert "which is not in this ledger" in result(response)


def test_the_upload_is_refused_without_permission_token_or_own_origin(
    board: Any, client: Any, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    ref = publish(Filer(ledger, environment="prod", authority="LT", year=2025), {"S1": 1}, datetime(2026, 1, 20))
    data = status_xml(ref, [])
    caplog.set_level("INFO", logger="dac7.view")
    viewer = post(client, board, data, headers={"x-test-allowed": "no", "x-test-user": "carol"})
    assert viewer.status_code == 403 and "may see the DAC7 board, but not import status documents" in result(viewer)
    assert 'id="status-import"' not in viewer.text  # and no form on the page it gets
    assert "DAC7 status import refused: user carol has no import permission" in caplog.text
    forged = post(client, board, data, token=None)
    assert forged.status_code == 403 and "The upload form has expired or was not made for your login" in result(forged)
    wrong = post(client, board, data, token=board.form_token(SECRET, "someone.elses.token"))
    assert wrong.status_code == 403
    elsewhere = post(client, board, data, headers={"origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and "did not come from the DAC7 board of this Airflow" in result(elsewhere)
    no_origin = post(client, board, data, headers={"origin": ""})
    assert no_origin.status_code == 403
    referer = post(client, board, data, headers={"origin": "", "referer": "http://airflow.example:8080/dac7/board"})
    assert referer.status_code == 200
    assert ledger.message(ref).status == "accepted"  # only the last one imported


def test_a_document_over_the_limit_is_not_read(board: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from reporting.ledger import status

    monkeypatch.setattr(status, "MAX_STATUS_BYTES", 1024)
    big = post(client, board, b"<x>" + b" " * 200_000 + b"</x>")
    assert big.status_code == 413
    assert "larger than 0 MB" not in result(big) and "it was not read" in result(big)


def test_the_form_token_and_names(board: Any) -> None:
    token = board.form_token(SECRET, SESSION)
    assert re.fullmatch("[0-9a-f]{64}", token) and token != board.form_token(SECRET, "other")
    assert board.token_ok(SECRET, SESSION, token) and not board.token_ok(SECRET, None, token)
    assert board.safe_name("../../etc/passwd") == "passwd" and board.safe_name("C:\\x\\a b.xml") == "a_b.xml"
    assert board.safe_name("") == "status.xml"
    assert board.same_origin({"origin": "http://h:1"}, ["h:1"]) and not board.same_origin({}, ["h:1"])


def test_a_corrected_rejection_stays_counted_apart_and_the_state_clears(board: Any, ledger: Ledger) -> None:
    """The next filing sends the rejected record again as a correction (DPI402). Published only,
    the correction is not filed: the record stays open and the row a warning (as the calendar
    says). Once uploaded, the record is no longer open, the row is no longer a warning, and the
    partial rejection is still counted."""
    f = Filer(ledger, environment="prod", authority="LT", year=2025)
    ref = publish(f, {"S1": 1, "S2": 1}, datetime(2026, 1, 20))
    s2 = next(r.doc_ref_id for r in ledger.records(ref) if r.seller_key == "S2")
    import_bytes(ledger, status_xml(ref, [s2]))
    [before] = board.board_rows(board.read_tallies(ledger))
    assert board.state(before, date(2026, 1, 31), TODAY) == ("warning", "warning: 1 record rejected")
    [correction] = f.record(f.plan(current(sellers={"S1": 1, "S2": 1})))
    assert ledger.message(correction).message_type_indic == "DPI402"
    ledger.mark_published(correction, at=datetime(2026, 2, 10))
    [published] = board.board_rows(board.read_tallies(ledger))
    assert (published.filed, published.unsent, published.corrections, published.open_rejected_records) == (1, 1, 0, 1)
    assert board.state(published, date(2026, 1, 31), TODAY) == ("warning", "warning: 1 record rejected")
    cells = board._counts(published, date(2026, 1, 31), TODAY)
    assert lhtml.fromstring(f"<p>{cells[1]}</p>").text_content() == "1 (+1 published, not sent)"
    assert lhtml.fromstring(f"<p>{cells[3]}</p>").text_content() == "1 (1 record rejected)"

    send(ledger, correction, datetime(2026, 2, 11))
    [after] = board.board_rows(board.read_tallies(ledger))
    assert (after.filed, after.partly_rejected, after.rejected_records, after.open_rejected_records) == (2, 1, 1, 0)
    assert (after.corrections, after.awaiting, after.unsent, after.first_filed) == (1, 1, 0, datetime(2026, 1, 20))
    assert board.state(after, date(2026, 1, 31), TODAY) == ("published", "filed: awaiting the authority's status")
    cells = board._counts(after, date(2026, 1, 31), TODAY)
    assert lhtml.fromstring(f"<p>{cells[3]}</p>").text_content() == "1 (1 record rejected, 1 corrected since)"


def test_a_partial_rejection_that_names_no_record_is_a_warning_on_the_board_and_the_view(
    board: Any, ledger: Ledger, ledger_url: str
) -> None:
    from reporting.ledger.model import FileError, StatusReport

    ref = publish(Filer(ledger, environment="prod", authority="DE", year=2025), {"S1": 1}, datetime(2026, 1, 20))
    report = StatusReport(
        format="de-dip-protocol",
        outcome="partially_rejected",
        message_ref_id=ref,
        file_errors=(FileError(code="payload", details="some records were rejected"),),
    )
    ledger.record_status(report, file_name="protocol.xml", sha256="0" * 64)
    assert ledger.message(ref).status == "accepted" and ledger.message(ref).rejected_records == 0

    view = board.board_view(board.Sources(ledger_url, None), TODAY, {})
    [row] = [r for r in view.rows if (r.environment, r.authority) == ("prod", "DE")]
    assert (row.accepted, row.partly_rejected, row.unnamed_rejections) == (0, 1, 1)
    assert board.state(row, date(2026, 1, 31), TODAY) == ("warning", "warning: partially rejected, records not named")
    page = lhtml.fromstring(board.board_page(view))
    assert "records not named by the authority" in page.xpath("//table[@id='board-prod']")[0].text_content()

    import dac7_view

    [filing] = dac7_view.year_view(dac7_view.Sources(ledger_url, None), 2025).filings["DE"]
    assert (filing.outcome, filing.shown_status) == ("partially_rejected", dac7_view.PARTIAL)
    assert "records not named" in dac7_view._status_words(filing)
    assert "names no rejected record" in " ".join(dac7_view._filing_row(filing))
    overview, _ = dac7_view.overview(dac7_view.Sources(ledger_url, None), status=dac7_view.PARTIAL)
    assert [(y.year, y.messages) for y in overview] == [(2025, 1)]


def test_a_rejected_assumed_operator_is_not_listed_as_a_rejected_seller(
    board: Any, ledger: Ledger, ledger_url: str
) -> None:
    """An AssumedPlatformOperator record is keyed in the ledger's seller_key column like a seller;
    when the authority rejects it (40050, say), the view counts the rejected record but names no
    seller for it: its key is no seller id."""
    from ledger_filing import item

    from reporting.ledger.model import opo_key

    f = Filer(ledger, environment="prod", authority="LT", year=2025)
    cur = current(sellers={"S1": 1, "S2": 1})
    cur[opo_key("assumed:LV-0123456789abcdef")] = item({"role": "assumed", "name": "Skuteri SIA"})
    [ref] = f.record(f.plan(cur))
    ledger.mark_published(ref, at=datetime(2026, 1, 20))
    by_key = {r.seller_key: r.doc_ref_id for r in ledger.records(ref)}
    import_bytes(ledger, status_xml(ref, [by_key["assumed:LV-0123456789abcdef"], by_key["S2"]]))

    import dac7_view

    [filing] = dac7_view.year_view(dac7_view.Sources(ledger_url, None), 2025).filings["LT"]
    assert filing.rejected_records == 2
    assert filing.rejected_sellers == ("S2",)


def test_the_board_shows_each_filings_calendar_with_what_is_open(
    board: Any, ledger_url: str, history: dict[str, str], tmp_path: Path
) -> None:
    """LT 2025: filed and accepted with S2's record rejected (open: no time stated); FR 2025: filed
    published 3 February and never sent; DE 2024: rejected as a whole and never filed again (overdue)."""
    env = {"DAC7_CONFIG": str(write_config(tmp_path / "dac7.toml"))}
    view = board.board_view(board.Sources(ledger_url, None), TODAY, env)
    states = {(s.item.country, s.item.year, s.item.obligation): (s.state, s.detail) for s in view.calendar}
    assert states["LT", 2025, "filing"] == ("done", "accepted (1 message)")
    assert states["LT", 2025, "correction"] == (
        "open",
        "1 rejection(s), 0 corrected; no time stated: correct without delay",
    )
    assert states["LT", 2025, "registration_renewal"][0] == "nothing due"
    # published on 3 February but never transmitted or uploaded: not filed (filed means sent)
    assert states["FR", 2025, "filing"] == (
        "overdue",
        "nothing accepted or filed; 1 published, not transmitted or uploaded yet; 1 day overdue",
    )
    assert states["DE", 2024, "filing"] == (
        "overdue",
        "nothing accepted or filed; rejected as a whole (1): file again; 366 days overdue",
    )
    assert states["DE", 2024, "correction"][0] == "open"  # the whole message, no time stated
    assert states["LT", 2026, "filing"] == ("open", "nothing accepted or filed; 364 days left")

    page = lhtml.fromstring(board.board_page(view))
    rows = [
        [c.text_content().strip() for c in tr.xpath("td")] for tr in page.xpath("//table[@id='filing-calendar']/tr[td]")
    ]
    assert len(rows) == 4 * 4  # four items for each of the four production rows
    lt_fix = next(r for r in rows if r[:3] == ["LT Lithuania", "2025", "correction"])
    assert lt_fix[3:5] == ["none", "open"]
    assert lt_fix[6].endswith("; Europe/Vilnius") and "(low)" in lt_fix[7]
    lt_filing = next(r for r in rows if r[:3] == ["LT Lithuania", "2025", "filing"])
    assert lt_filing[3:5] == ["2026-01-31", "done"] and "Article 8ac(2)" in lt_filing[7]


def test_a_german_due_day_on_a_saturday_moves_on_the_board(board: Any, ledger: Ledger, ledger_url: str) -> None:
    """31 January 2026 is a Saturday: the German filing is due Monday 2 February (AO § 108(3));
    the statements to sellers keep 31 January."""
    publish(Filer(ledger, environment="prod", authority="DE", year=2025), {"S1": 1}, datetime(2026, 1, 20))
    view = board.board_view(board.Sources(ledger_url, None), date(2026, 2, 2), {})
    page = lhtml.fromstring(board.board_page(view))
    [row] = [
        [c.text_content().strip() for c in tr.xpath("td")] for tr in page.xpath("//table[@id='board-prod']/tr[td]")
    ]
    assert row[2] == "2026-02-02" and row[-1].endswith("(due 2026-01-31)")
    [filing] = [
        [c.text_content().strip() for c in tr.xpath("td")]
        for tr in page.xpath("//table[@id='filing-calendar']/tr[td]")
        if tr.xpath("td")[2].text_content().strip() == "filing"
    ]
    assert filing[3] == "2026-02-02 (from 2026-01-31)" and "§ 108(3)" in filing[7]


# ------------------------------------------------------------- filed means sent, as the calendar


def production_row(board: Any, ledger_url: str, day: date) -> tuple[list[str], tuple[str, str]]:
    """The one production row of the board of ``day`` (Authority, Year, Due, Deadline, State,
    Filed, Accepted, Partly rejected, Rejected, Awaiting, DPI402, codes, statements) and the state
    and words of the calendar's filing item of the same filing."""
    view = board.board_view(board.Sources(ledger_url, None), day, {})
    [row] = board_cells(lhtml.fromstring(board.board_page(view)), "board-prod")
    [filing] = [(s.state, s.detail) for s in view.calendar if s.item.obligation == "filing"]
    return row, filing


def test_a_filing_published_and_never_sent_reads_open_then_overdue(board: Any, ledger: Ledger, ledger_url: str) -> None:
    """LT 2025, published on 20 January 2026 and neither uploaded nor transmitted: not filed. On
    its due day the row is open, the next day overdue; the board and the calendar say the same."""
    publish(Filer(ledger, environment="prod", authority="LT", year=2025), {"S1": 1}, datetime(2026, 1, 20), sent=False)
    row, filing = production_row(board, ledger_url, date(2026, 1, 31))
    assert row[3:6] == ["due today", "1 published, not sent yet", "0 (+1 published, not sent)"]
    assert row[9] == "0"  # nothing awaits the authority's status: nothing went to it
    assert filing == ("open", "nothing accepted or filed; 1 published, not transmitted or uploaded yet; due today")
    row, filing = production_row(board, ledger_url, date(2026, 2, 1))
    assert row[3:6] == [
        "1 day overdue",
        "overdue: nothing filed (1 published, not sent yet)",
        "0 (+1 published, not sent)",
    ]
    assert filing == (
        "overdue",
        "nothing accepted or filed; 1 published, not transmitted or uploaded yet; 1 day overdue",
    )


def test_a_filing_uploaded_on_its_due_day_is_in_time(board: Any, ledger: Ledger, ledger_url: str) -> None:
    """Published on 28 January, marked uploaded at 21:59:59 UTC on 31 January: 23:59:59 in Vilnius
    (EET, UTC+2), the due day itself. Filed on the day of the upload, in time."""
    f = Filer(ledger, environment="prod", authority="LT", year=2025)
    publish(f, {"S1": 1}, datetime(2026, 1, 28, 9), sent_at=datetime(2026, 1, 31, 21, 59, 59))
    row, filing = production_row(board, ledger_url, date(2026, 2, 5))
    assert row[3:6] == ["filed 2026-01-31, in time", "filed: awaiting the authority's status", "1"]
    assert row[9] == "1"
    assert filing == ("open", "filed 2026-01-31 (in time); no accepted status imported yet")


def test_a_filing_published_in_time_and_uploaded_late_is_late(board: Any, ledger: Ledger, ledger_url: str) -> None:
    """Published on 20 January, in time, but marked uploaded at 22:00 UTC on 31 January: midnight
    in Vilnius, 1 February, a day late. The sending counts, not the publication."""
    f = Filer(ledger, environment="prod", authority="LT", year=2025)
    publish(f, {"S1": 1}, datetime(2026, 1, 20, 10), sent_at=datetime(2026, 1, 31, 22, 0, 0))
    row, filing = production_row(board, ledger_url, date(2026, 2, 5))
    assert row[3:6] == ["filed 2026-02-01, 1 day late", "filed: awaiting the authority's status", "1"]
    assert filing == ("open", "filed 2026-02-01 (1 day(s) late); no accepted status imported yet")


def test_a_de_filing_transmitted_on_its_moved_due_day_is_in_time(board: Any, ledger: Ledger, ledger_url: str) -> None:
    """DE 2025 is due Monday 2 February 2026 (31 January is a Saturday: AO § 108(3)). Published on
    29 January; a first DIP transfer on 1 February was aborted (no filing: on 3 February the row is
    overdue); a second one finished at 22:59:59 UTC on 2 February, 23:59:59 in Berlin (CET): in time."""
    f = Filer(ledger, environment="prod", authority="DE", year=2025)
    ref = publish(f, {"S1": 1}, datetime(2026, 1, 29, 10), sent=False)
    ledger.record_transmission(
        ref, event="started", channel="dip", actor="run", ticket="T1", at=datetime(2026, 2, 1, 9)
    )
    ledger.record_transmission(
        ref, event="aborted", channel="dip", actor="run", ticket="T1", at=datetime(2026, 2, 1, 9, 5)
    )
    row, filing = production_row(board, ledger_url, date(2026, 2, 3))
    assert row[2:5] == ["2026-02-02", "1 day overdue", "overdue: nothing filed (1 published, not sent yet)"]
    assert filing[0] == "overdue"
    send(ledger, ref, datetime(2026, 2, 2, 22, 59, 59))  # a new transfer, started and finished
    row, filing = production_row(board, ledger_url, date(2026, 2, 3))
    assert row[2:6] == ["2026-02-02", "filed 2026-02-02, in time", "filed: awaiting the authority's status", "1"]
    assert filing == ("open", "filed 2026-02-02 (in time); no accepted status imported yet")
    # a second later would have been 3 February in Berlin: a day late
    late = board.BoardRow("prod", "DE", 2025, filed=1, awaiting=1, first_filed=datetime(2026, 2, 2, 23, 0))
    assert board.deadline_words(late, date(2026, 2, 2), date(2026, 2, 3)) == "filed 2026-02-03, 1 day late"


# ----------------------------------------------------------------------- a group of operators


@pytest.fixture
def group_config(tmp_path: Path) -> dict[str, str]:
    """The demo operator (the default, in LT) with lt2 (LT too) and de_gmbh (DE)."""
    return {"DAC7_CONFIG": str(write_config(tmp_path / "group.toml", extra=GROUP_TOML))}


def board_cells(page: Any, table: str) -> list[list[str]]:
    return [
        [" ".join(c.text_content().split()) for c in tr.xpath("td")]
        for tr in page.xpath(f"//table[@id='{table}']/tr[td]")
    ]


def test_a_groups_board_has_a_row_per_operator_and_flags_the_one_missing(
    board: Any, ledger: Ledger, ledger_url: str, group_config: dict[str, str]
) -> None:
    """The default operator and lt2 both file in LT: the default operator filed 2025 in time,
    lt2 filed nothing. On 1 February 2026 (the day after the due day) lt2's row says "overdue:
    nothing filed", next to the default operator's filing, never added to it; de_gmbh (DE) had its
    filing rejected as a whole; a test message of lt2 is lt2's in the test table."""
    publish(Filer(ledger, environment="prod", authority="LT", year=2025), {"S1": 1, "S2": 1}, datetime(2026, 1, 20, 10))
    de = Filer(ledger, environment="prod", authority="DE", year=2025, operator_id="de_gmbh")
    de_ref = publish(de, {"S4": 1}, datetime(2026, 1, 30, 10))
    import_bytes(ledger, status_xml(de_ref, [], whole=True))
    publish(
        Filer(ledger, environment="test", authority="LT", year=2025, operator_id="lt2"), {"S9": 1}, datetime(2026, 1, 5)
    )

    view = board.board_view(board.Sources(ledger_url, None), TODAY, group_config)
    assert view.filing_state == "LT" and view.problems == () and view.per_operator
    keyed = {(r.environment, r.operator, r.authority, r.year): r for r in view.rows}
    # production first, the newest year, the operators in the configuration's order (the default
    # first), each operator's filing state; an empty row for each operator's filing of each year
    assert list(keyed) == [
        ("prod", "default", "LT", 2026),
        ("prod", "lt2", "LT", 2026),
        ("prod", "de_gmbh", "DE", 2026),
        ("prod", "default", "LT", 2025),
        ("prod", "lt2", "LT", 2025),
        ("prod", "de_gmbh", "DE", 2025),
        ("test", "lt2", "LT", 2025),
    ]
    default, lt2, de_row = (
        keyed["prod", "default", "LT", 2025],
        keyed["prod", "lt2", "LT", 2025],
        keyed["prod", "de_gmbh", "DE", 2025],
    )
    assert (default.filed, default.awaiting, default.first_filed) == (1, 1, datetime(2026, 1, 20, 10))
    assert (lt2.filed, lt2.awaiting, lt2.live, lt2.first_filed) == (0, 0, False, None)
    assert (de_row.filed, de_row.rejected, de_row.live, de_row.error_codes) == (1, 1, False, ("40080",))
    assert keyed["test", "lt2", "LT", 2025].filed == 1

    page = lhtml.fromstring(board.board_page(view))
    headers = [th.text_content() for th in page.xpath("//table[@id='board-prod']/tr/th")]
    assert headers[:4] == ["Operator", "Authority", "Year", "Due"]
    rows = board_cells(page, "board-prod")
    # Operator, Authority, Year, Due, Deadline, State, Filed, ...
    assert [r[:3] for r in rows] == [
        ["default Demo Marketplace UAB", "LT Lithuania", "2026"],
        ["lt2 Second Market UAB", "LT Lithuania", "2026"],
        ["de_gmbh Demo Marktplatz GmbH", "DE Germany", "2026"],
        ["default Demo Marketplace UAB", "LT Lithuania", "2025"],
        ["lt2 Second Market UAB", "LT Lithuania", "2025"],
        ["de_gmbh Demo Marktplatz GmbH", "DE Germany", "2025"],
    ]
    assert rows[3][4:7] == ["filed 2026-01-20, in time", "filed: awaiting the authority's status", "1"]
    assert rows[4][3:7] == ["2026-01-31 (note)", "1 day overdue", "overdue: nothing filed", "0"]
    # rejected as a whole: nothing of de_gmbh counts as filed; its due day moved to Monday 2 February
    # (31 January 2026 is a Saturday: AO § 108(3))
    assert rows[5][3:7] == ["2026-02-02", "1 day left", "rejected: file again", "1"]
    assert page.xpath("//table[@id='board-prod']//tr[td]")[4].xpath(".//span[@class='status status-rejected']")
    # Operator, Authority, Year, State, Filed, Accepted, Partly rejected, Rejected, Awaiting, DPI402, codes
    assert board_cells(page, "board-test") == [
        [
            "lt2 Second Market UAB",
            "LT Lithuania",
            "2025",
            "filed: awaiting the authority's status",
            *("1", "0", "0", "0", "1", "0", "none"),
        ]
    ]
    assert "Per operator of the group, authority and reporting year" in page.text_content()


def test_a_groups_statements_are_counted_per_operator(
    board: Any, ledger: Ledger, ledger_url: str, group_config: dict[str, str], tmp_path: Path
) -> None:
    """Statements of 2024 in LT: two of the default operator's filing (one sent), one of lt2's
    (failed); each operator's row counts its own, where a single operator's board adds them up."""
    from statement_feeds import Run

    from reporting.ledger.statements import read_delivery_report

    made = datetime(2025, 1, 20, 9)
    own = Run(ledger, tmp_path / "out", {"S1": 1, "S2": 1}, year=2024, environment="prod", authority="LT")
    ledger.record_statements(own.feed(own.statement("S1", "st-d1"), own.statement("S2", "st-d2")), at=made)
    lt2 = Run(ledger, tmp_path / "out", {"S1": 2}, year=2024, environment="prod", authority="LT", operator_id="lt2")
    ledger.record_statements(lt2.feed(lt2.statement("S1", "st-l1"), name="lt2.jsonl"), at=made)
    report = tmp_path / "delivery.csv"
    report.write_text(
        "statement_id,time,status\nst-d1,2025-01-21T10:00:00Z,sent\nst-l1,2025-01-21T10:00:00Z,failed\n",
        encoding="utf-8",
    )
    ledger.mark_statements(read_delivery_report(report), source=report.name)
    counts = {(c.operator_id, c.authority, c.year): (c.sent, c.unsent) for c in ledger.statement_counts()}
    assert counts == {("default", "LT", 2024): (1, 1), ("lt2", "LT", 2024): (0, 1)}

    view = board.board_view(board.Sources(ledger_url, None), TODAY, group_config)
    keyed = {(r.operator, r.authority, r.year): r for r in view.of("prod")}
    assert (keyed["default", "LT", 2024].statements_sent, keyed["default", "LT", 2024].statements_unsent) == (1, 1)
    assert (keyed["lt2", "LT", 2024].statements_sent, keyed["lt2", "LT", 2024].statements_unsent) == (0, 1)
    assert keyed["default", "LT", 2025].statements_sent is None  # none recorded for 2025
    rows = {(r[0], r[2]): r[-1] for r in board_cells(lhtml.fromstring(board.board_page(view)), "board-prod")}
    assert rows["default Demo Marketplace UAB", "2024"] == "1 sent, 1 unsent (due 2025-01-31)"
    assert rows["lt2 Second Market UAB", "2024"] == "0 sent, 1 unsent (due 2025-01-31)"
    assert rows["lt2 Second Market UAB", "2025"] == "none recorded (due 2026-01-31)"

    # the single operator's configuration: the ledger holds lt2's messages, so the board still
    # keeps them apart (the default operator's filing expected); no configuration: the same
    single = board.board_view(
        board.Sources(ledger_url, None), TODAY, {"DAC7_CONFIG": str(write_config(tmp_path / "one.toml"))}
    )
    assert [(r.operator, r.authority, r.year) for r in single.of("prod")] == [
        ("default", "LT", 2026),
        ("default", "LT", 2025),
        ("default", "LT", 2024),
        ("lt2", "LT", 2024),
    ]
    assert single.operator_names == {}
    unknown = board.board_view(board.Sources(ledger_url, None), TODAY, {})
    assert [(r.operator, r.year) for r in unknown.of("prod")] == [("default", 2024), ("lt2", 2024)]


def test_a_single_operators_board_adds_up_the_rows_as_before(board: Any, ledger: Ledger) -> None:
    """``board_rows`` without ``operators``: one row per environment, authority and year, whichever
    operator's messages it holds (a single operator's board); with them, a row per operator."""
    publish(Filer(ledger, environment="prod", authority="LT", year=2025), {"S1": 1}, datetime(2026, 1, 20))
    publish(
        Filer(ledger, environment="prod", authority="LT", year=2025, operator_id="lt2"),
        {"S1": 1},
        datetime(2026, 1, 21),
    )
    [summed] = board.board_rows(board.read_tallies(ledger), filing_state="LT")
    assert (summed.operator, summed.filed, summed.first_filed) == (None, 2, datetime(2026, 1, 20))
    apart = board.board_rows(
        board.read_tallies(ledger), filing_state="LT", operators=[("lt2", "LT"), ("default", "LT")]
    )
    assert [(r.operator, r.filed, r.first_filed) for r in apart] == [
        ("lt2", 1, datetime(2026, 1, 21)),
        ("default", 1, datetime(2026, 1, 20)),
    ]
    page = board.board_page(board.Board(TODAY, tuple(board.board_rows([], filing_state="LT", years=[2025])), "LT"))
    assert "Operator" not in page and "Per authority and reporting year" in page
