"""Seller statements end to end: written from the filed XML (parsed here independently), one
per reportable seller, replaced by a correction or a deletion, none for a preview; owner-only
files, the CLI's build (the same bytes again) and PDF on demand."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import stat
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import Marketplace, write_config
from lxml import etree

from dac7_demo import generate_demo
from reporting.cli import main
from reporting.countries import EU_MEMBER_STATES
from reporting.ledger import open_ledger
from reporting.pipeline import RunResult, run

REPO = Path(__file__).resolve().parents[2]
NS = {"dpi": "urn:oecd:ties:dpi:v1", "stf": "urn:oecd:ties:dpistf:v1"}
ACTIVITY = {
    "SaleOfGoods": "sale_of_goods",
    "PersonalServices": "personal_services",
    "TransportationRental": "transportation_rental",
}


def feed(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "statements" / "statements.jsonl").read_text("utf-8").splitlines()]


def _addr(a: etree._Element) -> dict[str, str]:
    parts = {
        "Street": "street",
        "BuildingIdentifier": "building",
        "SuiteIdentifier": "suite",
        "FloorIdentifier": "floor",
        "DistrictName": "district",
        "POB": "pob",
        "PostCode": "post_code",
        "City": "city",
        "CountrySubentity": "country_subentity",
    }
    out = {"country": a.findtext("dpi:CountryCode", namespaces=NS)}
    if a.get("legalAddressType"):
        out["address_type"] = a.get("legalAddressType")
    for el in a.findall("dpi:AddressFix/*", NS):
        out[parts[etree.QName(el).localname]] = el.text
    if a.find("dpi:AddressFree", NS) is not None:
        out["free"] = a.findtext("dpi:AddressFree", namespaces=NS)
    return out


#: the name parts of an individual, as the XML spells them (DPI NamePerson_Type)
NAME_PARTS = {
    "PrecedingTitle": "preceding_title",
    "Title": "title",
    "FirstName": "first_name",
    "MiddleName": "middle_name",
    "NamePrefix": "name_prefix",
    "LastName": "last_name",
    "GenerationIdentifier": "generation_identifier",
    "Suffix": "suffix",
    "GeneralSuffix": "general_suffix",
}


def _person_name(n: etree._Element) -> dict[str, str]:
    out = {"name_type": n.get("nameType")} if n.get("nameType") else {}
    for el in n:
        out[NAME_PARTS[etree.QName(el).localname]] = el.text
    return out


def _quarters(block: etree._Element) -> dict[str, dict[str, int]]:
    return {
        f"Q{q}": {
            "consideration": int(block.findtext(f"dpi:Consideration/dpi:ConsQ{q}", namespaces=NS)),
            "number_of_activities": int(block.findtext(f"dpi:NumberOfActivities/dpi:NumbQ{q}", namespaces=NS)),
            "fees": int(block.findtext(f"dpi:Fees/dpi:FeesQ{q}", namespaces=NS)),
            "taxes": int(block.findtext(f"dpi:Taxes/dpi:TaxQ{q}", namespaces=NS)),
        }
        for q in (1, 2, 3, 4)
    }


def expected_from_xml(seller: etree._Element) -> dict[str, Any]:
    """What a statement must hold of one ReportableSeller, read with XPath (not the package's reader)."""
    ind = seller.find("dpi:Identity/dpi:IndividualSeller/dpi:Standard/dpi:IndSellerID", NS)
    ent = seller.find("dpi:Identity/dpi:EntitySeller/dpi:Standard/dpi:EntSellerID", NS)
    ident = ind if ind is not None else ent
    standard = ident.getparent()
    identity: dict[str, Any] = {
        "residence_countries": [e.text for e in ident.findall("dpi:ResCountryCode", NS)],
        "tins": [(e.text, e.get("issuedBy"), e.get("unknown") in ("true", "1")) for e in ident.findall("dpi:TIN", NS)],
        "vat": ident.findtext("dpi:VAT", namespaces=NS),
        "addresses": [_addr(a) for a in ident.findall("dpi:Address", NS)],
        "accounts": [
            (
                f.findtext("dpi:Identifier", namespaces=NS),
                f.find("dpi:Identifier", NS).get("AccountNumberType"),
                f.findtext("dpi:AccountHolderName", namespaces=NS),
            )
            for f in standard.findall("dpi:FinancialIdentifier", NS)
        ],
    }
    if ind is not None:
        identity["names"] = [_person_name(n) for n in ident.findall("dpi:Name", NS)]
        identity["birth_date"] = ident.findtext("dpi:BirthInfo/dpi:BirthDate", namespaces=NS)
        place = ident.find("dpi:BirthInfo/dpi:BirthPlace", NS)
        identity["birth_place"] = (
            None
            if place is None
            else {
                "city": place.findtext("dpi:City", namespaces=NS),
                "country": place.findtext("dpi:CountryInfo/dpi:CountryCode", namespaces=NS),
                "former_country_name": place.findtext("dpi:CountryInfo/dpi:FormerCountryName", namespaces=NS),
            }
        )
    else:
        identity["names"] = [
            {"name": n.text, "name_type": n.get("nameType")} if n.get("nameType") else {"name": n.text}
            for n in ident.findall("dpi:Name", NS)
        ]
        identity["ins"] = [(e.text, e.get("INType"), e.get("issuedBy")) for e in ident.findall("dpi:IN", NS)]
        identity["permanent_establishments"] = [
            e.text for e in ident.findall("dpi:PermanentEstablishments/dpi:PermanentEstablishment", NS)
        ]
    activities = []
    for act in seller.find("dpi:RelevantActivities", NS):
        name = etree.QName(act).localname
        if name in ACTIVITY:
            activities.append({"activity": ACTIVITY[name], "quarters": _quarters(act)})
        else:
            for p in act.findall("dpi:PropertyListing", NS):
                activities.append(
                    {
                        "activity": "immovable_property",
                        "property_address": _addr(p.find("dpi:Address", NS)),
                        "property_type": p.findtext("dpi:PropertyType", namespaces=NS),
                        "other_property_type": p.findtext("dpi:OtherPropertyType", namespaces=NS),
                        "land_registration_number": p.findtext("dpi:LandRegistrationNumber", namespaces=NS),
                        "rented_days": int(p.findtext("dpi:RentedDays", namespaces=NS))
                        if p.find("dpi:RentedDays", NS) is not None
                        else None,
                        "quarters": _quarters(p),
                    }
                )
    currencies = {e.get("currCode") for e in seller.iter() if e.get("currCode")}
    return {
        "doc_ref_id": seller.findtext("dpi:DocSpec/stf:DocRefId", namespaces=NS),
        "identity": identity,
        "activities": activities,
        "currency": currencies,
    }


def as_expected(s: dict[str, Any]) -> dict[str, Any]:
    """The same view of a statement of the feed."""
    i = s["identity"]
    identity: dict[str, Any] = {
        "residence_countries": i["residence_countries"],
        "tins": [(t["tin"], t["issued_by"], t.get("unknown", False)) for t in i["tins"]],
        "vat": i["vat"],
        "addresses": i["addresses"],
        "accounts": [(f["identifier"], f["type"], f["holder"]) for f in i["financial_accounts"]],
        "names": i["names"],
    }
    if i["seller_type"] == "individual":
        identity.update(birth_date=i["birth_date"], birth_place=i["birth_place"])
    else:
        identity["ins"] = [(b["number"], b["type"], b["issued_by"]) for b in i["business_registration_numbers"]]
        identity["permanent_establishments"] = i["permanent_establishments"]
    return {
        "doc_ref_id": s["filed_with"]["doc_ref_id"],
        "identity": identity,
        "activities": s["activities"],
        "currency": {s["currency"]},
    }


def assert_owner_only(out: Path) -> None:
    folder = out / "statements"
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def demo_run(tmp_path: Path, sellers: int = 300) -> RunResult:
    url = f"sqlite:///{tmp_path}/demo.db"
    generate_demo(url, sellers=sellers, seed=5, year=2025)
    config = tmp_path / "nexus.toml"
    config.write_text((REPO / "dac7.toml").read_text().replace('routing = "jurisdiction"', 'routing = "nexus"'))
    return run(
        config_path=config,
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        run_id="0b7e7a52-3f0e-4b8e-9d1c-5a6f7e8d9c01",
        timestamp=datetime(2026, 1, 15, 6, 0),
        ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )


@pytest.mark.slow
def test_every_seller_of_a_demo_filing_has_one_statement_equal_to_the_filed_xml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = demo_run(tmp_path)
    out = tmp_path / "out"
    manifest = result.manifest
    assert manifest["routing"] == "nexus" and manifest["files"]
    statements = feed(out)
    by_doc = {s["filed_with"]["doc_ref_id"]: s for s in statements}
    assert len(by_doc) == len(statements)
    seen = 0
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3", create=False) as ledger:
        for f in manifest["files"]:
            keys = {r.doc_ref_id: r.seller_key for r in ledger.records(f["message_ref_id"]) if r.kind == "seller"}
            root = etree.parse(str(out / f["file"])).getroot()
            for seller in root.iterfind("dpi:DPIBody/dpi:ReportableSeller", NS):
                want = expected_from_xml(seller)
                s = by_doc[want["doc_ref_id"]]
                assert as_expected(s) == want
                assert s["seller_id"] == keys[want["doc_ref_id"]]
                assert s["filed_with"] == {
                    "country": f["authority"],
                    "message_ref_id": f["message_ref_id"],
                    "doc_ref_id": want["doc_ref_id"],
                }
                assert (s["kind"], s["replaces"], s["year"], s["environment"]) == ("initial", None, 2025, "test")
                # EU rule 40070: a state receives the record for a residence or a property there
                residences = {c for c in want["identity"]["residence_countries"] if c in EU_MEMBER_STATES}
                properties = {
                    a["property_address"]["country"]
                    for a in want["activities"]
                    if a["activity"] == "immovable_property" and a["property_address"]["country"] in EU_MEMBER_STATES
                }
                assert sorted((r["country"], r["reason"]) for r in s["receiving_states"]) == sorted(
                    [(c, "residence") for c in residences] + [(c, "property") for c in properties]
                )
                seen += 1
    assert seen == len(statements) == manifest["summary"]["reportable"]
    # the demo covers what the comparison must hold: property listings, entities, several TINs
    assert any(a["activity"] == "immovable_property" for s in statements for a in s["activities"])
    assert any(s["identity"]["seller_type"] == "entity" for s in statements)
    assert any(s["identity"]["seller_type"] == "individual" for s in statements)
    assert any(len(s["identity"]["tins"]) > 1 for s in statements)
    assert any(s["identity"]["financial_accounts"] for s in statements)
    assert len({s["seller_id"] for s in statements}) == len(statements)  # one statement per seller
    assert result.statements is not None and result.statements["statements"] == seen
    # the languages of the demo: the seller's country's for most, the supported ones written as such
    languages = {s["language"] for s in statements}
    assert {"de", "fr", "lt", "pl"} & languages and "en" in languages
    for s in statements:
        page = (out / s["html_path"]).read_bytes()
        assert hashlib.sha256(page).hexdigest() == s["sha256"]
        assert s["html_path"].startswith(f"statements/{s['statement_id'][:2]}/")
        assert f'<html lang="{s["language"]}">'.encode() in page
        for t in [t for t in s["identity"]["tins"] if t["tin"]]:  # in full, as reported (PStTG § 22(2) with § 14)
            assert t["tin"].encode() in page
    assert_owner_only(out)
    # the CLI's summary names the statements, never their personal data
    printed = capsys.readouterr()
    tins = {t["tin"] for s in statements for t in s["identity"]["tins"] if t["tin"]}
    assert not [t for t in tins if t in printed.out + printed.err]


def market(*, refund: bool = False, extra_sale: bool = False) -> Marketplace:
    """Three LT residents, all reportable; a refund and an extra sale change two of them later."""
    m = Marketplace()
    m.seller("LT-GOODS", first_name="Ona", last_name="Kazlauskiene", language="de")
    goods = m.sales("LT-GOODS", 30, 60_00)  # 30 sales of EUR 60 in May: Q2 EUR 1,800
    m.seller("LT-MORE", tin="38512120000", first_name="Jonas", last_name="Petrauskas", language="fr-BE")
    m.sales("LT-MORE", 40, 100_00, start="2025-03-03 09:00:00")
    m.seller("LT-STAY", tin="47002020000", first_name="Rasa", last_name="Jankauskiene", language="de_DE!")
    m.sales("LT-STAY", 2, 1500_00, activity="personal_services", fee_minor=150_00, start="2025-04-01 09:00:00")
    if extra_sale:
        m.tx("LT-MORE", "2025-11-20 10:00:00", 250_00)
    if refund:
        m.refund(goods[0], "2026-01-20 10:00:00", 60_00)  # 29 sales, EUR 1,740: under the de minimis
    return m


def step(tmp_path: Path, n: int, m: Marketplace, config: Path, **kw: Any) -> RunResult:
    folder = tmp_path / f"step{n}"
    folder.mkdir()
    return run(
        config_path=config,
        source_url=m.write(f"sqlite:///{folder}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=folder / "out",
        staging_root=folder / "st",
        run_id=str(uuid.uuid4()),
        timestamp=datetime(2026, 2, n, 6, 0),
        ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
        **kw,
    )


def test_a_correction_and_a_deletion_replace_the_earlier_statements(tmp_path: Path) -> None:
    config = write_config(tmp_path / "dac7.toml")
    first = step(tmp_path, 1, market(), config)
    initial = {s["seller_id"]: s for s in feed(tmp_path / "step1" / "out")}
    assert set(initial) == {"LT-GOODS", "LT-MORE", "LT-STAY"}
    assert {s["kind"] for s in initial.values()} == {"initial"}
    # the figures as hand-computed: 30 sales of EUR 60.00 in May, EUR 1,800 in Q2
    goods = initial["LT-GOODS"]
    assert goods["activities"] == [
        {
            "activity": "sale_of_goods",
            "quarters": {
                "Q1": {"consideration": 0, "number_of_activities": 0, "fees": 0, "taxes": 0},
                "Q2": {"consideration": 1800, "number_of_activities": 30, "fees": 0, "taxes": 0},
                "Q3": {"consideration": 0, "number_of_activities": 0, "fees": 0, "taxes": 0},
                "Q4": {"consideration": 0, "number_of_activities": 0, "fees": 0, "taxes": 0},
            },
        }
    ]
    assert goods["receiving_states"] == [{"country": "LT", "reason": "residence"}]
    assert goods["currency"] == "EUR" and goods["language"] == "de"
    page = (tmp_path / "step1" / "out" / goods["html_path"]).read_text("utf-8")
    assert "1.800,00\xa0€" in page and "Verkauf von Waren" in page and '<html lang="de">' in page
    # filed with LT, where the seller lives: LT receives the filing itself, not an exchange
    assert "<td>Litauen</td><td>die Plattform hat diese Informationen bei ihrer Steuerbehörde eingereicht" in page
    assert abs((date.fromisoformat(goods["issued"]) - date.today()).days) <= 1  # the day they were written
    assert f'<time datetime="{goods["issued"]}">' in page
    # fr-BE: French texts, figures as in Belgium
    more = initial["LT-MORE"]
    assert more["language"] == "fr-BE"
    assert '<html lang="fr-BE">' in (tmp_path / "step1" / "out" / more["html_path"]).read_text("utf-8")
    # an invalid tag: a finding naming table, key and rule; the statement in English
    assert initial["LT-STAY"]["language"] == "en"
    assert first.statements is not None
    assert [(f["rule"], f["table"], f["key"]) for f in first.statements["findings"]] == [
        ("sellers.language_tag", "sellers", "LT-STAY")
    ]

    second = step(tmp_path, 2, market(refund=True, extra_sale=True), config)
    assert second.statements is not None and second.statements["kinds"] == {"correction": 1, "deletion": 1}
    later = {s["seller_id"]: s for s in feed(tmp_path / "step2" / "out")}
    assert set(later) == {"LT-GOODS", "LT-MORE"}
    deletion, correction = later["LT-GOODS"], later["LT-MORE"]
    assert (deletion["kind"], deletion["replaces"]) == ("deletion", initial["LT-GOODS"]["statement_id"])
    assert (correction["kind"], correction["replaces"]) == ("correction", initial["LT-MORE"]["statement_id"])
    assert correction["statement_id"] != initial["LT-MORE"]["statement_id"]
    # the correction carries the new figures: 40 x EUR 100 in Q1, EUR 250 more in Q4
    quarters = correction["activities"][0]["quarters"]
    assert (quarters["Q1"]["consideration"], quarters["Q4"]["consideration"]) == (4000, 250)
    page = (tmp_path / "step2" / "out" / deletion["html_path"]).read_text("utf-8")
    assert initial["LT-GOODS"]["statement_id"] in page and "zurückgezogen" in page


def test_a_preview_writes_no_statements(tmp_path: Path) -> None:
    config = write_config(tmp_path / "dac7.toml", routing="jurisdiction")
    result = step(tmp_path, 1, market(), config)
    assert result.manifest["preview"] and result.manifest["files"]
    assert result.statements is not None and not result.statements["written"]
    assert result.statements["reason"] == "preview"
    assert not (tmp_path / "step1" / "out" / "statements").exists()


def test_cli_build_writes_the_same_bytes_again_and_a_pdf_for_one_seller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "dac7.toml")
    step(tmp_path, 1, market(), config)
    out = tmp_path / "step1" / "out"
    before = {p.relative_to(out): p.read_bytes() for p in (out / "statements").rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["statements", "build", str(out), "--ledger", f"sqlite:///{tmp_path}/ledger.sqlite3"]) == 0
    printed = capsys.readouterr().out
    assert "3 statement(s) (3 initial)" in printed and "[sellers.language_tag] sellers LT-STAY" in printed
    after = {p.relative_to(out): p.read_bytes() for p in (out / "statements").rglob("*") if p.is_file()}
    assert after == before
    assert main(["summary", "--out", str(out)]) == 0  # the statements counted, none shown
    assert f"seller statements: 3 under {(out / 'statements').resolve()}/" in capsys.readouterr().out
    statements = {s["seller_id"]: s for s in feed(out)}
    pdfs = tmp_path / "pdf"
    assert main(["statements", "pdf", str(out), "--seller", "LT-GOODS", "--out", str(pdfs)]) == 0
    [pdf] = list(pdfs.iterdir())
    assert pdf.name == f"{statements['LT-GOODS']['statement_id']}.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and stat.S_IMODE(pdf.stat().st_mode) == 0o600
    assert stat.S_IMODE(pdfs.stat().st_mode) == 0o700
    listed = tmp_path / "sellers.txt"
    listed.write_text("LT-MORE\nLT-NONE\n")
    assert main(["statements", "pdf", str(out), "--sellers-file", str(listed), "--out", str(pdfs)]) == 1
    assert "no statement for seller LT-NONE" in capsys.readouterr().err
    assert (pdfs / f"{statements['LT-MORE']['statement_id']}.pdf").is_file()
    assert main(["statements", "pdf", str(out), "--out", str(pdfs)]) == 2  # never every seller


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["fr", "it"])
def test_the_statements_of_another_edition_hold_its_figures(tmp_path: Path, profile: str) -> None:
    """DGFiP's edition names the taxes TaxesQn, AdE's wraps the message in its envelope: the
    statements hold the same figures as the file, quarter by quarter."""
    out = tmp_path / "out"
    result = run(
        config_path=REPO / "examples" / "profiles" / f"{profile}.toml",
        source_url=f"sqlite:///{REPO / 'examples' / 'marketplace.db'}",
        year=2025,
        as_of=date(2026, 1, 15),
        out_dir=out,
        staging_root=tmp_path / "st",
        ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    statements = {s["filed_with"]["doc_ref_id"]: s for s in feed(out)}
    [f] = result.manifest["files"]
    sellers = etree.parse(str(out / f["file"])).xpath("//*[local-name()='ReportableSeller']")
    assert len(sellers) == len(statements) > 0
    for seller in sellers:
        [doc] = seller.xpath("*[local-name()='DocSpec']/*[local-name()='DocRefId']/text()")
        figures = [
            int(v)
            for v in seller.xpath(
                ".//*[local-name()='Consideration' or local-name()='NumberOfActivities' or local-name()='Fees'"
                " or local-name()='Taxes']/*/text()"
            )
        ]
        shown = [
            a["quarters"][q][k]
            for a in statements[doc]["activities"]
            for k in ("consideration", "number_of_activities", "fees", "taxes")
            for q in ("Q1", "Q2", "Q3", "Q4")
        ]
        assert sorted(shown) == sorted(figures) and len(shown) == len(figures)


def test_a_rebuild_never_writes_over_a_recorded_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement the ledger recorded is a notice given (PStTG § 24(1) Nr. 4): a catalog edit
    after it changes neither its page nor its feed line; the rebuild says how many it kept."""
    import reporting.statements.page as page

    config = write_config(tmp_path / "dac7.toml")
    step(tmp_path, 1, market(), config)
    out = tmp_path / "step1" / "out"
    before = {p.relative_to(out): p.read_bytes() for p in (out / "statements").rglob("*.html")}
    feed_before = (out / "statements" / "statements.jsonl").read_bytes()
    edited = "A catalog string edited after the statements were given. " + page.INTRO
    monkeypatch.setitem(page.WORDINGS, "DAC7", dataclasses.replace(page.EU_WORDING, intro=edited))
    page._opening.cache_clear()  # the page's opening is made once per process: a new release starts afresh
    caplog.clear()
    try:
        with caplog.at_level("WARNING"):
            assert main(["statements", "build", str(out), "--ledger", f"sqlite:///{tmp_path}/ledger.sqlite3"]) == 0
    finally:
        page._opening.cache_clear()  # no edited opening left for the tests after this one
    after = {p.relative_to(out): p.read_bytes() for p in (out / "statements").rglob("*.html")}
    assert after == before and len(after) == 3
    assert b"edited after" not in b"".join(after.values())
    assert (out / "statements" / "statements.jsonl").read_bytes() == feed_before
    assert "statements: 3 recorded before came out different" in caplog.text
    statements = feed(out)
    for s in statements:
        assert hashlib.sha256((out / s["html_path"]).read_bytes()).hexdigest() == s["sha256"]
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3", create=False) as ledger:
        recorded = ledger.recorded_statements([s["statement_id"] for s in statements])
    assert {k: sha for k, (sha, _content) in recorded.items()} == {s["statement_id"]: s["sha256"] for s in statements}


def test_each_run_keeps_its_own_feed_and_pdf_finds_the_current_statements_across_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs into one output directory: ``statements.jsonl`` is the latest run's, each run's
    feed stays as ``statements/runs/<run_id>.jsonl``; a PDF is made of the statements a seller
    holds now, whichever run wrote them."""
    config = write_config(tmp_path / "dac7.toml")
    out = tmp_path / "out"
    ids = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
    results = []
    for n, m in ((1, market()), (2, market(refund=True, extra_sale=True))):
        folder = tmp_path / f"step{n}"
        folder.mkdir()
        results.append(
            run(
                config_path=config,
                source_url=m.write(f"sqlite:///{folder}/source.db"),
                year=2025,
                as_of=date(2026, 1, 31),
                out_dir=out,
                staging_root=folder / "st",
                run_id=ids[n - 1],
                timestamp=datetime(2026, 2, n, 6, 0),
                ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
            )
        )
    first, second = (r.statements for r in results)
    assert first is not None and second is not None
    runs = out / "statements" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == [f"{ids[0]}.jsonl", f"{ids[1]}.jsonl"]
    assert (first["run_feed"], second["run_feed"]) == (
        f"statements/runs/{ids[0]}.jsonl",
        f"statements/runs/{ids[1]}.jsonl",
    )
    latest = (out / "statements" / "statements.jsonl").read_bytes()
    assert (runs / f"{ids[1]}.jsonl").read_bytes() == latest
    assert second["sha256"] == hashlib.sha256(latest).hexdigest()
    assert first["sha256"] == hashlib.sha256((runs / f"{ids[0]}.jsonl").read_bytes()).hexdigest() != second["sha256"]
    assert stat.S_IMODE(runs.stat().st_mode) == 0o700
    assert_owner_only(out)
    initial = {s["seller_id"]: s for s in map(json.loads, (runs / f"{ids[0]}.jsonl").read_text("utf-8").splitlines())}
    later = {s["seller_id"]: s for s in map(json.loads, latest.decode().splitlines())}
    assert set(initial) == {"LT-GOODS", "LT-MORE", "LT-STAY"} and set(later) == {"LT-GOODS", "LT-MORE"}
    pdfs = tmp_path / "pdf"
    capsys.readouterr()
    # LT-STAY's statement is in the first run's feed only; LT-MORE's first one is replaced
    assert main(["statements", "pdf", str(out), "--seller", "LT-STAY", "--seller", "LT-MORE", "--out", str(pdfs)]) == 0
    assert sorted(p.name for p in pdfs.iterdir()) == sorted(
        [f"{initial['LT-STAY']['statement_id']}.pdf", f"{later['LT-MORE']['statement_id']}.pdf"]
    )
    # a page that is not the one its feed names is never shown
    page = out / later["LT-GOODS"]["html_path"]
    page.write_bytes(page.read_bytes().replace(b"</body>", b"<p>changed</p></body>"))
    assert main(["statements", "pdf", str(out), "--seller", "LT-GOODS", "--out", str(pdfs)]) == 2
    assert "is not the one the feed names" in capsys.readouterr().err
    # a support copy: the seller's current statement as text, masked unless asked for in full
    capsys.readouterr()
    assert main(["statements", "show", str(out), "--seller", "LT-MORE"]) == 0
    shown = capsys.readouterr().out
    assert f"DAC7 statement {later['LT-MORE']['statement_id']} (masked support copy)" in shown
    assert initial["LT-MORE"]["statement_id"] not in shown.split("replaces")[0]  # the replaced one is not shown
    assert "TIN: ***000 (LT)" in shown and "38512120000" not in shown and "Petrauskas" not in shown
    assert "Q4: consideration 250, activities 1" in shown
    assert main(["statements", "show", str(out), "--seller", "LT-MORE", "--show-personal-data"]) == 0
    full = capsys.readouterr().out
    assert "TIN: 38512120000 (LT)" in full and "Petrauskas" in full
    assert main(["statements", "show", str(out), "--seller", "LT-NONE"]) == 1


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.slow
def test_pages_written_by_other_processes_are_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed and every page of a demo filing, written by the stage, again in one process, and
    with one and with two page writers in chunks of 5 and lookups of 16 (several batches, the
    last chunk of each shorter): the same files (the run's own feed too), byte for byte, each
    line's sha256 that of its page, owner-only, no part file left. The ledger's rows the writers
    make record the very rows that reading the feed back records."""
    import sqlite3

    from reporting.statements import feed as feed_module
    from reporting.statements import writer
    from reporting.statements.feed import Published, write_statements

    result = demo_run(tmp_path, sellers=120)
    out = tmp_path / "out"
    stage = _files(out / "statements")
    statements = feed(out)
    assert len(statements) % 5 != 0 and len(statements) > 2 * 16, "several batches, the last chunk shorter"
    assert len({s["language"] for s in statements}) > 1
    for s in statements:
        assert hashlib.sha256((out / s["html_path"]).read_bytes()).hexdigest() == s["sha256"]
    sellers = {s["filed_with"]["doc_ref_id"]: s["seller_id"] for s in statements}
    languages = {s["seller_id"]: s["language"] for s in statements}
    monkeypatch.setattr(writer, "CHUNK", 5)
    monkeypatch.setattr(feed_module, "BATCH", 16)
    ledger = tmp_path / "ledger.sqlite3"

    def recorded(path: Path) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as con:
            return con.execute(
                "select statement_id, replaces, kind, seller_id, message_ref_id, doc_ref_id, environment, authority,"
                " reporting_year, language, html_path, out_dir, sha256, content_hash, content, status"
                " from ledger_statements order by statement_id"
            ).fetchall()

    def record(feed_path: Path, rows: Path | None, name: str) -> list[tuple[Any, ...]]:
        """The feed recorded in a copy of the run's ledger without its statements."""
        copy = tmp_path / f"{name}.sqlite3"
        copy.write_bytes(ledger.read_bytes())
        with sqlite3.connect(copy) as con:
            con.execute("delete from ledger_statement_events")
            con.execute("delete from ledger_statements")
        with open_ledger(f"sqlite:///{copy}", create=False) as again:
            assert again.record_statements(feed_path, out_dir=out, rows=rows) == len(statements)
        return recorded(copy)

    by_the_stage = recorded(ledger)
    assert len(by_the_stage) == len(statements)
    assert record(out / "statements" / "statements.jsonl", None, "read-back") == by_the_stage
    for workers in (0, 1, 2):
        again = tmp_path / f"again{workers}"
        written = write_statements(
            again,
            [Published(out / f["file"], f["authority"]) for f in result.manifest["files"]],
            environment="test",
            year=2025,
            seller_of=lambda ids: {d: sellers[d] for d in ids},
            language_of=lambda ids: {s: languages[s] for s in ids},
            run_id="0b7e7a52-3f0e-4b8e-9d1c-5a6f7e8d9c01",
            issued=date.fromisoformat(statements[0]["issued"]),
            workers=workers,
            ledger_rows=True,
        )
        assert written.statements == len(statements)
        assert written.ledger_rows is not None and written.ledger_rows.parent == again / "statements"
        rows = tmp_path / f"rows{workers}.jsonl"
        written.ledger_rows.rename(rows)
        assert _files(again / "statements") == stage, workers
        assert written.sha256 == hashlib.sha256((again / "statements" / "statements.jsonl").read_bytes()).hexdigest()
        assert_owner_only(again)
        assert not list((again / "statements").glob(".*"))
        assert record(out / "statements" / "statements.jsonl", rows, f"rows{workers}") == by_the_stage, workers
