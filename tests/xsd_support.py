"""Edits of a valid XML document, for the schema-equivalence tests: each returns a mutator that
breaks (or bends) one thing, so that our schema and the official one can be shown to agree."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

from lxml import etree

Mutator = Callable[[etree._ElementTree], None]
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
