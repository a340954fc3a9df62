"""``dac7 verify check / expire / status`` against the local VIES servers and a real ledger, and
the retention of the verification record at its boundary (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from verification_servers import ViesRestServer, ViesSoapServer, consultation_number, running

from reporting.cli import main
from reporting.ledger import Ledger, default_ledger_url, open_ledger
from reporting.ledger import schema as t
from reporting.ledger.verifications import CachedAnswer, CallRecord, record
from reporting.verification import delete_expired

KEY = "a-test-key-of-at-least-16-bytes"
BERLIN = ZoneInfo("Europe/Berlin")


def write_config(path: Path, vies: str = "") -> Path:
    path.write_text(
        f"""
[operator]
name = "Demo Platform GmbH"
tin = "12345678901"
tin_issued_by = "DE"
vat = "DE136695976"
nexus = "RPONEX1"

[operator.address]
city = "Berlin"
country = "DE"

[reporting]
timezone = "Europe/Berlin"
{vies}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def soap() -> Iterator[ViesSoapServer]:
    server = ViesSoapServer()
    with running(server):
        yield server
    assert server.errors == []


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DAC7_VERIFICATION_KEY", KEY)
    return KEY


def items_file(tmp_path: Path) -> Path:
    path = tmp_path / "items.csv"
    path.write_text(
        "seller_id,kind,country,value,seller_type\n"
        "S1,vat,DE,DE 987654321,\n"
        "S2,tin,DE,36574261809,individual\n"
        "S3,vat,DE,DE200,entity\n",  # five characters: masked as *** alone
        encoding="utf-8",
    )
    return path


def test_check_prints_masked_results_records_them_and_writes_them_owner_only(
    tmp_path: Path, soap: ViesSoapServer, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(
        tmp_path / "dac7.toml",
        f'[verification.vies]\nenabled = true\nurl = "{soap.url}"\nrate_per_second = 50\nbackoff_seconds = 0.01\n',
    )
    ledger = default_ledger_url(tmp_path)
    out = tmp_path / "results" / "verified.jsonl"
    args = ["verify", "check", "--file", str(items_file(tmp_path)), "--config", str(cfg), "--ledger", ledger]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    evidence = consultation_number("987654321")
    assert "S1  vat DE ***321  vies: verified" in printed and f"consultation number {evidence}" in printed
    assert "S2  tin DE ***809  stdnum: verified" in printed
    assert "S3  vat DE ***  vies: invalid" in printed
    assert (
        "3 identifier(s), 5 result(s): 2 stdnum invalid, 1 stdnum verified, 1 vies invalid, 1 vies verified" in printed
    )
    assert "987654321" not in printed and "36574261809" not in printed
    assert out.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(x["seller_id"], x["adapter"], x["state"]) for x in lines][:2] == [
        ("S1", "stdnum", "invalid"),
        ("S1", "vies", "verified"),
    ]
    assert "987654321" not in out.read_text(encoding="utf-8") and lines[1]["evidence"] == evidence
    # again: every answer from the cache, no request, no new record
    assert main(args) == 0
    assert capsys.readouterr().out.count("(cached)") == 5 and len(soap.requests) == 2
    with open_ledger(ledger) as led, led.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.verification_calls)).scalar_one() == 5
    # S3 resubmitted its data: its identifiers are checked again, the others come from the cache
    assert main([*args, "--refresh", "S3"]) == 0
    printed = capsys.readouterr().out
    assert "S3  vat DE ***  vies: invalid  VIES: not valid" in printed and printed.count("(cached)") == 3
    assert soap.asked("200") == 2 and soap.asked("987654321") == 1


def test_check_without_the_key_or_with_a_bad_file_or_a_switched_off_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path / "dac7.toml")
    ledger = default_ledger_url(tmp_path)
    args = ["verify", "check", "--file", str(items_file(tmp_path)), "--config", str(cfg), "--ledger", ledger]
    monkeypatch.delenv("DAC7_VERIFICATION_KEY", raising=False)
    assert main(args) == 2
    assert "DAC7_VERIFICATION_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("DAC7_VERIFICATION_KEY", KEY)
    assert main([*args, "--adapter", "vies"]) == 2
    assert "[verification.vies] enabled = true" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("seller_id,kind,country,value\nS1,vat,DE,DE987654321\nS2,iban,DE,DE987654321\n", encoding="utf-8")
    assert main(["verify", "check", "--file", str(bad), "--config", str(cfg), "--ledger", ledger]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: line 3: kind must be tin or vat; nothing was verified" in err and "987654321" not in err
    assert not Path(ledger.removeprefix("sqlite:///")).exists()  # nothing verified, no ledger made


def test_check_never_ends_in_a_traceback_when_the_service_answers_garbage(
    tmp_path: Path, soap: ViesSoapServer, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(
        tmp_path / "dac7.toml", f'[verification.vies]\nenabled = true\nurl = "{soap.url}"\nbackoff_seconds = 0.01\n'
    )
    soap.script["987654321"] = ["badgzip"]  # HTTP 502, Content-Encoding gzip, a plain body
    ledger = default_ledger_url(tmp_path)
    args = ["verify", "check", "--file", str(items_file(tmp_path)), "--config", str(cfg), "--ledger", ledger]
    assert main([*args, "--adapter", "vies"]) == 0
    out = capsys.readouterr().out
    assert "S1  vat DE ***321  vies: unverified  an answer that could not be read (DecodingError); gave up" in out
    assert "S3  vat DE ***  vies: unverified  not asked: " in out  # the service failed for good in this batch
    assert "S2  tin DE ***809  not checked: no adapter of this batch checks a tin of DE" in out  # not left out
    assert out.rstrip().endswith("; 1 identifier(s) not checked")
    with open_ledger(ledger) as led, led.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.verification_calls)).scalar_one() == 4


