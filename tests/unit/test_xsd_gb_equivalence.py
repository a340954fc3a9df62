"""Our DPI v1.0 schema of the OECD edition (xsd/gb/v1.0), the one the GB profile validates
against, must behave exactly like the schema HMRC's upload validates with (the OECD's, vendored
in tests/reference/xsd/oecd-dpi-v1.0__hmrc-copy).

The evidence, as for the EU edition (test_xsd_equivalence.py):

* a structural walk of both schema sets: the same files, namespaces and imports; the same named
  components, code lists, facets and content models (annotations aside);
* the same verdict on every reference sample, and on HMRC's sample with one thing changed at a
  time (most of the changes break it on purpose).

The one difference from our EU edition (xsd/eu/v1.0): ``MessageType_EnumType`` also takes "DAC7",
as the OECD edition does (checked by ``test_the_one_difference_from_the_eu_edition``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from resources import marks, require_file, require_module, sample_name, vendored
from resources import sample_files as reference_samples
from xsd_support import Mutations, canonical, child_elements, enumerations, named, xs

REPO_ROOT = Path(__file__).resolve().parents[2]
OUR_XSD_DIR = REPO_ROOT / "xsd" / "gb" / "v1.0"
EU_XSD_DIR = REPO_ROOT / "xsd" / "eu" / "v1.0"
OFFICIAL_XSD_DIR = vendored("xsd", "oecd-dpi-v1.0__hmrc-copy")
SCHEMA_FILES = ("DPIXML_v1.0.xsd", "isodpitypes_v1.0.xsd", "oecddpitypes_v1.0.xsd")
HMRC_SAMPLE = vendored("samples", "uk-hmrc-test-resources", "SubmissionSample.xml")

require_module(*(OFFICIAL_XSD_DIR / name for name in SCHEMA_FILES), HMRC_SAMPLE)

DPI_NS = "urn:oecd:ties:dpi:v1"
NS = {"dpi": DPI_NS, "stf": "urn:oecd:ties:dpistf:v1"}
ROOT_TAG = f"{{{DPI_NS}}}DPI_OECD"
m = Mutations(NS)


@cache
def schema(directory: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(directory / "DPIXML_v1.0.xsd")))


def verdicts(doc: etree._ElementTree) -> tuple[bool, bool, str]:
    ours, official = schema(OUR_XSD_DIR), schema(OFFICIAL_XSD_DIR)
    a, b = ours.validate(doc), official.validate(doc)
    return a, b, f"ours: {list(ours.error_log)[:3]}\nofficial: {list(official.error_log)[:3]}"


def message_of(path: Path) -> etree._ElementTree:
    """The DPI_OECD message of a sample (an envelope unwrapped)."""
    root = etree.parse(str(path)).getroot()
    inner = root if root.tag == ROOT_TAG else next(root.iter(ROOT_TAG), root)
    return etree.ElementTree(etree.fromstring(etree.tostring(inner)))


SAMPLES = reference_samples()


@pytest.mark.parametrize("path", [pytest.param(p, marks=marks(p), id=sample_name(p)) for p in SAMPLES])
def test_every_sample_gets_the_same_verdict(path: Path) -> None:
    require_file(path)
    ours, official, errors = verdicts(message_of(path))
    assert ours == official, f"{sample_name(path)}: the schemas disagree\n{errors}"
    if sample_name(path).startswith("uk-hmrc-test-resources/"):
        assert ours, errors  # HMRC's own samples are valid


VARIANTS: list[tuple[str, Callable[[etree._ElementTree], None], bool]] = [
    ("as-is", lambda t: None, True),
    ("message-type-DAC7", m.set_text("//dpi:MessageType", "DAC7"), True),  # OECD edition only
    ("message-type-other", m.set_text("//dpi:MessageType", "CRS"), False),
    ("no-message-spec", m.remove("//dpi:MessageSpec"), False),
    ("no-sending-entity-in", m.remove("//dpi:SendingEntityIN"), True),  # optional by schema; HMRC refuses it
    ("reporting-period-not-a-date", m.set_text("//dpi:ReportingPeriod", "2024"), False),
    ("message-type-indic-other", m.set_text("//dpi:MessageTypeIndic", "DPI404"), False),
    ("transmitting-country-UK", m.set_text("//dpi:TransmittingCountry", "UK"), False),
    ("doc-type-indic-OECD13", m.set_text("(//stf:DocTypeIndic)[1]", "OECD13"), True),
    ("doc-type-indic-OECD4", m.set_text("(//stf:DocTypeIndic)[1]", "OECD4"), False),
    ("version-too-long", m.set_attr("/dpi:DPI_OECD", "version", "12345678901"), False),
    ("unknown-element", m.rename("//dpi:MessageSpec/dpi:MessageType", "MessageKind"), False),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_hmrcs_sample_changed_one_thing_at_a_time(
    name: str, mutate: Callable[[etree._ElementTree], None], expected: bool
) -> None:
    tree = message_of(HMRC_SAMPLE)
    mutate(tree)
    ours, official, errors = verdicts(tree)
    assert ours == official == expected, f"{name}\n{errors}"


# --------------------------------------------------------------------------- structure


@cache
def schema_set(directory: Path) -> dict[str, etree._Element]:
    return {name: etree.parse(str(directory / name)).getroot() for name in SCHEMA_FILES}


def test_the_same_files_namespaces_and_imports() -> None:
    for name in SCHEMA_FILES:
        ours, official = schema_set(OUR_XSD_DIR)[name], schema_set(OFFICIAL_XSD_DIR)[name]
        for attr in ("targetNamespace", "elementFormDefault", "attributeFormDefault"):
            assert ours.get(attr) == official.get(attr), (name, attr)
        assert {(i.get("namespace"), i.get("schemaLocation")) for i in ours.findall(xs("import"))} == {
            (i.get("namespace"), i.get("schemaLocation")) for i in official.findall(xs("import"))
        }, name


@pytest.mark.parametrize("kind", ["simpleType", "complexType", "element", "attribute", "group", "attributeGroup"])
def test_the_same_components_with_the_same_structure(kind: str) -> None:
    ours, official = named(schema_set(OUR_XSD_DIR), kind), named(schema_set(OFFICIAL_XSD_DIR), kind)
    assert set(ours) == set(official), kind
    for component, definition in official.items():
        if kind == "complexType":
            assert child_elements(ours[component]) == child_elements(definition), component
        assert canonical(ours[component]) == canonical(definition), component


def test_the_same_code_lists() -> None:
    ours, official = enumerations(schema_set(OUR_XSD_DIR)), enumerations(schema_set(OFFICIAL_XSD_DIR))
    assert ours == official
    assert len(official) >= 12


def test_the_one_difference_from_the_eu_edition() -> None:
    ours, eu = enumerations(schema_set(OUR_XSD_DIR)), enumerations(schema_set(EU_XSD_DIR))
    message_type = f"{{{DPI_NS}}}MessageType_EnumType"
    assert ours[message_type] - eu[message_type] == {"DAC7"}
    assert {k: v for k, v in ours.items() if k != message_type} == {k: v for k, v in eu.items() if k != message_type}
    for kind in ("complexType", "simpleType", "element"):
        gb, eu_named = named(schema_set(OUR_XSD_DIR), kind), named(schema_set(EU_XSD_DIR), kind)
        assert {k: canonical(v) for k, v in gb.items() if k != message_type} == {
            k: canonical(v) for k, v in eu_named.items() if k != message_type
        }, kind


def test_our_files_carry_the_project_header_only() -> None:
    header = "DPI schema v1.0, OECD edition as HMRC publishes it, written for this project from the published"
    for name in SCHEMA_FILES:
        text = (OUR_XSD_DIR / name).read_text(encoding="utf-8")
        assert header in text, name
        for banned in ("XMLSpy", "altova", "/home/", "C:\\", "Parker Hart"):
            assert banned not in text, (name, banned)
