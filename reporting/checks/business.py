"""The EU DG TAXUD business-rule preflight: the authority's own checks over a rendered DPI message.

Schema validation (:mod:`reporting.checks.schema`) proves the structure; these checks catch what the
XSD cannot express, with the codes the receiving authority would put in its status message
(reference §3 and §4.1, module 1.1.0 of the EU validation plugin).

The checks run over the EU/OECD edition of DPI v1.0 (``urn:oecd:ties:dpi:v1`` and
``urn:oecd:ties:dpistf:v1``, root ``DPI_OECD``), either bare or wrapped in an envelope (the
Italian telematic ``tm:Messaggio``, the German ``dip:dip``, HMRC's submission request): the first
``DPI_OECD`` element is the message. A document in another edition (the French DGFiP namespaces,
the Hungarian ``DPI_HU``) raises :class:`NotEuDpiMessageError`.

Memory stays bounded: a file is read with ``iterparse``, and each ``ReportableSeller`` is checked
and dropped as soon as it has been read (with the ledger asked in the same reading, once the
ledger has answered for its ids: at most :data:`LEDGER_BATCH` records are held). What the
checks need to remember across sellers is small: counters, the DocRefIds seen (80000) and the
corrected DocRefIds (80011).

Every check is a small function in the table :data:`EU_RULES` (code, rule id, scope, function,
description). A national profile adds its own rules with :func:`register_rule` and picks the codes
that bind it with a :class:`RuleSet` (:data:`EU_EXCHANGE`, :data:`EU_DOMESTIC`, or one derived with
:meth:`RuleSet.derive`). A rule that re-issues an EU check under a national code (Italy's E1060 for
10060 ...) is ``dataclasses.replace(RULES["10060"], code="E1060", rule_id=...)``.

Findings never quote personal data (TINs, names, birth dates, addresses): only codes, ids and dates
of the message itself.

Not decidable from a message (they need the ledger's record-version chain or the receiving
member state's database): 20030b, 20040b, 80002, 80003, 80008, 80013, 80014; 70010 is a member
state's policy; 50005 and 50007 are file-level (transport security, the XSD).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, TypeVar

from lxml import etree

from reporting import safexml
from reporting.countries import is_eu
from reporting.errors import PermanentError
from reporting.results import RuleFindingDict

DPI_NS = "urn:oecd:ties:dpi:v1"
STF_NS = "urn:oecd:ties:dpistf:v1"
#: The prefixes used in every finding's XPath (envelope steps keep the document's own prefixes).
NAMESPACES: dict[str, str] = {"dpi": DPI_NS, "stf": STF_NS}
_PREFIX = {DPI_NS: "dpi", STF_NS: "stf"}

_ROOT_NAMES = ("DPI_OECD", "DPI_HU")  # in any namespace: a national edition is recognised and refused


def _q(tag: str) -> str:
    return f"{{{DPI_NS}}}{tag}"


def _s(tag: str) -> str:
    return f"{{{STF_NS}}}{tag}"


ROOT = _q("DPI_OECD")
SPEC = _q("MessageSpec")
BODY = _q("DPIBody")
SELLER = _q("ReportableSeller")
OPERATOR = _q("PlatformOperator")
ASSUMING = _q("AssumingPlatformOperator")
ASSUMED = _q("AssumedPlatformOperator")
ACTIVITY_TAGS = tuple(_q(t) for t in ("ImmovableProperty", "PersonalServices", "SaleOfGoods", "TransportationRental"))

DPI401, DPI402, DPI403 = "DPI401", "DPI402", "DPI403"
#: DocTypeIndic -> 0 resent, 1 new, 2 corrected, 3 deleted; the test codes OECD10..13 fold onto 0..3.
DOC_TYPES: dict[str, int] = {f"OECD{n}": n for n in range(4)} | {f"OECD1{n}": n for n in range(4)}
RESENT, NEW, CORRECTED, DELETED = 0, 1, 2, 3

_DOC_REF_ID = re.compile(r"(\w{2})(\d{4}).*", re.ASCII)  # TR-80001, as Java's Matcher.matches() reads it
_YEAR = re.compile(r"(-?\d{4,})-\d{2}-\d{2}")


class NotEuDpiMessageError(PermanentError, ValueError):
    """The document is not a DPI message of the EU/OECD edition; no rule can be checked."""


# ---------------------------------------------------------------------------------------- findings


@dataclass(frozen=True, slots=True)
class RuleFinding:
    """One breach of a business rule, as the authority would report it.

    ``doc_ref_id`` is the DocRefId of the record the finding is in (None for the message as a
    whole); ``xpath`` locates the offending element with the prefixes of :data:`NAMESPACES`.
    """

    code: str
    rule_id: str
    severity: str
    doc_ref_id: str | None
    xpath: str
    message: str

    def describe(self) -> str:
        where = f"record {self.doc_ref_id}" if self.doc_ref_id else "message"
        return f"[{self.code} {self.rule_id}] {self.severity} in {where} at {self.xpath}: {self.message}"

    def as_dict(self) -> RuleFindingDict:
        return {
            "code": self.code,
            "rule_id": self.rule_id,
            "severity": self.severity,
            "doc_ref_id": self.doc_ref_id,
            "xpath": self.xpath,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """What a check returns: where, what to change, and (for a/b variants) the precise rule id."""

    xpath: str
    message: str
    doc_ref_id: str | None = None
    rule_id: str | None = None


class Scope(StrEnum):
    MESSAGE = "message"  # once, on the MessageSpec: check(ctx, None)
    BODY = "body"  # once per DPIBody, on its PlatformOperator and OtherPlatformOperators: check(ctx, body)
    RECORD = "record"  # every record with a DocSpec (operator, other operators, each seller): check(ctx, record)
    END = "end"  # once, after the message, on what was counted while streaming: check(ctx, None)


Check = Callable[["Context", Any], Iterable[Hit]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the rule table: the authority's code and rule id, when it runs, and its check."""

    code: str
    rule_id: str
    scope: Scope
    check: Check
    description: str
    severity: str = "error"


# ---------------------------------------------------------------------------------------- paths


def _tag(elem: etree._Element) -> str:
    """The tag of an element, ``{namespace}local``: lxml reads it as a str for every element (only
    comments and processing instructions, which the walk never reaches, have another); types-lxml
    types it with everything that may be assigned to it (bytes, bytearray, QName)."""
    tag = elem.tag
    assert isinstance(tag, str), "an element, not a comment or a processing instruction"
    return tag


def _step(elem: etree._Element, indexed: bool) -> str:
    qname = etree.QName(elem)
    prefix = _PREFIX.get(qname.namespace or "") or elem.prefix
    if qname.namespace is None:
        name = qname.localname
    elif prefix:
        name = f"{prefix}:{qname.localname}"
    else:
        name = f"*[local-name()='{qname.localname}']"
    if not indexed:
        return f"/{name}"
    index = 1 + sum(1 for _ in elem.itersiblings(_tag(elem), preceding=True))
    return f"/{name}[{index}]"


def _path(elem: etree._Element, stop: etree._Element | None = None, stop_path: str = "") -> str:
    """Positional XPath of ``elem``: absolute, or below ``stop`` whose path is ``stop_path``."""
    steps: list[str] = []
    node: etree._Element | None = elem
    while node is not None and node is not stop:
        parent = node.getparent()
        steps.append(_step(node, indexed=parent is not None))
        node = parent
    return stop_path + "".join(reversed(steps))


