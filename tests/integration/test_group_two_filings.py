"""One data set, two filings: a group with an EU operator (the default operator, Lithuanian,
``nexus = "RPONEX1"``) and a UK operator (``[operators.uk_ltd]``, filing with HMRC) files both
from the same source in one ``dac7 run``: the EU filing under DAC7, the UK filing under the UK's
Model Rules (SI 2023/817). Each operator's sellers are the sellers of its own transactions, and
each seller is decided by the law of the filing its transactions belong to, never by where the
seller lives: see docs/guide/united-kingdom.md and docs/guide/operator-groups.md.

The sellers, each selling personal services (no de minimis applies) unless said otherwise, and
where each belongs, computed by hand:

- UK_SVC, resident in the UK, 2 services of EUR 100.00 through the EU operator and 2 of
  EUR 150.00 through the UK one. DAC7: a seller resident outside the EU without property in it is
  not reportable (Annex V, Section I(B)(3): resident in a member state or renting property
  located there): ``not_reportable:non_eu``, not in the EU filing. UK: resident in the UK
  (IEIM902520), reported with EUR 300 in the UK filing.
- UK_FLAT, resident in the UK, renting a flat in Vilnius through the EU operator (2 stays of
  EUR 400.00): DAC7 reports property located in a member state: in the EU filing with EUR 800,
  although the seller lives in the UK.
- DE_SVC, resident in Germany, 2 services of EUR 120.00 through each operator. DAC7: a member
  state resident, in the EU filing (EUR 240). UK: Germany is not on HMRC's list of the UK's
  partner jurisdictions for 2025 (IEIM906000): ``not_reportable:not_reportable_jurisdiction``,
  not in the UK filing.
- IE_SVC, resident in Ireland, 2 services of EUR 90.00 through the UK operator alone: Ireland is
  on the 2025 list: in the UK filing (EUR 180); the EU operator never sees the seller.
- US_LT_TIN, resident in the US with a TIN issued by Lithuania, 1 service of EUR 500.00 through
  each operator. DAC7: the state that issued the TIN is a state of residence (Annex V,
  Section II(D)): in the EU filing. UK: the primary address alone (IEIM902520): the US is no
  reportable jurisdiction, not in the UK filing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from builders import TWO_FILINGS_POID as POID
from builders import TWO_FILINGS_TOML, two_filings_market, write_config
from lxml import etree

from reporting.authorities.gb import upload_checks
from reporting.cli import main
from reporting.vocabulary import NOT_REPORTABLE_JURISDICTION, NOT_REPORTABLE_NON_EU, REPORTED

NS = {"dpi": "urn:oecd:ties:dpi:v1"}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("two_filings")
    argv = ["run", "--config", str(write_config(tmp / "dac7.toml", extra=TWO_FILINGS_TOML))]
    argv += [
        "--source",
        two_filings_market().write(f"sqlite:///{tmp}/source.db"),
        "--year",
        "2025",
        "--as-of",
        "2026-01-20",
    ]
    argv += ["--out", str(tmp / "out"), "--staging", str(tmp / "staging"), "--ledger", f"sqlite:///{tmp}/ledger.db"]
    assert main(argv) == 0
    return tmp / "out"


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def filed(folder: Path, authority: str) -> tuple[Path, dict[str, int]]:
    """The one file of ``authority`` and its sellers: last name -> Consideration summed (whole units)."""
    [path] = [folder / f["file"] for f in manifest(folder)["files"] if f["authority"] == authority]
    sellers = {}
    for s in etree.parse(str(path)).iterfind(".//dpi:ReportableSeller", NS):
        name = s.findtext(".//dpi:LastName", namespaces=NS)
        sellers[name] = sum(int(c.text or 0) for c in s.iterfind(".//dpi:Consideration/*", NS))
    return path, sellers


def decisions(folder: Path) -> dict[str, str]:
    table = pq.read_table(folder / "reports" / "decisions.parquet", columns=["seller_id", "decision"])
    return dict(zip(table["seller_id"].to_pylist(), table["decision"].to_pylist(), strict=True))


def test_the_eu_operator_files_under_dac7_and_the_uk_operator_under_the_uk_rules(out: Path) -> None:
    assert [f["authority"] for f in manifest(out)["files"]] == ["LT"]
    assert [f["authority"] for f in manifest(out / "operators" / "uk_ltd")["files"]] == ["GB"]
    _, eu = filed(out, "LT")
    gb_path, uk = filed(out / "operators" / "uk_ltd", "GB")
    assert eu == {"Jones": 800, "Schmidt": 240, "Lee": 500}
    assert uk == {"Smith": 300, "Byrne": 180}
    gb = etree.parse(str(gb_path)).getroot()
    assert gb.findtext("dpi:MessageSpec/dpi:SendingEntityIN", namespaces=NS) == POID
    assert gb.findtext(".//dpi:PlatformOperator/dpi:Name", namespaces=NS) == "Demo Market Ltd"
    assert [c.name for c in upload_checks(gb_path, platform_operator_id=POID) if not c.ok] == []


def test_each_seller_is_decided_by_the_law_of_the_filing_its_transactions_belong_to(out: Path) -> None:
    eu, uk = decisions(out), decisions(out / "operators" / "uk_ltd")
    assert eu == {
        "UK_SVC": NOT_REPORTABLE_NON_EU,  # resident in the UK, no property in the EU
        "UK_FLAT": REPORTED,  # resident in the UK, its flat in Lithuania
        "DE_SVC": REPORTED,
        "US_LT_TIN": REPORTED,  # the TIN Lithuania issued
    }
    assert uk == {
        "UK_SVC": REPORTED,
        "DE_SVC": NOT_REPORTABLE_JURISDICTION,  # Germany is not on HMRC's 2025 list
        "IE_SVC": REPORTED,
        "US_LT_TIN": NOT_REPORTABLE_JURISDICTION,  # the primary address alone: the US
    }


def test_each_filing_gives_its_own_reported_sellers_their_statements(out: Path) -> None:
    for folder, expected in (
        (out, {"UK_FLAT", "DE_SVC", "US_LT_TIN"}),
        (out / "operators" / "uk_ltd", {"UK_SVC", "IE_SVC"}),
    ):
        feed = (folder / "statements" / "statements.jsonl").read_text(encoding="utf-8").splitlines()
        assert {json.loads(line)["seller_id"] for line in feed} == expected, folder


def test_the_uk_statement_names_the_uk_regulations_not_the_eu_directive(out: Path) -> None:
    """SI 2023/817 reg. 4(4) has the operator give the seller its information: the statement of a
    UK filing says so, and never speaks of DAC7, member states or the EU directive."""
    for folder, uk in ((out, False), (out / "operators" / "uk_ltd", True)):
        feed = (folder / "statements" / "statements.jsonl").read_text(encoding="utf-8").splitlines()
        for line in feed:
            page = (folder / json.loads(line)["html_path"]).read_text(encoding="utf-8")
            text = page.lower()
            if uk:
                assert "dac7" not in text and "member state" not in text and "eu directive" not in text
                assert "Digital platform statement 2025" in page and "HM Revenue and Customs" in page
                assert "Regulations 2023 require; regulation 4(4)" in page
                assert "Jurisdictions that receive this information" in page
            else:
                assert "DAC7 statement 2025" in page and "Member states that receive this information" in page
