"""XSD validation with lxml.

A valid file is checked while it is parsed, element by element, so that a file of any size
validates in bounded memory. Only when that fails is the file parsed whole, to list every error
with its line number.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from reporting.authorities.base import schema_path


@dataclass(frozen=True, slots=True)
class SchemaError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


# libxml2 quotes the offending value in its messages ("The value '...' is not accepted by the
# pattern", "'...' is not a valid value of the atomic type"): a name, a TIN, a birth date. The
# value is withheld; the line number and the element say where to look.
_QUOTED_VALUE = re.compile(r"(The value |: )'(?:[^']|'(?! is ))*'(?= is )", re.DOTALL)


def withhold_values(message: str) -> str:
    """A schema or parser message without the data value it quotes (element names, facets and
    patterns stay)."""
    return _QUOTED_VALUE.sub(r"\1(value withheld)", message)


def _parser(**kw: object) -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, **kw)


def load_schema(path: str) -> etree.XMLSchema:
    """The schema of a main XSD file, parsed once per version of the file (path and mtime)."""
    return _load_schema(path, Path(path).stat().st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _load_schema(path: str, _mtime_ns: int) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path, _parser()))


def schema_for(resource: str, xsd_dir: str | Path | None = None) -> etree.XMLSchema:
    return load_schema(str(schema_path(resource, xsd_dir)))


def validate_file(path: str | Path, schema: etree.XMLSchema, *, limit: int = 200) -> list[SchemaError]:
    """Every schema error of the file (up to ``limit``), with line numbers; empty when valid."""
    name = str(path)
    try:
        for _event, elem in etree.iterparse(
            name, events=("end",), schema=schema, resolve_entities=False, no_network=True, huge_tree=True
        ):
            if elem.getparent() is not None:
                elem.clear(keep_tail=True)
        return []
    except etree.XMLSyntaxError:
        pass
    try:
        tree = etree.parse(name, _parser())
    except etree.XMLSyntaxError as exc:
        errors = [SchemaError(name, e.line, withhold_values(e.message)) for e in exc.error_log][:limit]
        return errors or [SchemaError(name, 0, withhold_values(str(exc)))]
    if schema.validate(tree):
        return []
    return [SchemaError(name, e.line, withhold_values(e.message)) for e in schema.error_log][:limit]