def _text(elem: etree._Element | None) -> str:
    return (elem.text or "").strip() if elem is not None else ""


def _is_true(value: str | None) -> bool:
    return (value or "").strip() in ("true", "1")


# ---------------------------------------------------------------------------------------- the message model


def _child(elem: etree._Element | None, *tags: str) -> etree._Element | None:
    """The first ``dpi:`` child along ``tags`` (``iterchildren`` per step: lxml's fastest lookup)."""
    for tag in tags:
        if elem is None:
            return None
        elem = next(elem.iterchildren(_q(tag)), None)
    return elem


def _children(elem: etree._Element | None, *tags: str) -> list[etree._Element]:
    """Every element along ``tags``, the last step repeated (``RelevantActivities/.../PropertyListing``)."""
    parent = _child(elem, *tags[:-1])
    return list(parent.iterchildren(_q(tags[-1]))) if parent is not None else []


@dataclass(slots=True)
class Record:
    """A top-level record with a DocSpec: the operator, another operator, or a seller.

    ``party`` holds ResCountryCode, TIN, Name ...: the operator element itself, or a seller's
    IndSellerID / EntSellerID (None for a GVS seller).
    """

    kind: str  # local name: PlatformOperator | AssumingPlatformOperator | AssumedPlatformOperator | ReportableSeller
    elem: etree._Element
    xpath: str
    doc_spec: etree._Element | None
    doc_ref_id: str | None
    doc_type: int | None  # 0..3 (test codes folded), None when missing or unknown
    corr_doc_ref_id: str | None
    party: etree._Element | None
    tins: list[etree._Element]  # the party's TIN elements
    listings: list[etree._Element]  # a seller's PropertyListing elements
    is_seller: bool = False
    individual: bool = False

    @classmethod
    def read(cls, elem: etree._Element, xpath: str) -> Record:
        spec = elem.find(_q("DocSpec"))
        doc_ref = _text(spec.find(_s("DocRefId"))) if spec is not None else ""
        corr = _text(spec.find(_s("CorrDocRefId"))) if spec is not None else ""
        indic = _text(spec.find(_s("DocTypeIndic"))) if spec is not None else ""
        is_seller = elem.tag == SELLER
        party: etree._Element | None = elem
        individual = False
        if is_seller:
            party = _child(elem, "Identity", "IndividualSeller", "Standard", "IndSellerID")
            individual = party is not None
            if party is None:
                party = _child(elem, "Identity", "EntitySeller", "Standard", "EntSellerID")
        return cls(
            kind=etree.QName(elem).localname,
            elem=elem,
            xpath=xpath,
            doc_spec=spec,
            doc_ref_id=doc_ref or None,
            doc_type=DOC_TYPES.get(indic),
            corr_doc_ref_id=corr or None,
            party=party,
            tins=_children(party, "TIN"),
            listings=_children(elem, "RelevantActivities", "ImmovableProperty", "PropertyListing") if is_seller else [],
            is_seller=is_seller,
            individual=individual,
        )

    @property
    def person(self) -> etree._Element | None:
        """The IndSellerID of an individual seller."""
        return self.party if self.individual else None

    @property
    def entity(self) -> etree._Element | None:
        """The EntSellerID of an entity seller."""
        return self.party if self.is_seller and not self.individual else None

    def path(self, target: etree._Element) -> str:
        return _path(target, self.elem, self.xpath)

    def hit(self, target: etree._Element | None, message: str, rule_id: str | None = None) -> Hit:
        return Hit(self.path(target if target is not None else self.elem), message, self.doc_ref_id, rule_id)


@dataclass(slots=True)
class Body:
    elem: etree._Element
    xpath: str
    operator: Record | None = None
    others: list[Record] = field(default_factory=list)
    others_elem: etree._Element | None = None
    sellers: int = 0
    header_done: bool = False


_T = TypeVar("_T")


@dataclass(eq=False)
class Context:
    """What the checks see: the MessageSpec, the current body, counters and per-rule memory."""

    today: date
    known_doc_ref_ids: Collection[str]
    known_message_ref_ids: Collection[str]
    expected_receiver: str | None
    #: DocRefId -> "live" or "outdated" for the records of the ledger (None: no ledger given,
    #: the rules that need it are skipped)
    ledger: Mapping[str, str] | None = None
    root: etree._Element | None = None
    spec: etree._Element | None = None
    body: Body | None = None
    bodies: int = 0
    sellers: int = 0
    doc_types: Counter[int | None] = field(default_factory=Counter)
    memory: dict[str, Any] = field(default_factory=dict)
    # from the MessageSpec (read_spec); empty or None where the message lacks them
    message_type_indic: str = ""
    transmitting_country: str = ""
    receiving_country: str = ""
    receiver: str = ""  # the member state receiving the message: the caller's, else ReceivingCountry
    reporting_year: str | None = None
    reporting_period: date | None = None

    def memo(self, key: str, factory: Callable[[], _T]) -> _T:
        """Per-message memory of one rule (a set of ids seen, the first class of records ...)."""
        if key not in self.memory:
            self.memory[key] = factory()
        value: _T = self.memory[key]
        return value

    def spec_elem(self, tag: str) -> etree._Element | None:
        return self.spec.find(_q(tag)) if self.spec is not None else None

    def spec_text(self, tag: str) -> str:
        return _text(self.spec_elem(tag))

    def read_spec(self, spec: etree._Element | None) -> None:
        """Take the MessageSpec values that the checks read for every record, once."""
        self.spec = spec
        self.message_type_indic = self.spec_text("MessageTypeIndic")
        self.transmitting_country = self.spec_text("TransmittingCountry")
        self.receiving_country = self.spec_text("ReceivingCountry")
        self.receiver = self.expected_receiver or self.receiving_country
        period = self.spec_text("ReportingPeriod")[:10]
        match = _YEAR.fullmatch(period)
        self.reporting_year = match.group(1) if match else None
        try:
            self.reporting_period = date.fromisoformat(period)
        except ValueError:
            self.reporting_period = None

    def path(self, elem: etree._Element) -> str:
        return _path(elem)

    def hit(
        self, elem: etree._Element | None, message: str, doc_ref_id: str | None = None, rule_id: str | None = None
    ) -> Hit:
        """A finding at ``elem`` (the message root when the element is missing)."""
        target = elem if elem is not None else self.root
        return Hit(_path(target) if target is not None else "/", message, doc_ref_id, rule_id)


# ---------------------------------------------------------------------------------------- MessageSpec rules


def check_sending_entity_in(ctx: Context, _: None) -> Iterator[Hit]:
    elem = ctx.spec_elem("SendingEntityIN")
    if elem is not None:
        yield ctx.hit(elem, "MessageSpec carries a SendingEntityIN, which is for domestic filings only: remove it.")


def check_reporting_period_not_future(ctx: Context, _: None) -> Iterator[Hit]:
    period = ctx.reporting_period
    if period is not None and period > ctx.today:
        yield ctx.hit(
            ctx.spec_elem("ReportingPeriod"),
            f"ReportingPeriod {period.isoformat()} lies after today ({ctx.today.isoformat()}): "
            "report a period only once it has ended, or correct ReportingPeriod.",
        )


