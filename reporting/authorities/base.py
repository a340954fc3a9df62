"""What every tax authority profile provides, and the shared EU/OECD DPI writer.

A profile owns its namespaces, schema files, envelope, id formats, file naming and test markers.
National variants subclass :class:`DpiWriter` and override only what differs.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

from reporting.checks.business import RuleFinding, RuleSet
from reporting.checks.schema import schema_path
from reporting.errors import ReportingError
from reporting.records import (
    ActivityFigures,
    MessageHeader,
    OperatorRecord,
    OtherOperatorRecord,
    PostalAddress,
    SellerRecord,
)
from reporting.vocabulary import ASSUMED, ASSUMING, GOODS, PROPERTY, SERVICES, TRANSPORT

#: A record's DocSpec: (DocTypeIndic, DocRefId) or, for a correction or deletion,
#: (DocTypeIndic, DocRefId, CorrDocRefId).
Doc = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DocIds:
    """Inputs of the id formats: never the clock, never random inside the renderer."""

    run_id: str
    transmitting_country: str
    receiving_country: str
    year: int
    #: the ``[authorities.XX]`` identifiers (SIREN, tax number ...), for id formats that use them
    identifiers: Mapping[str, str] = field(default_factory=dict)
    environment: str = ""  # test | prod, for id formats that mark test files (FR)

    def unique(self, *parts: str) -> str:
        """A stable 32-hex-digit id for this run and these parts."""
        return uuid.uuid5(uuid.UUID(self.run_id), "/".join(parts)).hex.upper()


@dataclass(frozen=True, slots=True)
class UploadCheck:
    """One of an authority's checks of a file at upload: its name (the authority's own name of
    the failure where it has one), whether the file passes it, and what was found."""

    name: str
    ok: bool
    text: str


class AuthorityProfile(Protocol):
    code: str
    edition: str
    schema_resource: str  # path of the main XSD inside the reporting.xsd resources
    rule_set: RuleSet  # the business rules the authority applies on receipt
    required_identifiers: tuple[str, ...]  # keys of [authorities.XX] the profile cannot do without
    max_sellers_per_file: int | None  # file limits where the authority sets them: larger messages
    max_file_bytes: int | None  # are split into parts, each a message of its own
    #: whether the authority expects a nil report (DPI403) for a period without reportable
    #: sellers; where it does not, such a period is "nothing to file"
    expects_nil: bool
    #: the MessageTypeIndic of the declaration an operator files when another operator assumes
    #: its reporting (``AssumedReporting`` true, the AssumingPlatformOperator, no seller): DPI403
    #: or DPI401, each profile with its source
    assumed_message_type: str
    #: whether the edition can name the operators whose reporting the operator assumes
    #: (``AssumedPlatformOperator``; NAV's DPI_HU cannot)
    names_assumed_operators: bool

    def doc_ids(self, run_id: str, operator_country: str, receiving_country: str, year: int) -> DocIds: ...
    def identifier_problem(self, identifiers: dict[str, str]) -> str | None: ...
    def seller_problems(self, seller: SellerRecord) -> list[tuple[str, str, str, str]]: ...
    def official_schema(self, xsd_dir: str | Path | None) -> Path: ...
    def extra_checks(self, path: Path) -> list[RuleFinding]: ...

    def message_ref_id(self, ids: DocIds, part: int) -> str: ...
    def doc_ref_id(self, ids: DocIds, record_key: str) -> str: ...
    def bind_doc_ref_id(self, doc_ref_id: str, message_ref_id: str) -> str: ...
    def upload_checks(
        self, path: Path, identifiers: Mapping[str, str], *, name: str | None = None, schema: Path | None = None
    ) -> list[UploadCheck]: ...
    def file_name(self, header: MessageHeader) -> str: ...
    def doc_type_indic(self, kind: str, environment: str) -> str: ...
    def message_timestamp(self, utc: datetime) -> datetime: ...
    def write(
        self,
        out: IO[bytes],
        header: MessageHeader,
        operator: OperatorRecord,
        operator_doc: Doc,
        sellers: Iterable[tuple[SellerRecord, Doc]],
        others: Sequence[tuple[OtherOperatorRecord, Doc]] = (),
    ) -> int: ...


_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: A character that XML cannot carry or that is escaped: in a text (``&``, ``<``, ``>``, a
#: carriage return) and in an attribute value (also ``"`` and the other white space). Almost no
#: text has one: one search instead of a check and a translation per text.
_TEXT_SPECIAL = re.compile(
    "[^\u0009\u000a\u0020-\u0025\u0027-\u003b\u003d\u003f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_ATTR_SPECIAL = re.compile(
    "[^\u0020\u0021\u0023-\u0025\u0027-\u003b\u003d\u003f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
#: Attribute texts remembered per namespace scope (currencies, countries, flags: a handful).
_CACHED_ATTRIBUTES = 1024


def _checked(text: str) -> str:
    if _NOT_XML.search(text):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")
    return text


def _text(value: object) -> str:
    """An element's text as lxml writes it (refused where XML cannot carry it)."""
    text = value if type(value) is str else str(value)
    if _TEXT_SPECIAL.search(text) is None:
        return text
    return _checked(text).translate(_TEXT_ESCAPES)


