"""The filings page of the DAC7 view: every filing's state with who acted and when, the outbox
checklist of a filing waiting for its upload, and *Mark uploaded*.

The view's app (``dac7_plugin.create_app``) runs in this process behind a FastAPI ``TestClient``,
with Airflow's simple auth manager and users of this module (``compliance``: op, ``auditor``:
viewer), each logged in through Airflow's own ``POST /auth/token``: the same login and
permission checks as in the api-server. A ledger of this module holds a DE production message
transmitted to the DIP, its protocol applied (one record rejected), and an FR test message
published with its outbox package prepared (``checklist.json`` beside it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from airflow_stack import dac7_view_app
from integration.test_ledger_lifecycle import status_message
from ledger_filing import Filer, current
from lxml import etree

from reporting.ledger import open_ledger
from reporting.settings import operator_out_dir
from reporting.transmit.outbox import prepare_package

YEAR = 2025
USERS = {"compliance": "op", "auditor": "viewer"}
HOST = "testserver"
SPREADSHEET_TRAP = '=HYPERLINK("http://x")<b>'

pytestmark = [pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")]


@dataclass
class View:
    client: Any
    out: str
    tokens: dict[str, str]
    ledger: str
    de: str  # the DE production message, transmitted and partially rejected
    fr: str  # the FR test message, waiting for its upload
    fr2: str  # the FR test message of a further operator, waiting for its upload

    def get(self, user: str, path: str) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[user]}"})

    def post(self, user: str, path: str, data: dict[str, str], origin: str | None = f"http://{HOST}") -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        if origin:
            headers["Origin"] = origin
        return self.client.post(path, data=data, headers=headers)


def form_token(view: View, user: str) -> str:
    import dac7_board
    from airflow.api_fastapi.auth.tokens import get_signing_key

    return dac7_board.form_token(get_signing_key("api", "secret_key"), view.tokens[user])


@pytest.fixture(scope="module")
def view(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[View]:
    tmp = tmp_path_factory.mktemp("ui-filings")
    ledger = f"sqlite:///{tmp / 'ledger.sqlite3'}"
    with open_ledger(ledger) as led:
        de = Filer(led, environment="prod", authority="DE", year=YEAR)
        [de_ref] = de.record(de.plan(current(sellers={"S1": 1, "S2": 1})), run_id="run-1")
        led.record_approval([de_ref], approved_by="jonas", triggered_by="ana", at=datetime(2026, 1, 20, 9))
        led.mark_published(de_ref, at=datetime(2026, 1, 20, 10))
        led.record_transmission(de_ref, event="started", channel="dip", actor="ana", ticket="T0001")
        led.record_transmission(de_ref, event="transmitted", channel="dip", actor="ana", ticket="T0001")
        rejected = next(r.doc_ref_id for r in led.records(de_ref) if r.seller_key == "S2")
        from reporting.ledger.status import import_status_bytes

        import_status_bytes(
            led, etree.tostring(status_message(de_ref, [rejected]), xml_declaration=True, encoding="UTF-8"), name="p"
        )
        fr = Filer(led, environment="test", authority="FR", year=YEAR)
        [fr_ref] = fr.record(fr.plan(current(sellers={"S1": 1})), run_id="run-2")
        led.mark_published(fr_ref, at=datetime(2026, 1, 21, 10))
        # the outbox package as transmit writes it (no DGFiP key configured: its check fails)
        published = tmp / "out" / str(YEAR) / "FR" / f"{fr_ref}.xml"
        published.parent.mkdir(parents=True)
        published.write_bytes(b"<dpi/>")
        prepare_package(led, fr_ref, published, tmp / "out" / str(YEAR), actor="dag_test")
        # a further operator of the group: its files and package under operators/<ID>/
        fr2 = Filer(led, environment="test", authority="FR", year=YEAR, operator_id="fr_sas")
        [fr2_ref] = fr2.file(current(sellers={"S7": 1}))
        out2 = operator_out_dir(tmp / "out" / str(YEAR), "fr_sas")
        published2 = out2 / "FR" / f"{fr2_ref}.xml"
        published2.parent.mkdir(parents=True)
        published2.write_bytes(b"<dpi/>")
        prepare_package(led, fr2_ref, published2, out2, actor="dag_test")
        # a name that a spreadsheet would read as a formula, and HTML as a tag
        [it_ref] = Filer(led, environment="test", authority="IT", year=YEAR).file(current(sellers={"S1": 1}))
        led.mark_uploaded(it_ref, by=SPREADSHEET_TRAP, at=datetime(2026, 1, 22, 8))
    env = {"DAC7_LEDGER_URL": ledger, "DAC7_OUT_DIR": str(tmp / "out")}
    with dac7_view_app(tmp, USERS, env) as (client, tokens):
        yield View(client, str(tmp / "out"), tokens, ledger, de_ref, fr_ref, fr2_ref)


@pytest.fixture(autouse=True)
def view_env(view: View, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the view reads, for each test (the suite's own fixtures set a ledger per test)."""
    monkeypatch.setenv("DAC7_LEDGER_URL", view.ledger)
    monkeypatch.setenv("DAC7_OUT_DIR", view.out)


def states(view: View) -> dict[str, list[tuple[str, str | None]]]:
    with open_ledger(view.ledger, create=False) as ledger:
        return {s.message_ref_id: [(x.state, x.by) for x in s.steps] for s in ledger.filing_states(YEAR)}


