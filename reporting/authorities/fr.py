"""France (DGFiP): the French edition of the DPI message, its ids, file name and transmission.

The DGFiP has a schema of its own (cahier des charges DPI-DAC7 v1.6, revenus 2025; our copy is
``xsd/fr/v1.6``, proven equivalent to the reference copy in tests/unit/test_xsd_fr_equivalence.py,
whose docstring lists every structural difference from the EU edition):

* namespaces ``urn:oecd:ties:dpi`` and ``urn:oecd:ties:dpistf`` without ``:v1`` (the ISO types are in
  ``urn:oecd:ties:dpiisotypes``, which no element of a message uses); root ``DPI_OECD version="1.0"``
  with exactly one ``DPIBody``; ``TaxesQ1..4`` for ``TaxQ1..4``; no SendingEntityIN, Warning,
  Contact, GVS or Nationality.
* TransmittingCountry and ReceivingCountry ``FR``. MessageRefId ``OP_<year>_<SIREN>_d<nnn>_<unique>``
  (``OP_<year>_<SIREN>_t<n>_d<nnn>_<unique>`` in the test environment, see below), 88 characters at
  most; DocRefId ``OP_<year>_<SIREN>_<unique>``; ``<nnn>`` is the part number of the message (001
  ...), ``<unique>`` 32 hex digits derived from the run id, so that a rerun is identical.
* File name ``DPIDAC7_<year>_<SIREN>_<nnn>_<YYYYMMDDhhmmss>.xml``: year, SIREN and part are read back
  from the MessageRefId, the time is the message Timestamp, so the three always agree.
* Timestamp in Europe/Paris local time, ``YYYY-MM-DDThh:mm:ss.mmm`` without an offset.
* DocTypeIndic ``OECD10..13`` in the test environment, ``OECD0..3`` in production.
* PlatformOperator in the French flat form: ResCountryCode once, TIN = the SIREN of
  ``[authorities.FR] siren`` with issuedBy ``FR`` (the only value the schema allows), VAT, Name,
  PlatformBusinessName exactly once (the operator's name when the configuration has none),
  Address (registered office), Nexus and AssumedReporting.
* A seller has exactly one ResCountryCode (the DGFiP schema's change note of 30/03/2023:
  "ResCountryCode obligatoire non répétable"). **A seller with several EU residences** appears with
  the first of them in the order of Annex V, Section II(D): the state of its primary address when
  that is in the EU, else the first EU state (alphabetically) that issued one of its TINs, else the
  first EU state of a permanent establishment. Its other states of residence stay visible in the
  record: every TIN is sent with its ``issuedBy``, every permanent establishment is listed. Whether
  the DGFiP forwards such a seller to each of its states of residence, or only to the one in
  ResCountryCode, is not said in any source read; no DGFiP text on the case was found.
* **A seller without an EU residence** (resident outside the EU, reported for property located in the
  EU) is quarantined (``fr.residence_not_eu``) instead of being filed with a residence it does not
  have. DAC7 requires such a seller to be reported, and the DGFiP's second-level rule 8 (cahier des
  charges v1.6, §5.3.2.1, p. 108, cited by the schema's comments on ResCountryCode) says what to put
  in ResCountryCode. The text of that rule could not be read: no copy of the cahier des charges
  (``cdc-dac7-v.1.6.pdf`` on impots.gouv.fr) is in the stored sources, and the only wording found is a
  third party's paraphrase ("must be a country covered by DAC7, i.e. within the EU"). Writing the
  property's state, or any other state, would be a guess, so this version does not: correct such a
  seller's residence if it is wrong, or ask the DGFiP and report the seller by hand until this
  profile implements rule 8. The quarantine report and the due-diligence report list every such
  seller. An unknown TIN is written
  ``<TIN unknown="true">NOTIN</TIN>`` (the schema forbids an empty TIN). An address is AddressFix
  or AddressFree, never both. PropertyType is mandatory: a listing without one is named in a finding
  (:meth:`FrProfile.seller_problems`, and again when writing, should a caller skip that check).
* The DGFiP second-level rules 2, 12, 33, 34-1 and 34-2 (reference §6.2) are checked by
  :func:`check_fr_rules` over a French message, with the codes ``FR-2`` ... ``FR-34-2``.
  :mod:`reporting.checks.business` reads only the EU namespaces, so the profile's ``rule_set`` is empty
  (the EU checker is not run on French files); :func:`check_fr_rules` runs as the profile's
  ``extra_checks`` in the validate stage and in ``dac7 validate --rules --authority FR``.
* :func:`package_for_transmission`: gzip, then OpenPGP (binary, not armored) to a public key file
  that the user supplies, with the local ``gpg`` in a temporary GNUPGHOME; nothing is downloaded.

Sources and what is unsure (reference §3.2, §6.2, §8): the reference's summary of the DGFiP
cahier des charges v1.6 and the DGFiP naming note as implemented by a third party (Back Market's
``dac7`` tool: models/flat.py, naming.py, encryption.py, and its six adapted DGFiP examples); the
official DGFiP texts themselves were not available.

* The ``_t<n>`` test marker: the third-party tool puts ``_t<declaration number>`` after the SIREN
  of MessageRefId; this profile adds ``_t<part>`` in the test environment. DocRefIds never carry
  ``_t``.
* ``<nnn>`` in the file name is "the declaration number" in the naming note; we use the part
  number of the message (001 for a message in one file). Whether DGFiP expects a number that grows
  across the successive filings of one year is not confirmed.
* The SIREN is checked for 9 digits only, not its Luhn key (the DGFiP examples use 123456789).
* Rules 34-1 and 34-2 are both summarised as "NOTIN is not allowed alongside proper TINs"; which
  case each number covers is not in the stored sources. Here 34-1 is an entity seller and 34-2 an
  individual seller, like the a/b split of the EU rule 40070.
* Rule 2 reads "a negative quarterly consideration, or a seller total of zero": the total is the
  seller's sum of ConsQ1..4 over all its activities (the third-party tool checks each activity).
* The DGFiP public keys (TEST and PROD) are not bundled: the user supplies the key file. The
  fingerprints in :data:`DGFIP_KEY_FINGERPRINTS` come from the third-party tool, not from DGFiP;
  pass one as ``expected_fingerprint`` to refuse any other key (the outbox passes the one of the
  message's environment).
* No DGFiP file-size or seller limit is known; corrections, deletions and nil reports follow the
  EU mechanics (the French corrective example uses DPI401 with OECD2, reference §8).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

from reporting import safexml
from reporting.authorities.base import Doc, DocIds, XmlStream
from reporting.authorities.eu import EuProfile
from reporting.checks.business import RuleFinding, RuleSet
from reporting.countries import is_eu
from reporting.errors import ConfigError, DataError, PermanentError, ReportingError
from reporting.findings import Finding
from reporting.records import (
    ActivityFigures,
    MessageHeader,
    OperatorRecord,
    OtherOperatorRecord,
    PostalAddress,
    SellerRecord,
)
from reporting.vocabulary import PROD, PROPERTY, TEST

FR_DPI_NS = "urn:oecd:ties:dpi"
FR_STF_NS = "urn:oecd:ties:dpistf"
FR_ISO_NS = "urn:oecd:ties:dpiisotypes"  # types only: no element of a message is in this namespace
PARIS = ZoneInfo("Europe/Paris")
SIREN = re.compile(r"[0-9]{9}")
MAX_MESSAGE_REF_ID = 88
NOTIN = "NOTIN"
#: Our MessageRefId, from which the file name takes year, SIREN and part.
MESSAGE_REF_ID = re.compile(r"OP_(?P<year>[0-9]{4})_(?P<siren>[0-9]{9})_(?:t[0-9]+_)?d(?P<part>[0-9]{3})_[0-9A-F]{32}")
#: The DGFiP encryption keys by environment, as a third-party tool lists them (unverified).
DGFIP_KEY_FINGERPRINTS = {
    PROD: "3AE282C69675932A19D3245BD155B53F9EFF7A61",
    TEST: "E7125CD404D160E6C1C773299182BFA4B2FCE419",
}
#: The EU checker does not read French namespaces: DGFiP rules are in :func:`check_fr_rules`.
DGFIP_RULES = RuleSet("DGFiP", frozenset())


class FrProfile(EuProfile):
    code = "FR"
    domestic = "FR"
    edition = "DGFiP DPI-DAC7, cahier des charges v1.6 (revenus 2025)"
    schema_resource = "fr/v1.6/DPIXML_v1.1-fr1.xsd"
    rule_set = DGFIP_RULES
    required_identifiers: tuple[str, ...] = ("siren",)
    dpi_ns = FR_DPI_NS
    stf_ns = FR_STF_NS
    version = "1.0"
    tax_quarter_tag = "TaxesQ"
    operator_address_type = "OECD304"
    # The DGFiP's examples (cahier des charges, as adapted in Back Market's dac7 tool): the assumed
    # operator files a DPI403 with AssumingPlatformOperator (example 6), the assuming one a DPI401
    # with its sellers and AssumedPlatformOperator (example 5).
    assumed_message_type = "DPI403"

    def extra_checks(self, path: Path) -> list[RuleFinding]:
        """The DGFiP's own rules 2, 12, 33 and 34 (the EU checker does not read this edition)."""
        return check_fr_rules(path)

    # ------------------------------------------------------------------ identifiers and ids
    def identifier_problem(self, identifiers: dict[str, str]) -> str | None:
        if not SIREN.fullmatch(identifiers.get("siren", "")):
            return "siren must be the operator's SIREN: 9 digits, without spaces"
        return None

    @staticmethod
    def siren(ids: DocIds) -> str:
        siren: str = (getattr(ids, "identifiers", None) or {}).get("siren", "")
        if not SIREN.fullmatch(siren):
            raise ConfigError(
                "the FR profile needs [authorities.FR] siren (9 digits) for its MessageRefId and DocRefId"
            )
        return siren

    def message_ref_id(self, ids: DocIds, part: int) -> str:
        if not 1 <= part <= 999:
            raise ReportingError(f"part {part}: the DGFiP file name numbers a message's files 001 to 999")
        test = f"_t{part}" if getattr(ids, "environment", None) == "test" else ""
        ref = f"OP_{ids.year}_{self.siren(ids)}{test}_d{part:03d}_{ids.unique('message', 'FR', str(part))}"
        if len(ref) > MAX_MESSAGE_REF_ID:  # cannot happen with the format above; kept as the rule
            raise ReportingError(f"MessageRefId {ref} is longer than {MAX_MESSAGE_REF_ID} characters")
        return ref

    def doc_ref_id(self, ids: DocIds, record_key: str) -> str:
        return f"OP_{ids.year}_{self.siren(ids)}_{ids.unique('doc', 'FR', record_key)}"

    def file_name(self, header: MessageHeader) -> str:
        m = MESSAGE_REF_ID.fullmatch(header.message_ref_id)
        if m is None:
            raise ReportingError(f"MessageRefId {header.message_ref_id} is not in the FR profile's format")
        siren = header.identifiers.get("siren")
        if siren and siren != m["siren"]:
            raise ReportingError(f"MessageRefId {header.message_ref_id} does not hold the SIREN {siren}")
        if int(m["year"]) != header.reporting_period.year:
            raise ReportingError(f"MessageRefId {header.message_ref_id} does not hold the reporting year")
        return f"DPIDAC7_{m['year']}_{m['siren']}_{m['part']}_{header.timestamp:%Y%m%d%H%M%S}.xml"

    def follows_naming(self, name: str, message_ref_id: str, reporting_year: int) -> bool:
        """``DPIDAC7_<year>_<SIREN>_<nnn>_<YYYYMMDDhhmmss>.xml`` with the year, SIREN and part of
        the MessageRefId (the DGFiP naming note, as :meth:`file_name` applies it)."""
        m = MESSAGE_REF_ID.fullmatch(message_ref_id)
        if m is None or int(m["year"]) != reporting_year:
            return False
        stamp = re.fullmatch(rf"DPIDAC7_{m['year']}_{m['siren']}_{m['part']}_([0-9]{{14}})\.xml", name)
        if stamp is None:
            return False
        try:
            datetime.strptime(stamp[1], "%Y%m%d%H%M%S")
        except ValueError:
            return False
        return True

    # doc_type_indic: the EU profile's OECD10..13 (test) / OECD0..3 (prod) is the DGFiP's.

    def message_timestamp(self, utc: datetime) -> datetime:
        """Europe/Paris wall-clock time (CET or CEST), to the millisecond, without an offset."""
        aware = utc if utc.tzinfo is not None else utc.replace(tzinfo=UTC)
        local = aware.astimezone(PARIS).replace(tzinfo=None)
        return local.replace(microsecond=local.microsecond // 1000 * 1000)

    # ------------------------------------------------------------------ what France cannot receive
    def seller_problems(self, seller: SellerRecord) -> list[tuple[str, str, str, str]]:
        """(rule, table, row key, message) for what the DGFiP schema or rules refuse of a seller."""
        problems: list[tuple[str, str, str, str]] = []
        sid = seller.seller_id
        if first_eu_residence(seller) is None:
            problems.append(
                (
                    "fr.residence_not_eu",
                    "sellers",
                    sid,
                    "the DGFiP edition takes exactly one ResCountryCode and this seller has no EU residence; "
                    "DAC7 requires it to be reported (property in the EU), and what to write is set by the DGFiP's "
                    "second-level rule 8 (cahier des charges v1.6, §5.3.2.1), which this version does not "
                    "implement: correct the residence if it is wrong, else report this seller by hand",
                )
            )
        for a in seller.activities:
            where = ("property_listings", a.listing_id) if a.listing_id else ("sellers", sid)
            if a.activity == PROPERTY and a.address is None:
                problems.append(
                    (
                        "fr.listing_address_missing",
                        *where,
                        "a Property Listing needs its address in the DGFiP edition; complete it in the source",
                    )
                )
            if a.activity == PROPERTY and not a.property_type:
                problems.append(
                    (
                        "fr.property_type_missing",
                        *where,
                        "property_type is mandatory in the DGFiP edition (PropertyType, DPI901 to DPI910); "
                        "complete it in the source",
                    )
                )
            if min((*a.consideration, *a.activities, *a.fees, *a.taxes)) < 0:
                problems.append(
                    (
                        "fr.amount_negative",
                        *where,
                        f"a quarterly figure of {a.activity} is negative, which the DGFiP refuses (rule 2 for the "
                        "consideration; the schema for fees, taxes and numbers); check the refunds in the source",
                    )
                )
        if seller.activities and sum(sum(a.consideration) for a in seller.activities) == 0:
            problems.append(
                (
                    "fr.consideration_zero",
                    "sellers",
                    sid,
                    "the seller's total consideration is zero, which the DGFiP refuses (rule 2); "
                    "check its transactions and refunds",
                )
            )
        return problems

    def _refuse(self, seller: SellerRecord) -> None:
        """The write path's own guard, for a caller that did not ask :meth:`seller_problems`."""
        problems = self.seller_problems(seller)
        if problems:
            raise DataError(
                [
                    Finding(rule=rule, table=table, key=key, seller_id=seller.seller_id, message=message)
                    for rule, table, key, message in problems
                ]
            )

    # ------------------------------------------------------------------ the document
    def write_document(
        self,
        w: XmlStream,
        header: MessageHeader,
        operator: OperatorRecord,
        operator_doc: Doc,
        sellers: Iterable[tuple[SellerRecord, Doc]],
        others: Sequence[tuple[OtherOperatorRecord, Doc]] = (),
    ) -> int:
        siren = header.identifiers.get("siren", "")
        if not SIREN.fullmatch(siren):
            raise ConfigError("the FR profile needs [authorities.FR] siren (9 digits): the operator's TIN in France")
        french_operator = replace(
            operator,
            tin=siren,
            tin_issued_by="FR",
            platform_business_name=operator.platform_business_name or operator.name,
        )
        return self.write_message(w, header, french_operator, operator_doc, sellers, nsmap=self.nsmap, others=others)

    def message_spec(self, w: XmlStream, h: MessageHeader) -> None:
        with w.element(self.q("MessageSpec")):
            w.leaf(self.q("TransmittingCountry"), "FR")
            w.leaf(self.q("ReceivingCountry"), "FR")
            w.leaf(self.q("MessageType"), "DPI")
            w.leaf(self.q("MessageRefId"), h.message_ref_id)
            w.leaf(self.q("MessageTypeIndic"), h.message_type_indic)
            w.leaf(self.q("ReportingPeriod"), h.reporting_period.isoformat())
            w.leaf(self.q("Timestamp"), format_timestamp(h.timestamp))

    def platform_operator(self, w: XmlStream, op: OperatorRecord, doc: Doc) -> None:
        # CorrectablePlatformOperator_Type: flat, every element once but TIN and Address.
        with w.element(self.q("PlatformOperator")):
            w.leaf(self.q("ResCountryCode"), op.res_country)
            w.leaf(self.q("TIN"), op.tin, {"issuedBy": "FR"})
            w.opt(self.q("VAT"), op.vat)
            w.leaf(self.q("Name"), op.name)
            w.leaf(self.q("PlatformBusinessName"), op.platform_business_name or op.name)
            self.address(w, op.address, self.operator_address_type)
            w.leaf(self.q("Nexus"), op.nexus)
            w.leaf(self.q("AssumedReporting"), "true" if op.assumed_reporting else "false")
            self.doc_spec(w, doc)

    def address(self, w: XmlStream, a: PostalAddress, legal_type: str | None = None) -> None:
        # Address_Type: AddressFix or AddressFree (at most 200 characters, one line), never both.
        attrib = {"legalAddressType": legal_type} if legal_type else {}
        with w.element(self.q("Address"), attrib):
            w.leaf(self.q("CountryCode"), a.country)
            if a.city:
                with w.element(self.q("AddressFix")):
                    w.opt(self.q("Street"), a.street)
                    w.opt(self.q("BuildingIdentifier"), a.building)
                    w.opt(self.q("PostCode"), a.post_code)
                    w.leaf(self.q("City"), a.city)
            else:
                w.leaf(self.q("AddressFree"), " ".join((a.free_text or "").split()) or None)

    def reportable_seller(self, w: XmlStream, s: SellerRecord, doc: Doc) -> None:
        self._refuse(s)
        super().reportable_seller(w, s, doc)

    def residence_and_tins(self, w: XmlStream, seller: SellerRecord) -> None:
        w.leaf(self.q("ResCountryCode"), first_eu_residence(seller))
        if not seller.tins:
            w.leaf(self.q("TIN"), NOTIN, {"unknown": "true"})
        for t in seller.tins:
            w.leaf(self.q("TIN"), t.value, {"issuedBy": t.issued_by})

    def property_listing(self, w: XmlStream, a: ActivityFigures) -> None:
        with w.element(self.q("PropertyListing")):
            if a.address is not None:  # never None here: seller_problems refuses such a listing
                self.address(w, a.address)
            w.opt(self.q("LandRegistrationNumber"), a.land_registration_number)
            self.figures(w, a)
            w.leaf(self.q("PropertyType"), a.property_type)
            if a.property_type == "DPI910":
                w.opt(self.q("OtherPropertyType"), a.other_property_type)
            if a.rented_days > 0:
                w.leaf(self.q("RentedDays"), a.rented_days)


def first_eu_residence(seller: SellerRecord) -> str | None:
    """The seller's one ResCountryCode in the DGFiP edition: its first EU state of residence, in the
    order of Annex V, Section II(D) (primary address, TIN issuers, permanent establishments)."""
    return next((c for c in seller.res_countries if is_eu(c)), None)


def format_timestamp(local: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss.mmm``, the DGFiP Timestamp."""
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}"


FR = FrProfile()


# ---------------------------------------------------------------------------------------- DGFiP rules

#: The DGFiP second-level rules that :func:`check_fr_rules` decides (reference §6.2).
FR_RULES: dict[str, str] = {
    "FR-2": "A quarterly consideration must not be negative, and a seller's total consideration must not be zero.",
    "FR-12": "The birthplace of an individual seller is mandatory when the seller has no TIN.",
    "FR-33": "Every reportable seller needs at least one relevant activity.",
    "FR-34-1": "An entity seller's NOTIN (unknown TIN) is not allowed alongside proper TINs.",
    "FR-34-2": "An individual seller's NOTIN (unknown TIN) is not allowed alongside proper TINs.",
}

_ROOT = f"{{{FR_DPI_NS}}}DPI_OECD"
_SELLER = f"{{{FR_DPI_NS}}}ReportableSeller"
_PREFIXES = {FR_DPI_NS: "dpi", FR_STF_NS: "stf"}
_ACTIVITIES = ("ImmovableProperty", "PersonalServices", "SaleOfGoods", "TransportationRental")


class NotFrDpiMessageError(PermanentError, ValueError):
    """The document is not a DPI message of the DGFiP edition; the DGFiP rules cannot be checked."""


def _fq(tag: str) -> str:
    return f"{{{FR_DPI_NS}}}{tag}"


def _path_below(elem: etree._Element, top: etree._Element, top_path: str) -> str:
    """Positional XPath of ``elem`` inside ``top`` (whose path is ``top_path``), prefixes dpi/stf."""
    steps: list[str] = []
    node = elem
    while node is not top:
        parent = node.getparent()
        assert parent is not None, "elem lies inside top"
        qname = etree.QName(node)
        index = 1 + sum(1 for _ in node.itersiblings(qname.text, preceding=True))
        steps.append(f"/{_PREFIXES.get(qname.namespace or '', '*')}:{qname.localname}[{index}]")
        node = parent
    return top_path + "".join(reversed(steps))


def _unknown_tin(tin: etree._Element) -> bool:
    return (tin.get("unknown") or "").strip() in ("true", "1") or (tin.text or "").strip() in ("", NOTIN)


def _seller_findings(seller: etree._Element, xpath: str) -> Iterator[RuleFinding]:
    doc_ref_id = (seller.findtext(f"{_fq('DocSpec')}/{{{FR_STF_NS}}}DocRefId") or "").strip() or None

    def finding(code: str, target: etree._Element, message: str) -> RuleFinding:
        where = _path_below(target, seller, xpath) if target is not seller else xpath
        return RuleFinding(code, f"DGFiP {code[3:]}", "error", doc_ref_id, where, message)

    person = seller.find(f"{_fq('Identity')}/{_fq('IndividualSeller')}/{_fq('Standard')}/{_fq('IndSellerID')}")
    entity = seller.find(f"{_fq('Identity')}/{_fq('EntitySeller')}/{_fq('Standard')}/{_fq('EntSellerID')}")
    party = person if person is not None else entity
    activities = seller.find(_fq("RelevantActivities"))

    # Rule 2: no negative quarterly consideration, no seller total of zero.
    total = 0
    considerations = list(activities.iter(*(_fq(f"ConsQ{i}") for i in range(1, 5)))) if activities is not None else []
    for cons in considerations:
        try:
            value = int((cons.text or "").strip())
        except ValueError:
            continue  # not a number: the schema's finding
        total += value
        if value < 0:
            yield finding("FR-2", cons, "a quarterly consideration is negative; report the net amount, 0 at least")
    if considerations and total == 0:
        yield finding(
            "FR-2",
            activities if activities is not None else seller,
            "the seller's total consideration is zero; do not report a seller without consideration",
        )
    # Rule 33: at least one relevant activity.
    if activities is None or not any(activities.find(_fq(t)) is not None for t in _ACTIVITIES):
        yield finding(
            "FR-33",
            activities if activities is not None else seller,
            "the seller has no relevant activity; add its activities or remove the seller",
        )
    if party is None:
        return
    tins = party.findall(_fq("TIN"))
    unknown = [t for t in tins if _unknown_tin(t)]
    # Rule 12: an individual without TIN needs a birthplace.
    if person is not None and len(unknown) == len(tins):
        birth_info = person.find(_fq("BirthInfo"))
        if birth_info is None or birth_info.find(_fq("BirthPlace")) is None:
            yield finding(
                "FR-12",
                birth_info if birth_info is not None else person,
                "the individual seller has no TIN: give its birthplace (BirthInfo/BirthPlace: City and CountryInfo)",
            )
    # Rules 34-1 (entity) and 34-2 (individual): NOTIN only as the one TIN.
    if unknown and len(tins) > 1:
        code = "FR-34-2" if person is not None else "FR-34-1"
        for t in unknown:
            yield finding(code, t, "NOTIN (unknown TIN) is given alongside proper TINs; remove the NOTIN TIN")


def check_fr_rules(source: str | Path | bytes) -> list[RuleFinding]:
    """Every finding of the DGFiP rules 2, 12, 33, 34-1 and 34-2 on one French message, in document
    order, each with its code (``FR-2`` ...), the seller's DocRefId and the XPath of the offending
    element (prefixes ``dpi`` = ``urn:oecd:ties:dpi``, ``stf`` = ``urn:oecd:ties:dpistf``).

    ``source`` is a file path or the bytes of a file; it is read in bounded memory, seller by
    seller. Raises :class:`NotFrDpiMessageError` (a ``ValueError``) when the root is not the
    DGFiP edition's ``DPI_OECD``, and :class:`reporting.safexml.XmlFileError` (a ``ValueError``) for a
    file that is empty, cut off, not well-formed, not UTF-8 or carries a DOCTYPE.
    """
    findings: list[RuleFinding] = []
    root_seen = False
    sellers = 0
    events = safexml.iterparse(source, events=("start", "end"), tag=(_ROOT, _SELLER))
    for event, elem in events:
        if elem.tag == _ROOT:
            if event == "start" and elem.getparent() is not None:
                raise NotFrDpiMessageError("the DGFiP DPI_OECD must be the root element")
            root_seen = True
            continue
        if event != "end":
            continue
        sellers += 1
        findings.extend(_seller_findings(elem, f"/dpi:DPI_OECD/dpi:DPIBody/dpi:ReportableSeller[{sellers}]"))
        elem.clear(keep_tail=True)
        parent = elem.getparent()
        while parent is not None and elem.getprevious() is not None:
            del parent[0]
    if not root_seen:
        raise NotFrDpiMessageError(
            f"not a DPI message of the DGFiP edition: the root must be DPI_OECD in {FR_DPI_NS} (without :v1)"
        )
    return findings


# ---------------------------------------------------------------------------------------- transmission

GPG_OPTIONS = ("--batch", "--no-tty", "--trust-model", "always", "--no-auto-key-locate", "--no-auto-key-retrieve")


def _gpg(gpg: str, home: str, *args: str) -> str:
    done = subprocess.run(
        [gpg, "--homedir", home, *GPG_OPTIONS, *args], capture_output=True, text=True, check=False, timeout=600
    )
    if done.returncode != 0:
        detail = " ".join(done.stderr.split())[-500:]
        raise ReportingError(f"gpg {' '.join(args[:1])} failed (exit {done.returncode}): {detail}")
    return done.stdout


def _primary_fingerprints(gpg: str, home: str) -> list[str]:
    lines = _gpg(gpg, home, "--with-colons", "--fingerprint", "--list-keys").splitlines()
    fingerprints = []
    for previous, line in zip(["", *lines], lines, strict=False):
        if line.startswith("fpr:") and previous.startswith("pub:"):
            fingerprints.append(line.split(":")[9].upper())
    return fingerprints


def package_for_transmission(
    xml_path: str | Path,
    public_key_path: str | Path,
    out_path: str | Path,
    *,
    expected_fingerprint: str | None = None,
) -> Path:
    """gzip ``xml_path``, then encrypt it with OpenPGP (binary, not armored) to the one public key in
    ``public_key_path`` (the DGFiP's key for the environment, supplied by the user); write
    ``out_path`` (conventionally ``<file name>.gz.gpg``) and return it.

    Uses the ``gpg`` program on PATH with a temporary, empty GNUPGHOME: no keyring of the user is
    read or changed and nothing is downloaded (no key lookup or retrieval). With
    ``expected_fingerprint`` (e.g. ``DGFIP_KEY_FINGERPRINTS["prod"]``) any other key is refused.
    """
    gpg = shutil.which("gpg")
    if gpg is None:
        raise ReportingError(
            "gpg (GnuPG) is not installed or not on PATH: install it to encrypt the file for the DGFiP "
            "(the pipeline never downloads a tool or a key)"
        )
    source, key, out = Path(xml_path), Path(public_key_path), Path(out_path)
    if not source.is_file():
        raise ReportingError(f"{source}: no such file to package")
    if not key.is_file():
        raise ConfigError(f"{key}: no such public key file (export the DGFiP key for the environment there)")
    with tempfile.TemporaryDirectory(prefix="dac7-gpg-") as home:  # mode 0700, removed with its contents
        try:
            _gpg(gpg, home, "--import", str(key))
            fingerprints = _primary_fingerprints(gpg, home)
            if len(fingerprints) != 1:
                raise ConfigError(f"{key}: must hold exactly one public key, found {len(fingerprints)}")
            [fingerprint] = fingerprints
            wanted = (expected_fingerprint or "").replace(" ", "").upper()
            if wanted and fingerprint != wanted:
                raise ConfigError(f"{key}: the key's fingerprint is {fingerprint}, expected {wanted}")
            compressed = Path(home) / f"{source.name}.gz"
            with (
                source.open("rb") as src,
                compressed.open("wb") as raw,
                gzip.GzipFile(filename=source.name, mode="wb", fileobj=raw, mtime=0) as gz,
            ):
                shutil.copyfileobj(src, gz, 1 << 20)
            tmp = out.with_name(f".{out.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                # owner-only from the first byte: gpg writes to our 0600 file, whatever the umask
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as sink:
                    encrypt = ("--recipient", fingerprint, "--output", "-", "--encrypt", str(compressed))
                    done = subprocess.run(
                        [gpg, "--homedir", home, *GPG_OPTIONS, *encrypt],
                        stdout=sink,
                        stderr=subprocess.PIPE,
                        check=False,
                        timeout=600,
                    )
                if done.returncode != 0:
                    detail = " ".join(done.stderr.decode(errors="replace").split())[-500:]
                    raise ReportingError(f"gpg --encrypt failed (exit {done.returncode}): {detail}")
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
        finally:
            gpgconf = shutil.which("gpgconf")
            if gpgconf:  # stop any daemon gpg started for this home
                subprocess.run([gpgconf, "--homedir", home, "--kill", "all"], capture_output=True, check=False)
    return out
