"""The DAC7 board and the upload of a status document, in a real Airflow, seen by a real Chromium.

A filing ledger of this test holds a production message to LT for 2025 (three sellers, published
and marked uploaded on 20 January 2026: filed) and a test-environment message. An ``airflow
api-server`` (a separate process with an explicit environment, as in ``test_ui_view.py``, whose
helpers and users this reuses: ``compliance`` with the role op, ``auditor`` with the role viewer)
shows the view.

In Chromium, the compliance officer logs in through Airflow's login page, opens the board, sees
the LT 2025 row filed in time and waiting for the authority's status, chooses a status document
in the upload form (an EU DAC7 status message that rejects one seller record) and imports it:
the answer says what was imported, and the row turns into a warning with one rejected record.
The same document again is "already imported". The viewer sees the board without a form, with a
sentence instead, and is refused an upload; a POST without the form's token, or from another
site, is refused with a sentence and imports nothing. Each page is photographed: with
``DAC7_SCREENSHOTS_DIR=docs/img`` the images of ``docs/desk-board.md`` are renewed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from airflow_stack import api_server, free_port, stop, wait_until_healthy
from browser import Chromium, decode_png
from builders import write_config
from integration.test_ledger_db import Filer, current
from integration.test_ledger_lifecycle import status_message
from ledger_filing import send
from lxml import etree
from test_ui_view import AUDITOR, FRAME, OUTSIDER, ROLES, USER, airflow_env, log_in, session_of, wait_for

from reporting.ledger import open_ledger

YEAR = 2025


@dataclass(frozen=True)
class BoardStack:
    base: str
    passwords: dict[str, str]
    log: Path
    ledger: str
    message_ref_id: str  # the production message to LT
    rejected_doc_ref_id: str  # the seller record the status document rejects
    status: Path  # that status document


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoardStack]:
    tmp = tmp_path_factory.mktemp("ui-board")
    home, ledger = tmp / "airflow-home", f"sqlite:///{tmp / 'ledger.sqlite3'}"
    home.mkdir()
    passwords = {user: secrets.token_urlsafe(12) for user in ROLES}
    (home / "passwords.json").write_text(json.dumps(passwords), encoding="utf-8")
    config = write_config(tmp / "dac7.toml")  # the demo operator: files in LT
    config.write_text(config.read_text(encoding="utf-8") + f'\n[ledger]\nurl = "{ledger}"\n', encoding="utf-8")
    with open_ledger(ledger) as led:
        prod = Filer(led, environment="prod", authority="LT", year=YEAR)
        [ref] = prod.record(prod.plan(current(sellers={"S1": 1, "S2": 1, "S3": 1})))
        led.mark_published(ref, at=datetime(2026, 1, 20, 10))
        send(led, ref, datetime(2026, 1, 20, 11), actor="compliance")  # filed means sent
        rejected = next(r.doc_ref_id for r in led.records(ref) if r.seller_key == "S2")
        Filer(led, environment="test", authority="LT", year=YEAR).file(current(sellers={"S1": 1}))
    status = tmp / "status-LT-2025.xml"
    status.write_bytes(etree.tostring(status_message(ref, [rejected]), xml_declaration=True, encoding="UTF-8"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = airflow_env(home, port) | {"DAC7_CONFIG": str(config), "DAC7_OUT_DIR": str(tmp / "out")}
    log = tmp / "api-server.log"
    server = api_server(env, port, log)
    try:
        wait_until_healthy(server, base, log)
        yield BoardStack(base, passwords, log, ledger, ref, rejected, status)
    finally:
        stop(server)


def row_text(browser: Chromium, table: str, *words: str) -> str:
    """The text of the first row of a board table that holds every one of ``words``."""
    found = browser.evaluate(
        f"[...document.querySelectorAll('#{table} tr')].map(tr => tr.innerText)"
        f".find(t => {json.dumps(list(words))}.every(w => t.includes(w)))"
    )
    assert found, (table, words, browser.evaluate("document.body.innerText.slice(0, 2000)"))
    return str(found)


def choose_file(browser: Chromium, selector: str, path: Path) -> None:
    """Put a file into a file input, as a user choosing it in the file dialog."""
    found = browser.send("Runtime.evaluate", expression=f"document.querySelector({json.dumps(selector)})")
    browser.send("DOM.setFileInputFiles", files=[str(path)], objectId=found["result"]["objectId"])


def shot(browser: Chromium, name: str, tmp_path: Path) -> None:
    """A screenshot of the page: into ``$DAC7_SCREENSHOTS_DIR`` when set (``docs/img`` to renew
    the documentation's images), else beside the test's files, so that a test run leaves the
    checkout unchanged."""
    folder = Path(os.environ.get("DAC7_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    png = browser.screenshot()
    assert decode_png(png).width == browser.evaluate("window.innerWidth")
    (folder / name).write_bytes(png)


def upload(base: str, cookie: str | None, data: bytes, fields: dict[str, str], origin: str | None) -> tuple[int, str]:
    """A multipart POST to the import, as a page elsewhere (or a script) could send it."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="s.xml"\r\n'
        "Content-Type: application/xml\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    headers |= {"Cookie": cookie} if cookie else {}
    headers |= {"Origin": origin} if origin else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(f"{base}/dac7/status-import", data=body, headers=headers, method="POST")
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.slow
def test_a_compliance_officer_uploads_a_status_document_on_the_board(stack: BoardStack, tmp_path: Path) -> None:
    base, ref = stack.base, stack.message_ref_id
    with Chromium.launch(tmp_path / "chromium", width=1500, height=1000) as browser:
        # the board inside Airflow's UI (the DAC7 view's iframe), at the address the UI gives it
        log_in(browser, base, stack.passwords[USER], "/plugin/dac7/dac7/board")
        wait_for(browser, f"{FRAME}?.querySelector('#board-prod')", "the board in Airflow's UI")
        shot(browser, "board-in-airflow.png", tmp_path)
        # then on its own, as the rest of this test reads it
        browser.navigate(f"{base}/dac7/board")
        wait_for(browser, "document.querySelector('#board-prod')", "the board")
        assert browser.evaluate("document.title") == "DAC7 deadlines and statuses"
        row = row_text(browser, "board-prod", "LT Lithuania", str(YEAR))
        assert "2026-01-31" in row and "filed 2026-01-20, in time" in row, row
        assert "filed: awaiting the authority's status" in row and "none recorded" in row, row
        assert "not filed yet" in row_text(browser, "board-prod", "LT Lithuania", str(YEAR + 1))
        # the calendar: each item of the filing, its state and its source
        calendar = browser.evaluate("document.querySelector('#filing-calendar').innerText")
        for words in ("seller statement", "correction", "registration renewal", "Europe/Vilnius", "Article 8ac(2)"):
            assert words in calendar, words
        assert "LT Lithuania" in row_text(browser, "board-test", "LT Lithuania", str(YEAR))
        sources = browser.evaluate("document.querySelector('#deadlines').innerText")
        assert "Article 8ac(2)" in sources and "2021/514" in sources
        shot(browser, "board-overview.png", tmp_path)

        # the compliance officer chooses the authority's answer and imports it
        choose_file(browser, "#status-import input[type=file]", stack.status)
        browser.evaluate("document.querySelector('#status-import').requestSubmit()")
        wait_for(browser, "document.querySelector('#import-result')", "the import's answer")
        said = browser.evaluate("document.querySelector('#import-result').innerText")
        assert f"Imported: the authority accepted {ref} but rejected 1 record." in said, said
        assert (
            f"rejected DocRefIds {stack.rejected_doc_ref_id}" in said
            and "Error codes from the authority: 40080" in said
        )
        assert "The message is now accepted; its records: 3 accepted, 1 rejected." in said, said
        row = row_text(browser, "board-prod", "LT Lithuania", str(YEAR))
        assert "warning: 1 record rejected" in row and "1 (1 record rejected)" in row and "40080" in row, row
        assert browser.evaluate("location.pathname") == "/dac7/status-import"
        shot(browser, "board-import.png", tmp_path)

        # the same document again: nothing changes, and the page says so
        choose_file(browser, "#status-import input[type=file]", stack.status)
        browser.evaluate("document.querySelector('#status-import').requestSubmit()")
        wait_for(
            browser,
            "document.querySelector('#import-result')?.innerText.includes('already imported')",
            "the second answer",
        )
        session = session_of(browser, base)

    with open_ledger(stack.ledger, create=False) as ledger:
        message = ledger.message(ref)
        assert (message.status, message.rejected_records) == ("accepted", 1)
        assert [e.code for e in ledger.errors(ref)] == ["40080"]  # imported once
    digest = hashlib.sha256(stack.status.read_bytes()).hexdigest()
    server_log = stack.log.read_text(encoding="utf-8", errors="replace")
    assert f"DAC7 status import by {USER}: document sha256 {digest}, message {ref}, partially_rejected" in server_log
    assert "(already imported, nothing changed)" in server_log

    # forged: the session's cookie without the form's token, or from a page of another site
    data = stack.status.read_bytes()
    status, body = upload(base, session, data, {}, origin=base)
    assert status == 403 and "The upload form has expired or was not made for your login" in body
    status, body = upload(base, session, data, {"csrf_token": "0" * 64}, origin="https://elsewhere.example")
    assert status == 403 and "did not come from the DAC7 board of this Airflow" in body
    status, body = upload(base, None, data, {}, origin=base)
    assert status == 401
    assert "Traceback" not in server_log


@pytest.mark.slow
def test_a_viewer_sees_the_board_but_cannot_upload(stack: BoardStack, tmp_path: Path) -> None:
    base = stack.base
    with Chromium.launch(tmp_path / "chromium", width=1500, height=1000) as browser:
        log_in(browser, base, stack.passwords[AUDITOR], "/dac7/board", user=AUDITOR)
        wait_for(browser, "document.querySelector('#board-prod')", "the board")
        assert browser.evaluate("document.querySelectorAll('form').length") == 0
        refused = browser.evaluate("document.querySelector('#import-refused').innerText")
        assert "may see the DAC7 board, but not import status documents" in refused
        assert "'DAC7 status import' permission" in refused and "role op or admin" in refused
        shot(browser, "board-viewer.png", tmp_path)
        session = session_of(browser, base)
    status, body = upload(base, session, stack.status.read_bytes(), {"csrf_token": "0" * 64}, origin=base)
    assert status == 403 and "may see the DAC7 board, but not import status documents" in body
    assert f"DAC7 status import refused: user {AUDITOR} has no import permission" in stack.log.read_text(
        encoding="utf-8", errors="replace"
    )


@pytest.mark.slow
def test_a_user_without_the_view_sees_no_board(stack: BoardStack, tmp_path: Path) -> None:
    with Chromium.launch(tmp_path / "chromium", width=1200, height=900) as browser:
        log_in(browser, stack.base, stack.passwords[OUTSIDER], "/dac7/board", user=OUTSIDER)
        wait_for(browser, "document.title.startsWith('403')", "the refusal")
        assert stack.message_ref_id not in browser.evaluate("document.body.innerText")
        session = session_of(browser, stack.base)
    status, body = upload(stack.base, session, stack.status.read_bytes(), {}, origin=stack.base)
    assert status == 403 and stack.message_ref_id not in body