def _attribute(value: object) -> str:
    """An attribute value as lxml writes it (refused where XML cannot carry it)."""
    text = value if type(value) is str else str(value)
    if _ATTR_SPECIAL.search(text) is None:
        return text
    return _checked(text).translate(_ATTR_ESCAPES)


class _Scope:
    """The namespaces in scope (URI -> prefix, "" for the default namespace), with the qualified
    names and attribute texts written under them: each is worked out once per scope, then looked
    up (a file has a scope or two, and the same few hundred names in every seller)."""

    __slots__ = ("attributes", "names", "prefixes")

    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = prefixes
        self.names: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}

    def name(self, tag: str) -> str:
        name = self.names.get(tag)
        if name is None:
            if tag[:1] != "{":
                name = tag
            else:
                uri, local = tag[1:].split("}", 1)
                prefix = self.prefixes[uri]
                name = f"{prefix}:{local}" if prefix else local
            self.names[tag] = name
        return name

    def attributes_text(self, attrib: dict[str, str]) -> str:
        """`` name="value"`` for each attribute, in the dict's order."""
        cache = self.attributes
        out = ""
        for item in attrib.items():
            k, v = item
            if type(v) is str:
                text = cache.get(item)
                if text is None:
                    text = f' {self.name(k)}="{_attribute(v)}"'
                    if len(cache) < _CACHED_ATTRIBUTES:
                        cache[item] = text
            else:
                text = f' {self.name(k)}="{_attribute(v)}"'
            out += text
        return out

    def declare(self, nsmap: dict[str | None, str]) -> tuple[_Scope, str]:
        """The scope inside an element that declares ``nsmap``, and the declarations' text
        (sorted by prefix, the default namespace first)."""
        prefixes = dict(self.prefixes)
        declarations = ""
        for prefix, uri in sorted(nsmap.items(), key=lambda kv: kv[0] or ""):
            prefixes[uri] = prefix or ""
            declarations += f' xmlns:{prefix}="{uri}"' if prefix else f' xmlns="{uri}"'
        return _Scope(prefixes), declarations


