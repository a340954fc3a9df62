"""Golden files of the assumed and assuming filings, per authority profile (issue 18).

For each profile an operator filing in that profile's state, with the two sellers of
test_golden_ledger.py and pinned run ids and timestamps:

* ``assuming-test.xml``: it assumes the reporting of another operator, resident in the same
  state (``[[assumed_operators]]``): a DPI401 with OtherPlatformOperators/AssumedPlatformOperator
  and the sellers. NAV's DPI_HU has no AssumedPlatformOperator: the Hungarian file has the
  sellers alone.
* ``assumed-test.xml``: another operator assumes its reporting (``[assuming_operator]``): the
  PlatformOperator with AssumedReporting true, OtherPlatformOperators/AssumingPlatformOperator and
  no seller, in the profile's message type (a DPI403 for every profile here).

Each golden passes its authority's official schema (tests/reference; HU and IT from
../shared beside the checkout) and the business rules its profile applies on receipt. Compared
canonically (C14N 2.0); regenerate only with ``pytest tests/golden --regenerate-golden`` and review
the diff: a changed golden file is a changed filing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from builders import write_config
from golden.test_golden import canonical
from golden.test_golden_ledger import (
    DIP_REFERENCE,
    IDENTIFIERS,
    OFFICIAL,
    PROFILES,
    _profile,
    marketplace,
    official,  # noqa: F401 - the fixture
)
from lxml import etree
from resources import marks, require_file

from reporting.checks.business import EU_EXCHANGE, check_message
from reporting.checks.schema import schema_for
from reporting.pipeline import run

GOLDEN = Path(__file__).parent
AS_OF = date(2026, 1, 31)
RUNS = {
    "assuming": ("7d526b80-9fae-4bdc-8e5f-607182a3b4c5", datetime(2026, 1, 20, 6, 0, 0)),
    "assumed": ("8e637c91-a0bf-4ced-9f60-718293b4c5d6", datetime(2026, 1, 21, 6, 0, 0)),
}
#: the other operator of each filing state: a company there, with its registered office
OTHER = {
    "LT": ("Paspirtukai UAB", "302222222", "Vilniaus g.", "7", "01402", "Vilnius"),
    "DE": ("Rollerverleih GmbH", "DE811222333", "Hauptstrasse", "5", "53111", "Bonn"),
    "FR": ("MotoLoc.fr", "555852446", "rue Bernard Ouillon", "25", "92200", "Neuilly sur Seine"),
    "HU": ("Roller Kft.", "12345676-2-41", "Andrassy ut", "1", "1061", "Budapest"),
    "IT": ("Scooters SRL", "12345670017", "Via Roma", "1", "00100", "Roma"),
}
KINDS = ("assuming", "assumed")


def other_operator(kind: str, country: str) -> str:
    name, tin, street, building, post_code, city = OTHER[country]
    table = "[[assumed_operators]]" if kind == "assuming" else "[assuming_operator]"
    header = table.strip("[]")
    return f"""
{table}
name = "{name}"
tin = "{tin}"
tin_issued_by = "{country}"
[{header}.address]
street = "{street}"
building = "{building}"
post_code = "{post_code}"
city = "{city}"
country = "{country}"
"""


@dataclass(frozen=True)
class Filed:
    files: dict[tuple[str, str], Path]  # (kind, profile) -> published file
    types: dict[tuple[str, str], tuple[str, int]]  # (kind, profile) -> (MessageTypeIndic, sellers)


@pytest.fixture(scope="module")
def filed(tmp_path_factory: pytest.TempPathFactory) -> Filed:
    files: dict[tuple[str, str], Path] = {}
    types: dict[tuple[str, str], tuple[str, int]] = {}
    for code, (country, _, _) in PROFILES.items():
        for kind in KINDS:
            tmp = tmp_path_factory.mktemp(f"assumed-golden-{code}-{kind}")
            cfg = write_config(
                tmp / "dac7.toml", filing_state=country, extra=IDENTIFIERS[country] + other_operator(kind, country)
            )
            run_id, timestamp = RUNS[kind]
            manifest = run(
                config_path=cfg,
                source_url=marketplace(code).write(f"sqlite:///{tmp}/source.db"),
                year=2025,
                as_of=AS_OF,
                out_dir=tmp / "out",
                staging_root=tmp / "st",
                run_id=run_id,
                timestamp=timestamp,
                ledger_url=f"sqlite:///{tmp}/ledger.sqlite3",
            ).manifest
            [f] = manifest["files"]
            assert f["authority"] == country
            files[(kind, code)] = tmp / "out" / f["file"]
            types[(kind, code)] = (f["message_type_indic"], f["sellers"])
    return Filed(files, types)


def test_each_profile_files_what_the_assumption_asks(filed: Filed) -> None:
    for code in PROFILES:
        assert filed.types[("assuming", code)] == ("DPI401", 2), code
        assert filed.types[("assumed", code)] == ("DPI403", 0), code  # every profile's declaration type


CASES = [(code, kind) for code in PROFILES for kind in KINDS]


@pytest.mark.parametrize(("code", "kind"), CASES)
def test_assumed_golden(filed: Filed, code: str, kind: str, request: pytest.FixtureRequest) -> None:
    produced = filed.files[(kind, code)]
    golden = GOLDEN / code / f"{kind}-test.xml"
    if request.config.getoption("--regenerate-golden"):
        golden.write_bytes(produced.read_bytes())
    assert golden.is_file(), f"{golden} is missing: run pytest tests/golden --regenerate-golden"
    assert canonical(produced) == canonical(golden)
    profile = _profile(code)
    doc = etree.parse(str(golden))
    schema = schema_for(profile.schema_resource)
    assert schema.validate(doc), schema.error_log
    # What the golden says, read back.
    po = doc.find(".//{*}PlatformOperator")
    assert po.findtext("{*}AssumedReporting") == ("true" if kind == "assumed" else "false")
    others = doc.find(".//{*}OtherPlatformOperators")
    offset = 0 if code == "de" else 10
    name = OTHER[PROFILES[code][0]][0]
    if kind == "assumed":
        [assuming] = others
        assert etree.QName(assuming).localname == "AssumingPlatformOperator"
        assert assuming.findtext("{*}Name") == name
        assert assuming.findtext("{*}DocSpec/{*}DocTypeIndic") == f"OECD{offset + 1}"
        assert doc.find(".//{*}ReportableSeller") is None
    elif code == "hu":  # DPI_HU cannot name an assumed operator
        assert others is None
    else:
        [assumed] = others
        assert etree.QName(assumed).localname == "AssumedPlatformOperator"
        assert (assumed.findtext("{*}Name"), assumed.findtext("{*}ResCountryCode")) == (name, PROFILES[code][0])
        assert assumed.findtext("{*}DocSpec/{*}DocTypeIndic") == f"OECD{offset + 1}"


@pytest.mark.parametrize(
    ("code", "kind"),
    [pytest.param(code, kind, marks=marks(OFFICIAL.get(code, DIP_REFERENCE))) for code, kind in CASES],
)
def test_assumed_golden_passes_the_official_schema_and_the_preflight(
    official: dict[str, etree.XMLSchema],  # noqa: F811 - the fixture
    code: str,
    kind: str,
) -> None:
    """The same bytes through the authority's official schema and the business rules its
    profile applies on receipt, as the validate stage does."""
    require_file(OFFICIAL.get(code, DIP_REFERENCE))
    golden = GOLDEN / code / f"{kind}-test.xml"
    assert golden.is_file(), f"{golden} is missing: run pytest tests/golden --regenerate-golden"
    assert official[code].validate(etree.parse(str(golden))), official[code].error_log
    profile = _profile(code)
    findings = list(profile.extra_checks(golden))
    if profile.rule_set.codes:
        findings += check_message(golden, rules=profile.rule_set, today=AS_OF, receiving_country=PROFILES[code][0])
    assert findings == [], [f.describe() for f in findings]


def test_the_exchange_rules_are_for_messages_between_member_states() -> None:
    """Rules 20010 to 20030 and 40040/40050 bind the exchange between member states. The EU
    edition's domestic declaration of an assumed operator is a DPI403 that names the assuming
    operator: in the exchange it would break 20020 (no AssumingPlatformOperator) and 20030 (a
    DPI403 names an AssumedPlatformOperator), and nothing else; the assuming operator's filing,
    whose assumed operator is resident in the receiving state, passes them all."""
    assumed = GOLDEN / "eu" / "assumed-test.xml"
    assuming = GOLDEN / "eu" / "assuming-test.xml"
    found = check_message(assumed, rules=EU_EXCHANGE, today=AS_OF, receiving_country="LT")
    assert sorted({f.code for f in found}) == ["20020", "20030"]
    assert check_message(assuming, rules=EU_EXCHANGE, today=AS_OF, receiving_country="LT") == []
    # the same assumed operator, sent to a state it is not resident in
    found = check_message(assuming, rules=EU_EXCHANGE, today=AS_OF, receiving_country="LV")
    assert "40050" in {f.code for f in found}
