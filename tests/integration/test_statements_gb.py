"""The seller statements of a UK filing name the jurisdictions that receive the seller's record
as the run's rules decided them: with ``[authorities.GB] partner_jurisdictions`` set, the
operator's own list, not HMRC's published one; and a DAC7 filing of the same sellers names the
member states.

The sellers, each paid for two personal services of GBP 100.00 in 2025 (no de minimis applies),
and what each filing decides, by hand:

- FR-1, resident in France. HMRC's list for 2025 (IEIM906000) does not name France: not
  reportable in a UK filing without a configured list. With ``partner_jurisdictions = ["FR"]``
  France is a reportable jurisdiction (SI 2023/817 reg. 2(1): a partner jurisdiction is one HMRC
  names; the operator applies the list it was given): reported, and its statement names France
  (residence). Under DAC7 (a filing in LT): a member state resident, France receives it.
- IE-1, resident in Ireland: on HMRC's list, but not on the configured one ["FR"]: not reportable
  with the configured list, reported with HMRC's (Ireland receives it); under DAC7, Ireland.
- UK-FLAT, resident in the UK, renting a flat in France (two stays of GBP 300.00): reported in
  every UK filing (resident in the UK, IEIM902520); France receives it for its property only
  where France is a reportable jurisdiction: with the configured list, [GB residence, FR
  property]; with HMRC's, [GB residence]. Under DAC7 the property in France is reported to France
  alone (the UK is no member state).
"""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

from builders import Marketplace, write_config
from integration.test_authority_gb import gb_run

from reporting.ledger import open_ledger
from reporting.pipeline import run
from reporting.vocabulary import NOT_REPORTABLE_JURISDICTION, REPORTED


def market() -> Marketplace:
    m = Marketplace()
    m.rate("GBP", "2025-12-31", "0.85")
    svc = "personal_services"
    m.seller("FR-1", country="FR", tin="1234567890123", first_name="Luc", last_name="Martin", language="fr")
    m.sales("FR-1", 2, 100_00, activity=svc, currency="GBP")
    m.seller("IE-1", country="IE", tin="1234567T", first_name="Aoife", last_name="Byrne", language=None)
    m.sales("IE-1", 2, 100_00, activity=svc, currency="GBP")
    m.seller("UK-FLAT", country="GB", tin="AB123456C", first_name="Amy", last_name="Smith", language=None)
    m.listing("FLAT", "UK-FLAT", "FR", address_city="Paris", address_post_code="75001")
    for day in ("2025-07-01", "2025-08-01"):
        m.tx(
            "UK-FLAT",
            f"{day} 10:00:00",
            300_00,
            activity="immovable_property",
            listing_id="FLAT",
            rented_days=3,
            currency="GBP",
        )
    return m


def statements(out: str | Path) -> dict[str, list[tuple[str, str]]]:
    """seller id -> the (country, reason) of each jurisdiction its statement names."""
    lines = (Path(out) / "statements" / "statements.jsonl").read_text(encoding="utf-8").splitlines()
    return {
        obj["seller_id"]: [(r["country"], r["reason"]) for r in obj["receiving_states"]]
        for obj in map(json.loads, lines)
    }


def decisions(out: str | Path) -> dict[str, str]:
    with (Path(out) / "reports" / "decisions.csv").open(encoding="utf-8") as fh:
        return {r["seller_id"]: r["decision"] for r in csv.DictReader(fh)}


def test_a_uk_statement_names_the_configured_partner_jurisdictions(tmp_path: Path) -> None:
    configured = gb_run(
        tmp_path,
        market(),
        step="configured",
        ledger=f"sqlite:///{tmp_path}/configured.db",
        extra='partner_jurisdictions = ["FR"]\n',
    )
    assert decisions(configured["out"]) == {
        "FR-1": REPORTED,
        "IE-1": NOT_REPORTABLE_JURISDICTION,
        "UK-FLAT": REPORTED,
    }
    assert statements(configured["out"]) == {
        "FR-1": [("FR", "residence")],
        "UK-FLAT": [("GB", "residence"), ("FR", "property")],
    }
    # in the seller's language, with the UK's texts (not DAC7's)
    lines = (Path(configured["out"]) / "statements" / "statements.jsonl").read_text(encoding="utf-8").splitlines()
    [french] = [json.loads(x) for x in lines if json.loads(x)["seller_id"] == "FR-1"]
    html = (Path(configured["out"]) / french["html_path"]).read_text(encoding="utf-8")
    assert french["language"] == "fr" and "Relevé de plateforme numérique 2025" in html
    assert "Juridictions destinataires de ces informations" in html and "DAC7" not in html
    # the ledger records the statement as written: the configured list, not HMRC's
    with open_ledger(f"sqlite:///{tmp_path}/configured.db", create=False) as led:
        ids = {s.statement_id: s.seller_id for s in led.statements(year=2025)}
        recorded = led.recorded_statements(list(ids))
    assert sorted(ids.values()) == ["FR-1", "UK-FLAT"]
    contents = {ids[i]: json.loads(content or "{}") for i, (_sha, content) in recorded.items()}
    assert [r["country"] for r in contents["FR-1"]["receiving_states"]] == ["FR"]


def test_a_uk_statement_names_hmrcs_list_where_none_is_configured(tmp_path: Path) -> None:
    published = gb_run(tmp_path, market(), step="published", ledger=f"sqlite:///{tmp_path}/published.db")
    assert decisions(published["out"]) == {
        "FR-1": NOT_REPORTABLE_JURISDICTION,  # France is not on HMRC's 2025 list
        "IE-1": REPORTED,
        "UK-FLAT": REPORTED,
    }
    assert statements(published["out"]) == {
        "IE-1": [("IE", "residence")],
        "UK-FLAT": [("GB", "residence")],  # France receives nothing: not a reportable jurisdiction
    }


def test_a_dac7_statement_of_the_same_sellers_names_the_member_states(tmp_path: Path) -> None:
    m = market()
    result: Any = run(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=m.write(f"sqlite:///{tmp_path}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "staging",
        ledger_url=f"sqlite:///{tmp_path}/ledger.db",
    )
    assert result.manifest["files"]
    assert statements(tmp_path / "out") == {
        "FR-1": [("FR", "residence")],
        "IE-1": [("IE", "residence")],
        "UK-FLAT": [("FR", "property")],  # the UK is no member state
    }