def check_message_ref_id_format(ctx: Context, _: None) -> Iterator[Hit]:
    elem = ctx.spec_elem("MessageRefId")
    tc, rc, year = ctx.transmitting_country, ctx.receiving_country, ctx.reporting_year
    if elem is None or not (tc and rc and year):
        return
    prefix = f"{tc}{year}{rc}"
    value = _text(elem)
    if not (value.startswith(prefix) and len(value) > len(prefix)):
        yield ctx.hit(
            elem,
            f"MessageRefId {value!r} must start with {prefix!r} (TransmittingCountry, year of ReportingPeriod, "
            "ReceivingCountry) and go on with a unique id: rebuild it in that format.",
        )


def check_message_ref_id_unique(ctx: Context, _: None) -> Iterator[Hit]:
    elem = ctx.spec_elem("MessageRefId")
    if elem is not None and _text(elem) in ctx.known_message_ref_ids:
        yield ctx.hit(
            elem, f"MessageRefId {_text(elem)!r} was used by an earlier message: give this message a new one."
        )


def check_receiving_country(ctx: Context, _: None) -> Iterator[Hit]:
    elem = ctx.spec_elem("ReceivingCountry")
    if ctx.expected_receiver and elem is not None and _text(elem) != ctx.expected_receiver:
        yield ctx.hit(
            elem,
            f"ReceivingCountry is {_text(elem)!r} but the message goes to the tax authority of "
            f"{ctx.expected_receiver}: set ReceivingCountry to {ctx.expected_receiver}.",
        )


# ---------------------------------------------------------------------------------------- operator rules (per body)


def check_assumed_reporting_false(ctx: Context, body: Body) -> Iterator[Hit]:
    po = body.operator
    if po is None or ctx.message_type_indic != DPI401:
        return
    elem = po.elem.find(_q("AssumedReporting"))
    if elem is not None and _is_true(elem.text):
        yield po.hit(
            elem,
            "AssumedReporting is true in a DPI401 message: set it to false (or leave it out); an operator whose "
            "reporting is assumed by another files no sellers.",
        )


def check_no_assuming_operator(ctx: Context, body: Body) -> Iterator[Hit]:
    for other in body.others:
        if other.elem.tag == ASSUMING:
            yield other.hit(
                None,
                "AssumingPlatformOperator must not be sent between member states: remove it "
                "(the assuming operator's own message carries the sellers).",
            )


def check_nil_report_has_assumed_operator(ctx: Context, body: Body) -> Iterator[Hit]:
    if ctx.message_type_indic == DPI403 and not any(o.elem.tag == ASSUMED for o in body.others):
        where = body.others_elem if body.others_elem is not None else body.elem
        yield ctx.hit(
            where,
            "A nil report (DPI403) must name at least one AssumedPlatformOperator: add it under "
            "OtherPlatformOperators.",
            rule_id="BR_OPO_004a",
        )


def _operator_in_eu(po: Record) -> bool:
    return any(is_eu(_text(_child(a, "CountryCode"))) for a in po.elem.findall(_q("Address")))


def check_foreign_operator_iin(ctx: Context, body: Body) -> Iterator[Hit]:
    po = body.operator
    if po is None:
        return
    resident = any(is_eu(_text(c)) for c in po.elem.findall(_q("ResCountryCode")))
    if _operator_in_eu(po) or resident:
        return
    if not any(i.get("INType") == "IIN" for i in po.elem.findall(_q("IN"))):
        yield po.hit(
            None,
            "The platform operator has neither an address nor a residence in a member state: add an IN "
            "with INType IIN (the individual identification number the member state assigned).",
        )


def check_assumed_operator_res_country(ctx: Context, body: Body) -> Iterator[Hit]:
    for other in body.others:
        if other.elem.tag == ASSUMED and other.elem.find(_q("ResCountryCode")) is None:
            yield other.hit(None, "The AssumedPlatformOperator has no ResCountryCode: add at least one.")


def check_assumed_operator_in_member_state(ctx: Context, body: Body) -> Iterator[Hit]:
    """The AdE checker's E4050, Italy's domestic reading of 40050: a member state among the
    assumed operator's residence countries, not necessarily the receiving one."""
    for other in body.others:
        if other.elem.tag != ASSUMED:
            continue
        codes = [_text(c) for c in other.elem.findall(_q("ResCountryCode"))]
        if codes and not any(is_eu(c) for c in codes):
            yield other.hit(
                None,
                f"No ResCountryCode of the AssumedPlatformOperator ({', '.join(codes)}) is a member state: "
                "this authority takes only assumed operators resident in the Union (in the configuration, the "
                "country of its [[assumed_operators]] address).",
            )


def check_assumed_operator_in_receiver(ctx: Context, body: Body) -> Iterator[Hit]:
    receiver = ctx.receiver
    for other in body.others:
        if other.elem.tag != ASSUMED:
            continue
        codes = [_text(c) for c in other.elem.findall(_q("ResCountryCode"))]
        if codes and receiver not in codes:
            yield other.hit(
                None,
                f"No ResCountryCode of the AssumedPlatformOperator is the receiving country {receiver}: "
                "send this record to the member state where that operator is resident.",
            )


def check_eu_operator_tin(ctx: Context, body: Body) -> Iterator[Hit]:
    po = body.operator
    if po is None or not _operator_in_eu(po):
        return
    tins = po.elem.findall(_q("TIN"))
    if not tins:
        yield po.hit(None, "The platform operator has an address in a member state but no TIN: add its TIN.")
        return
    for tin in tins:
        if _is_true(tin.get("unknown")):
            yield po.hit(
                tin,
                "The platform operator has an address in a member state, so its TIN cannot be unknown: "
                "give the TIN with issuedBy and drop unknown.",
            )
            return


def check_registered_office(ctx: Context, body: Body) -> Iterator[Hit]:
    po = body.operator
    if po is None:
        return
    addresses = po.elem.findall(_q("Address"))
    if not any(a.get("legalAddressType") == "OECD304" for a in addresses):
        yield po.hit(
            addresses[0] if addresses else None,
            "No address of the platform operator is its registered office: set legalAddressType "
            "OECD304 on the registered office address.",
        )


# ---------------------------------------------------------------------------------------- party rules (every record)


def check_tin_issued_by(ctx: Context, rec: Record) -> Iterator[Hit]:
    for tin in rec.tins:
        if _text(tin) and not _is_true(tin.get("unknown")) and not (tin.get("issuedBy") or "").strip():
            yield rec.hit(tin, "A TIN is given without issuedBy: add the country that issued it.")


def check_several_tins_not_unknown(ctx: Context, rec: Record) -> Iterator[Hit]:
    tins = rec.tins
    if len(tins) > 1:
        for tin in tins:
            if _is_true(tin.get("unknown")):
                yield rec.hit(
                    tin, "A TIN flagged unknown stands next to other TINs: remove it, or keep it as the only TIN."
                )


def check_empty_tin_unknown(ctx: Context, rec: Record) -> Iterator[Hit]:
    for tin in rec.tins:
        if not _text(tin) and not _is_true(tin.get("unknown")):
            yield rec.hit(tin, 'A TIN has no value: give the TIN, or set unknown="true" on it.')


# ---------------------------------------------------------------------------------------- seller rules


def check_nil_report_without_sellers(ctx: Context, rec: Record) -> Iterator[Hit]:
    if rec.is_seller and ctx.message_type_indic == DPI403:
        yield rec.hit(
            None, "A nil report (DPI403) contains a ReportableSeller: send sellers in a DPI401 message instead."
        )


