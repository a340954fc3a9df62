"""The one way a report writer builds an HTML page: self-contained (inline CSS, no script, nothing
fetched), every value escaped, written atomically and owner-only.

    body = [f"<h1>{escape(title)}</h1>", table(("Kind", "Count"), rows)]
    write_page(path, page(title, CSS, "\\n".join(body)))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

__all__ = ["Cell", "Row", "escape", "page", "table", "write_page"]


def page(title: str, css: str, body: str) -> str:
    """A whole page: ``title`` (escaped here), the inline ``css`` and the ``body`` (HTML, its values
    escaped by the caller). A viewport meta tag makes it fit a phone or a narrow window."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title><style>{css}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


@dataclass(frozen=True)
class Cell:
    """A cell whose tag carries attributes: ``text`` is escaped here, ``attrs`` is HTML written by
    the caller (e.g. ``' class="n"'``)."""

    text: str
    attrs: str = ""


@dataclass(frozen=True)
class Row:
    """A row whose ``<tr>`` carries attributes (HTML written by the caller, e.g.
    ``' data-kind="TIN unknown"'``)."""

    cells: Sequence[str | Cell]
    attrs: str = ""


def table(headers: Iterable[str], rows: Iterable[Sequence[str | Cell] | Row], *, attrs: str = "") -> str:
    """A table of text cells under one row of headers: the headers and every cell's text escaped
    here. ``attrs`` (HTML written by the caller, e.g. ``' id="counts"'``) goes into the opening
    tag; a :class:`Row` or a :class:`Cell` carries attributes of its own."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(_row(row if isinstance(row, Row) else Row(row)) for row in rows)
    return f"<table{attrs}><tr>{head}</tr>{body}</table>"


def _row(row: Row) -> str:
    cells = (cell if isinstance(cell, Cell) else Cell(cell) for cell in row.cells)
    return f"<tr{row.attrs}>" + "".join(f"<td{c.attrs}>{escape(c.text)}</td>" for c in cells) + "</tr>"


def write_page(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary name, then a rename), readable by its
    owner only from the first byte; returns ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
