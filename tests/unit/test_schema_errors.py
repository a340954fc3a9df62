"""A schema error names the file, the line, what is wrong (values withheld) and the path of the
element, so that a person finds the record to correct."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reporting import safexml
from reporting.authorities import EU_GENERIC
from reporting.checks.schema import SchemaError, schema_for, validate_file
from reporting.safexml import XmlFileError

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "eu" / "initial-test.xml"


def test_an_error_carries_the_line_and_the_path_of_its_element(tmp_path: Path) -> None:
    text = GOLDEN.read_text(encoding="utf-8")
    bad = text.replace("<dpi:NumbQ3>2</dpi:NumbQ3>", "<dpi:NumbQ3>two</dpi:NumbQ3>", 1)
    assert bad != text
    line = bad[: bad.index("<dpi:NumbQ3>two")].count("\n") + 1
    path = tmp_path / "bad.xml"
    path.write_text(bad, encoding="utf-8")
    (error,) = validate_file(path, schema_for(EU_GENERIC.schema_resource))
    assert error.line == line
    assert error.path.startswith("/dpi:DPI_OECD/dpi:DPIBody")
    assert error.path.endswith("/dpi:NumberOfActivities/dpi:NumbQ3")
    assert "two" not in error.message  # the value is withheld: it may be personal data
    assert str(error) == f"{path}:{line}: {error.message} (at {error.path})"


def test_a_valid_file_has_no_error_and_an_error_without_path_reads_as_before() -> None:
    assert validate_file(GOLDEN, schema_for(EU_GENERIC.schema_resource)) == []
    assert str(SchemaError("f.xml", 3, "bad")) == "f.xml:3: bad"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-8"?>\n<dpi:DPI_OECD version="1.0"><dpi:MessageSpec/></dpi:DPI_OECD>\n',
            "not well-formed XML: Namespace prefix dpi on DPI_OECD is not defined (line 2)",
            id="undefined prefix of the root",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-8"?>\n<DPI_OECD xmlns="urn:oecd:ties:dpi:v1">\n<x:MessageSpec/>\n'
            b"</DPI_OECD>\n",
            "not well-formed XML: Namespace prefix x on MessageSpec is not defined (line 3)",
            id="undefined prefix of a child",
        ),
        pytest.param(b"", "the file is empty", id="empty"),
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-8"?>\n<a>\x00</a>\n',
            "not well-formed XML: Invalid character: Char 0x0 out of allowed range (line 2)",
            id="NUL byte",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-8"?>\n<dpi:DPI_OECD xmlns:dpi="urn:oecd:ties:dpi:v1">\n'
            b"<dpi:MessageSpec>",
            "not well-formed XML: Premature end of data in tag MessageSpec line 3 (line 3)",
            id="cut off",
        ),
    ],
)
def test_a_file_that_is_not_well_formed_is_one_line_never_a_parser_exception(
    content: bytes, why: str, tmp_path: Path
) -> None:
    """Every reader of the schema validation (``dac7 validate``, the validation beside the render,
    HMRC's upload check) refuses it with an :class:`XmlFileError` naming the file, never lxml's
    ``XMLSyntaxError``; an undefined prefix was taken for "not valid" by the streaming reading,
    then raised by the whole parse that lists the errors."""
    path = tmp_path / "odd.xml"
    path.write_bytes(content)
    schema = schema_for(EU_GENERIC.schema_resource)
    for read in (lambda: validate_file(path, schema), lambda: safexml.validate_stream(path, schema)):
        with pytest.raises(XmlFileError) as caught:
            read()
        assert str(caught.value) == f"{path}: {why}"
    with pytest.raises(XmlFileError, match=re.escape(why)):
        safexml.well_formed(path)