def check_no_gvs(ctx: Context, rec: Record) -> Iterator[Hit]:
    if rec.is_seller:
        for gvs in (_child(rec.elem, "Identity", kind, "GVS") for kind in ("IndividualSeller", "EntitySeller")):
            if gvs is None:
                continue
            yield rec.hit(gvs, "GVS must not be used in the EU: identify the seller with its Standard element.")


def check_relevant_activity(ctx: Context, rec: Record) -> Iterator[Hit]:
    if not rec.is_seller:
        return
    activities = rec.elem.find(_q("RelevantActivities"))
    if activities is None or not any(child.tag in ACTIVITY_TAGS for child in activities):
        yield rec.hit(
            activities,
            "The seller has no relevant activity: report at least one of ImmovableProperty, PersonalServices, "
            "SaleOfGoods or TransportationRental.",
        )


def check_other_property_type_given(ctx: Context, rec: Record) -> Iterator[Hit]:
    for listing in rec.listings:
        kind = listing.find(_q("PropertyType"))
        if _text(kind) == "DPI910" and not _text(listing.find(_q("OtherPropertyType"))):
            yield rec.hit(kind, "PropertyType is DPI910 (other): describe the property in OtherPropertyType.")


def check_other_property_type_only_for_other(ctx: Context, rec: Record) -> Iterator[Hit]:
    for listing in rec.listings:
        other = listing.find(_q("OtherPropertyType"))
        if _text(other) and _text(listing.find(_q("PropertyType"))) != "DPI910":
            yield rec.hit(other, "OtherPropertyType is given but PropertyType is not DPI910: remove it or set DPI910.")


def check_no_nationality(ctx: Context, rec: Record) -> Iterator[Hit]:
    person = rec.person
    for nationality in person.findall(_q("Nationality")) if person is not None else ():
        yield rec.hit(nationality, "Nationality must not be given for an individual seller: remove it.")


def check_entity_res_country(ctx: Context, rec: Record) -> Iterator[Hit]:
    entity = rec.entity
    if entity is not None and entity.find(_q("ResCountryCode")) is None:
        yield rec.hit(entity, "The entity seller has no ResCountryCode: add the country of its registered office.")


def check_seller_in_receiver(ctx: Context, rec: Record) -> Iterator[Hit]:
    """Per seller: the EU module's TR-40070 looks for a listing in the receiving country anywhere in the
    message (an XPath starting with //), which lets one seller's listing excuse another seller."""
    party = rec.party if rec.is_seller else None
    if party is None:
        return
    receiver = ctx.receiver
    if any(_text(_child(listing, "Address", "CountryCode")) == receiver for listing in rec.listings):
        return
    codes = [_text(c) for c in party.findall(_q("ResCountryCode"))]
    if codes and receiver not in codes:
        individual = rec.individual
        yield rec.hit(
            party,
            f"The {'individual' if individual else 'entity'} seller is resident in none of its ResCountryCodes "
            f"equal to the receiving country {receiver} and has no property listed there: send the record to a "
            "member state where it is resident or has a property.",
            rule_id="BR_PAR007b" if individual else "BR_PAR007a",
        )


def check_birth_year(ctx: Context, rec: Record) -> Iterator[Hit]:
    birth = _child(rec.person, "BirthInfo", "BirthDate")
    match = _YEAR.match(_text(birth))
    if birth is not None and match and not 1900 <= int(match.group(1)) <= ctx.today.year:
        yield rec.hit(birth, f"The birth date lies outside the years 1900 to {ctx.today.year}: correct BirthDate.")


def check_birth_place_for_unknown_tin(ctx: Context, rec: Record) -> Iterator[Hit]:
    person = rec.person
    if person is None or not any(_is_true(t.get("unknown")) for t in rec.tins):
        return
    info = person.find(_q("BirthInfo"))
    if info is None or info.find(_q("BirthPlace")) is None:
        yield rec.hit(
            info if info is not None else person,
            "The individual seller's TIN is unknown, so the place of birth is required: add BirthInfo/BirthPlace.",
        )


# ---------------------------------------------------------------------------------------- DocSpec rules


def check_doc_ref_id_unique(ctx: Context, rec: Record) -> Iterator[Hit]:
    if rec.doc_ref_id is None or rec.doc_spec is None:
        return
    seen: set[str] = ctx.memo("80000", set)
    elem = rec.doc_spec.find(_s("DocRefId"))
    if rec.doc_ref_id in seen:
        yield rec.hit(elem, f"DocRefId {rec.doc_ref_id!r} is used twice in this message: give each record its own.")
    elif rec.doc_ref_id in ctx.known_doc_ref_ids and rec.doc_type != RESENT:
        # a resend (OECD0) repeats the DocRefId of the record it resends (80013, 80014)
        yield rec.hit(elem, f"DocRefId {rec.doc_ref_id!r} was used by an earlier message: give the record a new one.")
    seen.add(rec.doc_ref_id)


def check_doc_ref_id_format(ctx: Context, rec: Record) -> Iterator[Hit]:
    if rec.doc_ref_id is None or rec.doc_spec is None:
        return
    tc, year = ctx.transmitting_country, ctx.reporting_year
    match = _DOC_REF_ID.fullmatch(rec.doc_ref_id)
    if match is None or match.group(1) != tc or match.group(2) != year:
        yield rec.hit(
            rec.doc_spec.find(_s("DocRefId")),
            f"DocRefId {rec.doc_ref_id!r} must start with {tc}{year or ''} (TransmittingCountry, then the year of "
            "ReportingPeriod): rebuild it in that format.",
        )


def check_no_corr_doc_ref_id_on_new(ctx: Context, rec: Record) -> Iterator[Hit]:
    if rec.doc_type in (RESENT, NEW) and rec.corr_doc_ref_id and rec.doc_spec is not None:
        yield rec.hit(
            rec.doc_spec.find(_s("CorrDocRefId")),
            "A new or resent record carries a CorrDocRefId: remove it, or mark the record as a correction.",
        )


def _ledger_state(ctx: Context, rec: Record, kinds: tuple[int, ...], ref: str | None) -> str | None:
    """The ledger's state of the record ``ref`` names ("live", "outdated", "unknown"), or None when
    the rule does not apply (no ledger given, another kind of record)."""
    if ctx.ledger is None or rec.doc_type not in kinds or not ref:
        return None
    return ctx.ledger.get(ref, "unknown")


def check_corrected_record_known(ctx: Context, rec: Record) -> Iterator[Hit]:
    """80002 (with the ledger): a correction or deletion names a record that was sent."""
    if _ledger_state(ctx, rec, (CORRECTED, DELETED), rec.corr_doc_ref_id) == "unknown":
        yield rec.hit(
            rec.doc_spec.find(_s("CorrDocRefId")) if rec.doc_spec is not None else None,
            f"CorrDocRefId {rec.corr_doc_ref_id!r} names no record sent before (the ledger does not know it): "
            "name the DocRefId of the record's latest version.",
        )


