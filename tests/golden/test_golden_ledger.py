"""Golden files of the messages the filing ledger makes, per authority profile: a correction
(DPI402, OECD12; OECD2 for DE, which marks test files in its envelope), a deletion (DPI402,
OECD13 / OECD3) and, where the profile expects one, a nil report (DPI403).

One history per profile, each an operator filing in that profile's state (LT for the EU generic
edition) with two sellers resident there, with pinned run ids and timestamps, so that every byte
is stable: the first filing (not a golden: see test_golden.py), a rerun where one seller has one
more sale (corrections), a rerun where the other seller is gone (deletions), and the year
before, without sellers (nil reports for IT and HU, nothing for the others). Compared
canonically (C14N 2.0); regenerate only with ``pytest tests/golden --regenerate-golden`` and
review the diff: a changed golden file is a changed filing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from builders import Marketplace, write_config
from golden.test_golden import canonical
from lxml import etree
from resources import is_outside, marks, outside, require_file, vendored

from reporting.authorities import EU_GENERIC, profile_for
from reporting.authorities.base import AuthorityProfile
from reporting.checks.business import check_message
from reporting.checks.schema import schema_for
from reporting.pipeline import run

GOLDEN = Path(__file__).parent
EU_REFERENCE = vendored("xsd", "eu-dgtaxud-dac7-validation-plugin-1.1.0")
OFFICIAL = {
    "eu": EU_REFERENCE / "DPIXML_v1.0.xsd",
    "fr": vendored("xsd", "fr-dgfip-v1.6__adapted-by-backmarket", "DPIXML_v1.1-fr1.xsd"),
    "hu": outside("xsd", "hu-nav", "DPIXML_v1.0.xsd"),
    "it": outside("xsd", "it-ade-sogei__client-dac7-jar", "xsd", "telematico", "fornituraDPIT_v1.0.0.xsd"),
}
DIP_REFERENCE = vendored("xsd", "de-bzst-dip__xdev-client", "dip.xsd")
AS_OF = date(2026, 1, 31)
#: (run id, timestamp) of each run of the history, pinned
INITIAL = ("3f1e2d4c-5b6a-4798-8a1b-2c3d4e5f6071", datetime(2026, 1, 15, 6, 0, 0))
CORRECTION = ("4a2f3e5d-6c7b-48a9-9b2c-3d4e5f607182", datetime(2026, 2, 16, 6, 0, 0))
DELETION = ("5b304f6e-7d8c-49ba-8c3d-4e5f60718293", datetime(2026, 3, 17, 6, 0, 0))
NIL = ("6c415a7f-8e9d-4acb-9d4e-5f60718293a4", datetime(2026, 4, 18, 6, 0, 0))
#: the filing identifiers of each filing state
IDENTIFIERS = {
    "LT": "",
    "DE": '\n[authorities.DE]\nbzst_id = "BZST0012345678"\n',
    "FR": '\n[authorities.FR]\nsiren = "123456789"\n',
    "HU": '\n[authorities.HU]\ntax_number = "12345678-2-42"\n',
    "IT": '\n[authorities.IT]\ncodice_fiscale = "12345670017"\n',
}
#: profile (golden directory) -> the authority filed to, and the sellers resident there: an
#: individual selling goods (deleted in the third run) and an entity providing services
#: (corrected in the second)
PROFILES = {
    "eu": ("LT", {"tin": "39001010000", "first_name": "Ona", "last_name": "Petraite"}, "50123456789"),
    "de": ("DE", {"tin": "86095742719", "first_name": "Lena", "last_name": "Schmidt"}, "2181234567890"),
    "fr": ("FR", {"tin": "1234567890123", "first_name": "Jeanne", "last_name": "Martin"}, "52484162312345"),
    "hu": ("HU", {"tin": "8123456789", "first_name": "Anna", "last_name": "Kovacs"}, "12345678-2-42"),
    "it": ("IT", {"tin": "RSSMRA80A01H501U", "first_name": "Mario", "last_name": "Rossi"}, "12345670017"),
}
NIL_PROFILES = ("hu", "it")


def marketplace(code: str, *, extra_service: bool = False, without_goods: bool = False) -> Marketplace:
    """The two sellers resident in the filing state of ``code``."""
    m = Marketplace()
    country, individual, entity_tin = PROFILES[code]
    if not without_goods:
        m.seller(f"{country}-IND", country=country, **individual)
        m.sales(f"{country}-IND", 40, 100_00, fee_minor=10_00, start="2025-02-03 09:00:00")
    m.seller(
        f"{country}-ENT",
        seller_type="entity",
        country=country,
        tin=entity_tin,
        legal_name=f"Services {code.upper()} Ltd",
        business_registration_number=f"BRN-{country}-1",
    )
    m.sales(f"{country}-ENT", 2, 1500_00, activity="personal_services", fee_minor=150_00, start="2025-05-05 09:00:00")
    if extra_service:
        m.tx(f"{country}-ENT", "2025-11-03 10:00:00", 700_00, activity="personal_services", fee_minor=70_00)
    return m


@dataclass(frozen=True)
class History:
    """The files of each run, by kind and profile."""

    files: dict[tuple[str, str], Path]  # (kind, profile) -> published file
    authorities: dict[str, set[str]]  # kind -> authorities that got a file


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    files: dict[tuple[str, str], Path] = {}
    authorities: dict[str, set[str]] = {}
    for code, (country, _, _) in PROFILES.items():
        tmp = tmp_path_factory.mktemp(f"ledger-golden-{code}")
        cfg = write_config(tmp / "dac7.toml", filing_state=country, extra=IDENTIFIERS[country])
        for kind, market, (run_id, timestamp), year in (
            ("initial", marketplace(code), INITIAL, 2025),
            ("correction", marketplace(code, extra_service=True), CORRECTION, 2025),
            ("deletion", marketplace(code, extra_service=True, without_goods=True), DELETION, 2025),
            ("nil", Marketplace(), NIL, 2024),
        ):
            manifest = run(
                config_path=cfg,
                source_url=market.write(f"sqlite:///{tmp}/{kind}.db"),
                year=year,
                as_of=AS_OF,
                out_dir=tmp / kind,
                staging_root=tmp / "st",
                run_id=run_id,
                timestamp=timestamp,
                ledger_url=f"sqlite:///{tmp}/ledger.sqlite3",
                authorities=[country],  # a nil report goes only where it is asked for
            ).manifest
            authorities.setdefault(kind, set()).update(f["authority"] for f in manifest["files"])
            for f in manifest["files"]:
                assert f["authority"] == country
                files[(kind, code)] = tmp / kind / f["file"]
    return History(files, authorities)


def test_the_history_files_what_each_profile_expects(history: History) -> None:
    every = {country for country, _, _ in PROFILES.values()}
    assert history.authorities == {
        "initial": every,
        "correction": every,
        "deletion": every,
        "nil": {PROFILES[code][0] for code in NIL_PROFILES},
    }


CASES = [(code, kind) for code in PROFILES for kind in ("correction", "deletion")] + [
    (code, "nil") for code in NIL_PROFILES
]


@pytest.mark.parametrize(("code", "kind"), CASES)
def test_ledger_message_golden(history: History, code: str, kind: str, request: pytest.FixtureRequest) -> None:
    produced = history.files[(kind, code)]
    golden = GOLDEN / code / f"{kind}-test.xml"
    if request.config.getoption("--regenerate-golden"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(produced.read_bytes())
    assert golden.is_file(), f"{golden} is missing: run pytest tests/golden --regenerate-golden"
    assert canonical(produced) == canonical(golden)
    profile = _profile(code)
    doc = etree.parse(str(golden))
    schema = schema_for(profile.schema_resource)
    assert schema.validate(doc), schema.error_log
    # What the golden says, read back: the message type and each record's DocSpec.
    initial = etree.parse(str(history.files[("initial", code)]))
    assert doc.findtext(".//{*}MessageTypeIndic") == {"nil": "DPI403"}.get(kind, "DPI402")
    offset = 0 if code == "de" else 10
    specs = [(s.findtext("{*}DocTypeIndic"), s.findtext("{*}CorrDocRefId")) for s in doc.iter("{*}DocSpec")]
    operator = initial.findtext(".//{*}PlatformOperator/{*}DocSpec/{*}DocRefId")
    if kind == "nil":
        assert specs == [(f"OECD{offset + 1}", None)]  # the PlatformOperator alone
        return
    sellers = [s.findtext("{*}DocSpec/{*}DocRefId") for s in initial.iter("{*}ReportableSeller")]
    entity, individual = _by_type(initial, sellers)
    resend = doc.findtext(".//{*}PlatformOperator/{*}DocSpec/{*}DocRefId")
    assert (specs[0], resend) == ((f"OECD{offset}", None), operator)
    if kind == "correction":
        assert specs[1:] == [(f"OECD{offset + 2}", entity)]
    else:  # the entity's live version is the correction's now; the individual was never corrected
        assert specs[1:] == [(f"OECD{offset + 3}", individual)]


def _by_type(doc: etree._ElementTree, doc_ref_ids: list[str]) -> tuple[str, str]:
    """The DocRefIds of the entity seller and of the individual seller of a message."""
    found = {}
    for seller, ref in zip(doc.iter("{*}ReportableSeller"), doc_ref_ids, strict=True):
        found["entity" if seller.find(".//{*}EntitySeller") is not None else "individual"] = ref
    return found["entity"], found["individual"]


def _profile(code: str) -> AuthorityProfile:
    profile = EU_GENERIC if code == "eu" else profile_for(PROFILES[code][0])
    assert profile.code == code.upper()
    return profile


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> dict[str, etree.XMLSchema]:
    """The official schema of each profile, from tests/reference (HU and IT from ../shared beside
    the checkout, when present: a test of theirs requires them); for DE a driver that imports the
    DIP envelope and the EU DPI schema (the message inside is checked)."""
    require_file(*(p for p in (*OFFICIAL.values(), DIP_REFERENCE) if not is_outside(p)))
    ref = tmp_path_factory.mktemp("dip-reference")
    for f in [DIP_REFERENCE, *EU_REFERENCE.glob("*.xsd")]:
        (ref / f.name).write_bytes(f.read_bytes())
    (ref / "driver.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:import namespace="http://itzbund.de/ozg/bzst/post/dip/v1/" schemaLocation="dip.xsd"/>'
        '<xs:import namespace="urn:oecd:ties:dpi:v1" schemaLocation="DPIXML_v1.0.xsd"/></xs:schema>',
        encoding="utf-8",
    )
    paths = {**OFFICIAL, "de": ref / "driver.xsd"}
    return {code: etree.XMLSchema(etree.parse(str(path))) for code, path in paths.items() if path.is_file()}


@pytest.mark.parametrize(
    ("code", "kind"),
    [pytest.param(code, kind, marks=marks(OFFICIAL.get(code, DIP_REFERENCE))) for code, kind in CASES],
)
def test_ledger_message_golden_passes_the_official_schema_and_the_preflight(
    official: dict[str, etree.XMLSchema], code: str, kind: str
) -> None:
    """The same bytes through the authority's official schema and the business rules its
    profile applies on receipt (as the validate stage does, without the ledger's ids)."""
    require_file(OFFICIAL.get(code, DIP_REFERENCE))
    golden = GOLDEN / code / f"{kind}-test.xml"
    assert golden.is_file(), f"{golden} is missing: run pytest tests/golden --regenerate-golden"
    assert official[code].validate(etree.parse(str(golden))), official[code].error_log
    profile = _profile(code)
    today = {"correction": CORRECTION, "deletion": DELETION, "nil": NIL}[kind][1].date()
    findings = list(profile.extra_checks(golden))
    if profile.rule_set.codes:
        findings += check_message(golden, rules=profile.rule_set, today=today, receiving_country=PROFILES[code][0])
    assert findings == [], [f.describe() for f in findings]
