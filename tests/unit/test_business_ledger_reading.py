"""One reading of a file for the business rules and the ledger's ids, and one for the schema.

The validation asks the ledger about the DocRefIds and CorrDocRefIds of a file in the business
rules' own reading (``check_message(..., ask_ledger=...)``) instead of reading them apart first
(``_ledger_view``), and checks the schema in the well-formedness parser's reading instead of a
second one. Both are compared here with the separate readings they replace, on the broken and
the corrected messages of the rule-by-rule tests and on rendered messages: the same ids asked,
the same findings in the same order, the same verdict of the schema.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from test_business_rules import CASES, CORRECTION, NIL_REPORT, base, rendered

from reporting import safexml
from reporting.authorities import EU_GENERIC
from reporting.checks import business
from reporting.checks.business import EU_EXCHANGE, RuleFinding, check_message
from reporting.checks.schema import schema_for
from reporting.safexml import XmlFileError
from reporting.stages.validate import _ledger_answers, _ledger_view, file_ledger_view

TODAY = date(2026, 6, 1)
THIS = "LT2025LT0001"  # the MessageRefId of BASE
STF = "{urn:oecd:ties:dpistf:v1}"
DPI = "{urn:oecd:ties:dpi:v1}"


@dataclass(frozen=True)
class Known:
    """What ``Ledger.known_records`` says of one DocRefId (the fields the validation reads)."""

    message_ref_id: str
    message_status: str
    status: str


class FakeLedger:
    """A ledger that knows ``table`` and notes every id it is asked about."""

    def __init__(self, table: dict[str, Known]) -> None:
        self.table = table
        self.asked: set[str] = set()
        self.calls = 0

    def known_records(self, ids: Iterable[str]) -> dict[str, Known]:
        ids = set(ids)
        self.asked |= ids
        self.calls += 1
        return {i: self.table[i] for i in ids if i in self.table}


def separate(document: bytes, table: dict[str, Known], earlier: set[str]) -> tuple[list[RuleFinding], set[str]]:
    """The readings before: the ids read apart, the ledger asked once, then the rules."""
    ledger = FakeLedger(table)
    known, states = _ledger_view(ledger, document, THIS, earlier)  # type: ignore[arg-type]
    findings = check_message(document, today=TODAY, known_doc_ref_ids=known, ledger=states)
    return findings, ledger.asked


def merged(document: bytes, table: dict[str, Known], earlier: set[str]) -> tuple[list[RuleFinding], set[str]]:
    ledger = FakeLedger(table)
    findings = check_message(document, today=TODAY, ask_ledger=_ledger_answers(ledger, THIS, earlier))  # type: ignore[arg-type]
    return findings, ledger.asked


def doc_spec_ids(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    return [e.text or "" for e in root.iter(f"{STF}DocRefId", f"{STF}CorrDocRefId")]


def messages() -> list[bytes]:
    """Every broken and corrected message of the rule-by-rule cases, the clean ones besides."""
    out = []
    for case in CASES:
        for edit in (case.breaks, lambda tree, c=case: (c.breaks(tree), c.fix(tree))):
            tree = base()
            edit(tree)
            out.append(etree.tostring(tree))
    for edit in (CORRECTION, NIL_REPORT):
        tree = base()
        edit(tree)
        out.append(etree.tostring(tree))
    out.append(etree.tostring(base()))
    return out


MESSAGES = messages()

KNOWN = st.builds(
    Known,
    st.sampled_from([THIS, "LT2024LT0009", "LT2025LT0000"]),
    st.sampled_from(["published", "accepted", "pending", "rejected"]),
    st.sampled_from(["sent", "accepted", "rejected", "corrected", "deleted"]),
)


@st.composite
def documents_and_ledgers(draw: st.DrawFn) -> tuple[bytes, dict[str, Known], set[str]]:
    """A message (some of its ids written with white space around them), a ledger that knows
    some of its ids (as written and stripped), and this run's earlier messages."""
    document = draw(st.sampled_from(MESSAGES))
    tree = etree.fromstring(document)
    for elem in tree.iter(f"{STF}DocRefId", f"{STF}CorrDocRefId"):
        if elem.text and draw(st.integers(0, 5)) == 0:
            elem.text = draw(st.sampled_from([" ", "\n  "])) + elem.text + draw(st.sampled_from(["", " "]))
    document = etree.tostring(tree)
    ids = sorted({i for text in doc_spec_ids(document) for i in (text, text.strip())})
    table = draw(st.dictionaries(st.sampled_from(ids), KNOWN)) if ids else {}
    earlier = draw(st.sets(st.sampled_from(["LT2025LT0000", "LT2024LT0009"])))
    return document, table, earlier


