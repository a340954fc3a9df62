"""The renderer streams: memory does not grow with the number of sellers written."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from reporting.authorities import EU_GENERIC
from reporting.authorities.base import XmlStream
from reporting.checks.schema import schema_for
from reporting.records import ActivityFigures, MessageHeader, OperatorRecord, PostalAddress, SellerRecord, Tin

ADDRESS = PostalAddress(country="LT", city="Kaunas", street="Laisves al.", building="10", post_code="44240")
HEADER = MessageHeader("LT", "LT", "LT2025LT0001", "DPI401", date(2025, 12, 31), datetime(2026, 1, 15, 7, 0))
OPERATOR = OperatorRecord("Demo Marketplace UAB", "304567891", "LT", ADDRESS, "RPONEX1", "LT")


def sellers(n: int) -> Iterator[tuple[SellerRecord, tuple[str, str]]]:
    for i in range(n):
        yield (
            SellerRecord(
                seller_id=f"S{i:08d}",
                seller_type="individual",
                res_countries=("LT",),
                tins=(Tin(f"3900101{i:04d}", "LT"),),
                address=ADDRESS,
                first_name="Ona",
                last_name="Petraite",
                birth_date=date(1980, 5, 17),
                activities=(
                    ActivityFigures("sale_of_goods", "EUR", (1, 2, 3, 4), (1, 1, 1, 1), (0, 0, 0, 0), (0, 0, 0, 0)),
                ),
            ),
            ("OECD11", f"LT2025-{i:032d}"),
        )


class CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.size += len(b)
        return len(b)


def peak_bytes(n: int) -> tuple[int, int]:
    sink = CountingSink()
    tracemalloc.start()
    count = EU_GENERIC.write(sink, HEADER, OPERATOR, ("OECD11", "LT2025-OP"), sellers(n))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == n
    return peak, sink.size


def test_memory_does_not_grow_with_the_number_of_sellers() -> None:
    small_peak, small_size = peak_bytes(300)
    large_peak, large_size = peak_bytes(6_000)
    assert large_size > 15 * small_size
    assert large_peak < 2 * small_peak + 256 * 1024, (small_peak, large_peak)


def test_the_streamed_message_is_schema_valid() -> None:
    buf = io.BytesIO()
    EU_GENERIC.write(buf, HEADER, OPERATOR, ("OECD11", "LT2025-OP"), sellers(3))
    schema = schema_for(EU_GENERIC.schema_resource)
    assert schema.validate(etree.fromstring(buf.getvalue())), schema.error_log


# --- the writer writes lxml's bytes --------------------------------------------------------------


class LxmlStream:
    """The reference: the same writing interface over lxml's incremental ``xmlfile`` (what the
    renderer used before :class:`~reporting.authorities.base.XmlStream` wrote the text itself)."""

    def __init__(self, xf: Any, indent: str = "  ") -> None:
        self.xf = xf
        self.indent = indent
        self.depth = 0

    @contextmanager
    def element(
        self, tag: str, attrib: dict[str, str] | None = None, nsmap: dict[str | None, str] | None = None
    ) -> Iterator[None]:
        if self.depth:
            self.xf.write("\n" + self.indent * self.depth)
        with self.xf.element(tag, attrib or {}, nsmap=nsmap):
            self.depth += 1
            yield
            self.depth -= 1
            self.xf.write("\n" + self.indent * self.depth)

    def leaf(self, tag: str, text: str | int | None, attrib: dict[str, str] | None = None) -> None:
        self.xf.write("\n" + self.indent * self.depth)
        with self.xf.element(tag, attrib or {}):
            if text is not None and text != "":
                self.xf.write(str(text))

    def opt(self, tag: str, text: str | int | None, attrib: dict[str, str] | None = None) -> None:
        if text is not None and text != "":
            self.leaf(tag, text, attrib)

    def block(self, tag: str, leaves: list[tuple[str, str | int, dict[str, str] | None]]) -> None:
        with self.element(tag):
            for child, text, attrib in leaves:
                self.leaf(child, text, attrib)


def with_lxml(write: Callable[[Any], object]) -> bytes:
    buf = io.BytesIO()
    with etree.xmlfile(buf, encoding="UTF-8") as xf:
        xf.write_declaration()
        write(LxmlStream(xf))
    return buf.getvalue()


def with_ours(write: Callable[[Any], object]) -> bytes:
    buf = io.BytesIO()
    w = XmlStream(buf)
    w.declaration()
    write(w)
    w.flush()
    return buf.getvalue()


# any text XML 1.0 can carry, with the characters that need escaping made likely
xml_text = st.text(
    alphabet=st.one_of(
        st.sampled_from("&<>\"'\r\n\t ü€😀"),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff", min_codepoint=0x20),
    ),
    max_size=12,
)
NAMESPACES = {"a": "urn:a", "b": "urn:b:v1", None: "urn:default"}


@st.composite
def documents(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """A random document as a list of writing steps: open, leaf, opt, close."""
    steps: list[tuple[Any, ...]] = []
    depth = 0
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        kind = draw(
            st.sampled_from(["open", "leaf", "opt", "block", "close"] if depth else ["open", "leaf", "opt", "block"])
        )
        tag = "{" + draw(st.sampled_from(list(NAMESPACES.values()))) + "}" + draw(st.sampled_from(["T", "Cons", "x"]))
        attrib = draw(st.dictionaries(st.sampled_from(["currCode", "issuedBy", "unknown"]), xml_text, max_size=2))
        value = draw(st.one_of(st.none(), st.just(""), xml_text, st.integers(min_value=0, max_value=10**9)))
        if kind == "close":
            depth -= 1
        elif kind == "open":
            depth += 1
        elif kind == "block":  # a few leaves, each with a text
            value = [(tag, draw(st.one_of(xml_text.filter(bool), st.integers(0, 99))), attrib) for _ in range(3)]
        steps.append((kind, tag, attrib, value))
    steps += [("close", None, None, None)] * depth
    return steps


def play(steps: list[tuple[Any, ...]], w: Any) -> None:
    stack: list[Any] = []
    root = w.element("{urn:a}Root", {"version": "1.0"}, nsmap=NAMESPACES)
    root.__enter__()
    for kind, tag, attrib, value in steps:
        if kind == "open":
            cm = w.element(tag, attrib)
            cm.__enter__()
            stack.append(cm)
        elif kind == "close":
            stack.pop().__exit__(None, None, None)
        elif kind == "block":
            w.block(tag, value)
        else:
            getattr(w, kind)(tag, value, attrib)
    root.__exit__(None, None, None)


@settings(max_examples=300, deadline=None)
@given(documents())
def test_the_writer_writes_what_lxml_writes(steps: list[tuple[Any, ...]]) -> None:
    assert with_ours(lambda w: play(steps, w)) == with_lxml(lambda w: play(steps, w))


def test_a_text_xml_cannot_carry_is_refused_by_both() -> None:
    def document(w: Any, text: str) -> None:
        with w.element("R"):
            w.leaf("T", text)

    for bad in ("\x00", "a\x0bb", "\ufffe"):
        for writer in (with_ours, with_lxml):
            with pytest.raises(ValueError, match="XML compatible"):
                writer(lambda w, bad=bad: document(w, bad))  # type: ignore[misc]


def test_every_profile_writes_lxml_bytes() -> None:
    """The national envelopes and editions through both writers: byte for byte the same."""
    from reporting.authorities import NATIONAL

    header = MessageHeader(
        "LT",
        "LT",
        "OP_2025_123456789_d001_" + "A" * 32,
        "DPI401",
        date(2025, 12, 31),
        datetime(2026, 1, 15, 7, 0),
        identifiers={
            "siren": "123456789",
            "bzst_id": "BZST1",
            "tax_number": "12345678",
            "codice_fiscale": "12345670017",
            "platform_operator_id": "XMDPI0001234567",
        },
    )
    records = list(sellers(5))
    for profile in [EU_GENERIC, *NATIONAL.values()]:

        def document(w: Any, profile: Any = profile) -> None:
            profile.write_document(w, header, OPERATOR, ("OECD11", "LT2025-OP"), iter(records))

        assert with_ours(document) == with_lxml(document), profile.code
