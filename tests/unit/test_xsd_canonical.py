"""The shared ``canonical()`` of the schema-equivalence tests (tests/xsd_support.py): the
references of an element (``type``, ``ref``, ``substitutionGroup``) and wildcards are compared by
what they name, whatever the prefix, and a change of any of them is seen."""

from __future__ import annotations

import pytest
from lxml import etree
from xsd_support import canonical, child_particles

XSD = "http://www.w3.org/2001/XMLSchema"


def element(body: str, prefix: str = "a") -> etree._Element:
    schema = (
        f'<xs:schema xmlns:xs="{XSD}" xmlns:{prefix}="urn:one" xmlns:other="urn:two">'
        f'<xs:element name="Root"><xs:complexType><xs:sequence>{body.replace("P:", prefix + ":")}'
        "</xs:sequence></xs:complexType></xs:element></xs:schema>"
    )
    return etree.fromstring(schema)[0]


REF = '<xs:element ref="P:Part" minOccurs="0"/>'
SUBSTITUTE = '<xs:element name="Supply" substitutionGroup="P:Abstract" type="P:SupplyType"/>'
ANY = '<xs:any namespace="##other" processContents="lax" maxOccurs="unbounded"/>'


@pytest.mark.parametrize("body", [REF, SUBSTITUTE, ANY, REF + SUBSTITUTE + ANY])
def test_the_same_component_under_another_prefix_is_the_same(body: str) -> None:
    assert canonical(element(body, "a")) == canonical(element(body, "b"))


@pytest.mark.parametrize(
    ("body", "changed"),
    [
        (REF, '<xs:element ref="other:Part" minOccurs="0"/>'),  # another namespace
        (REF, '<xs:element ref="P:Piece" minOccurs="0"/>'),  # another element
        (REF, '<xs:element ref="P:Part"/>'),  # another minOccurs
        (SUBSTITUTE, '<xs:element name="Supply" substitutionGroup="other:Abstract" type="P:SupplyType"/>'),
        (SUBSTITUTE, '<xs:element name="Supply" type="P:SupplyType"/>'),  # no substitution group
        (SUBSTITUTE, '<xs:element name="Supply" substitutionGroup="P:Abstract" type="other:SupplyType"/>'),
        (ANY, '<xs:any namespace="##any" processContents="lax" maxOccurs="unbounded"/>'),
        (ANY, '<xs:any namespace="##other" processContents="strict" maxOccurs="unbounded"/>'),
    ],
)
def test_a_changed_reference_or_wildcard_is_seen(body: str, changed: str) -> None:
    assert canonical(element(body)) != canonical(element(changed))


def test_the_particles_name_their_references_by_namespace() -> None:
    assert child_particles(element(REF + SUBSTITUTE, "b")) == [
        (None, "{urn:one}Part", "0", "1"),
        ("Supply", None, "1", "1"),
    ]
