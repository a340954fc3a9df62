"""The DAC7 view's seller page (``plugins/dac7_seller.py``): its reading, its masking, and the
page in a real Airflow api-server seen by a headless Chromium.

Fast tests (no Airflow): a small marketplace, hand-computed, filed once through the pipeline into
a SQLite ledger; an EU status message then rejects the record of seller S1 with code 40080.

- S1 (individual, LT; Zofia Nowak, TIN 39001010000, IBAN LT121000011101001000): 30 sales of
  EUR 10.00 in May (fee 1.00, tax 0.50 each) and one of EUR 25.00 on 1 August (fee 2.00):
  reported to LT, Q2 300 / 30 activities / fees 30 / taxes 15, Q3 25 / 1 / 2 / 0;
- S10 (individual): 3 sales of EUR 5.00: de minimis, not reported;
- E1 (entity, Prekyba UAB, VAT LT100001234567): 40 sales of EUR 100.00 in March: reported,
  Q1 4,000 / 40.

The Chromium tests reuse the api-server and demo filing of ``test_ui_view.py`` (its fixture
``stack``, imported here: this module gets an instance of its own): the op user searches a
seller by the beginning of its id, opens it, and sees the decision and the figures that its XML
reports; the viewer sees the same page with the identity masked and no personal data anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import urllib.parse
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from airflow_stack import request
from browser import Chromium, decode_png
from builders import Marketplace, write_config
from dags.test_ui_view import AUDITOR, PLUGINS, STATUS_CODE, USER, YEAR, log_in, session_of, stack, wait_for
from integration.test_ledger_lifecycle import status_message
from integration.test_no_personal_data import assert_no_personal_data, read_secrets
from lxml import etree, html

from reporting.cli import main
from reporting.explain import (
    Identity,
    QuarterFigures,
    find_sellers,
    read_seller,
    seller_filings,
    seller_id_problem,
)
from reporting.ledger import open_ledger
from reporting.ledger.status import import_status
from reporting.pipeline import run

__all__ = ["stack"]  # the api-server fixture of test_ui_view, used by the Chromium tests below

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "3c5e7a91-2b4d-4f6a-8c0e-1a2b3c4d5e6f"
NS = {"dpi": "urn:oecd:ties:dpi:v1", "stf": "urn:oecd:ties:dpistf:v1"}
PERSONAL = ("Zofia", "Nowak", "39001010000", "LT121000011101001000", "1980-05-17", "Laisves", "LT100001234567")


@dataclass(frozen=True)
class Small:
    out: Path
    ledger: str
    manifest: dict[str, Any]
    s1_record: str  # the DocRefId of S1's record, rejected by the status message


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Small:
    tmp = tmp_path_factory.mktemp("seller")
    m = Marketplace()
    m.seller("S1", first_name="Zofia", last_name="Nowak")
    m.account("S1", "LT121000011101001000", "Zofia Nowak")
    m.sales("S1", 30, 10_00, fee_minor=1_00, tax_minor=50)
    m.tx("S1", "2025-08-01 10:00:00", 25_00, fee_minor=2_00)
    m.seller("S10")
    m.sales("S10", 3, 5_00)
    m.seller("E1", seller_type="entity", tin="304567892", vat_id="LT100001234567")
    m.sales("E1", 40, 100_00, start="2025-03-01 09:00:00")
    ledger = f"sqlite:///{tmp / 'ledger.sqlite3'}"
    manifest = run(
        config_path=write_config(tmp / "dac7.toml"),
        source_url=m.write(f"sqlite:///{tmp / 'source.db'}"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp / "out" / "2025",
        staging_root=tmp / "staging",
        run_id=RUN_ID,
        timestamp=datetime(2026, 1, 15, 6, 0),
        ledger_url=ledger,
    ).manifest
    [file] = manifest["files"]
    with open_ledger(ledger, create=False) as led:
        [record] = [r for r in led.records(file["message_ref_id"]) if r.seller_key == "S1"]
        path = tmp / "status.xml"
        path.write_bytes(etree.tostring(status_message(file["message_ref_id"], [record.doc_ref_id]), encoding="UTF-8"))
        import_status(led, path)
    return Small(tmp / "out" / "2025", ledger, manifest, record.doc_ref_id)


@pytest.fixture
def seller_ui(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGINS))
    import dac7_seller

    return dac7_seller


def sources(seller_ui: Any, small: Small) -> Any:
    return seller_ui.view.Sources(small.ledger, small.out.parent)


# ------------------------------------------------------------------------------------ reading


def test_the_reading_of_one_seller_has_the_hand_computed_figures(small: Small) -> None:
    reading = read_seller(small.out, "S1", 2025)
    assert reading is not None
    assert (reading.decision["decision"], reading.decision["authorities"]) == ("reported", "LT")
    assert reading.decision["transactions"] == 31
    assert (reading.as_of, reading.environment, reading.run_id) == ("2026-01-31", "test", RUN_ID)
    # Q2: 30 x 10.00 = 300, fees 30 x 1.00, taxes 30 x 0.50; Q3: 25.00, fee 2.00
    assert reading.reported == [
        QuarterFigures("sale_of_goods", None, "EUR", (0, 300, 25, 0), (0, 30, 1, 0), (0, 30, 2, 0), (0, 15, 0, 0))
    ]
    assert reading.identity == Identity(
        name="Zofia Nowak",
        birth_date="1980-05-17",
        tins=(("39001010000", "LT"),),
        vat="",
        accounts=("LT121000011101001000",),
        address="Laisves al. 10, 44240 Kaunas, LT",
        address_country="LT",
    )
    e1 = read_seller(small.out, "E1", 2025)
    assert e1 is not None and e1.identity is not None
    assert e1.reported == [
        QuarterFigures("sale_of_goods", None, "EUR", (4000, 0, 0, 0), (40, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0))
    ]
    assert (e1.identity.name, e1.identity.vat) == ("Prekyba UAB", "LT100001234567")
    s10 = read_seller(small.out, "S10", 2025)
    assert s10 is not None and s10.decision["decision"] == "excluded:de_minimis" and s10.reported == []
    assert read_seller(small.out, "S1 ", 2025) is None and read_seller(small.out, "s1", 2025) is None


def test_the_identity_masked_keeps_initials_and_the_last_characters() -> None:
    identity = Identity("Zofia Nowak", "1980-05-17", (("39001010000", "LT"),), "", ("LT121000011101001000",), "x", "LT")
    assert identity.mask() == Identity(
        name="Z**** N****",
        birth_date="****-**-**",
        tins=(("***000", "LT"),),
        vat="",
        accounts=("***000",),
        address="masked (LT)",
        address_country="LT",
        masked=True,
    )


def test_the_ledger_records_that_carried_the_seller(small: Small) -> None:
    [file] = small.manifest["files"]
    with open_ledger(small.ledger, create=False) as ledger:
        [s1] = seller_filings(ledger, "S1", 2025)
        assert seller_filings(ledger, "S10", 2025) == []  # de minimis: in no filing
        assert seller_filings(ledger, "S1", 2024) == []
        [e1] = seller_filings(ledger, "E1")
    assert (s1.message_ref_id, s1.authority, s1.environment, s1.message_type_indic) == (
        file["message_ref_id"],
        "LT",
        "test",
        "DPI401",
    )
    assert (s1.doc_type, s1.doc_type_indic, s1.doc_ref_id) == ("new", "OECD11", small.s1_record)
    assert (s1.record_status, s1.error_codes, s1.message_status) == ("rejected", (STATUS_CODE,), "accepted")
    assert (e1.record_status, e1.error_codes) == ("accepted", ())


def test_a_search_by_the_beginning_of_an_id_is_bounded(small: Small) -> None:
    matches, more = find_sellers(small.out, "S1", 2025)
    assert [(m.seller_id, m.decision, m.authorities) for m in matches] == [
        ("S1", "reported", "LT"),
        ("S10", "excluded:de_minimis", ""),
    ]
    assert not more
    matches, more = find_sellers(small.out, "S", 2025, limit=1)
    assert [m.seller_id for m in matches] == ["S1"] and more
    assert find_sellers(small.out, "Z", 2025) == ([], False)
    assert find_sellers(small.out, "%", 2025) == ([], False)  # not a pattern: a prefix, literally


@pytest.mark.parametrize(
    ("seller_id", "sentence"),
    [
        ("", "A seller id is needed: type the seller_id of the source (e.g. S000123)."),
        ("x" * 201, "A seller id has at most 200 characters; this one has 201."),
        ("S1\nS2", "A seller id has no control characters (tabs, line breaks): type it on one line."),
        (" S1", "A seller id does not start or end with a space: remove the spaces around it."),
    ],
)
def test_an_id_that_cannot_be_a_seller_id_gets_a_sentence(seller_id: str, sentence: str) -> None:
    assert seller_id_problem(seller_id) == sentence


def test_ids_that_can_be_seller_ids() -> None:
    assert all(seller_id_problem(s) is None for s in ("S1", "x" * 200, "A/B 7", "Ž-ūkis"))


# ------------------------------------------------------------------------------------ the pages


def test_the_seller_page_for_the_op_user_shows_everything(seller_ui: Any, small: Small) -> None:
    sv = seller_ui.seller_view(sources(seller_ui, small), 2025, "S1")
    page = html.fromstring(seller_ui.seller_page(sv, may_see_personal_data=True))
    assert page.get_element_by_id("decision-code").text_content() == "reported"
    assert page.get_element_by_id("authorities").text_content() == "LT"
    assert "31 sale(s) of goods worth EUR 325.0000" in page.get_element_by_id("explanation").text_content()
    assert cells(page, "reported-figures") == [
        ["sale_of_goods", "", "EUR", "Consideration", "0", "300", "25", "0", "325"],
        ["sale_of_goods", "", "", "Number of activities", "0", "30", "1", "0", "31"],
        ["sale_of_goods", "", "EUR", "Fees", "0", "30", "2", "0", "32"],
        ["sale_of_goods", "", "EUR", "Taxes", "0", "15", "0", "0", "15"],
    ]
    assert cells(page, "figures") == [
        ["sale_of_goods", "", "Q2", "EUR", "30", "0", "30", "300.00", "30.00", "15.00", "reported"],
        ["sale_of_goods", "", "Q3", "EUR", "1", "0", "1", "25.00", "2.00", "0.00", "reported"],
    ]
    assert dict(cells(page, "identity-facts")) == {
        "Name": "Zofia Nowak",
        "Birth date": "1980-05-17",
        "TIN": "39001010000 (LT)",
        "VAT number": "none",
        "Financial accounts": "LT121000011101001000",
        "Address": "Laisves al. 10, 44240 Kaunas, LT",
    }
    [file] = small.manifest["files"]
    [row] = cells(page, "seller-filings")
    assert row == [
        f"{file['message_ref_id']}DPI401 (new information)",
        "LTtest",
        f"OECD11 (new data){small.s1_record}",
        # the code with its meaning from the EU table (reporting.error_codes)
        f"rejected{STATUS_CODE}: If a TIN is provided (not flagged unknown and has a value), the issuing "
        "jurisdiction must be provided.",
        "accepted",
        row[5],
        "year page",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row[5])
    [link] = page.xpath("//table[@id='seller-filings']//a")
    assert link.get("href") == "../?authority=LT#authority-LT"  # <prefix>/2025/sellers/S1 -> <prefix>/2025/


def test_the_seller_page_without_the_download_permission_masks_the_identity(seller_ui: Any, small: Small) -> None:
    for seller_id in ("S1", "E1"):
        sv = seller_ui.seller_view(sources(seller_ui, small), 2025, seller_id)
        text = seller_ui.seller_page(sv, may_see_personal_data=False)
        assert not [p for p in PERSONAL if p in text], seller_id
        page = html.fromstring(text)
        assert page.get_element_by_id("identity-masked").text_content().startswith("Masked:")
        assert page.get_element_by_id("decision-code").text_content() == "reported"
    assert dict(cells(page, "identity-facts")) == {
        "Name": "P****** U**",
        "Birth date": "-",
        "TIN": "***892 (LT)",
        "VAT number": "***567",
        "Financial accounts": "none",
        "Address": "masked (LT)",
    }


def test_a_seller_not_in_the_run_says_so(seller_ui: Any, small: Small) -> None:
    sv = seller_ui.seller_view(sources(seller_ui, small), 2025, "NOPE")
    assert (sv.reading, sv.filings, sv.problems) == (None, [], [])
    page = html.fromstring(seller_ui.seller_page(sv, may_see_personal_data=True))
    assert page.get_element_by_id("not-found").text_content() == (
        "Seller NOPE is not in the shown run of 2025: no transaction paid or credited in 2025, or not a seller "
        "id of the marketplace's database. Search by the beginning of the id."
    )
    assert page.get_element_by_id("filings-none").text_content() == "No filing of this year carried this seller."
    odd = seller_ui.seller_page(
        seller_ui.seller_view(sources(seller_ui, small), 2025, "<i>x</i>"), may_see_personal_data=True
    )
    assert "<i>x</i>" not in odd and "&lt;i&gt;x&lt;/i&gt;" in odd  # every value escaped


def test_a_year_without_a_run_says_so(seller_ui: Any, small: Small) -> None:
    sv = seller_ui.seller_view(sources(seller_ui, small), 2024, "S1")
    assert sv.problems == ["No run of 2024 has published into the output directory yet."]
    result = seller_ui.search(sources(seller_ui, small), 2024, "S")
    assert result.problem == "No run of 2024 has published into the output directory yet."
    assert not result.invalid


def test_without_the_staging_the_identity_is_said_to_be_gone(
    seller_ui: Any, small: Small, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the housekeeping deleted the run's staging: the decision and figures stay (they are
    published), the identity says why it is missing, for the page and for ``dac7 explain``."""
    out = tmp_path / "out" / "2025"
    shutil.copytree(small.out / "reports", out / "reports")
    manifest = json.loads((small.out / "manifest.json").read_text(encoding="utf-8"))
    (out / "manifest.json").write_text(json.dumps(manifest | {"staging": str(tmp_path / "gone")}), encoding="utf-8")
    sv = seller_ui.seller_view(seller_ui.view.Sources(small.ledger, tmp_path / "out"), 2025, "S1")
    assert sv.reading is not None and sv.reading.identity is None
    page = html.fromstring(seller_ui.seller_page(sv, may_see_personal_data=True))
    assert (
        page.get_element_by_id("no-staging")
        .text_content()
        .startswith("The run's staging data is no longer available (deleted by the housekeeping DAG")
    )
    assert cells(page, "reported-figures")[0] == [
        "sale_of_goods",
        "",
        "EUR",
        "Consideration",
        "0",
        "300",
        "25",
        "0",
        "325",
    ]
    assert main(["explain", "--seller", "S1", "--year", "2025", "--out", str(out), "--show-personal-data"]) == 0
    assert "Identity: the run's staging data is no longer available" in capsys.readouterr().out