def test_every_filing_shows_its_state_with_who_acted_and_when(view: View) -> None:
    page = view.get("auditor", f"/{YEAR}/filings")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="filing-states"' in html
    de_row = html[html.index(f"<code>{view.de}</code>") :].split("</tr>", 1)[0]
    assert "partially rejected" in de_row and "T0001" in de_row
    assert "<b>approved</b> by jonas 2026-01-20 09:00 UTC" in de_row
    assert "<b>transmitted</b> by ana" in de_row
    assert "<b>partially rejected</b> by DE (eu-dac7-status)" in de_row
    assert "<td class=n>1</td>" in de_row  # one rejected record
    fr_row = html[html.index(f"<code>{view.fr}</code>") :].split("</tr>", 1)[0]
    assert "<b>published</b> by tester 2026-01-21 10:00 UTC" in fr_row and "outbox" in fr_row
    # the outbox checklist of the filing waiting for its upload, escaped
    assert f'id="outbox-{view.fr}"' in html
    box = html[html.index(f'id="outbox-{view.fr}"') :].split("</section>", 1)[0]
    assert "Where: the DGFiP&#x27;s DAC7 deposit (professional space of impots.gouv.fr) (DGFiP)." in box
    assert f"File(s): {view.fr}.xml." in box
    assert "✘ <b>encryption</b>: the DGFiP takes the file gzip-compressed and OpenPGP-encrypted" in box
    # the test ledger's names are not the DGFiP's (DPIDAC7_...): the naming check says so
    assert "✘ <b>naming</b>: the file is named as the" in box and "does not follow its naming rule" in box
    assert "<li>Open the DGFiP&#x27;s DAC7 deposit" in box and "the authority&#x27;s test environment" in box
    assert f"<li>Record the upload: dac7 ledger mark-uploaded {view.fr} --by &lt;your name&gt;" in box
    assert "<li>When the authority&#x27;s answer (status message) arrives: dac7 status-import" in box
    # a viewer sees no form: a sentence instead
    assert 'action="filings"' not in html
    assert f"dac7 ledger mark-uploaded {view.fr} --by NAME" in html
    # filtered
    only_de = view.get("auditor", f"/{YEAR}/filings?authority=de").text
    assert view.de in only_de and view.fr not in only_de


def test_a_further_operators_checklist_is_read_from_its_own_folder(view: View) -> None:
    html = view.get("auditor", f"/{YEAR}/filings?authority=FR").text
    box = html[html.index(f'id="outbox-{view.fr2}"') :].split("</section>", 1)[0]
    assert f"File(s): {view.fr2}.xml." in box
    assert f"dac7 ledger mark-uploaded {view.fr2} --by NAME" in box
    # the default operator's folder holds no package of it
    assert not (operator_out_dir(f"{view.out}/{YEAR}", "default") / "outbox" / "FR" / view.fr2).exists()


def test_the_csv_is_formula_safe(view: View) -> None:
    response = view.get("auditor", f"/{YEAR}/filings.csv?environment=test&authority=IT")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["authority", "environment", "reporting_year", "message_ref_id", "state", "step", "by", "at"]
    assert [(r[0], r[5]) for r in rows[1:]] == [("IT", "rendered"), ("IT", "published"), ("IT", "uploaded")]
    assert rows[-1][6:] == ["'" + SPREADSHEET_TRAP, "2026-01-22 08:00:00"]  # kept behind a quote: never a formula
    # and escaped on the page
    page = view.get("auditor", f"/{YEAR}/filings?authority=IT").text
    assert "<b>uploaded</b> by =HYPERLINK(&quot;http://x&quot;)&lt;b&gt; 2026-01-22 08:00 UTC" in page
    assert SPREADSHEET_TRAP not in page


def test_a_viewer_cannot_mark_an_upload(view: View) -> None:
    response = view.post("auditor", f"/{YEAR}/filings", {"token": "x", "message_ref_id": view.fr})
    assert response.status_code == 403
    assert "not record an upload" in response.text
    assert states(view)[view.fr][-1][0] == "published"


@pytest.mark.parametrize(
    ("token", "origin", "words"),
    [
        (None, f"http://{HOST}", "The form has expired"),
        ("valid", "https://elsewhere.example", "did not come from the DAC7 view"),
        ("valid", None, "did not come from the DAC7 view"),
    ],
    ids=["no token", "another site", "no origin"],
)
def test_a_mark_without_the_forms_token_or_from_elsewhere_records_nothing(
    view: View, token: str | None, origin: str | None, words: str
) -> None:
    sent = form_token(view, "compliance") if token == "valid" else "forged"
    response = view.post("compliance", f"/{YEAR}/filings", {"token": sent, "message_ref_id": view.fr}, origin=origin)
    assert response.status_code == 403 and words in response.text
    assert states(view)[view.fr][-1][0] == "published"


def test_compliance_marks_the_outbox_filing_uploaded_once(view: View) -> None:
    page = view.get("compliance", f"/{YEAR}/filings").text
    assert 'action="filings"' in page
    assert f'name="message_ref_id" value="{view.fr}"' in page
    token = form_token(view, "compliance")
    response = view.post("compliance", f"/{YEAR}/filings", {"token": token, "message_ref_id": view.fr})
    assert response.status_code == 200, response.text
    assert f"{view.fr}: uploaded by compliance at " in response.text
    assert states(view)[view.fr][-1] == ("uploaded", "compliance")
    # no longer waiting: no checklist, no form; and never twice
    assert f'id="outbox-{view.fr}"' not in response.text
    again = view.post("compliance", f"/{YEAR}/filings", {"token": token, "message_ref_id": view.fr})
    assert again.status_code == 409 and "is never sent twice" in again.text
    # a transmitted message is not marked uploaded either
    de = view.post("compliance", f"/{YEAR}/filings", {"token": token, "message_ref_id": view.de})
    assert de.status_code == 409
    assert states(view)[view.de][-1][0] == "partially_rejected"