def check_corrected_record_current(ctx: Context, rec: Record) -> Iterator[Hit]:
    """80003 (with the ledger): ... and that record is still its latest version."""
    if _ledger_state(ctx, rec, (CORRECTED, DELETED), rec.corr_doc_ref_id) == "outdated":
        yield rec.hit(
            rec.doc_spec.find(_s("CorrDocRefId")) if rec.doc_spec is not None else None,
            f"CorrDocRefId {rec.corr_doc_ref_id!r} names a version that was corrected or deleted since: name the "
            "DocRefId of the record's latest version.",
        )


def check_resent_record_known(ctx: Context, rec: Record) -> Iterator[Hit]:
    """80013 (with the ledger): a resend repeats the DocRefId of a record that was sent."""
    if _ledger_state(ctx, rec, (RESENT,), rec.doc_ref_id) == "unknown":
        yield rec.hit(
            rec.doc_spec.find(_s("DocRefId")) if rec.doc_spec is not None else None,
            f"DocRefId {rec.doc_ref_id!r} of this resent record was never sent: resend the DocRefId of the "
            "operator record as filed, or send the record as new.",
        )


def check_resent_record_current(ctx: Context, rec: Record) -> Iterator[Hit]:
    """80014 (with the ledger): ... which is still its latest version."""
    if _ledger_state(ctx, rec, (RESENT,), rec.doc_ref_id) == "outdated":
        yield rec.hit(
            rec.doc_spec.find(_s("DocRefId")) if rec.doc_spec is not None else None,
            f"DocRefId {rec.doc_ref_id!r} of this resent record was corrected or deleted since: resend the "
            "DocRefId of its latest version.",
        )


def check_no_corr_message_ref_id(ctx: Context, rec: Record) -> Iterator[Hit]:
    elem = rec.doc_spec.find(_s("CorrMessageRefId")) if rec.doc_spec is not None else None
    if elem is not None:
        yield rec.hit(elem, "CorrMessageRefId must not be used: remove it (CorrDocRefId identifies the record).")


def check_operator_deletion_complete(ctx: Context, rec: Record) -> Iterator[Hit]:
    po = ctx.body.operator if ctx.body is not None else None
    if po is None or rec is po or po.doc_type != DELETED or rec.doc_type == DELETED:
        return
    yield rec.hit(
        rec.doc_spec,
        f"The platform operator (DocRefId {po.doc_ref_id}) is deleted but this record is not: delete it too "
        "(DocTypeIndic OECD3), or do not delete the operator.",
    )


def check_doc_types_match_message(ctx: Context, rec: Record) -> Iterator[Hit]:
    """TR-80010 as the EU module codes it: OECD0 is ignored, OECD2 is allowed in a DPI401."""
    kind = rec.doc_type
    if kind is None or kind == RESENT:
        return
    mti = ctx.message_type_indic
    where = rec.doc_spec.find(_s("DocTypeIndic")) if rec.doc_spec is not None else None
    if (mti, kind) in ((DPI401, DELETED), (DPI402, NEW), (DPI403, CORRECTED), (DPI403, DELETED)):
        yield rec.hit(
            where,
            f"A {mti} message cannot carry a record with DocTypeIndic OECD{kind} (or OECD1{kind}): "
            "send it in a message of the matching type.",
        )
        return
    first: dict[str, tuple[int, str | None]] = ctx.memo("80010", dict)
    group = NEW if kind == NEW else CORRECTED
    start = first.setdefault("group", (group, rec.doc_ref_id))
    if start[0] != group:
        yield rec.hit(
            where,
            "This message mixes new records (OECD1) with corrections or deletions (OECD2/OECD3), starting with "
            f"DocRefId {start[1]}: send them in separate messages.",
        )


def check_corrected_once(ctx: Context, rec: Record) -> Iterator[Hit]:
    if rec.doc_type not in (CORRECTED, DELETED) or not rec.corr_doc_ref_id or rec.doc_spec is None:
        return
    corrected: set[str] = ctx.memo("80011", set)
    if rec.corr_doc_ref_id in corrected:
        yield rec.hit(
            rec.doc_spec.find(_s("CorrDocRefId")),
            f"DocRefId {rec.corr_doc_ref_id!r} is corrected or deleted twice in this message: keep one of them.",
        )
    corrected.add(rec.corr_doc_ref_id)


def check_corr_doc_ref_id_given(ctx: Context, rec: Record) -> Iterator[Hit]:
    """90040: the EU text names DPI402; a correction without a reference is void in any message type."""
    if rec.doc_type in (CORRECTED, DELETED) and not rec.corr_doc_ref_id:
        yield rec.hit(
            rec.doc_spec,
            "A correction or deletion has no CorrDocRefId: add the DocRefId of the record it replaces.",
        )


# ---------------------------------------------------------------------------------------- end-of-message rules


def check_body_present(ctx: Context, _: None) -> Iterator[Hit]:
    if ctx.bodies == 0 and ctx.root is not None:
        yield ctx.hit(ctx.root, "The message has no DPIBody: add one with the PlatformOperator.")


def check_initial_has_sellers(ctx: Context, _: None) -> Iterator[Hit]:
    if ctx.message_type_indic == DPI401 and ctx.sellers == 0 and ctx.root is not None:
        body = ctx.root.find(BODY)
        yield ctx.hit(
            body if body is not None else ctx.root,
            "A DPI401 message must contain at least one ReportableSeller: add the sellers, or send a nil report "
            "(DPI403).",
            rule_id="BR_OPO_005a",
        )


def check_not_only_resent(ctx: Context, _: None) -> Iterator[Hit]:
    total = sum(ctx.doc_types.values())
    if total and ctx.doc_types[RESENT] == total and ctx.root is not None:
        yield ctx.hit(
            ctx.root,
            "Every record in the message is resent data (OECD0): add the new or corrected records, or do not send it.",
        )


# ---------------------------------------------------------------------------------------- the table

