"""The one way this project reads an XML file it did not just write itself.

A DPI message given to ``dac7 validate``, a file checked by the preflight or the DGFiP rules, a
status document from an authority: each is read through this module, which

* looks at the prolog before the parser does: an empty file, a file without a root element, a
  DOCTYPE (internal subset, parameter entities, an external DTD: none is ever legitimate in a DPI
  or status document) and, where the caller asks for it, an encoding other than UTF-8 are refused
  with one line naming the file;
* parses with entities unresolved, no DTD loaded, nothing fetched from the network;
* turns every parser error into :class:`XmlFileError`, one line with the line number and without
  the data the parser may quote;
* never gives a verdict on a file it has not read to its end: lxml's ``iterparse`` with a schema
  does not raise at a premature end of the document (a file cut off after a complete element
  passes), so :func:`validate_stream` validates with a parser that reads the whole file and
  raises at a premature end (a parser target, with the schema plugged into it).

Why refuse a DOCTYPE rather than parse it harmlessly: no authority's schema allows one (the EU,
DGFiP and AdE checkers refuse it), libxml2 reports some parameter-entity constructions as an
"internal error", and entity amplification is only one bug away. The prolog is decoded with the
encoding the file announces (its byte order mark, else its XML declaration), so a DOCTYPE hidden in
UTF-16 is found as well.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Generator, Iterable
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from lxml import etree

from reporting.errors import PermanentError

#: How far into a file its root element must have started (comments and processing instructions
#: before it included).
MAX_PROLOG_BYTES = 1 << 20
_FIRST_READ = 1 << 14

_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_DECLARATION = re.compile(r"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")
_DECLARATION_START = re.compile(r"<\?xml[\s?]")
_NAME_START = re.compile(r"<[A-Za-z_:\u00c0-\uffff]")
# libxml2 quotes the offending value in some messages ("The value '...' is not accepted by the
# pattern", "'...' is not a valid value of the atomic type"): a name, a TIN, a birth date.
# libxml2's "Input is not proper UTF-8 ... Bytes: 0xC3 0x28 0x41 0x42" quotes bytes of the data.
_BYTES = re.compile(r"Bytes:(?:\s*0x[0-9A-Fa-f]{2})+")
_QUOTED_VALUE = re.compile(r"(The value |: )'(?:[^']|'(?! is ))*'(?= is )", re.DOTALL)


class XmlFileError(PermanentError, ValueError):
    """A file that is not read as XML: empty, cut off, not well-formed, with a DOCTYPE, or in an
    encoding that is not allowed. The message is one line that names the file."""


def withhold_values(message: str) -> str:
    """A schema or parser message without the data value it quotes (element names, facets and
    patterns stay)."""
    return _BYTES.sub("Bytes: (withheld)", _QUOTED_VALUE.sub(r"\1(value withheld)", message))


def syntax_message(exc: etree.XMLSyntaxError) -> str:
    """One line for a parser error: its own words (values withheld) and its line."""
    text = getattr(exc, "msg", None) or str(exc)
    line = exc.lineno or (exc.position[0] if getattr(exc, "position", None) else 0)
    log = getattr(exc, "error_log", None)
    if not line and log:  # iterparse's "no element found" after an error it logged (an undefined entity)
        text, line = log[-1].message, log[-1].line
    text = " ".join(withhold_values(text).split())
    text = re.sub(r",? line \d+, column \d+$", "", text).strip()
    return f"{text} (line {line})" if line else text


def _encoding_of(head: bytes) -> str:
    """The encoding the file announces: its byte order mark, the byte pattern of UTF-16/32
    without one, else its declaration (UTF-8 when there is none)."""
    for bom, encoding in _BOMS:
        if head.startswith(bom) and bom != codecs.BOM_UTF8:
            return encoding
    head = head.removeprefix(codecs.BOM_UTF8)
    if head.startswith((b"\x00\x00\x00<", b"<\x00\x00\x00")):
        return "UTF-32-BE" if head[0] == 0 else "UTF-32-LE"
    if head.startswith((b"\x00<", b"<\x00")):
        return "UTF-16-BE" if head[0] == 0 else "UTF-16-LE"
    # the whole declaration, however much white space it holds (up to its "?>")
    end = head.find(b"?>")
    declaration = head[: end + 2] if end >= 0 else head
    found = _DECLARATION.match(declaration.decode("ascii", "replace"))
    return found.group(1) if found else "UTF-8"


def check_prolog(head: bytes, name: str, *, utf8_only: bool = True, complete: bool = False) -> bool:
    """Refuse what the start of a file shows to be unacceptable (see the module docstring).

    ``head`` is the start of the file; ``complete`` says it is the whole file. True when the root
    element starts within ``head``; False when more of the file is needed to decide (never when
    ``head`` is complete or longer than :data:`MAX_PROLOG_BYTES`)."""
    encoding = _encoding_of(head)
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise XmlFileError(f"{name}: the declared encoding {encoding!r} is not known") from None
    if not getattr(codec, "_is_text_encoding", True):  # zlib, base64, rot13 ...: no text encoding
        raise XmlFileError(f"{name}: the declared encoding {encoding!r} is not a text encoding")
    if utf8_only and codec.name != "utf-8":
        raise XmlFileError(f'{name}: the file is in {encoding}; a DPI message must be UTF-8 (encoding="UTF-8")')
    try:
        text = codecs.getincrementaldecoder(codec.name)(errors="replace").decode(head, final=complete)
    except Exception:  # a codec that fails on these bytes whatever its error mode
        raise XmlFileError(f"{name}: the file cannot be read as {encoding}") from None
    text = text.removeprefix("\ufeff")
    at = 0
    if _DECLARATION_START.match(text):
        end = text.find("?>")
        if end < 0:
            return _no_root(name, head, complete, "the XML declaration is not closed")
        at = end + 2
    while True:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        if at >= len(text):
            return _no_root(name, head, complete, "there is no root element")
        if text.startswith("<!--", at):
            end = text.find("-->", at + 4)
            if end < 0:
                return _no_root(name, head, complete, "a comment before the root element is not closed")
            at = end + 3
        elif text.startswith("<?", at):
            end = text.find("?>", at + 2)
            if end < 0:
                return _no_root(name, head, complete, "a processing instruction before the root element is not closed")
            at = end + 2
        elif text[at : at + 9].upper() == "<!DOCTYPE":
            raise XmlFileError(_doctype(name))
        else:
            # the root element (or content the parser will name); but "<", "<!", "<!DOC" ... at the
            # end of what was read may be more markup before it: read on
            return complete or len(head) > MAX_PROLOG_BYTES or not _cut_markup(text[at:])


def _doctype(name: str) -> str:
    return (
        f"{name}: the file carries a DOCTYPE (a DTD or entity declarations); no DPI or status document may "
        "have one, it is refused"
    )


def _cut_markup(rest: str) -> bool:
    """Whether ``rest`` (the text from the next markup to the end of what was read) could be the
    beginning of a DOCTYPE, a comment or a processing instruction cut off by the read."""
    return any(len(rest) < len(token) and token.startswith(rest.upper()) for token in ("<!DOCTYPE", "<!--", "<?"))


def _refuse_dtd(elem: etree._Element, name: str) -> None:
    """The parser's own word on a DTD, whatever the prolog check saw."""
    info = elem.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise XmlFileError(_doctype(name))


