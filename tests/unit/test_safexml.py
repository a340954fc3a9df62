"""Files `dac7 validate` is given, read through the one safe parser (reporting/safexml.py).

A verdict is given only on a whole file: every truncation of a valid message is refused, in every
mode (`validate`, `--rules`, `--rules --authority`), with one line naming the file and exit 1; so
are a DOCTYPE in any form and any encoding but UTF-8, and anything that is not well-formed. No
traceback, no data value in the message, and quickly.
"""

from __future__ import annotations

import codecs
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from reporting import safexml
from reporting.authorities import EU_GENERIC
from reporting.checks.business import check_message
from reporting.checks.schema import schema_for, validate_file
from reporting.cli import main
from reporting.safexml import XmlFileError

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
# (golden file, --authority that finds it valid under --rules)
VALID = [("eu/initial-test.xml", "LT"), ("fr/initial-test.xml", "FR"), ("it/initial-prod.xml", "IT")]
MODES = [[], ["--rules"], ["--authority", "{authority}"], ["--rules", "--authority", "{authority}"]]
MODE_IDS = ["schema", "rules", "authority-schema", "authority-rules"]
EU = GOLDEN / "eu" / "initial-test.xml"
DOC = EU.read_bytes()
TIN = b"DE123456789"  # a seller's TIN in the EU golden file, on line 42
assert TIN in DOC
TODAY = date(2026, 1, 20)