class XmlStream:
    """Streaming, indented XML writer: what lxml's incremental ``xmlfile`` writes, to the byte,
    without lxml in the loop. Each element is one string, buffered and written to ``out`` in
    large UTF-8 chunks; qualified names and attribute texts are worked out once per namespace
    scope, and a text is searched once for what needs escaping. Text is escaped as lxml escapes
    it (``&``, ``<``, ``>``, a carriage return; in attribute values also ``"`` and the other
    white space), namespace declarations are written sorted by prefix, and a text XML cannot
    carry is refused as lxml refuses it. ``tests/unit/test_render_streaming.py`` proves that the
    bytes are lxml's. Only the open elements, one buffer and the names of a scope are in memory:
    a file of a million sellers costs what one seller costs."""

    FLUSH = 1 << 18  # characters buffered before a write

    def __init__(self, out: IO[bytes], indent: str = "  ") -> None:
        self.out = out
        self.indent = indent
        self.depth = 0
        self.parts: list[str] = []
        self.buffered = 0
        self.scope = _Scope({})
        #: per open element: its name and the scope around it
        self.open: list[tuple[str, _Scope]] = []
        #: the line break and indentation before an element, by depth
        self.pads = ["\n", "\n" + indent]

    def declaration(self) -> None:
        self._put("<?xml version='1.0' encoding='UTF-8'?>\n")

    def _put(self, text: str) -> None:
        self.parts.append(text)
        self.buffered += len(text)
        if self.buffered >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.out.write("".join(self.parts).encode("utf-8"))
            self.parts, self.buffered = [], 0

    def element(
        self, tag: str, attrib: dict[str, str] | None = None, nsmap: dict[str | None, str] | None = None
    ) -> _Open:
        return _Open(self, tag, attrib, nsmap)

    def start(self, tag: str, attrib: dict[str, str] | None, nsmap: dict[str | None, str] | None) -> None:
        """The start tag of an element whose children follow (``with element(...)``)."""
        outer = self.scope
        declarations = ""
        if nsmap:
            self.scope, declarations = outer.declare(nsmap)
        scope = self.scope
        name = scope.names.get(tag) or scope.name(tag)
        attributes = scope.attributes_text(attrib) if attrib else ""
        depth = self.depth
        text = f"{self.pads[depth] if depth else ''}<{name}{declarations}{attributes}>"
        self.open.append((name, outer))
        self.depth = depth = depth + 1
        if len(self.pads) <= depth + 1:
            self.pads.append("\n" + self.indent * (depth + 1))
        self.parts.append(text)
        self.buffered += len(text)
        if self.buffered >= self.FLUSH:
            self.flush()

    def end(self) -> None:
        """The end tag of the innermost open element."""
        name, self.scope = self.open.pop()
        self.depth -= 1
        text = f"{self.pads[self.depth]}</{name}>"
        self.parts.append(text)
        self.buffered += len(text)
        if self.buffered >= self.FLUSH:
            self.flush()

    def leaf(self, tag: str, text: str | int | None, attrib: dict[str, str] | None = None) -> None:
        scope = self.scope
        name = scope.names.get(tag) or scope.name(tag)
        attributes = scope.attributes_text(attrib) if attrib else ""
        value = "" if text is None or text == "" else _text(text)
        out = f"{self.pads[self.depth]}<{name}{attributes}>{value}</{name}>"
        self.parts.append(out)
        self.buffered += len(out)
        if self.buffered >= self.FLUSH:
            self.flush()

    def opt(self, tag: str, text: str | int | None, attrib: dict[str, str] | None = None) -> None:
        if text is not None and text != "":
            self.leaf(tag, text, attrib)

    def block(self, tag: str, leaves: Iterable[tuple[str, str | int, dict[str, str] | None]]) -> None:
        """An element holding only leaves, written as one string: what ``with element(tag)`` and a
        ``leaf`` per child write (each leaf's text present)."""
        scope = self.scope
        names = scope.names
        depth = self.depth
        outer = self.pads[depth]
        inner = self.pads[depth + 1]
        name = names.get(tag) or scope.name(tag)
        parts = [outer if depth else "", "<", name, ">"]
        for child, text, attrib in leaves:
            child_name = names.get(child) or scope.name(child)
            attributes = scope.attributes_text(attrib) if attrib else ""
            parts.append(f"{inner}<{child_name}{attributes}>{_text(text)}</{child_name}>")
        parts.append(f"{outer}</{name}>")
        out = "".join(parts)
        self.parts.append(out)
        self.buffered += len(out)
        if self.buffered >= self.FLUSH:
            self.flush()


class _Open:
    """``with stream.element(...)``: the start tag on entry, the end tag on exit (a class, not a
    generator: entered once per element of every seller)."""

    __slots__ = ("attrib", "nsmap", "stream", "tag")

    def __init__(
        self, stream: XmlStream, tag: str, attrib: dict[str, str] | None, nsmap: dict[str | None, str] | None
    ) -> None:
        self.stream, self.tag, self.attrib, self.nsmap = stream, tag, attrib, nsmap

    def __enter__(self) -> None:
        self.stream.start(self.tag, self.attrib, self.nsmap)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.stream.end()


