"""Our BZSt DIP envelope schema (xsd/de/dip-v1) must behave exactly like the reference one.

The envelope (namespace ``http://itzbund.de/ozg/bzst/post/dip/v1/``), every sequence order-sensitive::

    dip                          @version required, xs:string (any text; "1.0" is what is sent)
      header                     @environment required: TEST | PROD
        consignment
          customerIdentifier
            identityProvider     BZST-CERT (identifier is a BZSt certificate) | ELSTER (an ELSTER account)
            identifier           string, 1-16 characters (e.g. the tax number / account id)
          creationTime           xs:dateTime (2025-01-15T10:00:00, offset optional)
          transferticketId       string, 1-170 characters, NO pattern (unique per delivery; a UUID fits)
          referenceId            0..1, same type: transferticketId of an earlier delivery
        application              empty element, @code required: string 1-12 characters, free text -
                                 "DAC7" for platform reporting (CESOP, CRS are other procedures)
      body
        consignmentItem          1..n
          bopAccountId           0..1, string 1-36 characters (portal account for administrative acts)
          data                   xs:anyType: holds the dpi:DPI_OECD message (EU edition, xsd/eu/v1.0)

``data`` is processed laxly: an element the envelope schema does not declare (DPI_OECD) is not checked
by it - validate the payload separately against the DPI schema.  Unused by the envelope but part of the
types: processStatusType OK | PARTIALLY_REJECTED | ERROR (processing result), consignmentItemPositionType
(unsignedLong >= 0), schemaVersionType (string 1-40).

Reference structure: the stored reference dip.xsd (from a third-party client) has its
``<xs:include schemaLocation="dip-types.xsd"/>`` commented out and instead carries inline copies of
every dip-types.xsd component, so it loads on its own; restoring the include as-is would define every
type twice.  The original layout is dip.xsd (dip, DipType, DipHeaderType, DipBodyType) including
dip-types.xsd (the rest), and that is how our files are split.  The tests check both: the stored file
and a reconstruction (include restored, inline copies dropped) built in tmp_path.

The reference files are vendored in tests/reference/xsd (see tests/reference/README.md).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from resources import require_module, vendored
from xsd_support import Mutations, canonical, child_elements, named
from xsd_support import resolve as _resolve

REPO_ROOT = Path(__file__).resolve().parents[2]
OUR_XSD_DIR = REPO_ROOT / "xsd" / "de" / "dip-v1"
REFERENCE_XSD_DIR = vendored("xsd", "de-bzst-dip__xdev-client")
SCHEMA_FILES = ("dip.xsd", "dip-types.xsd")

require_module(*(REFERENCE_XSD_DIR / name for name in SCHEMA_FILES))

XS = "http://www.w3.org/2001/XMLSchema"
DIP_NS = "http://itzbund.de/ozg/bzst/post/dip/v1/"
DPI_NS = "urn:oecd:ties:dpi:v1"
NS = {"dip": DIP_NS, "dpi": DPI_NS}
COMMENTED_INCLUDE = re.compile(r"<!--\s*(<xs:include\s+schemaLocation=\"dip-types\.xsd\"\s*/>)\s*-->")
KINDS = ("simpleType", "complexType", "element", "attribute", "group", "attributeGroup")


def _x(local: str) -> str:
    return f"{{{XS}}}{local}"


def _parse(path: Path) -> etree._Element:
    return etree.parse(str(path)).getroot()


# --------------------------------------------------------------------------- schemas


def reconstruct_reference(directory: Path) -> Path:
    """The reference with its include restored and the inline copies of dip-types.xsd dropped."""
    text = (REFERENCE_XSD_DIR / "dip.xsd").read_text(encoding="utf-8")
    assert COMMENTED_INCLUDE.search(text), "reference dip.xsd no longer has the commented-out include"
    root = etree.fromstring(COMMENTED_INCLUDE.sub(r"\1", text).encode("utf-8"))
    types_root = _parse(REFERENCE_XSD_DIR / "dip-types.xsd")
    in_types = {(c.tag, c.get("name")) for c in types_root if isinstance(c.tag, str) and c.get("name")}
    for child in list(root):
        if isinstance(child.tag, str) and (child.tag, child.get("name")) in in_types:
            root.remove(child)
    directory.mkdir(parents=True, exist_ok=True)
    etree.ElementTree(root).write(str(directory / "dip.xsd"), xml_declaration=True, encoding="UTF-8")
    shutil.copyfile(REFERENCE_XSD_DIR / "dip-types.xsd", directory / "dip-types.xsd")
    return directory / "dip.xsd"


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, etree.XMLSchema]:
    rebuilt = reconstruct_reference(tmp_path_factory.mktemp("dip-reference"))
    return {
        "ours": etree.XMLSchema(etree.parse(str(OUR_XSD_DIR / "dip.xsd"))),
        "reference": etree.XMLSchema(etree.parse(str(REFERENCE_XSD_DIR / "dip.xsd"))),
        "reference-with-include": etree.XMLSchema(etree.parse(str(rebuilt))),
    }


def verdicts(schemas: dict[str, etree.XMLSchema], doc: etree._ElementTree) -> tuple[dict[str, bool], str]:
    """Validity of one document per schema, plus the first errors of each."""
    results, errors = {}, []
    for name, schema in schemas.items():
        results[name] = schema.validate(doc)
        errors.append(f"{name}: {[str(e) for e in list(schema.error_log)[:3]]}")
    return results, "\n".join(errors)


def test_reference_as_stored_has_types_inlined() -> None:
    """Restoring the include in the stored file alone defines every dip-types.xsd component twice."""
    text = COMMENTED_INCLUDE.sub(r"\1", (REFERENCE_XSD_DIR / "dip.xsd").read_text(encoding="utf-8"))
    root = etree.fromstring(text.encode("utf-8"), base_url=str(REFERENCE_XSD_DIR / "dip.xsd"))
    with pytest.raises(etree.XMLSchemaParseError, match="already exist"):
        etree.XMLSchema(root)


# --------------------------------------------------------------------------- valid base envelope

BASE_ENVELOPE = f"""<?xml version="1.0" encoding="UTF-8"?>
<dip:dip xmlns:dip="{DIP_NS}" version="1.0">
 <dip:header environment="TEST">
  <dip:consignment>
   <dip:customerIdentifier>
    <dip:identityProvider>ELSTER</dip:identityProvider>
    <dip:identifier>2181508150</dip:identifier>
   </dip:customerIdentifier>
   <dip:creationTime>2025-01-15T10:00:00</dip:creationTime>
   <dip:transferticketId>0f8fad5b-d9cb-469f-a165-70867728950e</dip:transferticketId>
  </dip:consignment>
  <dip:application code="DAC7"/>
 </dip:header>
 <dip:body>
  <dip:consignmentItem>
   <dip:data>
    <dpi:DPI_OECD xmlns:dpi="{DPI_NS}" version="1.0">
     <dpi:MessageSpec><dpi:MessageRefId>DE2024DE-0001</dpi:MessageRefId></dpi:MessageSpec>
    </dpi:DPI_OECD>
   </dip:data>
  </dip:consignmentItem>
 </dip:body>