EU_RULES: tuple[Rule, ...] = (
    Rule(
        "10010",
        "BR_MSG_001",
        Scope.MESSAGE,
        check_sending_entity_in,
        "The Sending Entity IN is only used domestically (National Domain). This element must not be provided "
        "in the context of AEOI DAC7 (Common Domain).",
    ),
    Rule(
        "50012",
        "BR_MSG_002",
        Scope.MESSAGE,
        check_receiving_country,
        "The Receiving Country must be the country code of the Tax Authority receiving the message.",
    ),
    Rule(
        "50008",
        "BR_MSG_005",
        Scope.MESSAGE,
        check_message_ref_id_format,
        "Message Reference format: Transmitting Country, year of the reporting period, Receiving Country, "
        "unique identifier.",
    ),
    Rule("50009", "BR_MSG_006", Scope.MESSAGE, check_message_ref_id_unique, "The Message Reference must be unique."),
    Rule(
        "10060",
        "BR_MSG_007",
        Scope.MESSAGE,
        check_reporting_period_not_future,
        "The Reporting Period cannot be in the future.",
    ),
    Rule(
        "20010",
        "BR_OPO_001",
        Scope.BODY,
        check_assumed_reporting_false,
        'The attribute "Assumed Reporting" must be set to "False" or not provided.',
    ),
    Rule(
        "20020",
        "BR_OPO_003",
        Scope.BODY,
        check_no_assuming_operator,
        "No information about the Assuming Platform Operator must be provided.",
    ),
    Rule(
        "20030",
        "BR_OPO_004",
        Scope.BODY,
        check_nil_report_has_assumed_operator,
        "DPI403: at least one Assumed Platform Operator must be provided.",
    ),
    Rule(
        "40020",
        "BR_PAR_002",
        Scope.BODY,
        check_foreign_operator_iin,
        "[EU Specific] At least one IN of type IIN must be provided for the foreign Reporting Platform Operator.",
    ),
    Rule(
        "40040",
        "BR_PAR_004",
        Scope.BODY,
        check_assumed_operator_res_country,
        "At least one Residence Country Code must be provided for the assumed Platform Operator.",
    ),
    Rule(
        "40050",
        "BR_PAR_005",
        Scope.BODY,
        check_assumed_operator_in_receiver,
        "At least one Residence Country Code of an assumed Platform Operator must equal the Receiving Country Code.",
    ),
    Rule(
        "40100",
        "BR_PAR_011",
        Scope.BODY,
        check_eu_operator_tin,
        "[EU Specific] If the Reporting Platform Operator has an address country code within the EU, the TIN "
        'must be provided ("Unknown" cannot be used).',
    ),
    Rule(
        "60010",
        "BR_ADD_001",
        Scope.BODY,
        check_registered_office,
        'At least one address of the Reporting Platform Operator must be the "Registered Office Address".',
    ),
    Rule(
        "20050",
        "BR_OPO_006",
        Scope.RECORD,
        check_nil_report_without_sellers,
        "DPI403: Reportable Seller must not be provided.",
    ),
    Rule("30030", "BR_RS_003", Scope.RECORD, check_no_gvs, "[EU Specific] The GVS must not be provided."),
    Rule(
        "30040",
        "BR_RS_004",
        Scope.RECORD,
        check_relevant_activity,
        "At least one type of Relevant Activities must be provided.",
    ),
    Rule(
        "30050",
        "BR_RS_005",
        Scope.RECORD,
        check_other_property_type_given,
        'If "Other" is selected as Property Type, the type of property must be provided as free text.',
    ),
    Rule(
        "30060",
        "BR_RS_006",
        Scope.RECORD,
        check_other_property_type_only_for_other,
        'No "Other Property Type" must be provided if the property type is not "DPI910".',
    ),
    Rule(
        "40010",
        "BR_PAR_001",
        Scope.RECORD,
        check_no_nationality,
        "The Nationality of the Individual Seller must not be provided.",
    ),
    Rule(
        "40060",
        "BR_PAR_006",
        Scope.RECORD,
        check_entity_res_country,
        "At least one Residence Country Code must be provided for the Entity Seller.",
    ),
    Rule(
        "40070",
        "BR_PAR007",
        Scope.RECORD,
        check_seller_in_receiver,
        "Entity (a) / Individual (b) Seller without immovable properties located in the Receiving Country: at "
        "least one of its Residence Country Codes must equal the Receiving Country.",
    ),
    Rule(
        "40080",
        "BR_PAR_008",
        Scope.RECORD,
        check_tin_issued_by,
        "If a TIN is provided (not flagged unknown and has a value), the issuing jurisdiction must be provided.",
    ),
    Rule(
        "40090",
        "BR_PAR_010",
        Scope.RECORD,
        check_several_tins_not_unknown,
        "If several TINs are provided for one entity, none of them can be flagged as unknown.",
    ),
    Rule(
        "40110",
        "BR_PAR_012",
        Scope.RECORD,
        check_empty_tin_unknown,
        'If no value is provided for the TIN, the "Unknown" flag must be set to "True".',
    ),
    Rule(
        "40130",
        "BR_PAR_014",
        Scope.RECORD,
        check_birth_year,
        "Date of birth of the Individual Seller must be between 1900 and the current year, both included.",
    ),
    Rule(
        "40140",
        "BR_PAR_015",
        Scope.RECORD,
        check_birth_place_for_unknown_tin,
        "If the Individual Seller's TIN is flagged unknown, birthplace information must be provided.",
    ),
    Rule(
        "80000",
        "BR_TR_80000",
        Scope.RECORD,
        check_doc_ref_id_unique,
        "The DocRefId is already used for another record.",
    ),
    Rule(
        "80001",
        "BR_TR_80001",
        Scope.RECORD,
        check_doc_ref_id_format,
        "The structure of the DocRefId is not in the correct format.",
    ),
    Rule(
        "80002",
        "BR_TR_80002",
        Scope.RECORD,
        check_corrected_record_known,
        "The CorrDocRefId refers to an unknown record (checked against the ledger).",
    ),
    Rule(
        "80003",
        "BR_TR_80003",
        Scope.RECORD,
        check_corrected_record_current,
        "The corrected record is no longer valid (invalidated or outdated by a previous correction).",
    ),
    Rule(
        "80013",
        "BR_TR_80013",
        Scope.RECORD,
        check_resent_record_known,
        "An unknown DocRefID is specified for the Resend option (OECD0) (checked against the ledger).",
    ),
    Rule(
        "80014",
        "BR_TR_80014",
        Scope.RECORD,
        check_resent_record_current,
        "The DocRefID specified for the Resend option (OECD0) is no longer valid.",
    ),
    Rule(
        "80004",
        "BR_TR_80004",
        Scope.RECORD,
        check_no_corr_doc_ref_id_on_new,
        "The initial or resent element specifies a CorrDocRefId.",
    ),
    Rule(
        "80006",
        "BR_TR_80006",
        Scope.RECORD,
        check_no_corr_message_ref_id,
        "The CorrMessageRefId is provided under the DocSpec element, while this element must not be used.",
    ),
    Rule(
        "80009",
        "BR_TR_80009",
        Scope.RECORD,
        check_operator_deletion_complete,
        "The PlatformOperator element is deleted while the related top-level elements are not deleted.",
    ),
    Rule(
        "80010",
        "BR_TR_80010",
        Scope.RECORD,
        check_doc_types_match_message,
        "Mixture of new records (OECD1) and corrections/deletions (OECD2/OECD3); or message content not "
        "aligned with MessageTypeIndic.",
    ),
    Rule(
        "80011",
        "BR_TR_80011",
        Scope.RECORD,
        check_corrected_once,
        "The same DocRefID is corrected or deleted twice in the same message.",
    ),
    Rule(
        "90040",
        "BR_TR_90040",
        Scope.RECORD,
        check_corr_doc_ref_id_given,
        "No CorrDocRefId is provided in case of correction (OECD2) or deletion (OECD3).",
    ),
    Rule("90010", "BR_TR_90010", Scope.END, check_body_present, "[EU Specific] The DPIBody element is missing."),
    Rule(
        "20040",
        "BR_OPO_005",
        Scope.END,
        check_initial_has_sellers,
        "DPI401: at least one Reportable Seller must be provided.",
    ),
    Rule("90030", "BR_TR_90030", Scope.END, check_not_only_resent, "The message only contains resent data (OECD0)."),
)

#: Every rule check_message can run, by code: the EU table plus what national profiles register.
#: Rules of a national checker with no EU code of their own, each added to its profile's rule set.
NATIONAL_RULES: tuple[Rule, ...] = (
    # Sogei's checker of the AdE, v01.09.00, config/description.properties (reference §4.2): "E4050 =
    # OtherPlatformOperators/AssumedPlatformOperator/ResCountryCode -> At least one Residence Country
    # Code provided for an assumed Platform Operator must be a MS code."
    Rule(
        "E4050",
        "IT_E4050",
        Scope.BODY,
        check_assumed_operator_in_member_state,
        "At least one Residence Country Code provided for an assumed Platform Operator must be a MS code.",
    ),
)
RULES: dict[str, Rule] = {rule.code: rule for rule in (*EU_RULES, *NATIONAL_RULES)}