@given(documents_and_ledgers(), st.integers(1, 4))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_one_reading_gives_the_ids_and_findings_of_two(
    drawn: tuple[bytes, dict[str, Known], set[str]], batch: int
) -> None:
    document, table, earlier = drawn
    before = business.LEDGER_BATCH
    business.LEDGER_BATCH = batch  # the ledger asked after every few records: each answer in time
    try:
        findings, asked = merged(document, table, earlier)
    finally:
        business.LEDGER_BATCH = before
    assert (findings, asked) == separate(document, table, earlier)


@pytest.mark.parametrize("document", MESSAGES)
def test_every_message_of_the_cases_with_a_ledger_that_knows_every_id(document: bytes) -> None:
    """Every id known, in every state: the ledger's rules all come into play."""
    ids = doc_spec_ids(document)
    for status in ("sent", "corrected"):
        for ref in (THIS, "LT2024LT0009"):
            table = {i: Known(ref, "published", status) for i in ids}
            assert merged(document, table, set()) == separate(document, table, set())


def test_a_stripped_id_asked_only_later_in_the_file_is_found_as_before() -> None:
    """The first seller's DocRefId is written with a space before it; the second seller's
    DocRefId is that id as written. The ledger knows it from an earlier message. Read apart,
    every id was asked before the rules ran, so the first seller's (stripped) id was found used
    (80000); asked record by record, it is asked only with the second seller, after the first
    one's rules: the rules run again with every answer (``_Run.again``)."""
    tree = base()
    specs = tree.getroot().iter(f"{STF}DocRefId")
    next(specs)  # the operator's
    first, second = next(specs), next(specs)
    first.text, second.text = " LT2025-S9", "LT2025-S9"
    document = etree.tostring(tree)
    table = {"LT2025-S9": Known("LT2024LT0009", "published", "sent")}
    before = business.LEDGER_BATCH
    business.LEDGER_BATCH = 1
    try:
        findings, asked = merged(document, table, set())
    finally:
        business.LEDGER_BATCH = before
    assert (findings, asked) == separate(document, table, set())
    assert [f.code for f in findings] == ["80000", "80000"]  # used before; then used twice here


@pytest.mark.parametrize("as_tree", [False, True], ids=["streamed", "tree"])
@pytest.mark.parametrize("moved", ["PlatformOperator", "OtherPlatformOperators"])
def test_an_operator_record_after_the_sellers_is_checked_with_the_ledger_as_before(moved: str, as_tree: bool) -> None:
    """Not in a valid message: the operator (or the other operators) placed after the sellers.
    Its rules run with the body's header, at the first seller, before the walk reads its ids:
    the rules run again with every answer (``_Run.again``), as with every id asked first."""
    checked = 0
    for document in MESSAGES:
        tree = etree.fromstring(document)
        body = next(tree.iter(f"{DPI}DPIBody"), None)
        if body is None or body.find(f"{DPI}ReportableSeller") is None or body.find(f"{DPI}{moved}") is None:
            continue
        for elem in body.findall(f"{DPI}{moved}"):
            body.append(elem)  # moved after the sellers
        document = etree.tostring(tree)
        table = {i: Known("LT2024LT0009", "published", "sent") for i in doc_spec_ids(document)}
        ledger = FakeLedger(table)
        source = etree.fromstring(document) if as_tree else document
        findings = check_message(source, today=TODAY, ask_ledger=_ledger_answers(ledger, THIS, set()))  # type: ignore[arg-type]
        assert (findings, ledger.asked) == separate(document, table, set())
        checked += 1
    assert checked


