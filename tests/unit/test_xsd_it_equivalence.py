"""Our Agenzia delle Entrate schemas (xsd/it) must behave exactly like the reference ones.

Layout of an Italian DAC7 filing (every sequence order-sensitive, every element namespace-qualified)::

    tm:Messaggio                       root; exactly one Intestazione, then exactly one Contenuto
      tm:Intestazione
        tm:CodiceFiscaleFornitore      required; pattern [0-9]{11}|[A-Z0-9]{16}: 11 digits (legal person) or
                                       16 upper-case letters/digits (natural person).  Shape only - the check
                                       character is not verified by the schema (that is business check E0020);
                                       no surrounding blanks, no lower case
        tm:SpazioServizioTelematico    0..1, any xs:string, may be empty (<tm:SpazioServizioTelematico/>)
      tm:Contenuto @CodiceFornitura    attribute OPTIONAL for the schema, pattern [A-Z0-9]{5}; the value for DAC7
                                       is "DPI23" (checker plugin.xml), but the schema accepts any 5-character
                                       code ("00000" in the XMLSpy sample).  No other attribute allowed
        dpitel:Fornitura               exactly one member of the substitution group of the abstract tm:Fornitura;
                                       tm:Fornitura itself cannot appear
          dpi:DPI_OECD                 exactly one; DPI schema v1.09 = EU DG TAXUD edition v1.0 (MessageType
                                       only "DPI"); @version is free text of 1-10 characters ("1.09", "1.2" ...)

Namespaces - note the envelope's has NO "urn:" prefix while the supply's has one:

    tm      www.agenziaentrate.gov.it:specificheTecniche:telent:v1
    dpitel  urn:www.agenziaentrate.gov.it:specificheTecniche:dpitel
    dpi     urn:oecd:ties:dpi:v1            stf  urn:oecd:ties:dpistf:v1

Minimal valid envelope (values shaped to the Italian business checks: MessageRefId <TT><YYYY><IT><UUID v4>
(E0130), DocRefId <IT><YYYY><UUID v4> (E0260), Timestamp YYYY-MM-DDThh:mm:ss[.nnn] (E0160), Transmitting and
ReceivingCountry IT (E0110/E0120), an Italian codice fiscale as operator TIN (E0050)) - see BASE_ENVELOPE::

    <tm:Messaggio xmlns:tm="www.agenziaentrate.gov.it:specificheTecniche:telent:v1"
                  xmlns:dpitel="urn:www.agenziaentrate.gov.it:specificheTecniche:dpitel"
                  xmlns:dpi="urn:oecd:ties:dpi:v1" xmlns:stf="urn:oecd:ties:dpistf:v1">
     <tm:Intestazione><tm:CodiceFiscaleFornitore>12345670017</tm:CodiceFiscaleFornitore></tm:Intestazione>
     <tm:Contenuto CodiceFornitura="DPI23">
      <dpitel:Fornitura>
       <dpi:DPI_OECD version="1.09"> MessageSpec + DPIBody as for the EU edition </dpi:DPI_OECD>
      </dpitel:Fornitura>
     </tm:Contenuto>
    </tm:Messaggio>

Wiring: the reference validates strictly, no lax wildcard - fornituraDPIT_v1.0.0.xsd imports the envelope
(telematico_v1.xsd) and the DPI schema (../DAC7/DPIXML_v1.09.xsd) and declares dpitel:Fornitura with
``<xs:element ref="dpi:DPI_OECD"/>``.  So fornituraDPIT_v1.0.0.xsd is the one main XSD of a filing (our copy:
xsd/it/telematico/fornituraDPIT_v1.0.0.xsd; no extra driver is needed).  Because every imported global element
may be a root, that schema also accepts a bare dpi:DPI_OECD or a bare dpitel:Fornitura document: it does not
enforce tm:Messaggio as the root - a caller has to check the root element itself.

DPI schema: the reference DPIXML_v1.09.xsd is structurally identical to the EU edition DPIXML_v1.0.xsd (only
the schema's version attribute, "1.09", and one annotation differ) and imports the unchanged v1.0 type files
isodpitypes_v1.0.xsd and oecddpitypes_v1.0.xsd.  Ours, xsd/it/dpi-v1.09/DPIXML_v1.09.xsd, therefore includes our
EU edition (xsd/eu/v1.0) instead of repeating it; test_reference_v109_equals_eu_edition backs this.

File hygiene checks of the checker (config/description.properties codes, config/configuration.properties
switches; the code-to-switch pairing is by meaning - the checker classes are not stored):

    code   check (description.properties, Italian text translated)      switch dac7.controllo.*      default
    C0000  file contains a Byte Order Mark                                bom                          on
    C0001  file is not correctly encoded in UTF-8                         utf8                         on
    C0002  file contains comments                                         comments                     OFF
    C0003  file contains characters that are not allowed                  specialchars                 OFF
    C0004  file lacks a predefined character entity (bare &)              ampersand                    on
    C0005  file contains SQL-injection character sequences                sqlInjection (+ sequences)   on
    C0006  file is not correctly declared as UTF-8 (XML declaration)      characterEncodingScheme      on
    C0007  file contains a misspelled character entity                    mispelled.character.entity   OFF
    C0008  file contains Unicode control characters                       unicode.control.character    on

``sequences`` (on) has no code of its own.  Other settings: semantico=true (business checks E0020..E9040, W0010..
W0030), message.receivingcountry=IT, level=COMMON, versione=010900, data=31072026; ``codfornitura`` is
commented out.  Schema errors are reported as E5007 (telematic envelope) and S0001 (DAC7 message).

The Agenzia delle Entrate reference files and the Italian samples stay outside the repository (their terms do
not allow redistribution, see tests/reference/README.md): they lie beside the checkout in ../shared/reference.
Without them the module is skipped, or fails in CI (marker outside_reference).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from resources import (
    OUTSIDE_FOLDERS,
    outside,
    outside_reference,
    require_file,
    require_module,
    sample,
    sample_files,
    sample_name,
    vendored,
)
from xsd_support import Mutations, canonical, resolve
from xsd_support import child_particles as child_elements

pytestmark = outside_reference

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = outside("xsd", "it-ade-sogei__client-dac7-jar")
EU_REFERENCE_DIR = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0")
SAMPLES_DIR = outside("samples")
OUR_DIR = REPO_ROOT / "xsd" / "it"

MAIN = "telematico/fornituraDPIT_v1.0.0.xsd"
ENVELOPE = "telematico/telematico_v1.xsd"
OUR_DPI = OUR_DIR / "dpi-v1.09" / "DPIXML_v1.09.xsd"
REFERENCE_DPI = REFERENCE_DIR / "xsd" / "DAC7" / "DPIXML_v1.09.xsd"
OUR_FILES = (OUR_DIR / MAIN, OUR_DIR / ENVELOPE, OUR_DPI)

require_module(
    *(
        outside(folder, name)
        for folder in ("xsd/it-ade-sogei__client-dac7-jar", "samples/it-ade-sogei__dac7-be-test")
        for name in OUTSIDE_FOLDERS[folder]
    )
)

XS = "http://www.w3.org/2001/XMLSchema"
TM_NS = "www.agenziaentrate.gov.it:specificheTecniche:telent:v1"
DPITEL_NS = "urn:www.agenziaentrate.gov.it:specificheTecniche:dpitel"
DPI_NS = "urn:oecd:ties:dpi:v1"
STF_NS = "urn:oecd:ties:dpistf:v1"
NS = {"tm": TM_NS, "dpitel": DPITEL_NS, "dpi": DPI_NS, "stf": STF_NS}
MESSAGGIO = f"{{{TM_NS}}}Messaggio"
DPI_ROOT = f"{{{DPI_NS}}}DPI_OECD"
KINDS = ("simpleType", "complexType", "element", "attribute", "group", "attributeGroup")


def _x(local: str) -> str:
    return f"{{{XS}}}{local}"


def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


@cache
def envelope_schemas() -> dict[str, etree.XMLSchema]:
    return {"ours": _schema(OUR_DIR / MAIN), "reference": _schema(REFERENCE_DIR / "xsd" / MAIN)}


@cache
def dpi_schemas() -> dict[str, etree.XMLSchema]:
    return {"ours": _schema(OUR_DPI), "reference": _schema(REFERENCE_DPI)}


def verdicts(schemas: dict[str, etree.XMLSchema], doc: etree._ElementTree) -> tuple[dict[str, bool], str]:
    """Validity of one document per schema, plus the first errors of each."""
    results, errors = {}, []
    for name, schema in schemas.items():
        results[name] = schema.validate(doc)
        errors.append(f"{name}: {[str(e) for e in list(schema.error_log)[:3]]}")
    return results, "\n".join(errors)


# --------------------------------------------------------------------------- samples

IT_SAMPLES = "it-ade-sogei__dac7-be-test"
ENVELOPE_SAMPLES = {f"{IT_SAMPLES}/TDAC7_TEST0112_INI-MSG1-5.xml", f"{IT_SAMPLES}/corretto.xml"}
BARE_IT_SAMPLES = {
    f"{IT_SAMPLES}/DPIXML_v1.09_2.xml",
    f"{IT_SAMPLES}/Valid-Send-InitialMsg-AssumedPO-010.xml",
    f"{IT_SAMPLES}/initialMessage_Prova.xml",
}
SAMPLES = sample_files()
SAMPLE_IDS = [sample_name(p) for p in SAMPLES]


def test_samples_found() -> None:
    found = set(SAMPLE_IDS)
    assert found >= ENVELOPE_SAMPLES, f"envelope samples missing under {SAMPLES_DIR}"
    assert found >= BARE_IT_SAMPLES, f"bare Italian DPI samples missing under {SAMPLES_DIR}"
    roots = {rel for rel, p in zip(SAMPLE_IDS, SAMPLES, strict=True) if etree.parse(str(p)).getroot().tag == MESSAGGIO}
    assert roots == ENVELOPE_SAMPLES, "the samples carrying the telematic envelope changed"


@pytest.mark.parametrize("path", SAMPLES, ids=SAMPLE_IDS)
def test_sample_same_verdict(path: Path) -> None:
    """Each sample against the main (envelope) schema and the DPI schema: ours and the reference agree."""
    rel = sample_name(path)
    doc = etree.parse(str(path))
    env, env_errors = verdicts(envelope_schemas(), doc)
    dpi, dpi_errors = verdicts(dpi_schemas(), doc)
    assert env["ours"] == env["reference"], f"{rel}: envelope schemas disagree\n{env_errors}"
    assert dpi["ours"] == dpi["reference"], f"{rel}: DPI schemas disagree\n{dpi_errors}"
    if rel in ENVELOPE_SAMPLES:
        assert env["reference"], f"{rel}: expected a valid envelope\n{env_errors}"
        assert not dpi["reference"], f"{rel}: the DPI schema alone does not declare tm:Messaggio"
    elif rel in BARE_IT_SAMPLES:
        assert dpi["reference"], f"{rel}: expected a valid DPI message\n{dpi_errors}"
        assert env["reference"], f"{rel}: the main schema also accepts a bare DPI_OECD root"
    elif rel.startswith("fr-"):
        assert not env["reference"] and not dpi["reference"], f"{rel}: French namespaces must not validate"


@pytest.mark.parametrize("rel", sorted(ENVELOPE_SAMPLES))
def test_envelope_sample_payload_valid_against_dpi_schema(rel: str) -> None:
    """The DPI_OECD inside each envelope sample, taken out, is valid against both DPI schemas."""
    inner = next(etree.parse(str(sample(rel))).getroot().iter(DPI_ROOT))
    doc = etree.ElementTree(etree.fromstring(etree.tostring(inner)))
    results, errors = verdicts(dpi_schemas(), doc)
    assert results == {"ours": True, "reference": True}, errors


# --------------------------------------------------------------------------- valid base envelope

BASE_ENVELOPE = f"""<?xml version="1.0" encoding="UTF-8"?>
<tm:Messaggio xmlns:tm="{TM_NS}" xmlns:dpitel="{DPITEL_NS}" xmlns:dpi="{DPI_NS}" xmlns:stf="{STF_NS}">
 <tm:Intestazione>
  <tm:CodiceFiscaleFornitore>12345670017</tm:CodiceFiscaleFornitore>
 </tm:Intestazione>
 <tm:Contenuto CodiceFornitura="DPI23">
  <dpitel:Fornitura>
   <dpi:DPI_OECD version="1.09">
    <dpi:MessageSpec>
     <dpi:SendingEntityIN>12345670017</dpi:SendingEntityIN>
     <dpi:TransmittingCountry>IT</dpi:TransmittingCountry>
     <dpi:ReceivingCountry>IT</dpi:ReceivingCountry>
     <dpi:MessageType>DPI</dpi:MessageType>
     <dpi:MessageRefId>IT2024IT0f8fad5b-d9cb-469f-a165-70867728950e</dpi:MessageRefId>
     <dpi:MessageTypeIndic>DPI403</dpi:MessageTypeIndic>
     <dpi:ReportingPeriod>2024-12-31</dpi:ReportingPeriod>
     <dpi:Timestamp>2025-01-15T10:00:00</dpi:Timestamp>
    </dpi:MessageSpec>
    <dpi:DPIBody>
     <dpi:PlatformOperator>
      <dpi:ResCountryCode>IT</dpi:ResCountryCode>
      <dpi:TIN issuedBy="IT">12345670017</dpi:TIN>
      <dpi:Name>Piattaforma Esempio S.r.l.</dpi:Name>
      <dpi:Address legalAddressType="OECD304">
       <dpi:CountryCode>IT</dpi:CountryCode>
       <dpi:AddressFree>Via Roma 1, 00100 Roma</dpi:AddressFree>
      </dpi:Address>
      <dpi:DocSpec>
       <stf:DocTypeIndic>OECD1</stf:DocTypeIndic>
       <stf:DocRefId>IT20247c9e6679-7425-40de-944b-e07fc1f90ae7</stf:DocRefId>
      </dpi:DocSpec>
     </dpi:PlatformOperator>
    </dpi:DPIBody>
   </dpi:DPI_OECD>
  </dpitel:Fornitura>
 </tm:Contenuto>
