"""XSD validation with lxml.

A valid file is checked while it is parsed, element by element, so that a file of any size
validates in bounded memory. Only when that fails is the file parsed whole, to list every error
with its line number.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from lxml import etree

from reporting import safexml
from reporting.safexml import withhold_values

__all__ = ["SchemaError", "load_schema", "schema_for", "schema_path", "validate_file", "withhold_values"]


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One schema error: the file, the line, lxml's message (values withheld) and the path of the
    element it is about (``/dpi:DPI_OECD/dpi:DPIBody/dpi:ReportableSeller[3]/...``: element
    names and positions only, never a value), so that a person finds the record to correct."""

    file: str
    line: int
    message: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" + (f" (at {self.path})" if self.path else "")


def schema_path(resource: str, xsd_dir: str | Path | None = None) -> Path:
    """The main XSD file of a profile: from the user's directory when given, else our own."""
    if xsd_dir:
        return Path(xsd_dir) / Path(resource).name
    return Path(str(files("reporting.xsd").joinpath(resource)))


def load_schema(path: str) -> etree.XMLSchema:
    """The schema of a main XSD file, parsed once per version of the file (path and mtime)."""
    return _load_schema(path, Path(path).stat().st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _load_schema(path: str, _mtime_ns: int) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path, safexml.parser()))


def schema_for(resource: str, xsd_dir: str | Path | None = None) -> etree.XMLSchema:
    return load_schema(str(schema_path(resource, xsd_dir)))


def validate_file(path: str | Path, schema: etree.XMLSchema, *, limit: int = 200) -> list[SchemaError]:
    """Every schema error of the file (up to ``limit``), with its line and element path; empty when valid.

    The verdict is given on the whole file: a file that is empty, cut off, not well-formed (an
    undefined namespace prefix included), in another encoding than UTF-8 or with a DOCTYPE
    raises :class:`reporting.safexml.XmlFileError` (one line naming the file and, for a parser
    error, the line)."""
    name = str(path)
    if safexml.validate_stream(path, schema):
        return []
    try:
        tree = etree.parse(name, safexml.parser())
    except etree.XMLSyntaxError as exc:  # pragma: no cover - the streaming pass raises for it first
        raise safexml.XmlFileError(f"{name}: not well-formed XML: {safexml.syntax_message(exc)}") from None
    if schema.validate(tree):  # pragma: no cover - the streaming pass said otherwise
        return []
    return [SchemaError(name, e.line, withhold_values(e.message), e.path or "") for e in schema.error_log][:limit]