def register_rule(rule: Rule, *, replace: bool = False) -> Rule:
    """Add a national rule (FR 2, 12, 33, 34; IT E0020 ...) to the table; codes are unique."""
    if rule.code in RULES and not replace:
        raise ValueError(f"rule code {rule.code} is already registered ({RULES[rule.code].rule_id})")
    RULES[rule.code] = rule
    return rule


# ---------------------------------------------------------------------------------------- rule sets


@dataclass(frozen=True)
class RuleSet:
    """The codes that bind one kind of filing; the checks themselves live in :data:`RULES`."""

    name: str
    codes: frozenset[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", frozenset(self.codes))

    def derive(self, name: str, *, exclude: Iterable[str] = (), add: Iterable[str] = ()) -> RuleSet:
        """This set without ``exclude`` and with ``add``; excluding a code it lacks is a mistake."""
        exclude, add = frozenset(exclude), frozenset(add)
        if missing := exclude - self.codes:
            raise ValueError(f"rule set {self.name} has no code {', '.join(sorted(missing))} to exclude")
        return RuleSet(name, (self.codes - exclude) | add)


def derive_rule_set(base: RuleSet, name: str, *, exclude: Iterable[str] = (), add: Iterable[str] = ()) -> RuleSet:
    return base.derive(name, exclude=exclude, add=add)


#: The rules of an exchange between member states, with the EU codes.
EU_EXCHANGE = RuleSet("EU exchange", frozenset(rule.code for rule in EU_RULES))
#: Rules that bind only the exchange between member states, not a domestic filing.
EXCHANGE_ONLY: frozenset[str] = frozenset({"10010", "20020", "20030", "40050", "40070"})
#: A domestic filing under the EU generic edition.
EU_DOMESTIC = EU_EXCHANGE.derive("EU domestic", exclude=EXCHANGE_ONLY)


def _active(rules: RuleSet) -> dict[Scope, list[Rule]]:
    unknown = rules.codes - RULES.keys()
    if unknown:
        raise ValueError(f"rule set {rules.name} names codes without a registered rule: {', '.join(sorted(unknown))}")
    active: dict[Scope, list[Rule]] = {scope: [] for scope in Scope}
    for code, rule in RULES.items():
        if code in rules.codes:
            active[rule.scope].append(rule)
    return active


# ---------------------------------------------------------------------------------------- the walk

Source = str | Path | bytes | IO[bytes] | etree._ElementTree | etree._Element
_EVENT_TAGS = (*(f"{{*}}{name}" for name in _ROOT_NAMES), SPEC, BODY, SELLER)
#: The ids a DocSpec gives, in any namespace: read for the ledger (see :data:`AskLedger`).
_ID_NAMES = ("DocRefId", "CorrDocRefId")
_ID_TAGS = tuple(f"{{*}}{name}" for name in _ID_NAMES)

#: What the ledger says of the DocRefIds it is asked about (each the text of a ``DocRefId`` or
#: ``CorrDocRefId`` of a ``DocSpec``, as written): those used by another message (80000), and
#: the state, "live" or "outdated", of every one it knows (80002, 80003, 80013, 80014). The
#: answer for an id does not depend on the other ids asked with it.
AskLedger = Callable[[set[str]], tuple[Collection[str], Mapping[str, str]]]
#: With :data:`AskLedger`, how many records are read before the ledger is asked about their ids
#: and their rules run (the sellers among them held until then): about one ``IN`` list of the
#: ledger's (500 ids); 100 to 1,000 cost the same on the 30,000-seller preview.
LEDGER_BATCH = 500


@contextmanager
def _events(
    source: Source, tags: tuple[str, ...] = _EVENT_TAGS
) -> Iterator[tuple[Iterator[tuple[str, etree._Element]], bool, str]]:
    """(events, streaming, name): a parsed tree is walked untouched; anything else is streamed,
    and a file opened here is closed here, also when the walk stops at the end of the message."""
    if isinstance(source, etree._ElementTree):
        source = source.getroot()
    if isinstance(source, etree._Element):
        yield etree.iterwalk(source, events=("start", "end"), tag=tags), False, "the document"
        return
    name = str(source) if isinstance(source, str | Path) else "the document"
    events = safexml.iterparse(source, name=name, events=("start", "end"), tag=tags)
    try:
        yield events, True, name
    finally:
        events.close()  # the file opened for it is closed also when the walk stops early


def _not_eu(name: str, found: str) -> NotEuDpiMessageError:
    return NotEuDpiMessageError(
        f"{name} is not an EU-edition DPI message: {found}; the EU edition has the root DPI_OECD in "
        f"{DPI_NS} (a national edition needs its national profile)."
    )


def _drop(seller: etree._Element) -> None:
    """Free a checked seller and the cleared ones before it, so memory does not grow."""
    seller.clear(keep_tail=False)
    parent = seller.getparent()
    prev = seller.getprevious()
    while parent is not None and prev is not None and (prev.tag == SELLER or not isinstance(prev.tag, str)):
        parent.remove(prev)
        prev = seller.getprevious()


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _after(elem: etree._Element, seller: etree._Element, body: etree._Element) -> bool:
    """Whether ``elem``, in ``body``, comes after ``seller``, a child of ``body``."""
    top = elem
    while (parent := top.getparent()) is not None and parent is not body:
        top = parent
    return body.index(top) > body.index(seller)


class _Run:
    """One pass of the active rules over one message, in document order.

    With ``ask_ledger``, the walk also reads every DocSpec's ``DocRefId`` and ``CorrDocRefId``
    (wherever it is, as the ledger's own reading of a file did) and holds the records read, up to
    :data:`LEDGER_BATCH`, until the ledger has been asked about the ids read so far; then their
    rules run, in document order, as they would have with the ledger's answers for every id of
    the file given beforehand: a record's rules look up the record's own ids, read before it
    ends. Two cases break that, and :attr:`again` says that one was met, so that the caller runs
    the rules again with the ledger's answers for every id (:func:`check_message`): an id written
    with white space around it (asked as written, looked up stripped, and the stripped text may
    be asked only later), and an operator record placed after the body's first seller (not in a
    valid message: its rules run with the body's header, before its ids are read)."""

    def __init__(self, active: dict[Scope, list[Rule]], ctx: Context, ask_ledger: AskLedger | None = None) -> None:
        self.active = active
        self.ctx = ctx
        self.findings: list[RuleFinding] = []
        self.message_done = False
        self.ask_ledger = ask_ledger
        self.batch = LEDGER_BATCH if ask_ledger is not None else 1
        self.pending: list[Record] = []
        self.ids: set[str] = set()  # read and not yet asked about
        self.again = False
        self.streaming = False
        if ask_ledger is not None:  # the ledger's answers, gathered as it is asked
            ctx.known_doc_ref_ids = set(ctx.known_doc_ref_ids)
            ctx.ledger = dict(ctx.ledger or {})

    def run(self, scope: Scope, subject: Any) -> None:
        for rule in self.active[scope]:
            for hit in rule.check(self.ctx, subject):
                rule_id = hit.rule_id or rule.rule_id
                self.findings.append(
                    RuleFinding(rule.code, rule_id, rule.severity, hit.doc_ref_id, hit.xpath, hit.message)
                )

    def message(self) -> None:
        """The MessageSpec rules, once: when the MessageSpec ends, or before anything else if it is missing."""
        if not self.message_done:
            self.message_done = True
            if self.ctx.spec is None:
                self.ctx.read_spec(None)
            self.run(Scope.MESSAGE, None)

    def record(self, rec: Record) -> None:
        """Check a record: now, or with the ledger's answers for its ids (see the class)."""
        self.pending.append(rec)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Ask the ledger about the ids read so far, then run the rules of the records held."""
        if self.ask_ledger is not None and self.ids:
            used, states = self.ask_ledger(self.ids)
            self.ids = set()
            known = self.ctx.known_doc_ref_ids
            assert isinstance(known, set) and isinstance(self.ctx.ledger, dict), "made so in __init__"
            known.update(used)
            self.ctx.ledger.update(states)
        pending, self.pending = self.pending, []
        for rec in pending:
            self.ctx.doc_types[rec.doc_type] += 1
            self.run(Scope.RECORD, rec)
            if self.streaming and rec.is_seller:
                _drop(rec.elem)

    def read_id(self, elem: etree._Element) -> None:
        """Note a DocSpec's DocRefId or CorrDocRefId for the ledger, as written."""
        parent = elem.getparent()
        text = elem.text
        if text and parent is not None and _local(parent.tag) == "DocSpec":
            self.ids.add(text)
            if text != text.strip():
                self.again = True

    def body_header(self, body: Body, seller: etree._Element | None = None) -> None:
        """The operator records and the body rules, once the sellers start (at ``seller``, the
        first) or the body ends."""
        if body.header_done:
            return
        body.header_done = True
        self.message()
        operator = body.elem.find(OPERATOR)
        if operator is not None:
            body.operator = Record.read(operator, _path(operator))
        body.others_elem = body.elem.find(_q("OtherPlatformOperators"))
        if body.others_elem is not None:
            body.others = [Record.read(o, _path(o)) for o in body.others_elem if o.tag in (ASSUMING, ASSUMED)]
        header = ([body.operator] if body.operator is not None else []) + body.others
        if self.ask_ledger is not None and seller is not None:
            self.again |= any(_after(rec.elem, seller, body.elem) for rec in header)
        for rec in header:
            self.record(rec)
        self.flush()
        self.run(Scope.BODY, body)

    def walk(self, events: Iterator[tuple[str, etree._Element]], streaming: bool, name: str) -> None:
        ctx = self.ctx
        done = False
        self.streaming = streaming
        reading_ids = self.ask_ledger is not None
        for event, elem in events:
            if reading_ids and _local(elem.tag) in _ID_NAMES:
                if event == "end":
                    self.read_id(elem)
                continue
            if done:
                continue  # the rest is read all the same: a verdict is given only on a whole file
            if ctx.root is None:
                if event == "start":
                    if elem.tag != ROOT:
                        tag = _tag(elem)
                        namespace, _, local = tag[1:].rpartition("}") if tag[:1] == "{" else ("", "", tag)
                        where = f"in the namespace {namespace}" if namespace else "in no namespace"
                        raise _not_eu(name, f"it holds {local} {where}")
                    ctx.root = elem
                continue
            parent = elem.getparent()
            if event == "start":
                if elem.tag == BODY and parent is ctx.root:
                    ctx.bodies += 1
                    ctx.body = Body(elem, _path(elem))
                elif elem.tag == SELLER and ctx.body is not None and parent is ctx.body.elem:
                    self.body_header(ctx.body, elem)
            elif elem is ctx.root:
                done = True
            elif elem.tag == SPEC and parent is ctx.root and ctx.spec is None:
                ctx.read_spec(elem)
                self.message()
            elif elem.tag == SELLER and ctx.body is not None and parent is ctx.body.elem:
                ctx.body.sellers += 1
                ctx.sellers += 1
                self.record(Record.read(elem, f"{ctx.body.xpath}/dpi:ReportableSeller[{ctx.body.sellers}]"))
            elif elem.tag == BODY and ctx.body is not None and elem is ctx.body.elem:
                self.body_header(ctx.body)
                self.flush()
                ctx.body = None
        if ctx.root is None:
            raise _not_eu(name, "it has no DPI_OECD element")

    def finish(self) -> list[RuleFinding]:
        self.flush()
        self.message()
        self.run(Scope.END, None)
        return self.findings


def check_message(
    source: Source,
    *,
    rules: RuleSet = EU_EXCHANGE,
    today: date | None = None,
    known_doc_ref_ids: Collection[str] = (),
    known_message_ref_ids: Collection[str] = (),
    receiving_country: str | None = None,
    ledger: Mapping[str, str] | None = None,
    ask_ledger: AskLedger | None = None,
) -> list[RuleFinding]:
    """Every finding of ``rules`` on one DPI message, in document order.

    ``source`` is a file path (``str`` or ``Path``), the bytes of a file, a binary stream, or an
    lxml tree or element (walked without being changed). ``known_*`` are the ids sent before (the
    ledger's); ``ledger`` maps the DocRefIds of the ledger to "live" or "outdated" (80002, 80003,
    80013, 80014 run only with it); ``receiving_country`` is the member state the message goes to, when known (50012;
    40050 and 40070 then compare with it instead of the MessageSpec's ReceivingCountry).
    ``ask_ledger`` (a file path, bytes or a tree as ``source``): the ledger asked about the ids of
    every DocSpec as they are read, in the same reading (:class:`_Run`), its answers added to
    ``known_doc_ref_ids`` and ``ledger``: the same findings as with its answers for every id of
    the file given as those two.
    Raises :class:`NotEuDpiMessageError` (a ``ValueError``) for a document of another edition, and
    :class:`reporting.safexml.XmlFileError` (a ``ValueError``, one line) for one that is empty, cut
    off, not well-formed, not UTF-8 or carries a DOCTYPE.
    """
    ctx = Context(
        today=today or date.today(),
        known_doc_ref_ids=known_doc_ref_ids,
        known_message_ref_ids=known_message_ref_ids,
        expected_receiver=receiving_country,
        ledger=ledger,
    )
    active = _active(rules)
    if ask_ledger is not None and not isinstance(source, str | Path | bytes | etree._ElementTree | etree._Element):
        raise TypeError("ask_ledger needs a source that can be read again (a path, bytes or a tree), not a stream")
    run = _Run(active, ctx, ask_ledger)
    with _events(source, _EVENT_TAGS + _ID_TAGS if ask_ledger else _EVENT_TAGS) as (events, streaming, name):
        run.walk(events, streaming, name)
    findings = run.finish()
    if run.again:  # an id not yet asked when it was looked up: the rules again, with the answers for every id
        return check_message(
            source,
            rules=rules,
            today=ctx.today,
            known_doc_ref_ids=ctx.known_doc_ref_ids,
            known_message_ref_ids=known_message_ref_ids,
            receiving_country=receiving_country,
            ledger=ctx.ledger,
        )
    return findings


def rule_table(rules: RuleSet = EU_EXCHANGE) -> list[tuple[str, str, str, str]]:
    """(code, rule id, scope, description) of every rule in ``rules``, for documentation and the CLI."""
    return [(r.code, r.rule_id, str(r.scope), r.description) for r in RULES.values() if r.code in rules.codes]