def run(path: Path, mode: list[str], authority: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    args = ["validate", *(a.format(authority=authority) for a in mode), str(path)]
    started = time.monotonic()
    code = main(args)
    assert time.monotonic() - started < 2, args
    out = capsys.readouterr()
    return code, (out.out + out.err).splitlines()


def refused(path: Path, mode: list[str], authority: str, capsys: pytest.CaptureFixture[str], why: str) -> str:
    code, lines = run(path, mode, authority, capsys)
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: "), lines
    assert why in lines[0], lines
    assert "Traceback" not in lines[0]
    return lines[0]


def valid_modes() -> list[Any]:
    """Each golden file in every mode that applies to it: a domestic message (LT to LT, or a
    national edition) is valid under its authority's rules, and the EU file under the schema alone
    too; the exchange rules (--rules without --authority) are for messages between states."""
    out = []
    for golden, authority in VALID:
        for mode, name in zip(MODES, MODE_IDS, strict=True):
            if "--authority" in mode or (authority == "LT" and "--rules" not in mode):
                out.append(pytest.param(golden, authority, mode, id=f"{golden}-{name}"))
    return out


@pytest.mark.parametrize(("golden", "authority", "mode"), valid_modes())
def test_the_golden_files_are_valid_in_every_mode(
    golden: str, authority: str, mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(GOLDEN / golden, mode, authority, capsys)
    assert code == 0, lines
    assert lines == [f"{GOLDEN / golden}: " + lines[0].split(": ", 1)[1]] and "valid" in lines[0]


def cut_points(doc: bytes) -> dict[str, int]:
    first_seller_end = doc.index(b"</dpi:ReportableSeller>") + len(b"</dpi:ReportableSeller>")
    root_end = doc.rindex(b"</")
    return {
        "after the first seller": first_seller_end,
        "after the first seller and its newline": first_seller_end + 1,
        "inside an end tag": first_seller_end - 5,
        "inside a start tag": doc.index(b"<dpi:ReportableSeller>") + 7,
        "inside a text": doc.index(b"</dpi:MessageRefId>") - 3,
        "inside an attribute": doc.index(b'issuedBy="') + 11,
        "after the XML declaration": doc.index(b"?>") + 2,
        "before the end of the root": root_end,
        "inside the end of the root": root_end + 4,
    }


@pytest.mark.parametrize(("golden", "authority"), VALID)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_a_file_cut_off_anywhere_is_refused(
    golden: str, authority: str, mode: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = (GOLDEN / golden).read_bytes()
    for at in cut_points(doc).values():
        path = tmp_path / "cut.xml"
        path.write_bytes(doc[:at])
        refused(path, mode, authority, capsys, "not")  # "not well-formed XML" / "not an XML document"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "the file is empty"),
        (codecs.BOM_UTF8, "the file is empty"),
        (b" \n\t\r\n", "the file is empty"),
        (codecs.BOM_UTF8 + b"\n  \n", "the file is empty"),
        (b"<?xml version='1.0' encoding='UTF-8'?>", "there is no root element"),
        (b"<?xml version='1.0' encoding='UTF-8'?>\n<!-- a comment -->\n", "there is no root element"),
        (b"<?xml version='1.0' encoding='UTF-8'", "the XML declaration is not closed"),
        (b"<!-- a comment", "a comment before the root element is not closed"),
        (b"plain text, not XML", "not well-formed XML"),
    ],
)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_empty_and_rootless_files_are_refused(
    content: bytes, why: str, mode: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.xml"
    path.write_bytes(content)
    refused(path, mode, "LT", capsys, why)


def test_every_prefix_of_a_valid_file_is_refused_by_every_reader() -> None:
    """Hypothesis picks the cut; the schema validation, the rules and the parser all refuse it."""
    schema = schema_for(EU_GENERIC.schema_resource)
    tmp = Path(tempfile.mkdtemp(prefix="safexml-"))
    end = DOC.rindex(b">") + 1

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.integers(min_value=0, max_value=end - 1))
    def check(at: int) -> None:
        prefix = DOC[:at]
        with pytest.raises(ValueError):  # XmlFileError, or NotEuDpiMessageError cut in the root's name
            check_message(prefix, today=TODAY)
        with pytest.raises(XmlFileError):
            safexml.parse_bytes(prefix, "prefix")
        with pytest.raises(XmlFileError):
            for _ in safexml.iterparse(prefix, name="prefix"):
                pass
        path = tmp / "prefix.xml"
        path.write_bytes(prefix)
        with pytest.raises(XmlFileError):
            validate_file(path, schema)

    # cut inside the root's start tag the prefix "dpi" is not yet declared: that is said as well
    with pytest.raises(ValueError, match="DPI_OECD in no namespace"):
        check_message(DOC[: DOC.index(b"<dpi:DPI_OECD") + 13], today=TODAY)

    check()


def with_prolog(prolog: bytes) -> bytes:
    decl = b"<?xml version='1.0' encoding='UTF-8'?>"
    return DOC.replace(decl, decl + b"\n" + prolog, 1)


BILLION_LAUGHS = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b"]>"
)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(with_prolog(BILLION_LAUGHS).replace(TIN, b"&lol9;"), id="billion laughs"),
        pytest.param(with_prolog(b'<!DOCTYPE x [<!ENTITY e "DE999999999">]>').replace(TIN, b"&e;"), id="internal"),
        pytest.param(
            with_prolog(b"<!DOCTYPE x [<!ENTITY % p \"<!ENTITY e 'x'>\"> %p;]>").replace(TIN, b"&e;"), id="parameter"
        ),
        pytest.param(
            with_prolog(b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>'),
            id="parameter-external",
        ),
        pytest.param(with_prolog(b'<!DOCTYPE dpi:DPI_OECD SYSTEM "file:///etc/passwd">'), id="external DTD"),
        pytest.param(with_prolog(b"<!-- first --><?pi x?>\n<!DOCTYPE x>"), id="after a comment and a PI"),
        pytest.param(with_prolog(b"<!DOCTYPE x PUBLIC '-//x//EN' 'x.dtd'>"), id="public"),
        pytest.param(codecs.BOM_UTF8 + with_prolog(b"<!DOCTYPE x>"), id="after a BOM"),
    ],
)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_a_doctype_is_refused_in_every_form_and_mode(
    document: bytes, mode: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "doctype.xml"
    path.write_bytes(document)
    line = refused(path, mode, "LT", capsys, "carries a DOCTYPE")
    assert "passwd" not in line and "lol" not in line


def test_a_doctype_is_refused_by_the_rules_and_the_status_reader_too() -> None:
    document = with_prolog(b'<!DOCTYPE x [<!ENTITY e "x">]>')
    with pytest.raises(XmlFileError, match="carries a DOCTYPE"):
        check_message(document, today=TODAY)
    with pytest.raises(XmlFileError, match="carries a DOCTYPE"):
        safexml.parse_bytes(document, "status.xml", utf8_only=False)
    # a DOCTYPE hidden in UTF-16, where a byte search for "<!DOCTYPE" finds nothing
    utf16 = with_prolog(b"<!DOCTYPE x>").decode().replace("encoding='UTF-8'", "encoding='UTF-16'").encode("utf-16")
    assert b"<!DOCTYPE" not in utf16
    with pytest.raises(XmlFileError, match="carries a DOCTYPE"):
        safexml.parse_bytes(utf16, "status.xml", utf8_only=False)
    for without_bom in ("utf-16-le", "utf-16-be"):
        data = with_prolog(b"<!DOCTYPE x>").decode().replace("UTF-8", "UTF-16").encode(without_bom)
        with pytest.raises(XmlFileError, match="carries a DOCTYPE"):
            safexml.parse_bytes(data, "status.xml", utf8_only=False)


@pytest.mark.parametrize(
    ("document", "why"),
    [
        pytest.param(
            DOC.replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'"), "is in ISO-8859-1", id="declared Latin-1"
        ),
        pytest.param(
            DOC.replace(b"encoding='UTF-8'", b"encoding='windows-1252'"), "is in windows-1252", id="declared cp1252"
        ),
        pytest.param(
            DOC.replace(b"encoding='UTF-8'", b"encoding='UTF-16'").decode().encode("utf-16"), "UTF-16", id="UTF-16"
        ),
        pytest.param(DOC.decode().encode("utf-16-le"), "UTF-16", id="UTF-16 without a BOM"),
        pytest.param(DOC.decode().encode("utf-32"), "UTF-32", id="UTF-32"),
        pytest.param(
            DOC.replace(b"encoding='UTF-8'", b"encoding='klingon-8'"), "'klingon-8' is not known", id="unknown"
        ),
    ],
)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_only_utf8_is_read(
    document: bytes, why: str, mode: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "encoding.xml"
    path.write_bytes(document)
    refused(path, mode, "LT", capsys, why)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(codecs.BOM_UTF8 + DOC, id="UTF-8 with a BOM"),
        pytest.param(DOC.replace(b"encoding='UTF-8'", b'encoding="utf-8"'), id="declared in lower case"),
        pytest.param(DOC.replace(b"<?xml version='1.0' encoding='UTF-8'?>\n", b""), id="no declaration"),
    ],
)
def test_utf8_in_its_other_spellings_stays_valid(
    document: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "utf8.xml"
    path.write_bytes(document)
    for mode in (m for m in MODES if m != ["--rules"]):  # a domestic message: not for the exchange rules
        code, lines = run(path, mode, "LT", capsys)
        assert code == 0 and len(lines) == 1 and "valid" in lines[0], lines


@pytest.mark.parametrize(
    ("document", "why"),
    [
        pytest.param(
            DOC.replace(TIN, b"DE12\xff\xfe3456789"), "Invalid bytes in character encoding", id="invalid UTF-8"
        ),
        pytest.param(DOC.replace(TIN, b"DE12\xc3\x283456789"), "(line 42)", id="a broken sequence"),
        pytest.param(DOC.replace(TIN, b"DE12\x003456789"), "Char 0x0 out of allowed range", id="NUL"),
        pytest.param(DOC.replace(TIN, b"DE12\x1b3456789"), "(line 42)", id="ESC"),
        pytest.param(
            DOC.replace(b"</dpi:ReportableSeller>", b"</dpi:ReportableSellers>", 1), "tag mismatch", id="mismatched"
        ),
        pytest.param(DOC + b"<x/>", "Extra content at the end of the document", id="trailing element"),
        pytest.param(DOC + b"trailing text", "Extra content at the end of the document", id="trailing text"),
        pytest.param(
            DOC.replace(TIN, b"DE12&foo;3456789"), "Entity 'foo' not defined (line 42)", id="undefined entity"
        ),
        pytest.param(DOC.replace(TIN, b"DE12<3456789"), "(line 42)", id="a bare <"),
        pytest.param(
            DOC.replace(b' xmlns:dpi="urn:oecd:ties:dpi:v1"', b"", 1),
            "Namespace prefix dpi on DPI_OECD is not defined (line 2)",
            id="undefined prefix of the root",
        ),
        pytest.param(
            DOC.replace(b'issuedBy="DE"', b'issuedBy="DE" zz:a="DE123456789"', 1),
            "Namespace prefix zz for a on TIN is not defined (line 42)",
            id="undefined prefix of an attribute",
        ),
        pytest.param(
            DOC.replace(b'issuedBy="DE"', b'issuedBy="DE" issuedBy="DE"'), "(line 42)", id="repeated attribute"
        ),
    ],
)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_what_is_not_well_formed_is_one_line_without_the_data(
    document: bytes, why: str, mode: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.xml"
    path.write_bytes(document)
    line = refused(path, mode, "LT", capsys, "not well-formed XML")
    assert why in line
    assert "3456789" not in line and "0xC3" not in line


def test_a_huge_prolog_is_refused_without_reading_the_file() -> None:
    comment = b"<!--" + b"x" * (safexml.MAX_PROLOG_BYTES + 10) + b"-->"
    with pytest.raises(XmlFileError, match="no root element in the first"):
        safexml.parse_bytes(with_prolog(comment), "big.xml")
    # a long prolog within the bound is read
    assert safexml.parse_bytes(with_prolog(b"<!--" + b"x" * 100_000 + b"-->"), "long.xml").tag.endswith("DPI_OECD")


def test_the_prolog_check_reads_only_the_start_of_a_large_file(tmp_path: Path) -> None:
    class Counting:
        def __init__(self, data: bytes) -> None:
            self.data, self.at, self.largest = data, 0, 0

        def read(self, size: int = -1) -> bytes:
            size = len(self.data) if size is None or size < 0 else size
            self.largest = max(self.largest, size if self.at == 0 else 0)
            chunk = self.data[self.at : self.at + size]
            self.at += len(chunk)
            return chunk

    stream = Counting(DOC + b"<!--" + b"x" * 5_000_000 + b"-->")
    head = safexml.read_head(stream, "large.xml")  # type: ignore[arg-type]
    assert len(head) < 64 * 1024 and stream.largest < 64 * 1024


def test_parser_messages_do_not_quote_data() -> None:
    assert "0xFF" not in safexml.withhold_values(
        "Input is not proper UTF-8, indicate encoding !\nBytes: 0xFF 0x41 0x42"
    )
    assert "secret" not in safexml.withhold_values(
        "Element 'x': The value 'secret' is not accepted by the pattern 'y'."
    )
    error = etree.XMLSyntaxError("Input is not proper UTF-8\nBytes: 0xC3 0x28 0x41 0x42, line 3, column 9", 0, 3, 9)
    assert safexml.syntax_message(error) == "Input is not proper UTF-8 Bytes: (withheld) (line 3)"


def test_the_status_reader_accepts_what_an_authority_may_send() -> None:
    """A status document is not a DPI message: UTF-16 with its BOM is read when the caller allows it."""
    data = "<?xml version='1.0' encoding='UTF-16'?><status>ok</status>".encode("utf-16")
    assert safexml.parse_bytes(data, "status.xml", utf8_only=False).text == "ok"
    with pytest.raises(XmlFileError, match="must be UTF-8"):
        safexml.parse_bytes(data, "status.xml")


@pytest.mark.parametrize(
    "prolog",
    [
        pytest.param(BILLION_LAUGHS, id="billion laughs"),
        pytest.param(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', id="external entity"),
        pytest.param(b"<!DOCTYPE x [<!ENTITY % p \"<!ENTITY e 'x'>\"> %p;]>", id="parameter"),
        pytest.param(b"<!DOCTYPE x>", id="bare"),
    ],
)
def test_the_well_formedness_parser_refuses_a_doctype_the_prolog_check_let_through(
    prolog: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The well-formedness reading (a parser target that builds no tree) refuses a DOCTYPE itself,
    at the DOCTYPE, before any entity is declared or expanded: the prolog check is only the first
    line of defence."""
    path = tmp_path / "doctype.xml"
    path.write_bytes(with_prolog(prolog).replace(TIN, b"&e;" if b"ENTITY e" in prolog else TIN))
    monkeypatch.setattr(safexml, "check_prolog", lambda *_, **__: True)
    with pytest.raises(XmlFileError, match="carries a DOCTYPE"):
        safexml.well_formed(path)
    safexml.well_formed(EU)  # a file without one is read to its end as before
    # the same parser target with the schema plugged in: the target's exception, not a verdict
    schema = schema_for(EU_GENERIC.schema_resource)
    with pytest.raises(XmlFileError, match="carries a DOCTYPE"):
        safexml.validate_stream(path, schema)
    assert safexml.validate_stream(EU, schema)


# ------------------------------------------------------------------- found by a second reading


def test_a_doctype_cut_by_the_first_read_is_found(tmp_path: Path) -> None:
    """The prolog check reads 16 KiB first: a DOCTYPE starting just before that boundary must
    make it read on, not take the cut ``<!DOC`` for the root element."""
    for offset in range(16_370, 16_392):
        decl = b'<?xml version="1.0" encoding="UTF-8"?>'
        doc = decl + b" " * (offset - len(decl)) + b'<!DOCTYPE a [<!ENTITY e "boom">]><a>&e;</a>'
        path = tmp_path / "split.xml"
        path.write_bytes(doc)
        with pytest.raises(XmlFileError, match="carries a DOCTYPE"):
            validate_file(path, schema_for(EU_GENERIC.schema_resource))
        with pytest.raises(XmlFileError, match="carries a DOCTYPE"):
            list(safexml.iterparse(path))


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b'<?xml version="1.0"' + b" " * 250 + b'encoding="ISO-8859-1"?><a>caf\xe9</a>', "is in ISO-8859-1"),
        (
            b'<?xml version="1.0"\n'
            + b"\t" * 300
            + b'encoding="UTF-7"?>+ADw-!DOCTYPE a [+ADw-!ENTITY e "x">]>+ADw-a/>',
            "is in UTF-7",
        ),
    ],
    ids=["latin-1 after 250 spaces", "utf-7 hiding a DOCTYPE"],
)
def test_the_whole_declaration_is_read_however_long(tmp_path: Path, document: bytes, why: str) -> None:
    path = tmp_path / "decl.xml"
    path.write_bytes(document)
    with pytest.raises(XmlFileError, match=why):
        validate_file(path, schema_for(EU_GENERIC.schema_resource))


@pytest.mark.parametrize("tail", [b"\n<!-- cut", b"<?pi", b"<b", b"</a", b"\n<"])
def test_content_after_the_root_is_refused_by_the_schema_validation_too(tmp_path: Path, tail: bytes) -> None:
    """lxml's iterparse with a schema stops looking once the root is closed."""
    path = tmp_path / "tail.xml"
    path.write_bytes(DOC + tail)
    with pytest.raises(XmlFileError, match="not well-formed XML"):
        validate_file(path, schema_for(EU_GENERIC.schema_resource))


@pytest.mark.parametrize("encoding", ["zlib", "hex", "base64", "bz2", "rot13", "idna", "uu"])
def test_a_status_document_in_a_codec_that_is_no_text_encoding_is_refused(encoding: str) -> None:
    data = f'<?xml version="1.0" encoding="{encoding}"?><a/>'.encode()
    with pytest.raises(XmlFileError):
        safexml.parse_bytes(data, "status.xml", utf8_only=False)
