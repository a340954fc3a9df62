"""Fuzzing the three places where outside text enters: the configuration loader, the status
importer and the renderer. Whatever they are given, the answer is a result or the project's own
error (a finding, a ConfigError, a StatusFormatError ...), never any other exception.

Bounded in CI (``DAC7_FUZZ_EXAMPLES``, default 60 per test); longer on request:
``DAC7_FUZZ_EXAMPLES=5000 make fuzz``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from integration.test_ledger_lifecycle import status_message
from lxml import etree

from reporting.authorities import EU_GENERIC
from reporting.checks.business import check_message
from reporting.checks.schema import schema_for
from reporting.config import parse_config
from reporting.errors import ConfigError, ReportingError
from reporting.ledger import open_ledger
from reporting.ledger.status import import_status
from reporting.records import ActivityFigures, MessageHeader, OperatorRecord, PostalAddress, SellerRecord, Tin
from reporting.text import text_problem

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("DAC7_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DEMO = tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))

# ------------------------------------------------------------------------------ configuration

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=300), st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=12,
)
KNOWN_KEYS = ["operator", "reporting", "source", "authorities", "quality", "ledger"]
PATHS = [
    ("operator", "name"),
    ("operator", "tin"),
    ("operator", "nexus"),
    ("operator", "nexus_country"),
    ("operator", "address"),
    ("reporting", "timezone"),
    ("reporting", "routing"),
    ("reporting", "environment"),
    ("quality", "max_quarantined"),
    ("ledger", "url"),
    ("authorities", "DE"),
    ("source", "url"),
]


@FUZZ
@given(
    changes=st.lists(st.tuples(st.sampled_from(PATHS), values), max_size=4),
    extra=st.dictionaries(st.sampled_from([*KNOWN_KEYS, "x", "reportin"]), values, max_size=2),
)
def test_the_configuration_loader_answers_with_a_config_or_a_config_error(
    changes: list[tuple[tuple[str, str], Any]], extra: dict[str, Any]
) -> None:
    raw: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in DEMO.items()}
    raw["operator"] = dict(raw["operator"])
    for (table, key), value in changes:
        if not isinstance(raw.get(table), dict):
            raw[table] = {}
        raw[table] = {**raw[table], key: value}
    raw.update(extra)
    try:
        parse_config(raw, origin="fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ") or "fuzz.toml" in str(exc)


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_a_configuration_file_of_any_bytes_is_a_config_error_or_a_config(tmp_path: Path, data: bytes) -> None:
    from reporting.config import load_config

    path = tmp_path / "dac7.toml"
    path.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_config(path)


# ---------------------------------------------------------------------------------- status import

DSM = "urn:oecd:ties:dsm:v1"


def _status(original: str, code: str, doc_ref_ids: list[str], status: str) -> bytes:
    """The lifecycle tests' synthetic EU status message, with a fixed id (Hypothesis replays its
    examples) and any validation status."""
    root = status_message(original, doc_ref_ids, code)
    root.find(f"{{{DSM}}}MessageSpec/{{{DSM}}}MessageRefId").text = "LT2026LTfuzz"
    root.find(f".//{{{DSM}}}ValidationResult/{{{DSM}}}Status").text = status
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


xml_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60)
documents = st.one_of(
    st.binary(max_size=600),
    st.builds(
        _status,
        original=xml_text,
        code=xml_text,
        doc_ref_ids=st.lists(xml_text, max_size=3),
        status=st.sampled_from(["Accepted", "Rejected", "", "Unknown"]) | xml_text,
    ),
    st.builds(
        lambda doc, at, cut, junk: doc[:at] + junk + doc[at + cut :],
        st.builds(
            _status,
            original=st.just("LT2025LTX"),
            code=st.just("40080"),
            doc_ref_ids=st.just(["LT2025-X"]),
            status=st.just("Accepted"),
        ),
        st.integers(0, 600),
        st.integers(0, 40),
        st.binary(max_size=40),
    ),
)


@FUZZ
@given(documents)
def test_the_status_importer_answers_with_an_outcome_or_its_own_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "status.xml"
    path.write_bytes(data)
    with open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        try:
            import_status(ledger, path)
        except ReportingError as exc:  # StatusFormatError, an unknown message ...: a sentence
            assert str(exc).strip() and "Traceback" not in str(exc)


# --------------------------------------------------------------------------------------- render

ADDRESS = PostalAddress(country="LT", city="Kaunas", street="Laisves al.", building="10", post_code="44240")
HEADER = MessageHeader("LT", "LT", "LT2025LT0001", "DPI401", date(2025, 12, 31), datetime(2026, 1, 15, 7, 0))
OPERATOR = OperatorRecord("Demo Marketplace UAB", "304567891", "LT", ADDRESS, "RPONEX1", "LT")
GOODS = ActivityFigures("sale_of_goods", "EUR", (1, 2, 3, 4), (1, 1, 1, 1), (0, 0, 0, 0), (0, 0, 0, 0))
# any character a database can hold (no lone surrogates), trimmed as the extract trims, not empty
# (half of them without control characters, so that most examples reach the render)
texts = (
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=240),
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=240),
    )
    .map(str.strip)
    .filter(bool)
)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return schema_for(EU_GENERIC.schema_resource)


@FUZZ
@given(first=texts, last=texts, street=texts, city=texts, tin=texts)
def test_arbitrary_seller_texts_render_exactly_or_are_a_finding(
    schema: etree.XMLSchema, first: str, last: str, street: str, city: str, tin: str
) -> None:
    """A text that :func:`reporting.text.text_problem` accepts renders into a valid message and is
    read back exactly as it was (the authority gets the seller's own name); any other text is a
    finding (the pipeline quarantines the seller), never an error of the renderer."""
    given_texts = {"first_name": first, "last_name": last, "street": street, "city": city, "tin": tin}
    problems = {k: text_problem(v) for k, v in given_texts.items()}
    if any(problems.values()):
        event("a finding")
        assert all(p is None or isinstance(p, str) for p in problems.values())
        return
    event("rendered")
    address = PostalAddress(country="LT", city=city, street=street, building="1", post_code="01103")
    seller = SellerRecord(
        "S1", "individual", ("LT",), (Tin(tin, "LT"),), address, (GOODS,), first, last,
        birth_date=date(1980, 5, 17), birth_city="Kaunas", birth_country="LT",
    )  # fmt: skip
    buf = io.BytesIO()
    EU_GENERIC.write(buf, HEADER, OPERATOR, ("OECD11", "LT2025-OP"), [(seller, ("OECD11", "LT2025-S1"))])
    doc = etree.fromstring(buf.getvalue())
    assert schema.validate(doc), schema.error_log.last_error
    ns = {"dpi": "urn:oecd:ties:dpi:v1"}
    person = doc.find(".//dpi:ReportableSeller/dpi:Identity/dpi:IndividualSeller/dpi:Standard/dpi:IndSellerID", ns)
    read = {
        "first_name": person.findtext("dpi:Name/dpi:FirstName", namespaces=ns),
        "last_name": person.findtext("dpi:Name/dpi:LastName", namespaces=ns),
        "street": person.findtext("dpi:Address/dpi:AddressFix/dpi:Street", namespaces=ns),
        "city": person.findtext("dpi:Address/dpi:AddressFix/dpi:City", namespaces=ns),
        "tin": person.findtext("dpi:TIN", namespaces=ns),
    }
    assert read == given_texts
    check_message(buf.getvalue(), today=date(2026, 1, 20))  # the business rules read it without an error
