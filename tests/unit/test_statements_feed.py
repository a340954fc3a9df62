"""The statement of a filed record, by hand: the activity and quarter mapping of the XML, the
identity in full, the receiving states and why, stable ids that a correction or deletion
replaces, owner-only and atomic files, and the feed written last."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from reporting.statements.feed import Published, read_feed, receiving_states, statement_id, write_statements
from reporting.statements.filed import FiledSeller, MessageHead, read_message


def q(tag: str, prefix: str, values: tuple[int, int, int, int], cur: str | None = "EUR") -> str:
    attr = f' currCode="{cur}"' if cur else ""
    return (
        f"<dpi:{tag}>"
        + "".join(f"<dpi:{prefix}{i}{attr}>{v}</dpi:{prefix}{i}>" for i, v in enumerate(values, 1))
        + f"</dpi:{tag}>"
    )


def figures(cons: tuple[int, ...], numb: tuple[int, ...], fees: tuple[int, ...], tax: tuple[int, ...]) -> str:
    return (
        q("Consideration", "ConsQ", cons)
        + q("NumberOfActivities", "NumbQ", numb, None)
        + q("Fees", "FeesQ", fees)
        + q("Taxes", "TaxQ", tax)
    )  # type: ignore[arg-type]


ADDRESS = (
    "<dpi:Address><dpi:CountryCode>{c}</dpi:CountryCode><dpi:AddressFix><dpi:Street>{s}</dpi:Street>"
    "<dpi:BuildingIdentifier>7</dpi:BuildingIdentifier><dpi:PostCode>75001</dpi:PostCode><dpi:City>Paris</dpi:City>"
    "</dpi:AddressFix></dpi:Address>"
)

XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<dpi:DPI_OECD xmlns:dpi="urn:oecd:ties:dpi:v1" xmlns:stf="urn:oecd:ties:dpistf:v1" version="1.0">
<dpi:MessageSpec><dpi:TransmittingCountry>LT</dpi:TransmittingCountry><dpi:ReceivingCountry>LT</dpi:ReceivingCountry>
<dpi:MessageType>DPI</dpi:MessageType><dpi:MessageRefId>LT2025LTMSG2</dpi:MessageRefId>
<dpi:MessageTypeIndic>DPI402</dpi:MessageTypeIndic><dpi:ReportingPeriod>2025-12-31</dpi:ReportingPeriod>
<dpi:Timestamp>2026-02-01T06:00:00</dpi:Timestamp></dpi:MessageSpec>
<dpi:DPIBody>
<dpi:PlatformOperator><dpi:ResCountryCode>LT</dpi:ResCountryCode><dpi:Name>Demo Market UAB</dpi:Name>
<dpi:DocSpec><stf:DocTypeIndic>OECD10</stf:DocTypeIndic><stf:DocRefId>LT2025-PO</stf:DocRefId></dpi:DocSpec></dpi:PlatformOperator>
<dpi:ReportableSeller><dpi:Identity><dpi:EntitySeller><dpi:Standard><dpi:EntSellerID>
<dpi:ResCountryCode>FR</dpi:ResCountryCode><dpi:ResCountryCode>BE</dpi:ResCountryCode>
<dpi:TIN issuedBy="FR">12345678901</dpi:TIN><dpi:TIN issuedBy="BE">0987654321</dpi:TIN>
<dpi:IN INType="BRN" issuedBy="FR">RCS-1</dpi:IN><dpi:VAT>FR12345678901</dpi:VAT>
<dpi:Name>Maison Durand SARL</dpi:Name>{ADDRESS.format(c="FR", s="Rue de Rivoli")}
<dpi:PermanentEstablishments><dpi:PermanentEstablishment>BE</dpi:PermanentEstablishment></dpi:PermanentEstablishments>
</dpi:EntSellerID>
<dpi:FinancialIdentifier><dpi:Identifier AccountNumberType="IBAN">FR7630006000011234567890189</dpi:Identifier>
<dpi:AccountHolderName>Maison Durand SARL</dpi:AccountHolderName></dpi:FinancialIdentifier>
</dpi:Standard></dpi:EntitySeller></dpi:Identity>
<dpi:RelevantActivities>
<dpi:ImmovableProperty>
<dpi:PropertyListing>{ADDRESS.format(c="FR", s="Quai Voltaire")}
<dpi:LandRegistrationNumber>75-AB-12</dpi:LandRegistrationNumber>
{figures((100, 0, 2500, 0), (1, 0, 3, 0), (10, 0, 250, 0), (0, 0, 5, 0))}<dpi:PropertyType>DPI905</dpi:PropertyType>
<dpi:RentedDays>12</dpi:RentedDays></dpi:PropertyListing>
<dpi:PropertyListing>{ADDRESS.format(c="CH", s="Bahnhofstrasse")}
{figures((0, 700, 0, 0), (0, 2, 0, 0), (0, 70, 0, 0), (0, 0, 0, 0))}<dpi:PropertyType>DPI910</dpi:PropertyType>
<dpi:OtherPropertyType>Chalet</dpi:OtherPropertyType><dpi:RentedDays>4</dpi:RentedDays></dpi:PropertyListing>
</dpi:ImmovableProperty>
<dpi:SaleOfGoods>{figures((1234, 1, 0, 99999), (3, 1, 0, 12), (123, 0, 0, 9999), (0, 0, 0, 0))}</dpi:SaleOfGoods>
</dpi:RelevantActivities>
<dpi:DocSpec><stf:DocTypeIndic>OECD12</stf:DocTypeIndic><stf:DocRefId>LT2025-NEW1</stf:DocRefId>
<stf:CorrDocRefId>LT2025-OLD1</stf:CorrDocRefId></dpi:DocSpec></dpi:ReportableSeller>
<dpi:ReportableSeller><dpi:Identity><dpi:IndividualSeller><dpi:Standard><dpi:IndSellerID>
<dpi:ResCountryCode>US</dpi:ResCountryCode><dpi:TIN unknown="true"/>
<dpi:Name><dpi:FirstName>Ann</dpi:FirstName><dpi:MiddleName>B.</dpi:MiddleName><dpi:LastName>Lee</dpi:LastName></dpi:Name>
{ADDRESS.format(c="US", s="Main St")}
<dpi:BirthInfo><dpi:BirthDate>1980-05-17</dpi:BirthDate></dpi:BirthInfo>
</dpi:IndSellerID></dpi:Standard></dpi:IndividualSeller></dpi:Identity>
<dpi:RelevantActivities><dpi:ImmovableProperty><dpi:PropertyListing>{ADDRESS.format(c="DE", s="Hauptstr.")}
{figures((5, 6, 7, 8), (1, 1, 1, 1), (0, 0, 0, 0), (0, 0, 0, 0))}<dpi:PropertyType>DPI904</dpi:PropertyType>
</dpi:PropertyListing></dpi:ImmovableProperty></dpi:RelevantActivities>
<dpi:DocSpec><stf:DocTypeIndic>OECD13</stf:DocTypeIndic><stf:DocRefId>LT2025-DEL2</stf:DocRefId>
<stf:CorrDocRefId>LT2025-OLD2</stf:CorrDocRefId></dpi:DocSpec></dpi:ReportableSeller>
</dpi:DPIBody></dpi:DPI_OECD>
"""


