"""Source data that is wrong in ways an arithmetic or a clock cannot be: amounts beyond the 64-bit
range, refunds dated before their payment. Each ends in a finding naming table, key and rule, and
never in a traceback; what is filed stays valid and the reconciliation balances."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from builders import Marketplace, write_config

from reporting.checks.staged import MAX_SELLER_TOTAL
from reporting.cli import main
from reporting.errors import DataError
from reporting.pipeline import run
from reporting.stages.extract import _int

AS_OF = date(2026, 1, 31)
IT_TABLE = '\n[authorities.IT]\ncodice_fiscale = "12345670017"\n'


def _run(tmp_path: Path, m: Marketplace) -> dict[str, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return run(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=m.write(f"sqlite:///{tmp_path}/source.db"),
        year=2025,
        as_of=AS_OF,
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    ).manifest


def _market() -> Marketplace:
    m = Marketplace()
    m.seller("OK")
    m.sales("OK", 30, 10_00)
    return m


@pytest.mark.parametrize("column", ["amount_minor", "fee_minor", "tax_minor"])
def test_amounts_adding_up_beyond_64_bits_are_a_finding_not_a_traceback(tmp_path: Path, column: str) -> None:
    m = _market()
    m.seller("BIG")
    m.sales("BIG", 28, 10_00)
    big = {"amount_minor": 2**62} if column == "amount_minor" else {"amount_minor": 2**62, column: 2**62}
    m.tx("BIG", "2025-05-02 10:00:00", transaction_id="TB1", **big)
    m.tx("BIG", "2025-05-03 10:00:00", transaction_id="TB2", **big)  # together 2^63: beyond int64
    with pytest.raises(DataError) as raised:
        _run(tmp_path, m)
    [finding] = raised.value.findings
    assert (finding.rule, finding.table, finding.key) == ("transaction.amount_overflow", "transactions", "TB1")
    assert "seller BIG" in finding.message and "nothing was published" in str(raised.value)
    assert not (tmp_path / "out" / "LT").exists()


def test_the_bound_is_exact(tmp_path: Path) -> None:
    """A seller at exactly the bound is counted; one minor unit more is the finding."""
    m = _market()
    m.seller("EDGE")
    m.sales("EDGE", 29, 0)
    m.tx("EDGE", "2025-05-02 10:00:00", MAX_SELLER_TOTAL, transaction_id="TEDGE")
    manifest = _run(tmp_path / "at", m)
    assert manifest["summary"]["decisions"]["reported"] == 2
    m.tx("EDGE", "2025-05-03 10:00:00", 1, transaction_id="TONE")
    with pytest.raises(DataError, match=r"transaction.amount_overflow\] transactions TEDGE"):
        _run(tmp_path / "beyond", m)


def test_refunds_adding_up_beyond_64_bits_are_a_finding(tmp_path: Path) -> None:
    m = _market()
    m.seller("R")
    [tx, *_] = m.sales("R", 30, 2**62)
    with pytest.raises(DataError) as raised:  # the sales themselves already exceed the bound
        _run(tmp_path / "sales", m)
    assert {f.rule for f in raised.value.findings} == {"transaction.amount_overflow"}
    m = _market()
    m.seller("R")
    [tx, *_] = m.sales("R", 30, MAX_SELLER_TOTAL // 30)
    m.refund(tx, "2025-06-01 10:00:00", 2**62, refund_id="RB1")
    m.refund(tx, "2025-06-02 10:00:00", 2**62, refund_id="RB2")
    with pytest.raises(DataError) as raised:
        _run(tmp_path / "refunds", m)
    rules = {(f.rule, f.key) for f in raised.value.findings}
    assert ("refund.amount_overflow", "RB1") in rules or ("refund.amount_overflow", "RB2") in rules


def test_a_value_beyond_64_bits_is_read_as_a_finding_of_its_row() -> None:
    """PostgreSQL NUMERIC or MariaDB DECIMAL can hold more than a BIGINT: the value is refused, by name."""
    from decimal import Decimal

    assert _int(2**63 - 1) == 2**63 - 1
    assert _int(Decimal(-(2**63))) == -(2**63)
    for value in (2**63, Decimal(2**63), -(2**63) - 1):
        with pytest.raises(ValueError, match="64-bit"):
            _int(value)


def test_refunds_dated_before_their_payment_quarantine_the_seller(tmp_path: Path) -> None:
    m = _market()
    m.seller("EARLY")
    early = m.sales("EARLY", 30, 10_00)
    m.refund(early[0], "2025-05-01 09:59:59", 1_00, refund_id="RBEFORE")  # a second before the payment
    m.seller("PRIOR")
    prior = m.sales("PRIOR", 30, 10_00)
    m.refund(prior[0], "2024-12-31 21:59:59", 1_00, refund_id="RPRIOR")  # 23:59:59 in Vilnius: in 2024
    m.seller("SAME")
    same = m.sales("SAME", 30, 10_00)
    m.refund(same[0], "2025-05-01 10:00:00", 1_00, refund_id="RSAME")  # the very second: applied
    manifest = _run(tmp_path, m)
    assert manifest["summary"]["decisions"] == {"quarantined:refund.before_payment": 2, "reported": 2}
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    assert "EARLY,refund.before_payment,refunds,RBEFORE," in quarantine
    assert "PRIOR,refund.before_payment,refunds,RPRIOR," in quarantine
    assert "dated in an earlier reporting year than the payment" in quarantine.split("RPRIOR", 1)[1].split("\n")[0]
    assert "earlier reporting year" not in quarantine.split("RBEFORE", 1)[1].split("\n")[0]
    assert "RSAME" not in quarantine
    [f] = manifest["files"]
    assert main(["validate", "--rules", "--authority", "LT", str(tmp_path / "out" / f["file"])]) == 0


def test_hostile_seller_texts_are_quarantined_or_reported_as_they_are(tmp_path: Path) -> None:
    """10,000 characters and direction overrides quarantine their seller, naming table, key and
    column; combining characters and right-to-left names are ordinary text and are reported."""
    m = _market()
    cases = {
        "LONG": {"first_name": "A" * 10_000},
        "LONGCITY": {"address_city": "K" * 201},
        "RLO": {"last_name": "Petrait\u202eenO"},  # displays reversed
        "ISOLATE": {"address_street": "Laisves \u2066al.\u2069"},
        "BELL": {"first_name": "On\x07a"},
        "C1": {"last_name": "Petrai\x9bte"},
    }
    for seller, texts in cases.items():
        m.seller(seller, **texts)
        m.sales(seller, 30, 10_00)
    m.seller("COMBINING", first_name="Jo\u0301zef", last_name="Z\u030cemaitis\u0307")
    m.sales("COMBINING", 30, 10_00)
    m.seller("HEBREW", first_name="\u05e9\u05e8\u05d4", last_name="\u05dc\u05d5\u05d9\u200f")
    m.sales("HEBREW", 30, 10_00)
    manifest = _run(tmp_path, m)
    assert manifest["summary"]["decisions"] == {"quarantined:seller.text_not_reportable": 6, "reported": 3}
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text(encoding="utf-8")
    for seller, column, why in [
        ("LONG", "first_name", "is 10000 characters long; the schema allows 200"),
        ("LONGCITY", "address_city", "is 201 characters long"),
        ("RLO", "last_name", "contains a bidirectional override or isolate (U+202E at position 8)"),
        ("ISOLATE", "address_street", "contains a bidirectional override or isolate (U+2066"),
        ("BELL", "first_name", "contains a control character (U+0007 at position 3)"),
        ("C1", "last_name", "contains a control character (U+009B"),
    ]:
        [line] = [x for x in quarantine.splitlines() if x.startswith(f"{seller},")]
        assert f",seller.text_not_reportable,sellers,{seller}," in line and f"{column} {why}" in line
    assert "Petrait" not in quarantine and "AAAA" not in quarantine  # the values are never quoted
    [f] = manifest["files"]
    path = tmp_path / "out" / f["file"]
    assert main(["validate", "--rules", "--authority", "LT", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert "Jo\u0301zef" in text and "\u05e9\u05e8\u05d4" in text


@pytest.mark.parametrize(
    ("column", "code", "rule", "hint"),
    [
        ("residence_country", "UK", "seller.bad_residence_country", "UK: the United Kingdom is GB in ISO 3166"),
        ("residence_country", "EL", "seller.bad_residence_country", "EL: Greece is GR in ISO 3166"),
        ("address_country", "EL", "seller.bad_country", "EL: Greece is GR in ISO 3166"),
        ("issued_by", "EL", "tin.bad_issuer", "EL: Greece is GR in ISO 3166; EL is only its VAT and EU prefix"),
    ],
)
def test_country_codes_that_are_not_iso_are_quarantined_with_the_likely_code(
    tmp_path: Path, column: str, code: str, rule: str, hint: str
) -> None:
    """UK and EL are the codes people write for the United Kingdom and Greece; ISO 3166, which
    the schema and every authority use, says GB and GR. Neither is guessed: the seller is
    quarantined and the finding names the ISO code."""
    m = _market()
    if column == "issued_by":
        m.seller("X", country="GR", tin=None)
        m.tin("X", "123456789", code)
    else:
        m.seller("X", **{column: code})
    m.sales("X", 30, 10_00)
    manifest = _run(tmp_path, m)
    assert manifest["summary"]["decisions"] == {f"quarantined:{rule}": 1, "reported": 1}
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    table = "seller_tins" if column == "issued_by" else "sellers"
    [line] = [x for x in quarantine.splitlines() if x.startswith(f"X,{rule},")]
    assert f"X,{rule},{table},X," in line and hint in line


def test_an_empty_source_files_nothing_or_the_nil_report_the_profile_expects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = Marketplace().write(f"sqlite:///{tmp_path}/empty.db")
    args = ["run", "--source", url, "--year", "2025", "--as-of", "2026-01-31", "--ledger", f"sqlite:///{tmp_path}/l.db"]
    # the EU generic profile (LT): nothing to file, said so, exit 0
    lt = write_config(tmp_path / "lt.toml")
    assert main([*args, "--config", str(lt), "--out", str(tmp_path / "lt"), "--staging", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert "nothing to file" in out.lower()
    assert not (tmp_path / "lt" / "LT").exists()
    # Italy expects a nil report (DPI403): the platform operator alone, valid
    it = write_config(tmp_path / "it.toml", filing_state="IT", nexus="RPONEX4", extra=IT_TABLE)
    assert main([*args, "--config", str(it), "--out", str(tmp_path / "it"), "--staging", str(tmp_path / "st")]) == 0
    assert "DPI403" in capsys.readouterr().out
    [xml] = (tmp_path / "it" / "IT").glob("*.xml")
    assert main(["validate", "--rules", "--authority", "IT", str(xml)]) == 0


def test_a_source_without_the_contract_tables_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "zero.db").touch()  # an empty file: a SQLite database without tables
    cfg = write_config(tmp_path / "dac7.toml")
    url = f"sqlite:///{tmp_path}/zero.db"
    args = ["run", "--config", str(cfg), "--source", url, "--year", "2025", "--out", str(tmp_path / "o")]
    code = main([*args, "--staging", str(tmp_path / "st")])  # not the default .dac7/staging of the checkout
    err = capsys.readouterr().err
    assert code == 1
    assert "does not follow the source contract: missing table sellers" in err and "Traceback" not in err


def test_a_transaction_without_currency_quarantines_its_seller_and_the_run_goes_on(tmp_path: Path) -> None:
    """A blank currency (no value once trimmed) is the seller's finding: the reconciliation per
    currency pairs the missing currency of the extract with that of the quarantined aggregates."""
    m = _market()
    m.seller("NOCUR")
    m.sales("NOCUR", 30, 10_00)
    m.tx("NOCUR", "2025-06-06 06:06:06", 10_00, currency="   ", transaction_id="TNOCUR")
    manifest = _run(tmp_path, m)
    assert manifest["summary"]["decisions"] == {"quarantined:currency.unknown": 1, "reported": 1}
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    assert "NOCUR,currency.unknown,transactions,TNOCUR," in quarantine
