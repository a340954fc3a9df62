"""Due diligence of identifiers with python-stdnum: hand-picked valid and broken numbers."""

from __future__ import annotations

import pytest

from reporting.reports.due_diligence import check_account, check_tin, check_vat, findings_of, mask


@pytest.mark.parametrize(
    ("tin", "country", "status"),
    [
        ("86095742719", "DE", "valid"),  # a Steuer-IdNr with the right check digit
        ("86095742718", "DE", "malformed"),  # the same with a wrong check digit
        ("39001010001", "LT", "malformed"),  # asmens kodas with a wrong check digit
        ("RSSMRA80A01H501U", "IT", "valid"),  # codice fiscale
        ("123456789", "XK", "unchecked"),  # no module for Kosovo: said so, never "valid"
    ],
)
def test_tin(tin: str, country: str, status: str) -> None:
    result = check_tin(tin, country)
    assert result.status == status
    if status == "unchecked":
        assert result.detail == "no automatic format check exists for tax numbers of Kosovo (XK); check it by hand"
    if status == "malformed":
        assert result.detail.startswith("not a valid tax number of ") and "python-stdnum" not in result.detail


def test_vat_and_iban() -> None:
    assert check_vat("DE136695976").status == "valid"
    assert check_vat("DE136695977").status == "malformed"
    assert check_account("DE89370400440532013000").status == "valid"  # type: ignore[union-attr]
    assert check_account("DE89370400440532013001").status == "malformed"  # type: ignore[union-attr]
    assert check_account("12345678") is None  # not an IBAN: not judged


def test_findings_mask_personal_data_and_say_what_to_do() -> None:
    row = {
        "seller_id": "S1",
        "seller_type": "individual",
        "authorities": "DE",
        "tins": [{"tin": "86095742718", "issued_by": "DE"}],
        "vat_id": None,
        "accounts": ["DE89370400440532013001"],
    }
    found = list(findings_of(row))
    assert [(f["identifier"], f["value_masked"]) for f in found] == [("tin", "***718"), ("iban", "***001")]
    assert all("86095742718" not in str(f) and "DE89370400440532013001" not in str(f) for f in found)
    assert found[0]["action"].startswith("Verify the TIN")
    unknown = list(findings_of({**row, "tins": [], "accounts": []}))
    assert [f["finding"] for f in unknown] == ["TIN unknown"] and unknown[0]["action"].startswith("Obtain")
    assert mask("ab") == "***"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("86095742718", "***718"),  # a TIN of 11 characters
        ("DE89370400440532013001", "***001"),  # an IBAN of 22
        ("DE89 3704 0044 0532 0130 01", "***001"),  # its spaces left out, not shown as part of the end
        ("123456", "***456"),  # six characters: the last three show
        ("12345", "***"),  # five: the last three would be most of it
        ("ab", "***"),
        (None, ""),
        ("", ""),
    ],
)
def test_a_masked_identifier_shows_its_last_three_characters_and_not_its_length(value: str | None, masked: str) -> None:
    assert mask(value) == masked


def test_masked_identifiers_of_any_length_are_alike_in_length() -> None:
    assert {len(mask("7" * n)) for n in range(6, 65)} == {6}
    assert {mask("7" * n) for n in range(1, 6)} == {"***"}
    assert mask("ABCDEFGH", keep=2) == "***GH" and mask("ABC", keep=2) == "***"


def test_country_names_in_sentences_take_their_article() -> None:
    from reporting.identifiers import country_name

    assert [country_name(c) for c in ("CY", "NL", "GB", "EL", "ZZ", None)] == [
        "Cyprus (CY)",
        "the Netherlands (NL)",
        "the United Kingdom (GB)",
        "Greece (EL)",
        "ZZ",
        "an unnamed country",
    ]