def quarters(*rows: tuple[int, int, int, int]) -> dict[str, dict[str, int]]:
    """(consideration, number, fees, taxes) per quarter, Q1 to Q4."""
    keys = ("consideration", "number_of_activities", "fees", "taxes")
    return {f"Q{i}": dict(zip(keys, row, strict=True)) for i, row in enumerate(rows, 1)}


@pytest.fixture
def message(tmp_path: Path) -> Path:
    path = tmp_path / "LT" / "msg.xml"
    path.parent.mkdir()
    path.write_text(XML, encoding="utf-8")
    return path


def test_the_records_of_a_message_as_filed(message: Path) -> None:
    head, entity, person = list(read_message(message))
    assert head == MessageHead("LT2025LTMSG2", "LT", "LT", "2025-12-31", "DPI402", "Demo Market UAB")
    assert isinstance(entity, FiledSeller) and isinstance(person, FiledSeller)
    assert (entity.doc_ref_id, entity.corr_doc_ref_id, entity.kind) == ("LT2025-NEW1", "LT2025-OLD1", "correction")
    assert (person.kind, person.corr_doc_ref_id) == ("deletion", "LT2025-OLD2")
    assert entity.currency == "EUR"
    paris = {"country": "FR", "street": "Rue de Rivoli", "building": "7", "post_code": "75001", "city": "Paris"}
    assert entity.identity == {
        "seller_type": "entity",
        "residence_countries": ["FR", "BE"],
        "tins": [{"tin": "12345678901", "issued_by": "FR"}, {"tin": "0987654321", "issued_by": "BE"}],
        "business_registration_numbers": [{"number": "RCS-1", "type": "BRN", "issued_by": "FR"}],
        "vat": "FR12345678901",
        "names": [{"name": "Maison Durand SARL"}],
        "addresses": [paris],
        "permanent_establishments": ["BE"],
        "financial_accounts": [
            {"identifier": "FR7630006000011234567890189", "type": "IBAN", "holder": "Maison Durand SARL"}
        ],
    }
    # Each ConsQn / NumbQn / FeesQn / TaxQn goes to quarter n, the XML's element order notwithstanding
    # (ImmovableProperty before SaleOfGoods here); each listing is an activity of its own.
    assert entity.activities == [
        {
            "activity": "immovable_property",
            "property_address": paris | {"street": "Quai Voltaire"},
            "property_type": "DPI905",
            "other_property_type": None,
            "land_registration_number": "75-AB-12",
            "rented_days": 12,
            "quarters": quarters((100, 1, 10, 0), (0, 0, 0, 0), (2500, 3, 250, 5), (0, 0, 0, 0)),
        },
        {
            "activity": "immovable_property",
            "property_address": paris | {"country": "CH", "street": "Bahnhofstrasse"},
            "property_type": "DPI910",
            "other_property_type": "Chalet",
            "land_registration_number": None,
            "rented_days": 4,
            "quarters": quarters((0, 0, 0, 0), (700, 2, 70, 0), (0, 0, 0, 0), (0, 0, 0, 0)),
        },
        {
            "activity": "sale_of_goods",
            "quarters": quarters((1234, 3, 123, 0), (1, 1, 0, 0), (0, 0, 0, 0), (99999, 12, 9999, 0)),
        },
    ]
    assert person.identity["tins"] == [{"tin": None, "issued_by": None, "unknown": True}]
    assert person.identity["names"] == [{"first_name": "Ann", "middle_name": "B.", "last_name": "Lee"}]
    assert (person.identity["birth_date"], person.identity["birth_place"]) == ("1980-05-17", None)