def test_the_ledger_is_asked_in_batches_of_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rendered message of 25 sellers, 10 records a batch: the operator's id with the body's
    header, then the sellers' ids in three batches; the same ids and findings as read apart."""
    path = rendered(tmp_path / "m.xml", 25)
    monkeypatch.setattr(business, "LEDGER_BATCH", 10)
    ids = doc_spec_ids(path.read_bytes())
    table = {i: Known("LT2024LT0009", "published", "sent") for i in ids[::3]}
    ledger = FakeLedger(table)
    findings = check_message(
        path,
        rules=EU_EXCHANGE,
        today=TODAY,
        ask_ledger=_ledger_answers(ledger, THIS, set()),  # type: ignore[arg-type]
    )
    assert ledger.calls == 4 and ledger.asked == set(ids)
    assert findings == separate(path.read_bytes(), table, set())[0]
    assert len([f for f in findings if f.code == "80000"]) == len(ids[::3])


def test_at_most_a_batch_of_sellers_is_held_in_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory with the ledger asked in the same reading: the sellers are dropped from the tree
    once their rules have run, so the body never holds more than a batch of them; and a valid
    message is read once."""
    path = rendered(tmp_path / "m.xml", 300)
    monkeypatch.setattr(business, "LEDGER_BATCH", 10)
    held: list[int] = []  # the records held at each flush
    left: list[int] = []  # the sellers left in the tree before the last one checked
    flush = business._Run.flush

    def counting(run: business._Run) -> None:
        pending = list(run.pending)
        held.append(len(pending))
        flush(run)
        sellers = [r.elem for r in pending if r.is_seller]
        if sellers:
            left.append(sum(1 for _ in sellers[-1].itersiblings(f"{DPI}ReportableSeller", preceding=True)))

    readings = 0
    iterparse = business.safexml.iterparse

    def reading(*args: object, **kw: object) -> object:
        nonlocal readings
        readings += 1
        return iterparse(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(business._Run, "flush", counting)
    monkeypatch.setattr(business.safexml, "iterparse", reading)
    ledger = FakeLedger({})
    assert check_message(path, today=TODAY, ask_ledger=_ledger_answers(ledger, THIS, set())) == []  # type: ignore[arg-type]
    assert readings == 1 and ledger.calls == 31  # the operator's id with the header, then 30 batches
    assert max(held) == 10 and len(left) == 30 and set(left) == {0}, (held, left)


def test_dac7_validate_asks_the_ledger_about_every_id_of_the_file(tmp_path: Path) -> None:
    """``dac7 validate --ledger`` (``file_ledger_view``) still reads the ids apart: every id of
    the file asked at once, used only when another message than the file's own has it, live only
    when that message was published."""
    path = tmp_path / "m.xml"
    path.write_bytes(MESSAGES[-1])
    operator, first, second = doc_spec_ids(MESSAGES[-1])
    table = {
        operator: Known(THIS, "published", "sent"),  # the file's own message: not used by another
        first: Known("LT2024LT0009", "pending", "sent"),
        second: Known("LT2024LT0009", "accepted", "corrected"),
    }
    ledger = FakeLedger(table)
    used, states = file_ledger_view(ledger, path)  # type: ignore[arg-type]
    assert ledger.calls == 1 and ledger.asked == {operator, first, second}
    assert used == {first, second}
    assert states == {operator: "live", first: "outdated", second: "outdated"}


def test_a_stream_cannot_be_read_again_for_the_ledger() -> None:
    with pytest.raises(TypeError, match="read again"):
        check_message(io.BytesIO(MESSAGES[-1]), ask_ledger=lambda ids: (set(), {}))


# ---------------------------------------------------------------------------------------- the schema


def two_readings(path: Path, schema: etree.XMLSchema) -> bool:
    """``validate_stream`` as it was: the well-formedness reading, then ``iterparse`` with the
    schema, every element handed to Python, the root's end required."""
    safexml.well_formed(path)
    root_closed = False
    try:
        pending = 0
        for _event, elem in etree.iterparse(
            str(path),
            events=("end",),
            schema=schema,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,
        ):
            root_closed = elem.getparent() is None
            pending += 1
            if pending >= 512 and not root_closed:
                safexml.release(elem)
                pending = 0
    except etree.XMLSyntaxError:
        return False
    return root_closed