def _no_root(name: str, head: bytes, complete: bool, why: str) -> bool:
    if not complete and len(head) <= MAX_PROLOG_BYTES:
        return False
    if complete:
        if not head.strip(b" \t\r\n" + codecs.BOM_UTF8):
            raise XmlFileError(f"{name}: the file is empty")
        raise XmlFileError(f"{name}: not an XML document: {why}")
    raise XmlFileError(
        f"{name}: no root element in the first {MAX_PROLOG_BYTES} bytes; a DPI or status document starts "
        "with its root element after at most an XML declaration and a few comments"
    )


def read_head(stream: IO[bytes], name: str, *, utf8_only: bool = True) -> bytes:
    """The first bytes of ``stream``, read in small steps until :func:`check_prolog` has seen the
    start of the root element (so a large file costs no more memory than a small one)."""
    head = b""
    step = _FIRST_READ
    while True:
        chunk = stream.read(step)
        head += chunk
        if check_prolog(head, name, utf8_only=utf8_only, complete=not chunk):
            return head
        step = min(step * 4, MAX_PROLOG_BYTES + 1 - len(head)) or 1


class _Prefixed:
    """A binary stream whose first bytes were read to check the prolog, served again."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def parser(*, huge_tree: bool = True, **kw: Any) -> etree.XMLParser:
    """An XMLParser that expands no entity, loads no DTD and reaches no network."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=huge_tree, **kw
    )


def iterparse(
    source: str | Path | bytes | IO[bytes],
    *,
    name: str | None = None,
    events: Iterable[str] = ("end",),
    tag: str | Iterable[str] | None = None,
    utf8_only: bool = True,
) -> Generator[tuple[str, etree._Element], None, None]:
    """lxml's ``iterparse`` behind the prolog check; a parser error is an :class:`XmlFileError`.

    Without a schema lxml raises at a premature end of the document itself (verified by the tests
    with files cut off at element boundaries)."""
    label = name or (str(source) if isinstance(source, str | Path) else "the document")
    own: IO[bytes] | None = None
    stream: IO[bytes]
    if isinstance(source, str | Path):
        own = stream = open(source, "rb")  # noqa: SIM115 - closed below, also when the caller stops early
    elif isinstance(source, bytes):
        stream = BytesIO(source)
    else:
        stream = source
    try:
        head = read_head(stream, label, utf8_only=utf8_only)
        kw: dict[str, Any] = {"tag": tag} if tag is not None else {}
        parsed = etree.iterparse(
            _Prefixed(head, stream),
            events=tuple(events),  # type: ignore[arg-type]  # lxml's stubs list its event names as literals
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,
            **kw,
        )
        try:
            first = True
            for event, elem in parsed:
                if first:
                    _refuse_dtd(elem, label)
                    first = False
                yield event, elem
        except etree.XMLSyntaxError as exc:
            raise XmlFileError(f"{label}: not well-formed XML: {syntax_message(exc)}") from None
    finally:
        if own is not None:
            own.close()