</dip:dip>
"""


def base_envelope() -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(BASE_ENVELOPE.encode("utf-8")))


def test_base_envelope_is_valid_against_all(schemas: dict[str, etree.XMLSchema]) -> None:
    results, errors = verdicts(schemas, base_envelope())
    assert all(results.values()), f"base envelope must be valid everywhere: {results}\n{errors}"


# --------------------------------------------------------------------------- mutations

Mutator = Callable[[etree._ElementTree], None]

_m = Mutations(NS)
remove = _m.remove
set_text = _m.set_text
set_attr = _m.set_attr
swap_with_next = _m.swap_with_next
duplicate = _m.duplicate
insert_after = _m.insert_after
chain = _m.chain
_one = _m.one


def replace_children(xpath: str, fragment: str) -> Mutator:
    """Replace the content of an element by a fragment (text and/or elements)."""

    def run(tree: etree._ElementTree) -> None:
        el = _one(tree, xpath)
        wrapper = etree.fromstring(f'<w xmlns:dip="{DIP_NS}" xmlns:dpi="{DPI_NS}">{fragment}</w>')
        for child in list(el):
            el.remove(child)
        el.text = wrapper.text
        for child in wrapper:
            el.append(child)

    return run


def set_namespace(xpath: str, namespace: str | None) -> Mutator:
    def run(tree: etree._ElementTree) -> None:
        el = _one(tree, xpath)
        local = etree.QName(el).localname
        el.tag = f"{{{namespace}}}{local}" if namespace else local

    return run


ROOT = "/dip:dip"
HEADER = "//dip:header"
CONS = "//dip:consignment"
CUST = "//dip:customerIdentifier"
ITEM = "//dip:consignmentItem"
APP = "//dip:application"

VALID, INVALID = True, False

VARIANTS = [
    # --- missing required parts
    pytest.param(remove(HEADER), INVALID, id="missing-header"),
    pytest.param(remove("//dip:body"), INVALID, id="missing-body"),
    pytest.param(remove(CONS), INVALID, id="missing-consignment"),
    pytest.param(remove(APP), INVALID, id="missing-application"),
    pytest.param(remove(CUST), INVALID, id="missing-customerIdentifier"),
    pytest.param(remove("//dip:identityProvider"), INVALID, id="missing-identityProvider"),
    pytest.param(remove("//dip:identifier"), INVALID, id="missing-identifier"),
    pytest.param(remove("//dip:creationTime"), INVALID, id="missing-creationTime"),
    pytest.param(remove("//dip:transferticketId"), INVALID, id="missing-transferticketId"),
    pytest.param(remove(ITEM), INVALID, id="no-consignmentItem"),
    pytest.param(remove("//dip:data"), INVALID, id="missing-data"),
    # --- attributes
    pytest.param(set_attr(ROOT, "version", None), INVALID, id="missing-version"),
    pytest.param(set_attr(ROOT, "version", "2.0"), VALID, id="version-any-string"),
    pytest.param(set_attr(ROOT, "version", ""), VALID, id="version-empty-string"),
    pytest.param(set_attr(HEADER, "environment", None), INVALID, id="missing-environment"),
    pytest.param(set_attr(HEADER, "environment", "PROD"), VALID, id="environment-PROD"),
    pytest.param(set_attr(HEADER, "environment", "test"), INVALID, id="environment-lowercase"),
    pytest.param(set_attr(HEADER, "environment", "PRODUCTION"), INVALID, id="environment-PRODUCTION"),
    pytest.param(set_attr(HEADER, "priority", "1"), INVALID, id="unknown-header-attribute"),
    pytest.param(set_attr(APP, "code", None), INVALID, id="missing-application-code"),
    pytest.param(set_attr(APP, "code", ""), INVALID, id="application-code-empty"),
    pytest.param(set_attr(APP, "code", "CESOP"), VALID, id="application-code-CESOP"),
    pytest.param(set_attr(APP, "code", "X" * 12), VALID, id="application-code-12"),
    pytest.param(set_attr(APP, "code", "X" * 13), INVALID, id="application-code-13"),
    pytest.param(set_text(APP, "DAC7"), INVALID, id="application-with-text"),
    pytest.param(set_attr("//dip:data", "note", "x"), VALID, id="data-any-attribute"),
    # --- code lists and facets
    pytest.param(set_text("//dip:identityProvider", "BZST-CERT"), VALID, id="identityProvider-BZST-CERT"),
    pytest.param(set_text("//dip:identityProvider", "BZST"), INVALID, id="identityProvider-BZST"),
    pytest.param(set_text("//dip:identityProvider", "elster"), INVALID, id="identityProvider-lowercase"),
    pytest.param(set_text("//dip:identifier", "I" * 16), VALID, id="identifier-16"),
    pytest.param(set_text("//dip:identifier", "I" * 17), INVALID, id="identifier-17"),
    pytest.param(set_text("//dip:identifier", ""), INVALID, id="identifier-empty"),
    pytest.param(set_text("//dip:transferticketId", "T" * 170), VALID, id="transferticketId-170"),
    pytest.param(set_text("//dip:transferticketId", "T" * 171), INVALID, id="transferticketId-171"),
    pytest.param(set_text("//dip:transferticketId", ""), INVALID, id="transferticketId-empty"),
    pytest.param(set_text("//dip:transferticketId", "any text / no pattern"), VALID, id="transferticketId-free"),
    pytest.param(set_text("//dip:creationTime", "2025-01-15"), INVALID, id="creationTime-date-only"),
    pytest.param(set_text("//dip:creationTime", "2025-01-15T10:00:00+01:00"), VALID, id="creationTime-offset"),
    pytest.param(set_text("//dip:creationTime", "2025-01-15T10:00:00.123Z"), VALID, id="creationTime-utc-millis"),
    # --- optional elements
    pytest.param(
        insert_after("//dip:transferticketId", f"<dip:referenceId>{'R' * 170}</dip:referenceId>"),
        VALID,
        id="referenceId-170",
    ),
    pytest.param(
        insert_after("//dip:transferticketId", f"<dip:referenceId>{'R' * 171}</dip:referenceId>"),
        INVALID,
        id="referenceId-171",
    ),
    pytest.param(
        chain(
            insert_after("//dip:transferticketId", "<dip:referenceId>a</dip:referenceId>"),
            duplicate("//dip:referenceId"),
        ),
        INVALID,
        id="two-referenceIds",
    ),
    pytest.param(
        chain(
            insert_after("//dip:data", f"<dip:bopAccountId>{'B' * 36}</dip:bopAccountId>"),
            swap_with_next("//dip:data"),
        ),
        VALID,
        id="bopAccountId-36",
    ),
    pytest.param(
        chain(
            insert_after("//dip:data", f"<dip:bopAccountId>{'B' * 37}</dip:bopAccountId>"),
            swap_with_next("//dip:data"),
        ),
        INVALID,
        id="bopAccountId-37",
    ),
    # --- order and repetitions
    pytest.param(swap_with_next(HEADER), INVALID, id="body-before-header"),
    pytest.param(swap_with_next(CONS), INVALID, id="application-before-consignment"),
    pytest.param(swap_with_next(CUST), INVALID, id="creationTime-before-customerIdentifier"),
    pytest.param(swap_with_next("//dip:identityProvider"), INVALID, id="identifier-before-identityProvider"),
    pytest.param(
        insert_after("//dip:data", "<dip:bopAccountId>b</dip:bopAccountId>"),
        INVALID,
        id="bopAccountId-after-data",
    ),
    pytest.param(duplicate(HEADER), INVALID, id="two-headers"),
    pytest.param(duplicate(CONS), INVALID, id="two-consignments"),
    pytest.param(duplicate("//dip:data"), INVALID, id="two-data"),
    pytest.param(duplicate(ITEM), VALID, id="two-consignmentItems"),
    pytest.param(insert_after("//dip:creationTime", "<dip:comment>x</dip:comment>"), INVALID, id="unknown-element"),
    # --- namespaces
    pytest.param(set_namespace(ROOT, None), INVALID, id="root-without-namespace"),
    pytest.param(set_namespace(CONS, "urn:other"), INVALID, id="consignment-other-namespace"),
    # --- the anyType payload: checked laxly, only against declarations of the envelope itself
    pytest.param(replace_children("//dip:data", ""), VALID, id="data-empty"),
    pytest.param(replace_children("//dip:data", "plain text"), VALID, id="data-text-only"),
    pytest.param(
        replace_children("//dip:data", "<dpi:DPI_OECD><dpi:Nonsense/></dpi:DPI_OECD>"),
        VALID,
        id="data-broken-DPI-not-checked",
    ),
    pytest.param(
        replace_children("//dip:data", "<dpi:DPI_OECD/><dpi:DPI_OECD/>"),
        VALID,
        id="data-two-payload-elements",
    ),
    pytest.param(replace_children("//dip:data", "<dip:dip/>"), INVALID, id="data-nested-bad-envelope"),
]


@pytest.mark.parametrize(("mutate", "expected"), VARIANTS)
def test_variant_same_and_expected_verdict(
    schemas: dict[str, etree.XMLSchema], mutate: Mutator, expected: bool
) -> None:
    doc = base_envelope()
    mutate(doc)
    results, errors = verdicts(schemas, doc)
    assert len(set(results.values())) == 1, f"schemas disagree: {results}\n{errors}"
    assert results["reference"] == expected, f"expected valid={expected}\n{errors}"


def test_enough_invalid_variants() -> None:
    assert sum(1 for p in VARIANTS if p.values[1] is INVALID) >= 12


# --------------------------------------------------------------------------- structure


@cache
def our_roots() -> dict[str, etree._Element]:
    return {name: _parse(OUR_XSD_DIR / name) for name in SCHEMA_FILES}


@cache
def reference_roots() -> dict[str, etree._Element]:
    return {name: _parse(REFERENCE_XSD_DIR / name) for name in SCHEMA_FILES}


def _named(roots: list[etree._Element], kind: str) -> dict[str, etree._Element]:
    return named({str(i): root for i, root in enumerate(roots)}, kind)


def ours(kind: str) -> dict[str, etree._Element]:
    return _named(list(our_roots().values()), kind)


def reference(kind: str) -> dict[str, etree._Element]:
    """The stored reference dip.xsd is complete on its own (dip-types.xsd inlined)."""
    return _named([reference_roots()["dip.xsd"]], kind)


def _enumerations(components: dict[str, etree._Element]) -> dict[str, set[str]]:
    out = {}
    for name, st in components.items():
        values = {e.get("value") for e in st.iter(_x("enumeration"))}
        if values:
            out[name] = values
    return out


def test_namespace_settings_and_include() -> None:
    ref = reference_roots()["dip.xsd"]
    for name, root in our_roots().items():
        assert root.get("targetNamespace") == ref.get("targetNamespace") == DIP_NS, name
        for attr in ("elementFormDefault", "attributeFormDefault"):
            assert root.get(attr) == ref.get(attr), (name, attr)
        assert not root.findall(_x("import")), name
    includes = [i.get("schemaLocation") for i in our_roots()["dip.xsd"].findall(_x("include"))]
    assert includes == ["dip-types.xsd"]
    assert not our_roots()["dip-types.xsd"].findall(_x("include"))


def test_same_named_components() -> None:
    for kind in KINDS:
        assert set(ours(kind)) == set(reference(kind)), kind


def test_split_follows_reference_files() -> None:
    """Our dip-types.xsd holds what the reference dip-types.xsd holds; dip.xsd the rest."""
    for kind in KINDS:
        ref_types = set(_named([reference_roots()["dip-types.xsd"]], kind))
        assert set(_named([our_roots()["dip-types.xsd"]], kind)) == ref_types, kind
        assert set(_named([our_roots()["dip.xsd"]], kind)) == set(reference(kind)) - ref_types, kind


@pytest.mark.parametrize("kind", ["simpleType", "complexType"])
def test_reference_inline_copies_equal_dip_types(kind: str) -> None:
    """The components inlined into the stored dip.xsd are the dip-types.xsd ones, unchanged."""
    types = _named([reference_roots()["dip-types.xsd"]], kind)
    inline = reference(kind)
    for name, el in types.items():
        assert canonical(inline[name]) == canonical(el), name


def test_same_global_element() -> None:
    ref = reference("element")
    assert list(ref) == [f"{{{DIP_NS}}}dip"]
    for name, el in ref.items():
        assert canonical(ours("element")[name]) == canonical(el), name


REFERENCE_ENUMS = sorted(_enumerations(reference("simpleType")))
REFERENCE_SIMPLE = sorted(reference("simpleType"))
REFERENCE_COMPLEX = sorted(reference("complexType"))


def test_enumeration_types_found() -> None:
    assert set(_enumerations(ours("simpleType"))) == set(REFERENCE_ENUMS)
    assert {f"{{{DIP_NS}}}{n}" for n in ("environmentType", "identityProviderType", "processStatusType")} == set(
        REFERENCE_ENUMS
    )


@pytest.mark.parametrize("name", REFERENCE_ENUMS)
def test_enumeration_values_equal(name: str) -> None:
    mine, ref = _enumerations(ours("simpleType")), _enumerations(reference("simpleType"))
    assert name in mine, f"{name} missing from our schema"
    missing, extra = ref[name] - mine[name], mine[name] - ref[name]
    assert not missing and not extra, f"{name}: missing {sorted(missing)}, extra {sorted(extra)}"


@pytest.mark.parametrize("name", REFERENCE_SIMPLE)
def test_simple_type_equal(name: str) -> None:
    mine = ours("simpleType")
    assert name in mine, f"{name} missing from our schema"
    assert canonical(mine[name]) == canonical(reference("simpleType")[name])


@pytest.mark.parametrize("name", REFERENCE_COMPLEX)
def test_complex_type_structure_equal(name: str) -> None:
    mine = ours("complexType")
    ref = reference("complexType")[name]
    assert name in mine, f"{name} missing from our schema"
    # Readable first check: element names, order and cardinalities.
    assert child_elements(mine[name]) == child_elements(ref)
    # Full check: compositors, types, facets, attributes.
    assert canonical(mine[name]) == canonical(ref)


def test_data_is_any_type() -> None:
    data = ours("complexType")[f"{{{DIP_NS}}}ConsignmentItemType"].find(f".//{_x('element')}[@name='data']")
    assert _resolve(data, data.get("type")) == f"{{{XS}}}anyType"


def test_our_files_carry_project_header_only() -> None:
    header = "BZSt DIP envelope schema v1, written for this project from the published specification"
    reference_docs = {
        " ".join(d.text.split())
        for root in reference_roots().values()
        for d in root.iter(_x("documentation"))
        if d.text and d.text.strip()
    }
    for name in SCHEMA_FILES:
        text = (OUR_XSD_DIR / name).read_text(encoding="utf-8")
        assert header in text, name
        for banned in ("XMLSpy", "altova", "xdev", "/home/", "C:\\"):
            assert banned.lower() not in text.lower(), (name, banned)
        flat = " ".join(text.split())
        copied = [doc for doc in reference_docs if doc in flat]
        assert not copied, f"{name}: reference documentation copied verbatim: {copied}"
