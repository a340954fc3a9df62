"""Transmission from a DAG run (``dag.test()``), against the local DIP server of the test suite.

1. A production filing for DE: approved by a second person through Airflow's API (the machinery
   of ``test_four_eyes``), signed and transmitted to the DIP server's production URL; ``protocol``
   defers to ``ProtocolTrigger``, which ``dag.test()`` runs inline (Airflow 3.3:
   ``_run_task(..., run_triggerer=True)`` runs a deferred task's trigger in the same process, then
   resumes the task in ``execute_complete``; a real triggerer process: ``test_protocol_triggerer``);
   the trigger polls until the protocol is listed; the partial rejection is applied to the ledger.
   The credentials come from the Connection of ``DAC7_DIP_CONN_ID`` (``AIRFLOW_CONN_*``) and never
   reach XCom. Then the correcting run, a second ``dag.test()`` run of the same year, approved
   again: the ledger plans a DPI402 that carries the rejected seller record alone, as a
   correction (OECD2, its CorrDocRefId the rejected DocRefId, a new DocRefId), with the
   PlatformOperator resent (OECD0); transmitted to the DIP server and accepted; the ledger shows
   the first message partially rejected and the second accepted, and the rejection corrected.
2. A test filing for DE whose upload the DIP refuses with a 400: ``transmit`` fails at once with
   the server's words, not retried, and the transfer was aborted.
3. A test filing for FR goes to the outbox: a package with its checklist, no protocol to wait for.

The demo marketplace is the source; the demo configuration files in the member state named by
``nexus_country``. Each run takes 20-40 s (the first test makes two).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dip_server import DipServer, make_credentials
from test_dac7_annual import fresh_dag, task_states, xcoms
from test_four_eyes import REVIEWER, Paths, api, approval  # noqa: F401 - api: a fixture

REPO = Path(__file__).resolve().parents[2]
DPI = "urn:oecd:ties:dpi:v1"
STF = "urn:oecd:ties:dpistf:v1"
YEAR = 2025
CONN_ID = "dac7_bzst_dip"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from dac7_demo import generate_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('source') / 'marketplace.db'}"
    generate_demo(url, sellers=200, seed=7, year=YEAR, replace=True)
    return url


@pytest.fixture(scope="module")
def creds() -> tuple[str, str, str]:
    return make_credentials()


@pytest.fixture
def dip(creds: tuple[str, str, str]) -> Iterator[DipServer]:
    with DipServer(creds[0], creds[2]) as server:
        yield server


def filing_config(path: Path, state: str, extra: str) -> Path:
    """The demo configuration filing in ``state``, with ``extra`` appended."""
    demo = (REPO / "dac7.toml").read_text(encoding="utf-8")
    line = 'nexus = "RPONEX1"            # RPONEX1 ... RPONEX5'
    assert demo.count(line) == 1, "dac7.toml changed"
    path.write_text(demo.replace(line, f'{line}\nnexus_country = "{state}"') + extra, encoding="utf-8")
    return path


def environment(
    mp: pytest.MonkeyPatch, tmp: Path, source: str, config: Path, creds: tuple[str, str, str] | None = None
) -> Paths:
    p = Paths(tmp / "out", tmp / "staging", f"sqlite:///{tmp / 'dac7-ledger.sqlite3'}")
    mp.setenv("DAC7_CONFIG", str(config))
    mp.setenv("DAC7_SOURCE_URL", source)
    mp.setenv("DAC7_OUT_DIR", str(p.out))
    mp.setenv("DAC7_STAGING_DIR", str(p.staging))
    mp.setenv("DAC7_LEDGER_URL", p.ledger_url)
    for name in ("DAC7_DIP_CLIENT_ID", "DAC7_DIP_PRIVATE_KEY", "DAC7_DIP_CERTIFICATE"):
        mp.delenv(name, raising=False)
    if creds:
        cid, key, cert = creds
        conn = {"conn_type": "generic", "login": cid, "password": key, "extra": {"certificate": cert}}
        mp.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        mp.setenv("DAC7_DIP_CONN_ID", CONN_ID)
    return p


def dip_config(path: Path, *, test_url: str, prod_url: str) -> Path:
    extra = (
        '\n[authorities.DE]\nbzst_id = "BZST0012345678"\n'
        f'\n[transmission]\ndip_test_url = "{test_url}"\ndip_prod_url = "{prod_url}"\npoll_seconds = 5\n'
    )
    return filing_config(path, "DE", extra)


def filing_states(p: Paths, authority: str) -> list[Any]:
    from reporting.ledger import open_ledger

    with open_ledger(p.ledger_url, create=False) as ledger:
        return ledger.filing_states(YEAR, authority)


def test_a_de_production_filing_is_transmitted_its_rejection_applied_and_corrected_by_the_next_run(
    airflow_db: None,
    api: Any,  # noqa: F811 - the fixture imported above
    demo_db: str,
    dip: DipServer,
    creds: tuple[str, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reporting.ledger import open_ledger

    # a test filing would go to port 9, where nothing listens: production goes to production only
    config = dip_config(tmp_path / "de.toml", test_url="http://127.0.0.1:9", prod_url=dip.url)
    p = environment(monkeypatch, tmp_path, demo_db, config, creds)
    dip.reject_first = 1  # the protocol rejects the first seller record
    dip.protocol_after_polls = 1  # ... and is listed at the second poll only
    logical_date = datetime(2026, 1, 15, 6, tzinfo=UTC)
    with approval(api, [(REVIEWER, "Approve")], logical_date, p):
        dr = fresh_dag().test(logical_date=logical_date, run_conf={"environment": "prod"})
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert states["approve"] == states["publish"] == states["transmit"] == states["protocol"] == {"success"}
    labels = {ti.task_id: ti.rendered_map_index for ti in dr.get_task_instances() if ti.map_index >= 0}
    assert labels["transmit"] == labels["protocol"] == "DE"

    # the DIP server received one signed transfer (its own checks of the assertion and the
    # signature found nothing wrong), asked for the protocol list twice, and the receipt was confirmed
    assert dip.errors == []
    [transfer] = dip.transfers.values()
    assert (transfer.environment, transfer.state, transfer.confirmed) == ("PROD", "finished", True)
    assert dip.ops().count("list") >= 2
    assert dip.ops()[-1] == "confirm"

    [state] = filing_states(p, "DE")
    assert state.message_ref_id == transfer.message_ref_id and state.ticket == transfer.ticket
    assert [(s.state, s.by) for s in state.steps] == [
        ("rendered", "dag_test"),
        ("approved", REVIEWER),
        ("published", "dag_test"),
        ("transmitted", "dag_test"),
        ("partially_rejected", "DE (de-dip-protocol)"),
    ]
    assert state.rejected_records == 1
    with open_ledger(p.ledger_url, create=False) as ledger:
        statuses = [r.status for r in ledger.records(state.message_ref_id) if r.kind == "seller"]
        events = [e.event for e in ledger.transmissions(state.message_ref_id)]
    assert statuses.count("rejected") == 1 and statuses.count("accepted") == len(statuses) - 1
    assert events == ["started", "transmitted", "confirmed"]
    kept = p.out / str(YEAR) / "protocols" / "DE" / f"{transfer.ticket}.xml"
    assert kept.stat().st_mode & 0o777 == 0o600

    # XCom: ids and tickets; never the key, the certificate or a token
    values = xcoms(dr)
    transmitted = json.loads(values[("transmit", 0)])
    assert transmitted["tickets"] == {state.message_ref_id: transfer.ticket}
    assert transmitted["awaiting"] == [state.message_ref_id]
    protocol = json.loads(values[("protocol", 0)])
    assert protocol == {
        "applied": [{"message_ref_id": state.message_ref_id, "outcome": "partially_rejected", "rejected_records": 1}],
        "waiting": [],
    }
    everything = "".join(values.values())
    for secret in ("PRIVATE KEY", "CERTIFICATE", *dip.tokens):
        assert secret not in everything

    # the correcting run: a second DAG run of the year, approved again, files the rejected record alone
    rejected = transfer.seller_doc_ref_ids[0]  # reject_first: the protocol rejected the first seller record
    dip.reject_first = 0
    second_date = datetime(2026, 2, 10, 6, tzinfo=UTC)
    with approval(api, [(REVIEWER, "Approve")], second_date, p):
        # the first run's as-of day (the day before its logical date): the same figures, so that what
        # changed since is the authority's rejection alone
        dr2 = fresh_dag().test(logical_date=second_date, run_conf={"environment": "prod", "as_of": "2026-01-14"})
    states2 = task_states(dr2)
    assert str(dr2.state) == "success", states2
    assert states2["approve"] == states2["transmit"] == states2["protocol"] == {"success"}
    assert dip.errors == []
    [correction] = [t for t in dip.transfers.values() if t.ticket != transfer.ticket]
    assert (correction.environment, correction.state, correction.confirmed) == ("PROD", "finished", True)

    # what the second message says: a correction of the rejected record, nothing else of the sellers
    doc = correction.document
    assert doc is not None
    assert doc.findtext(f".//{{{DPI}}}MessageSpec/{{{DPI}}}MessageTypeIndic") == "DPI402"
    [seller] = list(doc.iter(f"{{{DPI}}}ReportableSeller"))
    spec = seller.find(f"{{{DPI}}}DocSpec")
    assert spec is not None
    assert spec.findtext(f"{{{STF}}}DocTypeIndic") == "OECD2"
    assert spec.findtext(f"{{{STF}}}CorrDocRefId") == rejected
    new_id = spec.findtext(f"{{{STF}}}DocRefId")
    assert new_id and new_id not in transfer.doc_ref_ids
    [po_spec] = [e.find(f"{{{DPI}}}DocSpec") for e in doc.iter(f"{{{DPI}}}PlatformOperator")]
    assert po_spec is not None and po_spec.findtext(f"{{{STF}}}DocTypeIndic") == "OECD0"  # resent, not changed
    assert correction.seller_doc_ref_ids == [new_id]

    # the ledger: the rejected record superseded by its correction, which the authority accepted
    first, second = filing_states(p, "DE")
    assert (first.message_ref_id, second.message_ref_id) == (state.message_ref_id, correction.message_ref_id)
    assert (first.state, second.state) == ("partially_rejected", "accepted")
    assert [(s.state, s.by) for s in second.steps] == [
        ("rendered", "dag_test"),
        ("approved", REVIEWER),
        ("published", "dag_test"),
        ("transmitted", "dag_test"),
        ("accepted", "DE (de-dip-protocol)"),
    ]
    with open_ledger(p.ledger_url, create=False) as ledger:
        records = {r.doc_ref_id: r for r in ledger.records(state.message_ref_id)}
        fixed = {r.doc_ref_id: r for r in ledger.records(correction.message_ref_id)}
        [rejection] = ledger.rejections(environment="prod", year=YEAR)
        filed = ledger.filed_times(YEAR, "DE", "prod")
    assert (records[rejected].status, records[rejected].superseded_by) == ("superseded", new_id)
    assert (fixed[new_id].status, fixed[new_id].corr_doc_ref_id, fixed[new_id].doc_type) == (
        "accepted",
        rejected,
        "correction",
    )
    assert (rejection.doc_ref_id, rejection.corrected) == (rejected, True)
    assert rejection.corrected_at == filed[correction.message_ref_id]  # corrected when the correction was sent
    protocol2 = json.loads(xcoms(dr2)[("protocol", 0)])
    assert protocol2["applied"] == [
        {"message_ref_id": correction.message_ref_id, "outcome": "accepted", "rejected_records": 0}
    ]


def test_a_refused_upload_fails_transmit_at_once_with_the_servers_words(
    airflow_db: None,
    demo_db: str,
    dip: DipServer,
    creds: tuple[str, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = dip_config(tmp_path / "de.toml", test_url=dip.url, prod_url="http://127.0.0.1:9")
    p = environment(monkeypatch, tmp_path, demo_db, config, creds)
    dip.fail("upload", 400, "Die XML-Datei entspricht nicht dem Schema")
    capfd.readouterr()
    dr = fresh_dag().test(logical_date=datetime(2026, 1, 15, 6, tzinfo=UTC))
    output = "".join(capfd.readouterr())
    states = task_states(dr)
    assert str(dr.state) == "failed"
    assert states["publish"] == {"success"} and states["finalize"] == {"success"}  # the filing is published
    assert states["transmit"] == {"failed"} and states["protocol"] == {"upstream_failed"}
    [ti] = [ti for ti in dr.get_task_instances() if ti.task_id == "transmit"]
    assert ti.try_number == 1  # a 4xx is permanent: no retry
    assert "DIP upload: HTTP 400" in output and "Die XML-Datei entspricht nicht dem Schema" in output
    # one transfer, started on the test host and aborted; the ledger says so, and the message waits
    [transfer] = dip.transfers.values()
    assert transfer.state == "aborted"
    assert [op for op in dip.ops() if op != "token"] == ["start", "upload", "abort"]
    [state] = filing_states(p, "DE")
    assert state.state == "published" and state.environment == "test"


def test_an_fr_test_filing_goes_to_the_outbox_with_its_checklist(
    airflow_db: None, demo_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = filing_config(tmp_path / "fr.toml", "FR", '\n[authorities.FR]\nsiren = "123456789"\n')
    p = environment(monkeypatch, tmp_path, demo_db, config)
    dr = fresh_dag().test(logical_date=datetime(2026, 1, 15, 6, tzinfo=UTC))
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert states["transmit"] == {"success"}
    assert states["protocol"] == {"skipped"}  # a portal upload's answer comes with status-import
    [state] = filing_states(p, "FR")
    assert state.state == "published" and state.channel == "outbox"
    folder = p.out / str(YEAR) / "outbox" / "FR" / state.message_ref_id
    checklist = json.loads((folder / "checklist.json").read_text(encoding="utf-8"))
    assert {c["check"] for c in checklist["checks"]} == {"unchanged", "naming", "encryption", "size"}
    assert f"dac7 ledger mark-uploaded {state.message_ref_id}" in (folder / "checklist.md").read_text("utf-8")
    assert os.stat(folder).st_mode & 0o077 == 0