def parse_bytes(data: bytes, name: str, *, utf8_only: bool = True, huge_tree: bool = False) -> etree._Element:
    """The root of a whole document held in memory (a status document), checked as above."""
    check_prolog(data[: MAX_PROLOG_BYTES + 1], name, utf8_only=utf8_only, complete=len(data) <= MAX_PROLOG_BYTES)
    try:
        root = etree.fromstring(data, parser(huge_tree=huge_tree, remove_pis=True, collect_ids=False))
    except etree.XMLSyntaxError as exc:
        raise XmlFileError(f"{name}: not well-formed XML: {syntax_message(exc)}") from None
    _refuse_dtd(root, name)  # the prolog check saw none; refuse all the same
    return root


def release(elem: etree._Element) -> None:
    """Free an element ``iterparse`` has read to its end, and everything before it in the
    document (the earlier children of it and of each ancestor, all read already): ``clear``
    alone leaves an empty element behind for every element read, which at a million sellers is
    gigabytes. Memory then stays bounded by the depth of the document."""
    elem.clear(keep_tail=True)
    node = elem
    while (parent := node.getparent()) is not None:
        while node.getprevious() is not None:
            del parent[0]
        node = parent


def validate_stream(path: str | Path, schema: etree.XMLSchema) -> bool:
    """True when the whole file is well-formed, complete and valid against ``schema``; read in
    bounded memory. False says only "not valid" (the caller lists the errors); a file that is not
    well-formed raises :class:`XmlFileError`.

    One reading, without a tree: the parser checks every byte and libxml2's schema validator,
    plugged into the parser's events, checks every element, both in C, and no element reaches
    Python (:func:`well_formed`'s parser target, with the schema). Such a parser does not raise
    for a schema error: it logs it, so any error logged makes the file "not valid". Where it
    raises (not well-formed, a premature end, a DOCTYPE), the file is read again without the
    schema, so that what is not well-formed is said in the same words as by :func:`well_formed`
    (the parser's first error, not one the validator logged after it)."""
    try:
        if not _read_without_tree(path, schema):
            return True
    except XmlFileError:
        well_formed(path)  # raises, in its own words
        return False  # pragma: no cover - well-formed without the schema: "not valid", listed by the caller
    # Not valid: but with the schema plugged in, libxml2 logs a namespace error (a prefix without
    # its xmlns declaration, ``<dpi:DPI_OECD>``) nowhere, and the file only looks invalid; read it
    # again without the schema, which raises for what is not namespace-well-formed.
    well_formed(path)
    return False


def _read_without_tree(path: str | Path, schema: etree.XMLSchema | None) -> list[Any]:
    """Read the whole file without building a tree (see :func:`well_formed`), checked against
    ``schema`` when given; the errors the parser logged without raising (a schema's)."""
    label = str(path)
    with open(path, "rb") as stream:
        head = read_head(stream, label)
        target = parser(target=_NoTree(label), schema=schema)
        try:
            etree.parse(_Prefixed(head, stream), target)
        except etree.XMLSyntaxError as exc:
            raise XmlFileError(f"{label}: not well-formed XML: {syntax_message(exc)}") from None
    errors = [e for e in target.error_log if e.level >= etree.ErrorLevels.ERROR]
    for e in errors:
        # The parser logs a namespace error (an undefined prefix) without raising; it is not
        # well-formed all the same (iterparse and a whole parse raise for it).
        if e.domain in _NOT_WELL_FORMED:
            raise XmlFileError(f"{label}: not well-formed XML: {logged_message(e)}")
    return errors


#: The domains of libxml2's logged errors that say a file is not well-formed (a schema's are
#: ``SCHEMASV``: "not valid").
_NOT_WELL_FORMED = frozenset({etree.ErrorDomains.PARSER, etree.ErrorDomains.NAMESPACE})


def logged_message(entry: Any) -> str:
    """One line for an error the parser logged (an ``error_log`` entry): its words (values
    withheld) and its line, as :func:`syntax_message` says a raised one."""
    text = " ".join(withhold_values(entry.message).split())
    return f"{text} (line {entry.line})" if entry.line else text


#: How many elements a reading with ``iterparse`` takes between two :func:`release` calls: each
#: call frees everything read before it, so memory stays bounded by this many elements, and the
#: walk up the ancestors is paid once per batch instead of once per element.
RELEASE_EVERY = 512


class _NoTree:
    """A parser target that builds nothing: the parser checks every byte in C, no element is
    handed to Python. A DOCTYPE the parser meets is refused (the prolog check saw none)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def doctype(self, *_: Any) -> None:
        raise XmlFileError(_doctype(self.name))

    def close(self) -> None:
        return None


def well_formed(path: str | Path) -> None:
    """Read the whole file without a schema and without building a tree; raise
    :class:`XmlFileError` at the first thing that is not well-formed XML (a premature end and an
    undefined namespace prefix included)."""
    _read_without_tree(path, None)
