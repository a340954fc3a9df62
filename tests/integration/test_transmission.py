"""Transmission end to end from the command line: a production filing for DE approved, signed,
transmitted to the local DIP server, its protocol fetched and a partial rejection applied; the
next run corrects the rejected record. An FR filing through the outbox: the package and its
checklist, marked uploaded, then its status import."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from builders import Marketplace, write_config
from dip_server import DipServer, make_credentials

from reporting import pipeline
from reporting.cli import main
from reporting.ledger import open_ledger

YEAR = 2025
BZST = '\n[authorities.DE]\nbzst_id = "BZST0012345678"\n'
SIREN = "123456789"


@pytest.fixture(scope="module")
def creds() -> tuple[str, str, str]:
    return make_credentials()


def _run(tmp: Path, cfg: Path, m: Marketplace, *, stamp: datetime, name: str) -> str:
    run_dir = pipeline.prepare(
        config_path=cfg,
        source_url=m.write(f"sqlite:///{tmp}/source-{name}.db"),
        year=YEAR,
        as_of=date(2026, 1, 31),
        timestamp=stamp,
        out_dir=tmp / "out",
        staging_root=tmp / f"st-{name}",
        ledger_url=f"sqlite:///{tmp}/ledger.sqlite3",
    )
    for stage in (pipeline.extract, pipeline.aggregate, pipeline.apply_rules, pipeline.render, pipeline.validate):
        stage(run_dir)
    return run_dir


def _market() -> Marketplace:
    m = Marketplace()
    for seller in ("S1", "S2"):
        m.seller(seller)
        m.sales(seller, 30, 10_00)
    return m


def _cli(tmp: Path, cfg: Path, *args: str) -> int:
    return main([*args, "--ledger", f"sqlite:///{tmp}/ledger.sqlite3", "--config", str(cfg)])


def test_a_de_production_filing_through_the_dip_with_a_partial_rejection_corrected_next_run(
    tmp_path: Path, creds: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cid, _key, cert = creds
    for name, value in zip(("DAC7_DIP_CLIENT_ID", "DAC7_DIP_PRIVATE_KEY", "DAC7_DIP_CERTIFICATE"), creds, strict=True):
        monkeypatch.setenv(name, value)
    with DipServer(cid, cert) as prod:
        # a test filing would go to port 9 (nothing listens): production goes to production only
        extra = BZST + f'\n[transmission]\ndip_prod_url = "{prod.url}"\ndip_test_url = "http://127.0.0.1:9"\n'
        cfg = write_config(tmp_path / "dac7.toml", environment="prod", filing_state="DE", extra=extra)
        run_dir = _run(tmp_path, cfg, _market(), stamp=datetime(2026, 1, 31, 8, 0), name="first")
        pipeline.record_approval(run_dir, approved_by="jonas", triggered_by="ana")
        pipeline.publish(run_dir, "DE", triggered_by="ana", require_approval=True)
        with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
            [msg] = ledger.messages(authority="DE")
            s2 = next(r.doc_ref_id for r in ledger.records(msg.message_ref_id) if r.seller_key == "S2")
        prod.reject = {s2}
        assert _cli(tmp_path, cfg, "transmit", "--out", str(tmp_path / "out"), "--by", "ana") == 0
        assert "transmitted to the BZSt DIP (prod)" in capsys.readouterr().out
        [transfer] = prod.transfers.values()
        assert (transfer.environment, transfer.message_ref_id, transfer.state) == (
            "PROD",
            msg.message_ref_id,
            "finished",
        )
        assert transfer.our_ticket == msg.transfer_id
        assert prod.errors == []
        # sent once: a second transmit finds nothing to send
        assert _cli(tmp_path, cfg, "transmit", "--out", str(tmp_path / "out"), "--by", "ana") == 0
        assert "nothing to transmit" in capsys.readouterr().out
        assert _cli(tmp_path, cfg, "protocol-fetch", "--out", str(tmp_path / "out"), "--by", "ana") == 0
        assert (
            f"{msg.message_ref_id}: partially rejected, message accepted; 1 record(s) rejected"
            in capsys.readouterr().out
        )
        assert transfer.confirmed
        kept = tmp_path / "out" / "protocols" / "DE" / f"{transfer.ticket}.xml"
        assert kept.stat().st_mode & 0o777 == 0o600
        with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
            [state] = ledger.filing_states(authority="DE")
            assert [(s.state, s.by) for s in state.steps] == [
                ("rendered", "ana"),
                ("approved", "jonas"),
                ("published", "ana"),
                ("transmitted", "ana"),
                ("partially_rejected", "DE (de-dip-protocol)"),
            ]
            assert state.ticket == transfer.ticket and state.rejected_records == 1
            assert {r.seller_key: r.status for r in ledger.records(msg.message_ref_id) if r.seller_key} == {
                "S1": "accepted",
                "S2": "rejected",
            }
        # the next run files the rejected record again, nothing else; approved, transmitted, accepted
        prod.reject = set()
        run2 = _run(tmp_path, cfg, _market(), stamp=datetime(2026, 2, 10, 8, 0), name="second")
        pipeline.record_approval(run2, approved_by="jonas", triggered_by="ana")
        pipeline.publish(run2, "DE", triggered_by="ana", require_approval=True)
        assert _cli(tmp_path, cfg, "transmit", "--out", str(tmp_path / "out"), "--by", "ana") == 0
        assert _cli(tmp_path, cfg, "protocol-fetch", "--out", str(tmp_path / "out"), "--by", "ana") == 0
        assert ": accepted, message accepted" in capsys.readouterr().out
        with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
            second = ledger.messages(authority="DE")[-1]
            assert {r.seller_key for r in ledger.records(second.message_ref_id) if r.kind == "seller"} == {"S2"}
            assert [s.state for s in ledger.filing_states(authority="DE")] == ["partially_rejected", "accepted"]
        assert len(prod.transfers) == 2


def test_a_production_filing_without_a_recorded_approval_is_never_transmitted(
    tmp_path: Path, creds: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in zip(("DAC7_DIP_CLIENT_ID", "DAC7_DIP_PRIVATE_KEY", "DAC7_DIP_CERTIFICATE"), creds, strict=True):
        monkeypatch.setenv(name, value)
    with DipServer(creds[0], creds[2]) as prod:
        extra = BZST + f'\n[transmission]\ndip_prod_url = "{prod.url}"\n'
        cfg = write_config(tmp_path / "dac7.toml", environment="prod", filing_state="DE", extra=extra)
        run_dir = _run(tmp_path, cfg, _market(), stamp=datetime(2026, 1, 31, 8, 0), name="x")
        pipeline.publish(run_dir, "DE")  # dac7 run's own publish: no approval step
        assert _cli(tmp_path, cfg, "transmit", "--out", str(tmp_path / "out"), "--by", "ana") == 1
        assert "has no recorded approval" in capsys.readouterr().err
        assert prod.calls == []


def test_an_fr_filing_through_the_outbox_marked_uploaded_then_its_status_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path / "dac7.toml", filing_state="FR", extra=f'\n[authorities.FR]\nsiren = "{SIREN}"\n')
    run_dir = _run(tmp_path, cfg, _market(), stamp=datetime(2026, 1, 31, 8, 0), name="fr")
    pipeline.publish(run_dir, "FR")
    out = tmp_path / "out"
    assert _cli(tmp_path, cfg, "transmit", "--out", str(out), "--by", "ana") == 0
    assert "NOT ready: see its checklist" in capsys.readouterr().out  # no DGFiP key configured
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        [msg] = ledger.messages(authority="FR")
    folder = out / "outbox" / "FR" / msg.message_ref_id
    checklist = json.loads((folder / "checklist.json").read_text())
    assert {c["check"]: c["ok"] for c in checklist["checks"]} == {
        "unchanged": True,
        "naming": True,
        "encryption": False,
        "size": True,
    }
    name = Path(msg.file_name).name
    assert checklist["files"][0]["name"] == name and name.startswith("DPIDAC7_2025_123456789_")
    assert (folder / name).stat().st_mode & 0o777 == 0o600
    assert f"dac7 ledger mark-uploaded {msg.message_ref_id}" in (folder / "checklist.md").read_text()
    ledger_args = ["--ledger", f"sqlite:///{tmp_path}/ledger.sqlite3"]
    assert main(["ledger", "mark-uploaded", msg.message_ref_id, "--by", "marie", *ledger_args]) == 0
    assert main(["ledger", "mark-uploaded", msg.message_ref_id, "--by", "marie", *ledger_args]) == 1
    assert "is never sent twice" in capsys.readouterr().err
    status = tmp_path / "status.xml"
    status.write_text(
        '<dsm:DAC7StatusMessage xmlns:dsm="urn:oecd:ties:dsm:v1" version="1.0"><dsm:MessageSpec>'
        "<dsm:MessageRefId>FR-STATUS-1</dsm:MessageRefId></dsm:MessageSpec><dsm:DSMBody><dsm:OriginalMessage>"
        f"<dsm:OriginalMessageRefID>{msg.message_ref_id}</dsm:OriginalMessageRefID></dsm:OriginalMessage>"
        "<dsm:ValidationResult><dsm:Status>Accepted</dsm:Status></dsm:ValidationResult></dsm:DSMBody>"
        "</dsm:DAC7StatusMessage>"
    )
    assert main(["status-import", str(status), *ledger_args]) == 0
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        [state] = ledger.filing_states(authority="FR")
    assert [(s.state, s.by) for s in state.steps][-3:] == [
        ("published", f"run {state.steps[0].by.removeprefix('run ')}"),
        ("uploaded", "marie"),
        ("accepted", "FR (eu-dac7-status)"),
    ]
    assert state.channel == "outbox"
