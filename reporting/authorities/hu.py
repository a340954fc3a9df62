"""Hungary (NAV): the domestic ``DPI_HU`` message.

Differences from the EU edition (NAV schema, see tests/unit/test_xsd_hu_equivalence.py): root
``DPI_HU`` with exactly one DPIBody; a MessageSpec without TransmittingCountry and
ReceivingCountry, whose SendingEntityIN (mandatory) is the sender's Hungarian tax number
(``[authorities.HU] tax_number``); one Name and one Address per party; permanent establishments
as full addresses (the optional address columns of ``seller_permanent_establishments``); only
AssumingPlatformOperator (a Hungarian operator that assumes the reporting of others reports their
sellers without naming them; one whose reporting is assumed files a DPI403 that names the assuming
operator, as the schema's annotations of MessageTypeIndic and OtherPlatformOperators say). Ids:
MessageRefId = the first 8 digits of the tax number, the year and a unique id; DocRefId = the
year and a unique id (no country code). Timestamp in CET.

Sources and what is unsure (reference §6.3): the official NAV repository (schema and bilingual
annotations). The id formats and the CET rule are annotations, not schema patterns; NAV's
validator checks the schema only. Whether the tax number is written with hyphens is not stated:
the profile accepts ``12345678``, ``12345678-1-42`` or ``12345678142`` and sends it as given. The
EU business-rule preflight reads only the EU edition, so no rule set is applied to DPI_HU files
yet (the schema is).
"""

from __future__ import annotations

import re
from typing import ClassVar

from reporting.authorities.base import DocIds, XmlStream
from reporting.authorities.eu import EuProfile
from reporting.checks.business import RuleSet
from reporting.records import MessageHeader, SellerRecord
from reporting.vocabulary import ASSUMING

TAX_NUMBER = re.compile(r"(\d{8})(-?\d-?\d{2})?")


class HuProfile(EuProfile):
    code = "HU"
    # NAV's guide: DPI403 "no data to report", also for an operator exempt because another
    # operator reported (reference §3.1, S-HU)
    expects_nil = True
    # NAV's schema annotation of MessageTypeIndic DPI403: the operator "identified such
    # information however is exempt from reporting, because the same information has been
    # reported by another Reporting Platform Operator (second sentence of Section III/A/1 and 2 of
    # Annex 5 of the Aktv.)": an assumed operator's declaration is a DPI403.
    assumed_message_type = "DPI403"
    # DPI_HU's OtherPlatformOperators_Type holds AssumingPlatformOperator (1..n) only: a Hungarian
    # filing cannot name the operators whose reporting it assumes. NAV's annotation of
    # OtherPlatformOperators makes naming the assuming operator "an optional step" of the assumed
    # operator's proof: each assumed operator names its assuming operator in its own filing.
    names_assumed_operators = False
    other_operator_tags: ClassVar[dict[str, str]] = {ASSUMING: "AssumingPlatformOperator"}
    domestic = "HU"
    edition = "NAV DPI_HU v1.0"
    schema_resource = "hu/v1.0/DPIXML_v1.0.xsd"
    root_tag = "DPI_HU"
    rule_set = RuleSet("NAV (schema only)", frozenset())
    required_identifiers: tuple[str, ...] = ("tax_number",)

    def identifier_problem(self, identifiers: dict[str, str]) -> str | None:
        if not TAX_NUMBER.fullmatch(identifiers.get("tax_number", "")):
            return "tax_number must be a Hungarian tax number: 8 digits, optionally -N-NN"
        return None

    def message_ref_id(self, ids: DocIds, part: int) -> str:
        stem = ids.identifiers["tax_number"][:8]
        return f"{stem}{ids.year}{ids.unique('message', 'HU', str(part))}"

    def doc_ref_id(self, ids: DocIds, record_key: str) -> str:
        return f"{ids.year}-{ids.unique('doc', 'HU', record_key)}"

    def sending_entity_in(self, header: MessageHeader) -> str | None:
        return header.identifiers["tax_number"]

    def message_spec(self, w: XmlStream, h: MessageHeader) -> None:
        with w.element(self.q("MessageSpec")):
            w.leaf(self.q("SendingEntityIN"), self.sending_entity_in(h))
            w.leaf(self.q("MessageType"), "DPI")
            w.leaf(self.q("MessageRefId"), h.message_ref_id)
            w.leaf(self.q("MessageTypeIndic"), h.message_type_indic)
            w.leaf(self.q("ReportingPeriod"), h.reporting_period.isoformat())
            w.leaf(self.q("Timestamp"), h.timestamp.strftime("%Y-%m-%dT%H:%M:%S"))

    def seller_problems(self, seller: SellerRecord) -> list[tuple[str, str, str, str]]:
        if seller.seller_type != "entity" or not seller.permanent_establishments:
            return []
        with_address = {a.country for a in seller.pe_addresses if a.city}
        return [
            (
                "hu.permanent_establishment_address",
                "seller_permanent_establishments",
                seller.seller_id,
                f"NAV wants the address of the permanent establishment in {country}: fill address_city "
                "(and street, building, post code) of seller_permanent_establishments",
            )
            for country in seller.permanent_establishments
            if country not in with_address
        ]

    def permanent_establishments(self, w: XmlStream, s: SellerRecord) -> None:
        """NAV wants each establishment's address (seller_problems has made sure there is one)."""
        addresses = [a for a in s.pe_addresses if a.city and a.country in s.permanent_establishments]
        if addresses:
            with w.element(self.q("PermanentEstablishments")):
                for a in addresses:
                    self.address(w, a)


HU = HuProfile()