def made(at: datetime, n: int) -> CallRecord:
    return CallRecord(at, "vies", "vat", "DE", f"{n:064x}", "***100", f"S{n}", 1, "verified", "ok", "W", None, "VIES")


def cached(at: datetime, n: int) -> CachedAnswer:
    return CachedAnswer("vies", f"{n:064x}", "vat", "DE", "verified", "ok", "W", None, "VIES", at)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = default_ledger_url(tmp_path) if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    with open_ledger(url) as led:
        yield led


def test_the_retention_ends_ten_years_after_the_end_of_the_year_at_its_boundary(any_ledger: Ledger) -> None:
    last_of_2015 = datetime(2015, 12, 31, 23, 59, 59, tzinfo=BERLIN)  # 22:59:59 UTC
    first_of_2016 = datetime(2016, 1, 1, 0, 0, 0, tzinfo=BERLIN)  # 2015-12-31 23:00 UTC
    rows = [(last_of_2015, 1), (first_of_2016, 2), (datetime(2015, 6, 1, tzinfo=UTC), 3)]
    record(any_ledger.engine, [made(at, n) for at, n in rows], [cached(at, n) for at, n in rows])
    new_year_2026 = datetime(2026, 1, 1, tzinfo=BERLIN)

    def left() -> tuple[list[str], list[str]]:
        with any_ledger.engine.connect() as conn:
            calls = conn.execute(sa.select(t.verification_calls.c.seller_id).order_by("seller_id")).scalars().all()
            hashes = conn.execute(sa.select(t.verification_cache.c.identifier_hash)).scalars().all()
        return list(calls), sorted(h[-1] for h in hashes)

    # a second before the new year: a record of 2015 is still kept (ten years from the end of 2015)
    early = delete_expired(any_ledger.engine, before=new_year_2026 - timedelta(seconds=1), zone=BERLIN)
    assert (early.calls, early.cached) == (0, 0) and left() == (["S1", "S2", "S3"], ["1", "2", "3"])
    dry = delete_expired(any_ledger.engine, before=new_year_2026, zone=BERLIN, dry_run=True)
    assert (dry.calls, dry.cached, dry.dry_run) == (2, 2, True) and left()[0] == ["S1", "S2", "S3"]
    done = delete_expired(any_ledger.engine, before=new_year_2026, zone=BERLIN)
    assert (done.calls, done.cached) == (2, 2) and done.before == datetime(2015, 12, 31, 23, 0)
    assert left() == (["S2"], ["2"])  # made on 1 January 2016 (Berlin): kept to the end of 2026


def test_expire_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "dac7.toml")
    ledger = default_ledger_url(tmp_path)
    with open_ledger(ledger) as led:
        record(led.engine, [made(datetime(2015, 12, 31, 22, 0), 1), made(datetime(2016, 1, 1, 12, 0), 2)])
    args = ["verify", "expire", "--config", str(cfg), "--ledger", ledger, "--before", "2026-01-01T00:00:00+01:00"]
    assert main([*args, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would delete 1 verification call(s) and 0 cached answer(s) made before ")
    assert main(args) == 0
    assert "deleted 1 verification call(s)" in capsys.readouterr().out
    assert main([*args[:-1], "2026-01-01T00:00:00"]) == 2
    assert "has no offset" in capsys.readouterr().err


def test_expire_refuses_to_run_without_a_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = default_ledger_url(tmp_path)
    with open_ledger(ledger) as led:
        record(led.engine, [made(datetime(2015, 12, 31, 23, 30), 1)])  # 2016 in Berlin, 2015 in UTC
    monkeypatch.chdir(tmp_path)  # no dac7.toml here
    assert main(["verify", "expire", "--ledger", ledger, "--before", "2026-01-01T00:30:00+01:00"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dac7: configuration error: dac7 verify expire needs the configuration: its [reporting] ")
    assert "give --config FILE" in err and "Traceback" not in err
    with open_ledger(ledger) as led, led.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.verification_calls)).scalar_one() == 1
    # with dac7.toml here (Europe/Berlin): the record was made in 2016 and is kept
    write_config(tmp_path / "dac7.toml")
    assert main(["verify", "expire", "--ledger", ledger, "--before", "2026-01-01T00:30:00+01:00"]) == 0
    assert capsys.readouterr().out.startswith("deleted 0 verification call(s)")


def test_status_prints_each_member_states_availability(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ViesRestServer()
    with running(server):
        server.availability = {"FR": "Unavailable"}
        cfg = write_config(tmp_path / "dac7.toml", f'[verification.vies]\ninterface = "rest"\nurl = "{server.url}"\n')
        assert main(["verify", "status", "--config", str(cfg)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert "FR: Unavailable" in out and "DE: Available" in out and "VIES: Available" in out
        server.status_behaviour = "http500"
        assert main(["verify", "status", "--config", str(cfg)]) == 1
        assert "gave no answer" in capsys.readouterr().err
    assert server.errors == []
