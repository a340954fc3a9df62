"""A schema error names the file, the line, what is wrong (values withheld) and the path of the
element, so that a person finds the record to correct."""

from __future__ import annotations

from pathlib import Path

from reporting.authorities import EU_GENERIC
from reporting.checks.schema import SchemaError, schema_for, validate_file

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