</tm:Messaggio>
"""


def base_envelope() -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(BASE_ENVELOPE.encode("utf-8")))


def test_base_envelope_is_valid_against_both() -> None:
    results, errors = verdicts(envelope_schemas(), base_envelope())
    assert all(results.values()), f"base envelope must be valid everywhere: {results}\n{errors}"


def test_base_envelope_matches_docstring_layout() -> None:
    """The layout documented for the profile author is the one tested here."""
    for needle in ('CodiceFornitura="DPI23"', "12345670017", 'version="1.09"', TM_NS, DPITEL_NS):
        assert needle in (__doc__ or "") and needle in BASE_ENVELOPE, needle


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


def _fragment(fragment: str) -> etree._Element:
    ns = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items())
    return etree.fromstring(f"<w {ns}>{fragment}</w>")


def replace_children(xpath: str, fragment: str) -> Mutator:
    """Replace the content of an element by a fragment (text and/or elements)."""

    def run(tree: etree._ElementTree) -> None:
        el = _one(tree, xpath)
        wrapper = _fragment(fragment)
        for child in list(el):
            el.remove(child)
        el.text = wrapper.text
        for child in wrapper:
            el.append(child)

    return run


def set_namespace(xpath: str, namespace: str | None, *, subtree: bool = False) -> Mutator:
    """Move an element (or, with subtree, every element of its subtree in the same namespace) elsewhere."""

    def run(tree: etree._ElementTree) -> None:
        el = _one(tree, xpath)
        old = etree.QName(el).namespace
        for node in el.iter() if subtree else [el]:
            if isinstance(node.tag, str) and etree.QName(node).namespace == old:
                local = etree.QName(node).localname
                node.tag = f"{{{namespace}}}{local}" if namespace else local

    return run


def reroot(xpath: str) -> Mutator:
    """Make a descendant the document root."""

    def run(tree: etree._ElementTree) -> None:
        tree._setroot(copy.deepcopy(_one(tree, xpath)))

    return run


ROOT = "/tm:Messaggio"
HEAD = "//tm:Intestazione"
CF = "//tm:CodiceFiscaleFornitore"
BODY = "//tm:Contenuto"
SUPPLY = "//dpitel:Fornitura"
DPI = "//dpi:DPI_OECD"
SPAZIO = "<tm:SpazioServizioTelematico>{}</tm:SpazioServizioTelematico>"

VALID, INVALID = True, False

VARIANTS = [
    # --- envelope: missing required parts
    pytest.param(remove(HEAD), INVALID, id="missing-Intestazione"),
    pytest.param(remove(BODY), INVALID, id="missing-Contenuto"),
    pytest.param(remove(CF), INVALID, id="missing-CodiceFiscaleFornitore"),
    pytest.param(remove(SUPPLY), INVALID, id="Contenuto-without-Fornitura"),
    pytest.param(remove(DPI), INVALID, id="Fornitura-without-DPI_OECD"),
    # --- CodiceFiscaleFornitore: [0-9]{11}|[A-Z0-9]{16}
    pytest.param(set_text(CF, "RSSMRA80A01H501U"), VALID, id="CF-16-person"),
    pytest.param(set_text(CF, "12345670018"), VALID, id="CF-wrong-check-digit-not-schema"),
    pytest.param(set_text(CF, "AAAAAAAAAAAAAAAA"), VALID, id="CF-16-shape-only"),
    pytest.param(set_text(CF, "rssmra80a01h501u"), INVALID, id="CF-lowercase"),
    pytest.param(set_text(CF, "1234567001"), INVALID, id="CF-10-digits"),
    pytest.param(set_text(CF, "123456700170"), INVALID, id="CF-12-digits"),
    pytest.param(set_text(CF, "1234567001A"), INVALID, id="CF-11-with-letter"),
    pytest.param(set_text(CF, "RSSMRA80A01H501"), INVALID, id="CF-15"),
    pytest.param(set_text(CF, "RSSMRA80A01H501UX"), INVALID, id="CF-17"),
    pytest.param(set_text(CF, " 12345670017 "), INVALID, id="CF-blanks"),
    pytest.param(set_text(CF, "IT12345670017"), INVALID, id="CF-with-IT-prefix"),
    pytest.param(set_text(CF, None), INVALID, id="CF-empty"),
    # --- SpazioServizioTelematico: optional free text
    pytest.param(insert_after(CF, SPAZIO.format("")), VALID, id="Spazio-empty"),
    pytest.param(insert_after(CF, SPAZIO.format("any text 123")), VALID, id="Spazio-text"),
    pytest.param(
        chain(insert_after(CF, SPAZIO.format("")), duplicate("//tm:SpazioServizioTelematico")),
        INVALID,
        id="two-Spazio",
    ),
    pytest.param(chain(insert_after(CF, SPAZIO.format("")), swap_with_next(CF)), INVALID, id="Spazio-before-CF"),
    pytest.param(
        insert_after(
            HEAD,
            "<tm:Intestazione><tm:CodiceFiscaleFornitore>12345670017</tm:CodiceFiscaleFornitore></tm:Intestazione>",
        ),
        INVALID,
        id="two-Intestazione",
    ),
    # --- CodiceFornitura: optional, [A-Z0-9]{5}
    pytest.param(set_attr(BODY, "CodiceFornitura", None), VALID, id="CodiceFornitura-absent-schema-allows"),
    pytest.param(set_attr(BODY, "CodiceFornitura", "00000"), VALID, id="CodiceFornitura-00000"),
    pytest.param(set_attr(BODY, "CodiceFornitura", "DPI24"), VALID, id="CodiceFornitura-other-code-schema-allows"),
    pytest.param(set_attr(BODY, "CodiceFornitura", "dpi23"), INVALID, id="CodiceFornitura-lowercase"),
    pytest.param(set_attr(BODY, "CodiceFornitura", "DPI2"), INVALID, id="CodiceFornitura-4"),
    pytest.param(set_attr(BODY, "CodiceFornitura", "DPI233"), INVALID, id="CodiceFornitura-6"),
    pytest.param(set_attr(BODY, "CodiceFornitura", ""), INVALID, id="CodiceFornitura-empty"),
    pytest.param(set_attr(BODY, "CodiceFornitura", "DPI-3"), INVALID, id="CodiceFornitura-hyphen"),
    pytest.param(set_attr(BODY, "Versione", "1"), INVALID, id="Contenuto-unknown-attribute"),
    pytest.param(set_attr(ROOT, "versione", "1"), INVALID, id="Messaggio-unknown-attribute"),
    pytest.param(
        set_attr(ROOT, "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation", f"{DPITEL_NS} x.xsd"),
        VALID,
        id="xsi-schemaLocation",
    ),
    # --- order and repetitions
    pytest.param(duplicate(BODY), INVALID, id="two-Contenuto"),
    pytest.param(swap_with_next(HEAD), INVALID, id="Contenuto-before-Intestazione"),
    pytest.param(duplicate(SUPPLY), INVALID, id="two-Fornitura"),
    pytest.param(duplicate(DPI), INVALID, id="two-DPI_OECD"),
    pytest.param(insert_after(BODY, "<tm:Allegato/>"), INVALID, id="unknown-element-after-Contenuto"),
    pytest.param(insert_after(CF, "<tm:Note>x</tm:Note>"), INVALID, id="unknown-element-in-Intestazione"),
    pytest.param(set_text(SUPPLY, "text"), INVALID, id="text-in-Fornitura"),
    pytest.param(insert_after(DPI, "<!-- note -->"), VALID, id="comment-in-Fornitura-schema-allows"),
    # --- substitution group and namespaces
    pytest.param(set_namespace(SUPPLY, TM_NS), INVALID, id="abstract-tm-Fornitura-used"),
    pytest.param(
        set_namespace(SUPPLY, "www.agenziaentrate.gov.it:specificheTecniche:dpitel"), INVALID, id="dpitel-without-urn"
    ),
    pytest.param(set_namespace(ROOT, f"urn:{TM_NS}", subtree=True), INVALID, id="tm-with-urn"),
    pytest.param(set_namespace(ROOT, None, subtree=True), INVALID, id="envelope-without-namespace"),
    pytest.param(set_namespace(HEAD, None, subtree=True), INVALID, id="Intestazione-unqualified"),
    pytest.param(set_namespace(BODY, DPITEL_NS), INVALID, id="Contenuto-in-dpitel-namespace"),
    pytest.param(set_namespace(ROOT, DPITEL_NS), INVALID, id="Messaggio-in-dpitel-namespace"),
    pytest.param(set_namespace(DPI, "urn:oecd:ties:dpi", subtree=True), INVALID, id="DPI-french-namespace"),
    pytest.param(set_namespace(DPI, "urn:oecd:ties:dpi:v2", subtree=True), INVALID, id="DPI-namespace-v2"),
    # --- the DPI message inside is validated strictly
    pytest.param(remove("//dpi:MessageRefId"), INVALID, id="DPI-missing-MessageRefId"),
    pytest.param(remove("//dpi:MessageSpec"), INVALID, id="DPI-missing-MessageSpec"),
    pytest.param(set_text("//dpi:MessageType", "DAC7"), INVALID, id="DPI-MessageType-DAC7-OECD-only"),
    pytest.param(set_text("//dpi:MessageTypeIndic", "DPI404"), INVALID, id="DPI-MessageTypeIndic-DPI404"),
    pytest.param(set_text("//dpi:ReceivingCountry", "XY"), INVALID, id="DPI-ReceivingCountry-XY"),
    pytest.param(set_text("//dpi:Timestamp", "2025-01-15"), INVALID, id="DPI-Timestamp-date-only"),
    pytest.param(set_text("//stf:DocTypeIndic", "OECD4"), INVALID, id="DPI-DocTypeIndic-OECD4"),
    pytest.param(remove("//dpi:PlatformOperator/dpi:TIN"), INVALID, id="DPI-operator-without-TIN"),
    pytest.param(insert_after("//dpi:Contact|//dpi:MessageType", "<dpi:Foo/>"), INVALID, id="DPI-unknown-element"),
    pytest.param(set_attr(DPI, "version", "1.09.00.001"), INVALID, id="DPI-version-11-chars"),
    pytest.param(set_attr(DPI, "version", "1.2"), VALID, id="DPI-version-free-text"),
    pytest.param(set_attr(DPI, "version", None), VALID, id="DPI-version-optional"),
    pytest.param(remove("//dpi:DPIBody"), VALID, id="DPI-without-DPIBody-schema-allows"),
    pytest.param(set_text("//dpi:MessageTypeIndic", "DPI401"), VALID, id="DPI-DPI401"),
    # --- what the main schema accepts as root
    pytest.param(reroot(DPI), VALID, id="root-bare-DPI_OECD-accepted"),
    pytest.param(reroot(SUPPLY), VALID, id="root-bare-Fornitura-accepted"),
    pytest.param(reroot(BODY), INVALID, id="root-Contenuto-not-global"),
]


@pytest.mark.parametrize(("mutate", "expected"), VARIANTS)
def test_variant_same_and_expected_verdict(mutate: Mutator, expected: bool) -> None:
    doc = base_envelope()
    mutate(doc)
    results, errors = verdicts(envelope_schemas(), doc)
    assert len(set(results.values())) == 1, f"schemas disagree: {results}\n{errors}"
    assert results["reference"] == expected, f"expected valid={expected}\n{errors}"


def test_enough_invalid_variants() -> None:
    assert sum(1 for p in VARIANTS if p.values[1] is INVALID) >= 20


# --------------------------------------------------------------------------- structure


def _parse(path: Path) -> etree._Element:
    return etree.parse(str(path)).getroot()


def schema_documents(main: Path) -> dict[Path, etree._Element]:
    """Every schema document reachable from main through xs:import / xs:include, keyed by resolved path."""
    found: dict[Path, etree._Element] = {}
    todo = [main.resolve()]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        root = found[path] = _parse(path)
        for ref in root.findall(_x("import")) + root.findall(_x("include")):
            todo.append((path.parent / ref.get("schemaLocation")).resolve())
    return found


@cache
def our_docs() -> dict[Path, etree._Element]:
    return schema_documents(OUR_DIR / MAIN)


@cache
def reference_docs() -> dict[Path, etree._Element]:
    return schema_documents(REFERENCE_DIR / "xsd" / MAIN)


def _named(roots: list[etree._Element], kind: str) -> dict[str, etree._Element]:
    out: dict[str, etree._Element] = {}
    for root in roots:
        tns = root.get("targetNamespace")
        for el in root.findall(_x(kind)):
            key = f"{{{tns}}}{el.get('name')}"
            assert key not in out, f"{key} defined twice"
            out[key] = el
    return out


def ours(kind: str) -> dict[str, etree._Element]:
    return _named(list(our_docs().values()), kind)


def reference(kind: str) -> dict[str, etree._Element]:
    return _named(list(reference_docs().values()), kind)


def _enumerations(named: dict[str, etree._Element]) -> dict[str, set[str]]:
    out = {}
    for name, st in named.items():
        values = {e.get("value") for e in st.iter(_x("enumeration"))}
        if values:
            out[name] = values
    return out


def _imports(root: etree._Element) -> set[str]:
    return {i.get("namespace") for i in root.findall(_x("import"))}


@pytest.mark.parametrize("name", [MAIN, ENVELOPE])
def test_envelope_files_namespaces_and_imports(name: str) -> None:
    mine, ref = _parse(OUR_DIR / name), _parse(REFERENCE_DIR / "xsd" / name)
    for attr in ("targetNamespace", "elementFormDefault", "attributeFormDefault", "version"):
        assert mine.get(attr) == ref.get(attr), (name, attr)
    assert _imports(mine) == _imports(ref), name
    assert not mine.findall(_x("include")), name


def test_dpi_file_version_and_namespace() -> None:
    mine, ref = _parse(OUR_DPI), _parse(REFERENCE_DPI)
    for attr in ("targetNamespace", "elementFormDefault", "attributeFormDefault", "version"):
        assert mine.get(attr) == ref.get(attr), attr
    assert ref.get("version") == "1.09"
    includes = [i.get("schemaLocation") for i in mine.findall(_x("include"))]
    assert includes == ["../../eu/v1.0/DPIXML_v1.0.xsd"], "our v1.09 reuses our EU edition"


def test_main_schema_reaches_the_same_namespaces() -> None:
    def namespaces(docs: dict[Path, etree._Element]) -> set[str]:
        return {root.get("targetNamespace") for root in docs.values()}

    assert namespaces(our_docs()) == namespaces(reference_docs())
    assert {TM_NS, DPITEL_NS, DPI_NS, STF_NS, "urn:oecd:ties:isodpitypes:v1"} == namespaces(reference_docs())


def test_same_named_components() -> None:
    for kind in KINDS:
        assert set(ours(kind)) == set(reference(kind)), kind


def test_payload_wired_strictly() -> None:
    """Both: dpitel:Fornitura substitutes tm:Fornitura and holds exactly one dpi:DPI_OECD - no wildcard."""
    for named in (ours("element"), reference("element")):
        supply = named[f"{{{DPITEL_NS}}}Fornitura"]
        assert resolve(supply, supply.get("substitutionGroup")) == f"{{{TM_NS}}}Fornitura"
        assert child_elements(supply) == [(None, DPI_ROOT, "1", "1")]
        assert not list(supply.iter(_x("any")))
        assert named[f"{{{TM_NS}}}Fornitura"].get("abstract") == "true"


REFERENCE_ELEMENTS = sorted(reference("element"))
REFERENCE_ENUMS = sorted(_enumerations(reference("simpleType")))
REFERENCE_SIMPLE = sorted(reference("simpleType"))
REFERENCE_COMPLEX = sorted(reference("complexType"))


@pytest.mark.parametrize("name", REFERENCE_ELEMENTS)
def test_global_element_equal(name: str) -> None:
    mine = ours("element")
    assert name in mine, f"{name} missing from our schema"
    assert canonical(mine[name]) == canonical(reference("element")[name])


def test_enumeration_types_found() -> None:
    assert set(_enumerations(ours("simpleType"))) == set(REFERENCE_ENUMS)
    assert len(REFERENCE_ENUMS) >= 12


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
    # Full check: compositors, types, facets, attributes, derivations.
    assert canonical(mine[name]) == canonical(ref)


def test_reference_v109_equals_eu_edition() -> None:
    """Why ours may reuse the EU edition: the reference v1.09 set equals the EU reference v1.0 set structurally."""
    eu_main = EU_REFERENCE_DIR / "DPIXML_v1.0.xsd"
    require_file(eu_main)
    it_roots = list(schema_documents(REFERENCE_DPI).values())
    eu_roots = list(schema_documents(eu_main).values())
    for kind in KINDS:
        it_named, eu_named = _named(it_roots, kind), _named(eu_roots, kind)
        assert set(it_named) == set(eu_named), kind
        for name, el in it_named.items():
            assert canonical(el) == canonical(eu_named[name]), (kind, name)
    assert (_parse(REFERENCE_DPI).get("version"), _parse(eu_main).get("version")) == ("1.09", "1.0")


def test_our_files_carry_project_header_only() -> None:
    headers = {
        OUR_DIR / MAIN: "Agenzia delle Entrate DAC7 supply (fornitura DPI) schema v1.0.0, "
        "written for this project from the published specification",
        OUR_DIR / ENVELOPE: "Agenzia delle Entrate telematic envelope schema v1, "
        "written for this project from the published specification",
        OUR_DPI: "DAC7 DPI schema v1.09, Agenzia delle Entrate edition, "
        "written for this project from the published specification",
    }
    reference_texts = {
        " ".join(d.text.split())
        for root in reference_docs().values()
        for d in root.iter(_x("documentation"))
        if d.text and len(d.text.split()) > 3
    }
    for path, header in headers.items():
        text = path.read_text(encoding="utf-8")
        assert header in text, path.name
        for banned in ("XMLSpy", "altova", "ARHS", "Sogei", "/home/", "C:\\", "Implementazione"):
            assert banned.lower() not in text.lower(), (path.name, banned)
        flat = " ".join(text.split())
        copied = [doc for doc in reference_texts if doc in flat]
        assert not copied, f"{path.name}: reference documentation copied verbatim: {copied}"


# --------------------------------------------------------------------------- checker configuration

# code -> (configuration.properties switch, enabled by default), as documented in the module docstring
HYGIENE_CHECKS = {
    "C0000": ("bom", True),
    "C0001": ("utf8", True),
    "C0002": ("comments", False),
    "C0003": ("specialchars", False),
    "C0004": ("ampersand", True),
    "C0005": ("sqlInjection", True),
    "C0006": ("characterEncodingScheme", True),
    "C0007": ("mispelled.character.entity", False),
    "C0008": ("unicode.control.character", True),
}


def _properties(path: Path) -> dict[str, str]:
    """Active key = value lines of a Java properties file (ISO-8859-1; comments skipped)."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_hygiene_checks_match_checker_configuration() -> None:
    descriptions = _properties(REFERENCE_DIR / "config" / "description.properties")
    settings = _properties(REFERENCE_DIR / "config" / "configuration.properties")
    assert sorted(c for c in descriptions if re.fullmatch(r"C\d{4}", c)) == sorted(HYGIENE_CHECKS)
    for code, (switch, enabled) in HYGIENE_CHECKS.items():
        assert settings[f"dac7.controllo.{switch}"] == str(enabled).lower(), (code, switch)
        assert f"{code}  " in (__doc__ or ""), code
    switches = {k.removeprefix("dac7.controllo.") for k in settings if k.startswith("dac7.controllo.")}
    mapped = {switch for switch, _ in HYGIENE_CHECKS.values()}
    assert switches - mapped == {"sequences", "semantico", "message.receivingcountry"}
    assert settings["dac7.controllo.sequences"] == "true"
    assert settings["dac7.controllo.message.receivingcountry"] == "IT"
    assert "dac7.controllo.codfornitura" not in settings


def test_checker_supply_code_is_dpi23() -> None:
    plugin = _parse(REFERENCE_DIR / "config" / "plugin.xml")
    controllo = next(plugin.iter("controllo"))
    assert (controllo.get("codiceFornitura"), controllo.get("versione")) == ("DPI23", "01.09.00")
    assert base_envelope().getroot().find("tm:Contenuto", NS).get("CodiceFornitura") == "DPI23"