def verdict(read: Callable[[Path, etree.XMLSchema], bool], path: Path, schema: etree.XMLSchema) -> bool | str:
    try:
        return read(path, schema)
    except XmlFileError as exc:
        return str(exc)


EDITS = st.sampled_from(["drop", "text", "attribute", "duplicate", "truncate", "garbage"])


@given(document=st.sampled_from(MESSAGES), edits=st.lists(st.tuples(EDITS, st.integers(0, 10_000)), max_size=3))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_schema_in_one_reading_gives_the_verdict_of_two(
    document: bytes, edits: list[tuple[str, int]], tmp_path: Path
) -> None:
    """The messages of the cases, broken further: elements dropped or repeated, texts and
    attributes the schema refuses, the file cut off or with bytes that are not XML."""
    schema = schema_for(EU_GENERIC.schema_resource)
    tree = etree.fromstring(document)
    for edit, at in edits:
        elems = list(tree.iter())
        elem = elems[at % len(elems)]
        parent = elem.getparent()
        if edit == "drop" and parent is not None:
            parent.remove(elem)
        elif edit == "text":
            elem.text = "x" * (at % 300)
        elif edit == "attribute":
            elem.set("unknownAttribute" if at % 2 else "currCode", "ZZZ")
        elif edit == "duplicate" and parent is not None:
            parent.insert(parent.index(elem), etree.fromstring(etree.tostring(elem)))
    data = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    for edit, at in edits:
        if edit == "truncate":
            data = data[: at % len(data)] if data else data
        elif edit == "garbage":
            cut = at % (len(data) + 1)
            data = data[:cut] + b"<&\x00" + data[cut:]
    path = tmp_path / "m.xml"
    path.write_bytes(data)
    assert verdict(safexml.validate_stream, path, schema) == verdict(two_readings, path, schema)


def test_a_valid_message_and_a_schema_error_in_one_reading(tmp_path: Path) -> None:
    schema = schema_for(EU_GENERIC.schema_resource)
    tree = base()
    path = tmp_path / "m.xml"
    path.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))
    assert safexml.validate_stream(path, schema)
    next(tree.getroot().iter("{urn:oecd:ties:dpi:v1}NumbQ1")).text = "one"
    path.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))
    assert not safexml.validate_stream(path, schema)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda d: d.replace(b"</dpi:MessageSpec>", b"<!--" + b"c" * (11 << 20) + b"--></dpi:MessageSpec>", 1),
            True,
            id="11 MB comment",
        ),
        pytest.param(lambda d: d[: len(d) // 2] + b"\x00" + d[len(d) // 2 :], "Char 0x0", id="NUL byte"),
        pytest.param(lambda d: d + b"\x00", "Extra content", id="NUL byte after the root"),
        pytest.param(
            lambda d: d.replace(b"<dpi:MessageSpec>", b'<dpi:MessageSpec zz:a="1">', 1),
            "not well-formed XML: Namespace prefix zz for a on MessageSpec is not defined (line 3)",
            id="undefined prefix",
        ),
        pytest.param(
            lambda d: d.replace(b"<dpi:MessageSpec>", b"<dpi:MessageSpec><dpi:Bogus/>", 1)[:-40],
            "expected '>'",
            id="invalid, then cut off",
        ),
    ],
)
def test_the_schema_in_one_reading_on_files_of_every_kind(
    edit: Callable[[bytes], bytes], expected: bool | str, tmp_path: Path
) -> None:
    """A huge file (a text over libxml2's 10 MB limit without ``huge_tree``), NUL bytes, a
    namespace error the parser logs without raising (not well-formed all the same: refused as
    such, not "not valid"), a schema error before the file is cut off: the verdict, or the
    parser's first error in the same words, of the two readings."""
    schema = schema_for(EU_GENERIC.schema_resource)
    path = tmp_path / "m.xml"
    path.write_bytes(edit(etree.tostring(base(), xml_declaration=True, encoding="UTF-8")))
    got = verdict(safexml.validate_stream, path, schema)
    assert got == verdict(two_readings, path, schema)
    assert got is expected if isinstance(expected, bool) else expected in str(got)