def test_the_search_page_lists_matches_and_refuses_bad_ids(seller_ui: Any, small: Small) -> None:
    src = sources(seller_ui, small)
    result = seller_ui.search(src, 2025, "S1")
    assert result.exact and [m.seller_id for m in result.matches] == ["S1", "S10"]
    page = html.fromstring(seller_ui.search_page(2025, result))
    assert [a.get("href") for a in page.xpath("//table[@id='search-results']//a")] == ["sellers/S1", "sellers/S10"]
    assert cells(page, "search-results")[1] == ["S10", "individual", "excluded:de_minimis", "none"]
    bad = seller_ui.search(src, 2025, " S1")
    assert bad.invalid and bad.problem == "A seller id does not start or end with a space: remove the spaces around it."
    page = html.fromstring(seller_ui.search_page(2025, bad))
    assert page.get_element_by_id("search-problem").text_content() == bad.problem
    none = html.fromstring(seller_ui.search_page(2025, seller_ui.search(src, 2025, "<b>")))
    assert (
        none.get_element_by_id("search-none")
        .text_content()
        .startswith("No seller of this run has an id that is or starts with <b>.")
    )


TEST_RERUN = "manual__2026-01-20T07:00:00+00:00"


def prod_then_test(small: Small, tmp: Path) -> Path:
    """The small run as the year's production run (kept under ``runs/``), then a test rerun with
    another decision for S1: the year's ``manifest.json`` and ``reports/`` are the test run's."""
    from reporting.stages.publish import keep_run_copy, run_key

    out = tmp / "out" / "2025"
    shutil.copytree(small.out, out)
    prod = json.loads((small.out / "manifest.json").read_text(encoding="utf-8")) | {"environment": "prod"}
    (out / "runs" / run_key(RUN_ID) / "manifest.json").write_text(json.dumps(prod), encoding="utf-8")
    assert (out / "runs" / run_key(RUN_ID) / "reports" / "decisions.parquet").is_file()  # kept by the publish
    # the test run decides otherwise for S1: a new file renamed over the year's (as the publish does)
    decisions, tmp_file = out / "reports" / "decisions.parquet", out / "reports" / ".decisions.parquet.tmp"
    sql = f"select * replace ('excluded:de_minimis' as decision) from read_parquet('{decisions}')"
    duckdb.execute(f"copy ({sql}) to '{tmp_file}' (format parquet)")
    tmp_file.replace(decisions)
    test = prod | {
        "environment": "test",
        "run_id": TEST_RERUN,
        "timestamp_utc": "2026-01-20T07:00:00",
        "run_copy": f"runs/{run_key(TEST_RERUN)}",
    }
    keep_run_copy(out, test)
    (out / "manifest.json").write_text(json.dumps(test), encoding="utf-8")
    return out