class DpiWriter:
    """The DPI v1.0 message structure (OECD/EU edition); national variants override parts."""

    dpi_ns = "urn:oecd:ties:dpi:v1"
    stf_ns = "urn:oecd:ties:dpistf:v1"
    root_tag = "DPI_OECD"
    version = "1.0"
    tax_quarter_tag = "TaxQ"
    individual_address_type: str | None = None
    operator_address_type = "OECD304"  # registered office (EU rule 60010)
    schema_resource: str  # each profile names its main XSD (AuthorityProfile.schema_resource)
    #: whether the edition carries the "[EU Specific]" Nexus of the PlatformOperator and the
    #: PermanentEstablishments of an entity seller (the OECD schema's annotations)
    writes_nexus = True
    writes_permanent_establishments = True

    def q(self, tag: str) -> str:
        return f"{{{self.dpi_ns}}}{tag}"

    def s(self, tag: str) -> str:
        return f"{{{self.stf_ns}}}{tag}"

    @property
    def nsmap(self) -> dict[str | None, str]:
        return {"dpi": self.dpi_ns, "stf": self.stf_ns}

    def write(
        self,
        out: IO[bytes],
        header: MessageHeader,
        operator: OperatorRecord,
        operator_doc: Doc,
        sellers: Iterable[tuple[SellerRecord, Doc]],
        others: Sequence[tuple[OtherOperatorRecord, Doc]] = (),
    ) -> int:
        """Write one file; returns the number of sellers written. ``others``: the records of
        OtherPlatformOperators (assumed operators, or the assuming one), each with its DocSpec."""
        w = XmlStream(out)
        w.declaration()
        n = self.write_document(w, header, operator, operator_doc, sellers, others)
        w.flush()
        return n

    def write_document(
        self,
        w: XmlStream,
        header: MessageHeader,
        operator: OperatorRecord,
        operator_doc: Doc,
        sellers: Iterable[tuple[SellerRecord, Doc]],
        others: Sequence[tuple[OtherOperatorRecord, Doc]] = (),
    ) -> int:
        """The document around the message: none here; a profile with an envelope overrides it."""
        return self.write_message(w, header, operator, operator_doc, sellers, nsmap=self.nsmap, others=others)

    def write_message(
        self,
        w: XmlStream,
        header: MessageHeader,
        operator: OperatorRecord,
        operator_doc: Doc,
        sellers: Iterable[tuple[SellerRecord, Doc]],
        nsmap: dict[str | None, str] | None = None,
        others: Sequence[tuple[OtherOperatorRecord, Doc]] = (),
    ) -> int:
        """The DPI message itself."""
        n = 0
        with w.element(self.q(self.root_tag), {"version": self.version}, nsmap=nsmap):
            self.message_spec(w, header)
            with w.element(self.q("DPIBody")):
                self.platform_operator(w, operator, operator_doc)
                if others:
                    self.other_platform_operators(w, others)
                for seller, doc in sellers:
                    self.reportable_seller(w, seller, doc)
                    n += 1
        return n

    def official_schema(self, xsd_dir: str | Path | None) -> Path:
        """The main XSD to validate with: from the authority's official package when a directory
        is given (next year's schema without a release), else our own ``xsd/``."""
        return schema_path(self.schema_resource, xsd_dir)

    def extra_checks(self, path: Path) -> list[RuleFinding]:
        """National checks of a rendered file beyond the schema and the EU rules (none here)."""
        return []

    def seller_problems(self, seller: SellerRecord) -> list[tuple[str, str, str, str]]:
        """What this authority cannot receive of a seller, as (rule, table, row key, message);
        checked before rendering, so that the run names the seller instead of failing the schema."""
        return []

    def sending_entity_in(self, header: MessageHeader) -> str | None:
        """Only domestic filings that the authority asks it for carry a SendingEntityIN (10010)."""
        return None

    # ------------------------------------------------------------------ message spec
    def message_spec(self, w: XmlStream, h: MessageHeader) -> None:
        with w.element(self.q("MessageSpec")):
            w.opt(self.q("SendingEntityIN"), self.sending_entity_in(h))
            w.leaf(self.q("TransmittingCountry"), h.transmitting_country)
            w.leaf(self.q("ReceivingCountry"), h.receiving_country)
            w.leaf(self.q("MessageType"), "DPI")
            w.leaf(self.q("MessageRefId"), h.message_ref_id)
            w.leaf(self.q("MessageTypeIndic"), h.message_type_indic)
            w.leaf(self.q("ReportingPeriod"), h.reporting_period.isoformat())
            w.leaf(self.q("Timestamp"), h.timestamp.strftime("%Y-%m-%dT%H:%M:%S"))

    def doc_spec(self, w: XmlStream, doc: Doc) -> None:
        doc_type, doc_ref, *corr = doc
        with w.element(self.q("DocSpec")):
            w.leaf(self.s("DocTypeIndic"), doc_type)
            w.leaf(self.s("DocRefId"), doc_ref)
            # CorrMessageRefId is never used (EU rule 80006); a correction or deletion names the
            # DocRefId it replaces
            w.opt(self.s("CorrDocRefId"), corr[0] if corr else None)

    # ------------------------------------------------------------------ parties
    def platform_operator(self, w: XmlStream, op: OperatorRecord, doc: Doc) -> None:
        with w.element(self.q("PlatformOperator")):
            w.leaf(self.q("ResCountryCode"), op.res_country)
            w.leaf(self.q("TIN"), op.tin, {"issuedBy": op.tin_issued_by})
            w.opt(self.q("VAT"), op.vat)
            w.leaf(self.q("Name"), op.name)
            w.opt(self.q("PlatformBusinessName"), op.platform_business_name)
            self.address(w, op.address, self.operator_address_type)
            if self.writes_nexus:
                w.leaf(self.q("Nexus"), op.nexus)
            w.leaf(self.q("AssumedReporting"), "true" if op.assumed_reporting else "false")
            self.doc_spec(w, doc)

    #: the element of each role in OtherPlatformOperators
    other_operator_tags: ClassVar[dict[str, str]] = {
        ASSUMED: "AssumedPlatformOperator",
        ASSUMING: "AssumingPlatformOperator",
    }

    def other_platform_operators(self, w: XmlStream, others: Sequence[tuple[OtherOperatorRecord, Doc]]) -> None:
        """``OtherPlatformOperators``: one AssumingPlatformOperator, or one AssumedPlatformOperator
        per assumed operator (``CorrectableOtherRPO_Type``: ResCountryCode, TIN, Name, the
        registered office as Address, DocSpec). The schema's choice admits one role per message."""
        roles = {o.role for o, _ in others}
        if len(roles) != 1 or not roles <= self.other_operator_tags.keys():
            raise ReportingError(
                f"OtherPlatformOperators holds either the assuming operator or assumed operators, not {sorted(roles)}"
            )
        if roles == {ASSUMING} and len(others) > 1:
            raise ReportingError("a message names one AssumingPlatformOperator")
        with w.element(self.q("OtherPlatformOperators")):
            for other, doc in others:
                with w.element(self.q(self.other_operator_tags[other.role])):
                    self.other_operator(w, other)
                    self.doc_spec(w, doc)

    def other_operator(self, w: XmlStream, o: OtherOperatorRecord) -> None:
        w.leaf(self.q("ResCountryCode"), o.res_country)
        w.leaf(self.q("TIN"), o.tin, {"issuedBy": o.tin_issued_by})
        w.leaf(self.q("Name"), o.name)
        self.address(w, o.address, self.operator_address_type)

    def address(self, w: XmlStream, a: PostalAddress, legal_type: str | None = None) -> None:
        attrib = {"legalAddressType": legal_type} if legal_type else {}
        with w.element(self.q("Address"), attrib):
            w.leaf(self.q("CountryCode"), a.country)
            if a.city:
                with w.element(self.q("AddressFix")):
                    w.opt(self.q("Street"), a.street)
                    w.opt(self.q("BuildingIdentifier"), a.building)
                    w.opt(self.q("PostCode"), a.post_code)
                    w.leaf(self.q("City"), a.city)
                w.opt(self.q("AddressFree"), a.free_text)
            else:
                w.leaf(self.q("AddressFree"), a.free_text)

    def residence_and_tins(self, w: XmlStream, seller: SellerRecord) -> None:
        for c in seller.res_countries:
            w.leaf(self.q("ResCountryCode"), c)
        if not seller.tins:
            w.leaf(self.q("TIN"), None, {"unknown": "true"})
        for t in seller.tins:
            w.leaf(self.q("TIN"), t.value, {"issuedBy": t.issued_by})

    def reportable_seller(self, w: XmlStream, s: SellerRecord, doc: Doc) -> None:
        with w.element(self.q("ReportableSeller")):
            with w.element(self.q("Identity")):
                if s.seller_type == "entity":
                    self.entity_seller(w, s)
                else:
                    self.individual_seller(w, s)
            with w.element(self.q("RelevantActivities")):
                self.relevant_activities(w, s)
            self.doc_spec(w, doc)

    def individual_seller(self, w: XmlStream, s: SellerRecord) -> None:
        with w.element(self.q("IndividualSeller")), w.element(self.q("Standard")):
            with w.element(self.q("IndSellerID")):
                self.residence_and_tins(w, s)
                w.opt(self.q("VAT"), s.vat)
                with w.element(self.q("Name")):
                    w.leaf(self.q("FirstName"), s.first_name)
                    w.leaf(self.q("LastName"), s.last_name)
                self.address(w, s.address, self.individual_address_type)
                with w.element(self.q("BirthInfo")):
                    w.leaf(self.q("BirthDate"), s.birth_date.isoformat() if s.birth_date else None)
                    if s.birth_city and s.birth_country:
                        # Every identity element the source has; required when the TIN is
                        # unknown (EU rule 40140, checked before rendering).
                        with w.element(self.q("BirthPlace")):
                            w.leaf(self.q("City"), s.birth_city)
                            with w.element(self.q("CountryInfo")):
                                w.leaf(self.q("CountryCode"), s.birth_country)
            self.financial_identifiers(w, s)

    def entity_seller(self, w: XmlStream, s: SellerRecord) -> None:
        with w.element(self.q("EntitySeller")), w.element(self.q("Standard")):
            with w.element(self.q("EntSellerID")):
                self.residence_and_tins(w, s)
                w.opt(self.q("IN"), s.brn, {"INType": "BRN"})
                w.opt(self.q("VAT"), s.vat)
                w.leaf(self.q("Name"), s.legal_name)
                self.address(w, s.address)
            self.financial_identifiers(w, s)
            self.permanent_establishments(w, s)

    def permanent_establishments(self, w: XmlStream, s: SellerRecord) -> None:
        if s.permanent_establishments and self.writes_permanent_establishments:
            with w.element(self.q("PermanentEstablishments")):
                for c in s.permanent_establishments:
                    w.leaf(self.q("PermanentEstablishment"), c)

    def financial_identifiers(self, w: XmlStream, s: SellerRecord) -> None:
        for acc in s.accounts:
            with w.element(self.q("FinancialIdentifier")):
                w.leaf(self.q("Identifier"), acc.identifier, {"AccountNumberType": "IBAN"} if acc.is_iban else {})
                w.opt(self.q("AccountHolderName"), acc.holder_name)

    # ------------------------------------------------------------------ activities
    def relevant_activities(self, w: XmlStream, s: SellerRecord) -> None:
        listings = [a for a in s.activities if a.activity == PROPERTY]
        if listings:
            with w.element(self.q("ImmovableProperty")):
                for a in listings:
                    self.property_listing(w, a)
        for activity, tag in (
            (SERVICES, "PersonalServices"),
            (GOODS, "SaleOfGoods"),
            (TRANSPORT, "TransportationRental"),
        ):
            for a in s.activities:
                if a.activity == activity:
                    with w.element(self.q(tag)):
                        self.figures(w, a)

    def property_listing(self, w: XmlStream, a: ActivityFigures) -> None:
        with w.element(self.q("PropertyListing")):
            if a.address is not None:
                self.address(w, a.address)
            w.opt(self.q("LandRegistrationNumber"), a.land_registration_number)
            self.figures(w, a)
            w.opt(self.q("PropertyType"), a.property_type)
            if a.property_type == "DPI910":
                w.opt(self.q("OtherPropertyType"), a.other_property_type)
            if a.rented_days > 0:
                w.leaf(self.q("RentedDays"), a.rented_days)

    @functools.cached_property
    def quarter_tags(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The figures' elements and their quarters' (Consideration, NumberOfActivities, Fees,
        Taxes): named once per profile, not four times per activity of every seller."""
        q = self.q
        return tuple(
            (q(tag), tuple(q(f"{quarter}{i}") for i in range(1, 5)))
            for tag, quarter in (
                ("Consideration", "ConsQ"),
                ("NumberOfActivities", "NumbQ"),
                ("Fees", "FeesQ"),
                ("Taxes", self.tax_quarter_tag),
            )
        )

    def figures(self, w: XmlStream, a: ActivityFigures) -> None:
        cur = {"currCode": a.currency}
        (cons, cons_q), (numb, numb_q), (fees, fees_q), (taxes, taxes_q) = self.quarter_tags
        w.block(cons, [(t, v, cur) for t, v in zip(cons_q, a.consideration, strict=True)])
        w.block(numb, [(t, v, None) for t, v in zip(numb_q, a.activities, strict=True)])
        w.block(fees, [(t, v, cur) for t, v in zip(fees_q, a.fees, strict=True)])
        w.block(taxes, [(t, v, cur) for t, v in zip(taxes_q, a.taxes, strict=True)])