def test_receiving_states_residence_then_property_eu_only(message: Path) -> None:
    _head, entity, person = list(read_message(message))
    assert isinstance(entity, FiledSeller) and isinstance(person, FiledSeller)
    # FR and BE of residence; the French flat is in FR (both); the Swiss chalet goes nowhere (not EU)
    assert receiving_states(entity.identity, entity.activities) == [
        {"country": "FR", "reason": "residence"},
        {"country": "BE", "reason": "residence"},
        {"country": "FR", "reason": "property"},
    ]
    # a US resident: only the state of the property
    assert receiving_states(person.identity, person.activities) == [{"country": "DE", "reason": "property"}]


def test_statement_ids_are_stable_and_tell_environments_and_authorities_apart() -> None:
    # uuid5 of "<environment>/<authority>/<DocRefId>" in the statements' namespace: pinned
    assert statement_id("prod", "LT", "LT2025-X") == "cd49c472-b440-5875-9f15-f0e9613ab40d"
    assert (
        len(
            {
                statement_id("prod", "LT", "LT2025-X"),
                statement_id("test", "LT", "LT2025-X"),
                statement_id("prod", "DE", "LT2025-X"),
            }
        )
        == 3
    )


def write(tmp_path: Path, message: Path, languages: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    out = tmp_path / "out"
    sellers = {"LT2025-NEW1": "S-ENT", "LT2025-DEL2": "S-ANN"}
    written = write_statements(
        out,
        [Published(message, "LT")],
        environment="test",
        year=2025,
        seller_of=lambda ids: {d: sellers[d] for d in ids if d in sellers},
        language_of=lambda ids: {s: (languages or {}).get(s) for s in ids},
    )
    assert written.statements == 2 and written.kinds == {"correction": 1, "deletion": 1}
    return list(read_feed(out))


def test_a_correction_and_a_deletion_replace_the_statements_of_the_records_they_correct(
    tmp_path: Path, message: Path
) -> None:
    entity, person = write(tmp_path, message, {"S-ENT": "fr-BE", "S-ANN": "pl"})
    assert (entity["seller_id"], entity["kind"]) == ("S-ENT", "correction")
    assert entity["statement_id"] == statement_id("test", "LT", "LT2025-NEW1")
    assert entity["replaces"] == statement_id("test", "LT", "LT2025-OLD1")
    assert person["replaces"] == statement_id("test", "LT", "LT2025-OLD2") and person["kind"] == "deletion"
    assert entity["filed_with"] == {"country": "LT", "message_ref_id": "LT2025LTMSG2", "doc_ref_id": "LT2025-NEW1"}
    assert (entity["language"], person["language"]) == ("fr-BE", "pl")
    page = (tmp_path / "out" / entity["html_path"]).read_text("utf-8")
    # the figures in fr-BE: EUR 99,999 in Q4 of the goods; the chalet's type and rented days
    assert "99\u202f999,00\xa0€" in page and "Chalet" in page and "75-AB-12" in page
    assert "FR7630006000011234567890189" in page and "12345678901" in page  # in full (PStTG § 22(2))
    assert statement_id("test", "LT", "LT2025-OLD1") in page
    assert "Belgique" in page and "Suisse" in page  # country names in French


def test_files_are_owner_only_and_the_feed_is_written_last(tmp_path: Path, message: Path) -> None:
    old = os.umask(0o022)  # whatever the caller's umask
    try:
        statements = write(tmp_path, message)
    finally:
        os.umask(old)
    folder = tmp_path / "out" / "statements"
    for path in [folder, *folder.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert not [p for p in folder.rglob(".*")], "no temporary file left"
    assert {p.name for p in folder.iterdir() if p.is_file()} == {"statements.jsonl"}
    for s in statements:
        assert (tmp_path / "out" / s["html_path"]).parent.name == s["statement_id"][:2]
    # a record the ledger does not know stops the writing: no feed, no half file
    with pytest.raises(LookupError, match="LT2025-NEW1"):
        write_statements(
            tmp_path / "again",
            [Published(message, "LT")],
            environment="test",
            year=2025,
            seller_of=lambda ids: {},
            language_of=lambda ids: {},
        )
    assert not [p for p in (tmp_path / "again" / "statements").rglob("*") if p.is_file()]
    assert json.loads((folder / "statements.jsonl").read_text().splitlines()[0])["seller_id"] == "S-ENT"


def _many(path: Path, sellers: int) -> Path:
    """A message of ``sellers`` copies of the test's entity record, each with its own DocRefId."""
    head, body = XML.split("<dpi:ReportableSeller>", 1)
    record = "<dpi:ReportableSeller>" + body.split("</dpi:ReportableSeller>", 1)[0] + "</dpi:ReportableSeller>\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(head)
        for i in range(sellers):
            f.write(record.replace("LT2025-NEW1", f"LT2025-N{i:07d}"))
        f.write("</dpi:DPIBody></dpi:DPI_OECD>\n")
    return path


@pytest.mark.parametrize("workers", [0, 2])
def test_memory_does_not_grow_with_the_sellers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """Streamed: the peak of Python's allocations for 1,600 sellers is that for 400 (lookups of
    50 sellers at a time here, so that both are many batches), whether this process writes the
    pages or two others do (chunks of 16 statements in flight, each waiting in a pipe)."""
    import tracemalloc

    from reporting.statements import feed, writer

    monkeypatch.setattr(feed, "BATCH", 50)
    monkeypatch.setattr(writer, "CHUNK", 16)

    def peak(n: int) -> int:
        message = _many(tmp_path / f"m{n}.xml", n)
        tracemalloc.start()
        written = write_statements(
            tmp_path / f"out{n}",
            [Published(message, "LT")],
            environment="test",
            year=2025,
            seller_of=lambda ids: dict.fromkeys(ids, "S"),
            language_of=lambda ids: {},
            workers=workers,
        )
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert written.statements == n
        return top

    small, large = peak(400), peak(1_600)
    assert large < small * 1.3, (small, large)


def test_a_masked_statement_keeps_the_figures_and_masks_the_personal_data(tmp_path: Path, message: Path) -> None:
    """The project's masking (reporting.explain / due diligence): initials, the last three
    characters of identifiers, ``****-**-**`` for the birth date, addresses as their country."""
    from reporting.statements.locale import formatter, resolve
    from reporting.statements.masked import as_text, mask_statement
    from reporting.statements.page import render

    entity, person = write(tmp_path, message, {"S-ENT": "fr-BE", "S-ANN": "pl"})
    m = mask_statement(entity)
    ident = m["identity"]
    assert m["masked"] is True and "masked" not in entity  # a copy
    assert ident["names"] == [{"name": "M***** D***** S***"}]
    assert ident["tins"] == [{"tin": "***901", "issued_by": "FR"}, {"tin": "***321", "issued_by": "BE"}]
    assert ident["vat"] == "***901"
    # RCS-1: five characters, too few for its end to show
    assert ident["business_registration_numbers"] == [{"number": "***", "type": "BRN", "issued_by": "FR"}]
    assert ident["financial_accounts"] == [{"identifier": "***189", "type": "IBAN", "holder": "M***** D***** S***"}]
    assert ident["addresses"] == [{"free": "***", "country": "FR"}]
    assert ident["permanent_establishments"] == ["BE"] and ident["residence_countries"] == ["FR", "BE"]
    flat = m["activities"][0]
    assert flat["property_address"] == {"free": "***", "country": "FR"}
    assert flat["land_registration_number"] == "***-12"
    assert [a["quarters"] for a in m["activities"]] == [a["quarters"] for a in entity["activities"]]
    p = mask_statement(person)["identity"]
    assert p["names"] == [{"first_name": "A**", "middle_name": "B*", "last_name": "L**"}]
    assert p["birth_date"] == "****-**-**" and p["tins"] == [{"tin": None, "issued_by": None, "unknown": True}]
    secrets = ("Maison Durand", "Rivoli", "Voltaire", "12345678901", "0987654321", "FR7630006000011234567890189",
               "75-AB-12", "RCS-1", "1980-05-17", "Ann", "Lee")  # fmt: skip
    language = resolve("fr-BE")
    page = render(m, language, formatter(language.locale), "Demo Market UAB")
    text = "\n".join(as_text(m)) + "\n".join(as_text(mask_statement(person)))
    for shown in (page, text):
        assert not [s for s in secrets if s in shown]
    assert 'id="masked"' in page and "99\u202f999,00\xa0€" in page  # the figures stay, in the seller's locale
    assert "masked support copy" in text and "Q4: consideration 99999, activities 12, fees 9999, taxes 0" in text
    full = "\n".join(as_text(entity))
    assert "FR7630006000011234567890189" in full and "in full, with personal data" in full


def test_name_and_address_types_and_a_former_country_of_birth_are_kept(tmp_path: Path) -> None:
    xml = (
        XML.replace("<dpi:Name><dpi:FirstName>Ann", '<dpi:Name nameType="OECD202"><dpi:FirstName>Ann')
        .replace(
            "<dpi:Name>Maison Durand SARL</dpi:Name>", '<dpi:Name nameType="OECD207">Maison Durand SARL</dpi:Name>'
        )
        .replace(
            "<dpi:BirthInfo><dpi:BirthDate>1980-05-17</dpi:BirthDate></dpi:BirthInfo>",
            "<dpi:BirthInfo><dpi:BirthDate>1980-05-17</dpi:BirthDate><dpi:BirthPlace><dpi:City>Vilnius</dpi:City>"
            "<dpi:CountryInfo><dpi:FormerCountryName>USSR</dpi:FormerCountryName></dpi:CountryInfo>"
            "</dpi:BirthPlace></dpi:BirthInfo>",
        )
        .replace("<dpi:Address>", '<dpi:Address legalAddressType="OECD302">', 1)
    )
    path = tmp_path / "msg.xml"
    path.write_text(xml, encoding="utf-8")
    _head, entity, person = list(read_message(path))
    assert isinstance(entity, FiledSeller) and isinstance(person, FiledSeller)
    assert entity.identity["names"] == [{"name": "Maison Durand SARL", "name_type": "OECD207"}]
    assert entity.identity["addresses"][0]["address_type"] == "OECD302"
    assert person.identity["names"] == [
        {"name_type": "OECD202", "first_name": "Ann", "middle_name": "B.", "last_name": "Lee"}
    ]
    assert person.identity["birth_place"] == {"city": "Vilnius", "country": None, "former_country_name": "USSR"}
    xml2 = xml.replace(
        "<dpi:CountryInfo><dpi:FormerCountryName>USSR</dpi:FormerCountryName>",
        "<dpi:CountryInfo><dpi:CountryCode>LT</dpi:CountryCode>",
    )
    path.write_text(xml2, encoding="utf-8")
    assert list(read_message(path))[2].identity["birth_place"] == {
        "city": "Vilnius",
        "country": "LT",
        "former_country_name": None,
    }


def test_a_seller_record_in_two_currencies_is_refused_naming_the_seller(tmp_path: Path, message: Path) -> None:
    """Each amount carries its own currCode (MonAmnt_Type), but a statement states one currency:
    the error names the seller id and DocRefId, never a TIN, and no feed is published."""
    from reporting.statements.feed import MixedCurrencyError

    xml = message.read_text("utf-8").replace('<dpi:ConsQ4 currCode="EUR">99999', '<dpi:ConsQ4 currCode="PLN">99999')
    assert 'currCode="PLN"' in xml
    message.write_text(xml, encoding="utf-8")
    [_head, entity, _person] = list(read_message(message))
    assert isinstance(entity, FiledSeller) and (entity.currency, entity.currencies) == (None, ("EUR", "PLN"))
    with pytest.raises(MixedCurrencyError) as raised:
        write(tmp_path, message)
    text = str(raised.value)
    assert "seller S-ENT (DocRefId LT2025-NEW1)" in text and "2 currencies (EUR, PLN)" in text
    assert "12345678901" not in text
    assert not (tmp_path / "out" / "statements" / "statements.jsonl").exists()


def test_the_issue_date_the_contact_and_a_withdrawal_on_the_page(tmp_path: Path, message: Path) -> None:
    """The notice's date (PStTG § 24(1) Nr. 4) in the feed and, in the seller's locale, on the
    page; the configured contact as a link; a deletion's figures headed as withdrawn."""
    from datetime import date

    out = tmp_path / "out"
    sellers = {"LT2025-NEW1": "S-ENT", "LT2025-DEL2": "S-ANN"}
    write_statements(
        out,
        [Published(message, "LT")],
        environment="test",
        year=2025,
        seller_of=lambda ids: {d: sellers[d] for d in ids if d in sellers},
        language_of=lambda ids: {"S-ENT": "fr-BE", "S-ANN": "de"},
        issued=date(2026, 1, 20),
        contact="dac7-support@example.com",
    )
    entity, person = read_feed(out)
    assert entity["issued"] == person["issued"] == "2026-01-20"
    page = (out / entity["html_path"]).read_text("utf-8")
    assert '<time datetime="2026-01-20">20 janvier 2026</time>' in page
    assert '<a href="mailto:dac7-support@example.com">dac7-support@example.com</a>' in page
    assert "Ce qui a été déclaré auparavant" not in page  # a correction: its figures are the reported ones
    deleted = (out / person["html_path"]).read_text("utf-8")
    assert '<time datetime="2026-01-20">20. Januar 2026</time>' in deleted
    assert '<h2 id="figures">Was früher gemeldet wurde und nun zurückgezogen ist</h2>' in deleted


def test_the_statements_contact_is_one_line(tmp_path: Path) -> None:
    from reporting.config import parse_config
    from reporting.errors import ConfigError

    base = {
        "operator": {
            "name": "Demo Market UAB",
            "tin": "123456789",
            "tin_issued_by": "LT",
            "nexus": "RPONEX1",
            "address": {"city": "Vilnius", "country": "LT"},
        }
    }
    assert parse_config(base).statement_contact is None
    assert parse_config({**base, "statements": {"contact": " https://example.com/dac7 "}}).statement_contact == (
        "https://example.com/dac7"
    )
    for bad in ("", "x" * 301, "line\nbreak"):
        with pytest.raises(ConfigError, match=r"statements\.contact"):
            parse_config({**base, "statements": {"contact": bad}})
    with pytest.raises(ConfigError):
        parse_config({**base, "statements": {"contakt": "x"}})


def test_statement_ids_are_rfc_4122_name_based_ids() -> None:
    import uuid

    from reporting.statements.feed import NAMESPACE

    for environment, authority, doc in [("test", "LT", ""), ("prod", "DE", "DE2025-ä/€"), ("test", "FR", "x" * 300)]:
        want = uuid.uuid5(NAMESPACE, f"{environment}/{authority}/{doc}")
        assert statement_id(environment, authority, doc) == str(want)
        assert uuid.UUID(statement_id(environment, authority, doc)).version == 5


def test_a_page_is_created_once_and_replaced_only_when_it_differs(tmp_path: Path) -> None:
    from reporting.statements.pages import write_page

    old = os.umask(0o022)
    try:
        path = str(tmp_path / "p.html")
        write_page(path, b"<p>one</p>")
        first = os.stat(path)
        assert stat.S_IMODE(first.st_mode) == 0o600 and Path(path).read_bytes() == b"<p>one</p>"
        write_page(path, b"<p>one</p>")  # the same bytes: left as it is
        assert os.stat(path).st_ino == first.st_ino
        write_page(path, b"<p>two, longer</p>")  # other bytes: a new file renamed over it
        again = os.stat(path)
        assert again.st_ino != first.st_ino and stat.S_IMODE(again.st_mode) == 0o600
        assert Path(path).read_bytes() == b"<p>two, longer</p>"
        write_page(path, b"<p>two</p>")  # a prefix of the page is not the page
        assert Path(path).read_bytes() == b"<p>two</p>"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["p.html"]
    finally:
        os.umask(old)


def test_a_page_writer_that_stops_leaves_no_feed_and_no_part(tmp_path: Path, message: Path) -> None:
    """A worker that cannot write a page (a folder stands where the page goes) stops the stage
    with an error that names no personal data; no feed, no part file of the feed is left."""
    from reporting.statements.writer import PageWriterError

    out = tmp_path / "out"
    sellers = {"LT2025-NEW1": "S-ENT", "LT2025-DEL2": "S-ANN"}
    sid = statement_id("test", "LT", "LT2025-DEL2")
    (out / "statements" / sid[:2] / f"{sid}.html").mkdir(parents=True)
    with pytest.raises(PageWriterError, match="exit status 1") as stopped:
        write_statements(
            out,
            [Published(message, "LT")],
            environment="test",
            year=2025,
            seller_of=lambda ids: {d: sellers[d] for d in ids if d in sellers},
            language_of=lambda ids: {},
            workers=2,
        )
    assert "S-ENT" not in str(stopped.value) and "LT2025" not in str(stopped.value)
    assert not [p for p in (out / "statements").iterdir() if p.is_file()]


@pytest.mark.parametrize("workers", [0, 2])
def test_recorded_statements_are_kept_by_page_writers_too(tmp_path: Path, message: Path, workers: int) -> None:
    """A statement the ledger recorded with other bytes keeps its recorded line and page, and is
    counted as kept, whether this process or page-writing processes write the pages; one
    recorded with this build's very bytes whose page was cut short is written again."""
    from datetime import date

    def build(out: Path, recorded: dict[str, tuple[str, str | None]], day: int, writers: int) -> Any:
        sellers = {"LT2025-NEW1": "S-ENT", "LT2025-DEL2": "S-ANN"}
        return write_statements(
            out,
            [Published(message, "LT")],
            environment="test",
            year=2025,
            seller_of=lambda ids: {d: sellers[d] for d in ids if d in sellers},
            language_of=lambda ids: {},
            recorded=lambda ids: {i: recorded[i] for i in ids if i in recorded},
            issued=date(2026, 1, day),
            workers=writers,
        )

    out = tmp_path / "out"
    build(out, {}, 20, 0)  # the statements as first given
    first = list(read_feed(out))
    feed_before = (out / "statements" / "statements.jsonl").read_bytes()
    entity, person = first
    canonical = json.dumps(entity, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    entity_page = out / entity["html_path"]
    entity_page.write_bytes(entity_page.read_bytes() + b"<!-- as given -->")  # the recorded page, kept as it is
    given = entity_page.read_bytes()
    person_page = out / person["html_path"]
    person_page.write_bytes(person_page.read_bytes()[:100])  # a half page of this build's bytes
    recorded = {
        entity["statement_id"]: (entity["sha256"], canonical.replace('"2026-01-20"', '"2025-12-31"')),
        person["statement_id"]: (person["sha256"], None),  # content erased, the very bytes recorded
    }
    written = build(out, recorded, 20, workers)
    assert written.statements == 2 and written.kept == 1
    again_entity, again_person = read_feed(out)
    assert again_entity == {**entity, "issued": "2025-12-31"}  # the recorded object, not this build's page
    assert list(again_entity) == list(entity)  # in the feed's key order
    assert entity_page.read_bytes() == given
    assert again_person == person and (out / "statements" / "statements.jsonl").read_bytes() != feed_before
    assert hashlib.sha256(person_page.read_bytes()).hexdigest() == person["sha256"]
    assert not [p for p in (out / "statements").glob(".*")]
