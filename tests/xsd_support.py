"""Edits of a valid XML document, for the schema-equivalence tests: each returns a mutator that
breaks (or bends) one thing, so that our schema and the official one can be shown to agree."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

from lxml import etree

Mutator = Callable[[etree._ElementTree], None]
XS = "http://www.w3.org/2001/XMLSchema"
_KEEP = object()


class Mutations:
    """Mutators over documents whose prefixes are ``ns`` (used in XPaths and XML fragments)."""

    def __init__(self, ns: Mapping[str, str]) -> None:
        self.ns = dict(ns)

    def one(self, tree: etree._ElementTree, xpath: str) -> etree._Element:
        found = tree.xpath(xpath, namespaces=self.ns)
        assert found, f"mutation target not found: {xpath}"
        return found[0]

    def fragment(self, text: str) -> etree._Element:
        declarations = " ".join(f'xmlns:{p}="{u}"' for p, u in self.ns.items())
        return etree.fromstring(f"<w {declarations}>{text}</w>")[0]

    def remove(self, xpath: str) -> Mutator:
        def run(tree: etree._ElementTree) -> None:
            el = self.one(tree, xpath)
            el.getparent().remove(el)

        return run

    def set_text(self, xpath: str, value: str) -> Mutator:
        def run(tree: etree._ElementTree) -> None:
            self.one(tree, xpath).text = value

        return run

    def set_attr(self, xpath: str, name: str, value: str | None) -> Mutator:
        def run(tree: etree._ElementTree) -> None:
            el = self.one(tree, xpath)
            if value is None:
                del el.attrib[name]
            else:
                el.set(name, value)

        return run

    def swap_with_next(self, xpath: str) -> Mutator:
        def run(tree: etree._ElementTree) -> None:
            el = self.one(tree, xpath)
            nxt = el.getnext()
            while nxt is not None and not isinstance(nxt.tag, str):
                nxt = nxt.getnext()
            assert nxt is not None, f"nothing follows {xpath}"
            nxt.addnext(el)

        return run

    def duplicate(self, xpath: str) -> Mutator:
        def run(tree: etree._ElementTree) -> None:
            el = self.one(tree, xpath)
            el.addnext(copy.deepcopy(el))

        return run

    def insert_after(self, xpath: str, text: str) -> Mutator:
        def run(tree: etree._ElementTree) -> None:
            self.one(tree, xpath).addnext(self.fragment(text))

        return run

    def insert_before(self, xpath: str, text: str) -> Mutator:
        def run(tree: etree._ElementTree) -> None:
            self.one(tree, xpath).addprevious(self.fragment(text))

        return run

    def rename(self, xpath: str, local_name: str, namespace: str | object | None = _KEEP) -> Mutator:
        """Rename the element; by default in its own namespace, else in ``namespace`` (None: none)."""

        def run(tree: etree._ElementTree) -> None:
            el = self.one(tree, xpath)
            ns = etree.QName(el).namespace if namespace is _KEEP else namespace
            el.tag = f"{{{ns}}}{local_name}" if ns else local_name

        return run

    @staticmethod
    def chain(*steps: Mutator) -> Mutator:
        def run(tree: etree._ElementTree) -> None:
            for step in steps:
                step(tree)

        return run


# --------------------------------------------------------------------------- the structure of a schema set
# A walk over two schema sets (each file's root by file name), to prove them the same but for
# their annotations: the same named components, code lists, facets and content models.


def xs(local: str) -> str:
    return f"{{{XS}}}{local}"


def resolve(el: etree._Element, value: str | None) -> str | None:
    """A QName attribute value as {namespace}local, independent of the prefix used."""
    if value is None:
        return None
    prefix, _, local = value.rpartition(":")
    return f"{{{el.nsmap.get(prefix or None)}}}{local}"


def named(schemas: dict[str, etree._Element], kind: str) -> dict[str, etree._Element]:
    out: dict[str, etree._Element] = {}
    for root in schemas.values():
        tns = root.get("targetNamespace")
        for el in root.findall(xs(kind)):
            key = f"{{{tns}}}{el.get('name')}"
            assert key not in out, f"{key} defined twice"
            out[key] = el
    return out


def _occurs(el: etree._Element) -> tuple[str, str]:
    return el.get("minOccurs", "1"), el.get("maxOccurs", "1")


# Attributes of schema components that canonical() interprets itself; any other one
# (nillable, default, fixed, abstract, block, ...) is compared verbatim.
_HANDLED = {"name", "type", "ref", "substitutionGroup", "minOccurs", "maxOccurs", "use", "base", "value"}
_FACETS = {
    "minLength",
    "maxLength",
    "length",
    "totalDigits",
    "fractionDigits",
    "minInclusive",
    "maxInclusive",
    "minExclusive",
    "maxExclusive",
    "pattern",
    "whiteSpace",
}


def canonical(el: etree._Element) -> object:
    """Annotation-free, prefix-free description of a schema component (recursively)."""
    tag = etree.QName(el).localname
    kids = [c for c in el if isinstance(c.tag, str) and c.tag != xs("annotation")]
    other = tuple(sorted((k, v) for k, v in el.attrib.items() if k not in _HANDLED))
    if tag == "element":  # type, ref and substitutionGroup are QNames: compared by what they name
        refs = tuple(resolve(el, el.get(a)) for a in ("type", "ref", "substitutionGroup"))
        return ("element", el.get("name"), refs, *_occurs(el), other, tuple(canonical(c) for c in kids))
    if tag in ("sequence", "choice", "all"):
        return (tag, *_occurs(el), other, tuple(canonical(c) for c in kids))
    if tag == "any":
        return ("any", *_occurs(el), tuple(sorted(el.attrib.items())))
    if tag == "attribute":
        sub = tuple(canonical(c) for c in kids)
        return ("attribute", el.get("name"), resolve(el, el.get("type")), el.get("use", "optional"), other, sub)
    if tag in ("restriction", "extension"):
        enums = frozenset(c.get("value") for c in kids if c.tag == xs("enumeration"))
        rest = tuple(canonical(c) for c in kids if c.tag != xs("enumeration"))
        return (tag, resolve(el, el.get("base")), enums, rest)
    if tag in ("simpleType", "complexType", "simpleContent", "complexContent"):
        return (tag, other, tuple(canonical(c) for c in kids))
    if tag in _FACETS:
        return (tag, el.get("value"))
    raise AssertionError(f"unexpected schema construct <{tag}> - extend canonical()")


def child_elements(el: etree._Element) -> list[tuple[str, str, str]]:
    """Element particles (name, minOccurs, maxOccurs) of a type, in document order."""
    return [(node.get("name"), *_occurs(node)) for node in el.iter(xs("element")) if node is not el]


def child_particles(el: etree._Element) -> list[tuple[str | None, str | None, str, str]]:
    """Element particles (name, ref, minOccurs, maxOccurs) of a component, in document order: a
    particle that refers to a global element (``ref``) by what it names, independent of the prefix."""
    return [(n.get("name"), resolve(n, n.get("ref")), *_occurs(n)) for n in el.iter(xs("element")) if n is not el]


def enumerations(schemas: dict[str, etree._Element]) -> dict[str, set[str]]:
    out = {}
    for name, st in named(schemas, "simpleType").items():
        values = {e.get("value") for e in st.iter(xs("enumeration"))}
        if values:
            out[name] = values
    return out
