"""Canada and New Zealand: both apply the OECD Model Rules, neither is filed yet. What the
authorities publish was searched (reporting.jurisdictions.CANADA and NEW_ZEALAND cite each
source); the facts a filing needs and no source gives are named when the configuration refuses
the jurisdiction, never guessed. The hand-checked values below are those of the sources:

* CRA, Filing information returns: by January 31, first for 2024; List of partner
  jurisdictions: BG, LV, NZ, GB, IE, SE from 2024; its own Part XX layout in a T619 transmittal.
* Inland Revenue, Information reporting overview and How to report information: report and
  sellers' copy by 7 February, rental of immovable property and personal services only, the OECD
  model rules XML Schema uploaded in myIR.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from reporting.config import parse_config
from reporting.countries import EU_MEMBER_STATES
from reporting.errors import ConfigError
from reporting.jurisdictions import (
    CANADA,
    CORE_SCOPE,
    MODEL_RULES,
    NEW_ZEALAND,
    PENDING,
    UNITED_KINGDOM,
    filing_refusal,
    is_filing_jurisdiction,
)
from reporting.vocabulary import GOODS, PROPERTY, SERVICES, TRANSPORT

REPO = Path(__file__).resolve().parents[2]

#: what each refusal must name: the facts a filing needs that were not found
MISSING = {
    "CA": (
        "the CRA's XML schema files for the Part XX return",
        "the form of the document reference ids",
        "the T619 fields of a Part XX submission",
    ),
    "NZ": (
        "what MessageSpec/SendingEntityIN holds",
        "the MessageRefId and DocRefId forms Inland Revenue expects",
        "the list of New Zealand's partner jurisdictions per reportable period",
    ),
}


def demo() -> dict[str, Any]:
    return tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))


def refusal(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    return str(err.value)


@pytest.mark.parametrize("country", ["CA", "NZ"])
def test_an_operator_filing_in_canada_or_new_zealand_is_refused_naming_what_was_not_found(country: str) -> None:
    raw = demo()
    raw["operator"]["nexus_country"] = country
    raw["operator"]["nexus"] = "RPONEX4"
    message = refusal(raw)
    assert f"operator.nexus_country: {country} ({PENDING[country].name}) applies the OECD Model Rules" in message
    assert PENDING[country].law in message
    for fact in MISSING[country]:
        assert fact in message, fact
    assert "Nothing is guessed" in message and "docs/rules/authorities.md" in message


@pytest.mark.parametrize("country", ["CA", "NZ"])
def test_an_authorities_table_for_canada_or_new_zealand_is_refused_the_same_way(country: str) -> None:
    raw = demo()
    raw["authorities"] = {country: {"x": "1"}}
    message = refusal(raw)
    assert f"[authorities.{country}]: {country} ({PENDING[country].name}) applies the OECD Model Rules" in message
    assert all(fact in message for fact in MISSING[country])


def test_a_further_operator_resident_in_canada_is_refused_naming_its_own_key() -> None:
    raw = demo()
    raw["operators"] = {
        "ca_inc": {
            "name": "Demo Market Inc.",
            "tin": "123456789",
            "tin_issued_by": "CA",
            "nexus": "RPONEX1",
            "address": {"city": "Toronto", "country": "CA"},
        }
    }
    message = refusal(raw)
    assert "operators.ca_inc.address.country: CA (Canada) applies the OECD Model Rules" in message
    assert all(fact in message for fact in MISSING["CA"])


def test_another_jurisdiction_keeps_the_general_refusal_and_the_known_ones_are_accepted() -> None:
    assert filing_refusal("LT", "k") is None and filing_refusal("GB", "k") is None
    assert filing_refusal("US", "[authorities.US]") == (
        "[authorities.US]: 'US' is not an EU member state code, nor a jurisdiction of the OECD Model Rules this "
        "version knows (GB)"
    )
    ca = filing_refusal("CA", "[authorities.CA]")
    assert ca is not None and ca == CANADA.refusal("[authorities.CA]")


def test_the_pending_jurisdictions_are_neither_member_states_nor_filed() -> None:
    assert set(PENDING) == {"CA", "NZ"}
    assert not set(PENDING) & (set(MODEL_RULES) | EU_MEMBER_STATES)
    assert not is_filing_jurisdiction("CA") and not is_filing_jurisdiction("NZ")


def test_canada_as_found_due_31_january_from_2024_goods_services_and_property() -> None:
    assert (CANADA.first_period, CANADA.filing_due) == (2024, "01-31")
    assert date.fromisoformat(f"2025-{CANADA.filing_due}") == date(2025, 1, 31)  # the first deadline, for 2024
    assert CANADA.scope == {GOODS, SERVICES, PROPERTY}
    # not found: kept out and named, not assumed either way
    assert TRANSPORT not in CANADA.scope and "whether Part XX covers the rental of means of transport" in CANADA.missing
    assert CANADA.seller_copy_due is None and "the seller's copy and its due day" in CANADA.missing
    assert CANADA.partners == {2024: {"BG", "LV", "NZ", "GB", "IE", "SE"}}


def test_new_zealand_as_found_due_7_february_core_scope_no_partner_list() -> None:
    assert (NEW_ZEALAND.first_period, NEW_ZEALAND.filing_due, NEW_ZEALAND.seller_copy_due) == (2024, "02-07", "02-07")
    assert date.fromisoformat(f"2025-{NEW_ZEALAND.filing_due}") == date(2025, 2, 7)
    assert NEW_ZEALAND.scope == CORE_SCOPE == {SERVICES, PROPERTY}
    assert NEW_ZEALAND.partners == {}


def test_new_zealands_own_scope_is_the_one_the_uk_gives_it_as_a_partner() -> None:
    """HMRC lists New Zealand for the core scope only (IEIM901820); Inland Revenue says the extended
    standard is not implemented: the two sources agree."""
    for year in (2024, 2025):
        listed = UNITED_KINGDOM.published_list(year)
        assert listed is not None and listed.jurisdictions["NZ"] == NEW_ZEALAND.scope


def test_canada_and_the_uk_list_each_other_for_2024() -> None:
    """A partnership is in effect when both jurisdictions list each other (CRA, List of partner
    jurisdictions): the CRA's list names the UK, HMRC's 2024 list names Canada."""
    uk_2024 = UNITED_KINGDOM.published_list(2024)
    assert uk_2024 is not None and "CA" in uk_2024.jurisdictions
    assert "GB" in CANADA.partners[2024]


@pytest.mark.parametrize("pending", [CANADA, NEW_ZEALAND], ids=["CA", "NZ"])
def test_every_fact_found_cites_its_source_and_every_missing_one_where_it_was_searched(pending: Any) -> None:
    for fact in ("law", "deadline", "scope", "format", "transmission"):
        assert "https://" in pending.found[fact], fact
    assert all(where.strip() for where in pending.missing.values())
    assert "Part XX" in CANADA.found["format"] and "not the OECD DPI message" in CANADA.found["format"]
    assert "OECD model rules XML Schema" in NEW_ZEALAND.found["format"]
    assert "150 MB" in CANADA.found["transmission"] and "200MB" in NEW_ZEALAND.found["transmission"]


def test_new_zealand_stays_a_partner_a_uk_filing_may_name() -> None:
    raw = demo()
    raw["operator"]["nexus_country"] = "GB"
    raw["operator"]["nexus"] = "RPONEX4"
    raw["authorities"] = {"GB": {"platform_operator_id": "XMDPI0001234567", "partner_jurisdictions": ["NZ", "CA"]}}
    assert parse_config(raw).authorities["GB"]["partner_jurisdictions"] == "CA,NZ"