def test_the_seller_page_reads_the_latest_production_run_after_a_test_rerun(
    seller_ui: Any, small: Small, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = prod_then_test(small, tmp_path)
    src = seller_ui.view.Sources(small.ledger, out.parent)
    sv = seller_ui.seller_view(src, 2025, "S1")
    assert sv.reading is not None and (sv.reading.run_id, sv.reading.environment) == (RUN_ID, "prod")
    assert sv.reading.decision["decision"] == "reported"
    page = html.fromstring(seller_ui.seller_page(sv, may_see_personal_data=False))
    shown = page.get_element_by_id("shown-run")
    assert shown.text_content() == (f"Shown: the latest production run of 2025, run {RUN_ID}. See the latest test run.")
    assert page.xpath("//a[@id='run-test']/@href") == ["S1?environment=test"]
    # the latest test run, when asked for
    sv = seller_ui.seller_view(src, 2025, "S1", "test")
    assert sv.reading is not None and (sv.reading.run_id, sv.reading.decision["decision"]) == (
        TEST_RERUN,
        "excluded:de_minimis",
    )
    page = html.fromstring(seller_ui.seller_page(sv, may_see_personal_data=False))
    assert page.xpath("//a[@id='run-prod']/@href") == ["S1"]
    # the search: the production run's sellers, and the test run's with the environment kept in the links
    result = seller_ui.search(src, 2025, "S1")
    assert result.run.run_id == RUN_ID and result.matches[0].decision == "reported"
    result = seller_ui.search(src, 2025, "S1", "test")
    assert result.matches[0].decision == "excluded:de_minimis"
    page = html.fromstring(seller_ui.search_page(2025, result))
    assert page.xpath("//table[@id='search-results']//a/@href")[0] == "sellers/S1?environment=test"
    assert page.xpath("//input[@name='environment']/@value") == ["test"]
    # dac7 explain reads the year's output as before: the latest run, whatever its environment
    assert main(["explain", "--seller", "S1", "--year", "2025", "--out", str(out)]) == 0
    assert f"test run {TEST_RERUN}" in capsys.readouterr().out


def test_a_null_tin_is_shown_as_none_not_masked(tmp_path: Path) -> None:
    from reporting.explain import _identity_line, _read_identity

    extract = tmp_path / "extract"
    extract.mkdir()
    con = duckdb.connect()
    con.execute(f"copy (select 'S9' as seller_id, 'Jan Nowak' as legal_name) to '{extract / 'sellers.parquet'}'")
    con.execute(
        "copy (select 'S9' as seller_id, null::varchar as tin, 'DE' as issued_by) "
        f"to '{extract / 'seller_tins.parquet'}'"
    )
    identity = _read_identity(con, {"staging": str(tmp_path)}, "S9")
    assert identity is not None and identity.tins == (("", "DE"),)
    assert identity.mask().tins == (("-", "DE"),)
    assert _identity_line(identity, False).endswith("TIN - (DE)")
    assert _identity_line(identity, True).endswith("TIN - (DE)")


def test_a_seller_id_with_a_slash_is_linked_and_reached_as_one_segment(seller_ui: Any) -> None:
    assert seller_ui._seller_href("A/1", "sellers/") == "sellers/A%2F1"
    assert seller_ui.canonical_href(b"/dac7/2025/sellers/A/1", "A/1") == "../A%2F1"
    assert seller_ui.canonical_href(b"/dac7/2025/sellers/A/b/1", "A/b/1", "test") == "../../A%2Fb%2F1?environment=test"
    assert seller_ui.canonical_href(b"/dac7/2025/sellers/A%2F1", "A/1") is None
    assert seller_ui.canonical_href(b"/dac7/2025/sellers/S1", "S1") is None


def cells(page: Any, table_id: str) -> list[list[str]]:
    return [
        [c.text_content() for c in tr.xpath("th|td")]
        for tr in page.xpath(f"//table[@id='{table_id}']//tr")
        if tr.xpath("td")
    ]


# ------------------------------------------------------------------------------------ in Chromium


def reported_seller(out: Path) -> tuple[str, str]:
    """A reported seller of the demo filing with activities in two quarters or more and no property
    listing (one row per figure on the page), and the first authority it is reported to."""
    with closing(duckdb.connect()) as con:
        [(seller_id,)] = con.execute(
            "select seller_id from read_parquet(?) where reported_currency is not null "
            "group by seller_id having count(distinct quarter) >= 2 and count(listing_id) = 0 "
            "order by seller_id limit 1",
            [str(out / "reports" / "figures.parquet")],
        ).fetchall()
        [(authorities,)] = con.execute(
            "select authorities from read_parquet(?) where seller_id = ?",
            [str(out / "reports" / "decisions.parquet"), seller_id],
        ).fetchall()
    return seller_id, authorities.split(";")[0]


def xml_figures(path: Path, doc_ref_id: str) -> dict[str, list[str]]:
    """The quarters of the seller's record in the published XML, per activity element and figure."""
    root = etree.parse(str(path)).getroot()
    [seller] = [
        s
        for s in root.iterfind(".//dpi:ReportableSeller", NS)
        if s.findtext("dpi:DocSpec/stf:DocRefId", None, NS) == doc_ref_id
    ]
    out = {}
    for activity in seller.iterfind("dpi:RelevantActivities/*", NS):
        for figure in activity:
            quarters = [
                q.text or "" for q in figure if etree.QName(q).localname.startswith(("Cons", "Numb", "Fees", "Tax"))
            ]
            if len(quarters) == 4:
                out[f"{etree.QName(activity).localname}/{etree.QName(figure).localname}"] = quarters
    return out


@pytest.mark.slow
def test_compliance_staff_find_a_seller_and_see_the_decision_and_figures(stack: Any, tmp_path: Path) -> None:
    base = stack.base
    seller_id, authority = reported_seller(stack.out)
    prefix = seller_id[:-1]
    with Chromium.launch(tmp_path / "chromium", width=1400, height=1100) as browser:
        log_in(browser, base, stack.passwords[USER], f"/dac7/{YEAR}/sellers")
        wait_for(browser, "document.querySelector('#seller-search')", "the search form")
        # the beginning of the id: a list of sellers, the seller among them
        browser.evaluate("document.querySelector('#q').focus()")
        browser.send("Input.insertText", text=prefix)
        browser.evaluate("document.querySelector('#seller-search').requestSubmit()")
        wait_for(browser, "document.querySelector('#search-results, #search-none')", "the search result")
        listed = browser.evaluate("[...document.querySelectorAll('#search-results a')].map(a => a.textContent)")
        assert seller_id in listed and all(s.startswith(prefix) for s in listed), listed
        save(browser, "seller-search.png")
        browser.evaluate(
            f"[...document.querySelectorAll('#search-results a')].find(a => a.textContent === '{seller_id}').click()"
        )
        wait_for(browser, "document.querySelector('#seller-facts')", "the seller page")
        assert browser.evaluate("location.pathname") == f"/dac7/{YEAR}/sellers/{urllib.parse.quote(seller_id, safe='')}"
        assert browser.evaluate("document.querySelector('#decision-code').textContent") == "reported"
        assert authority in browser.evaluate("document.querySelector('#authorities').textContent")
        shown = browser.evaluate(
            "[...document.querySelectorAll('#reported-figures tr')].slice(1)"
            ".map(tr => [...tr.cells].map(c => c.textContent))"
        )
        # per record: its MessageRefId and DocRefId
        filings = browser.evaluate(
            "[...document.querySelectorAll('#seller-filings tr')].slice(1)"
            ".map(tr => [tr.cells[0].querySelector('.id').textContent, tr.cells[2].querySelector('.id').textContent])"
        )
        identity = browser.evaluate("document.querySelector('#identity-facts').innerText")
        session = session_of(browser, base)
    # the figures on the page are those the published XML reports for the seller
    [file] = [f for f in stack.manifest["files"] if f["authority"] == authority]
    [doc_ref_id] = [d for m, d in filings if m == file["message_ref_id"]]
    reported = xml_figures(stack.out / file["file"], doc_ref_id)
    names = {
        "Consideration": "Consideration",
        "Number of activities": "NumberOfActivities",
        "Fees": "Fees",
        "Taxes": "Taxes",
    }
    elements = {
        "sale_of_goods": "SaleOfGoods",
        "immovable_property": "ImmovableProperty",
        "personal_services": "PersonalServices",
        "transportation_rental": "TransportationRental",
    }
    page_quarters = {
        f"{elements[activity]}/{names[figure]}": [q.replace(",", "") for q in quarters]
        for activity, _listing, _currency, figure, *quarters, _year in shown
    }
    assert reported and page_quarters == reported
    # the op user sees the identity: the seller's name from the source
    with closing(sqlite3.connect(stack.source)) as con:
        first, last, legal = con.execute(
            "select first_name, last_name, legal_name from sellers where seller_id = ?", [seller_id]
        ).fetchone()
    assert (legal or f"{first} {last}") in identity
    log = stack.log.read_text(encoding="utf-8", errors="replace")
    assert f"DAC7 seller page with personal data for {USER}: {YEAR}/{seller_id}" in log
    # a seller that is not there, and an id that cannot be one: a sentence, no traceback
    status, body = request(f"{base}/dac7/{YEAR}/sellers/NO-SUCH-SELLER", session)
    assert status == 404 and b"is not in the shown run of" in body
    status, body = request(f"{base}/dac7/{YEAR}/sellers?q=%20{seller_id}", session)
    assert status == 400 and b"A seller id does not start or end with a space" in body and b"Traceback" not in body
    status, body = request(f"{base}/dac7/{YEAR}/sellers/{'x' * 201}", session)
    assert status == 400 and b"A seller id has at most 200 characters; this one has 201." in body
    # the exact id: straight to its page
    status, body = request(f"{base}/dac7/{YEAR}/sellers?q={urllib.parse.quote(seller_id)}", session)
    assert status == 200 and b'id="seller-facts"' in body
    assert request(f"{base}/dac7/{YEAR}/sellers/{seller_id}")[0] == 401  # no login: nothing


@pytest.mark.slow
def test_a_viewer_sees_the_seller_with_the_identity_masked(stack: Any, tmp_path: Path) -> None:
    base, rejected = stack.base, stack.rejected
    with Chromium.launch(tmp_path / "chromium", width=1400, height=1100) as browser:
        log_in(browser, base, stack.passwords[AUDITOR], f"/dac7/{YEAR}/sellers/{rejected.seller}", user=AUDITOR)
        wait_for(browser, "document.querySelector('#seller-facts')", "the seller page")
        page = browser.evaluate("document.documentElement.outerHTML")
        assert browser.evaluate("document.querySelector('#identity-masked').textContent").startswith("Masked:")
        filings = browser.evaluate("document.querySelector('#seller-filings').innerText")
        assert rejected.message_ref_id in filings and "rejected" in filings and STATUS_CODE in filings
        save(browser, "seller-page.png")
        browser.evaluate("document.querySelector('#filings').scrollIntoView()")
        save(browser, "seller-filings.png")
    assert_no_personal_data({f"seller page of {rejected.seller}": page}, read_secrets(stack.source))
    log = stack.log.read_text(encoding="utf-8", errors="replace")
    assert f"DAC7 seller page with personal data for {AUDITOR}" not in log


def save(browser: Chromium, name: str) -> None:
    """A screenshot of the page (a PNG that decodes); into ``$DAC7_SCREENSHOTS_DIR`` when set
    (``docs/img`` renews the images of ``docs/desk-seller.md``; a test run does not change the
    checkout otherwise)."""
    png = browser.screenshot()
    decode_png(png)
    folder = os.environ.get("DAC7_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(png)
