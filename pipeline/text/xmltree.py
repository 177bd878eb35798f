"""EPUB markup as an lxml tree, with namespaced attributes matched by namespace URI.

Why not BeautifulSoup: how its ``lxml-xml`` builder spells a namespaced attribute changed
between lxml releases (``epub:type`` with lxml 6.1, plain ``type`` with 6.2), and a prefix is
the author's choice anyway (``ops:type`` is as valid as ``epub:type``). What identifies the
attribute is its namespace URI, so that is what we match:

- well-formed XHTML is parsed as XML (entities unresolved, no network, no DTD), and an
  attribute's key is ``{uri}local``;
- a file that is not well-formed XML (an HTML entity like ``&nbsp;``, an unclosed tag) is
  read by the forgiving HTML parser, which keeps ``prefix:local`` keys; the prefixes are
  resolved through the ``xmlns:prefix`` declarations the file makes, with ``epub`` meaning
  the OPS namespace when the file forgets to declare it (EPUB 3 reserves that prefix).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from lxml import etree

OPS_NS = "http://www.idpf.org/2007/ops"
_RESERVED_PREFIXES = {"epub": OPS_NS}


def hardened_parser() -> etree.XMLParser:
    """A parser for XML from strangers: no entity expansion, no DTD loading, no network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True, slots=True)
class Markup:
    root: etree._Element
    # Only for a file read by the HTML parser: prefix -> namespace URI, from its declarations.
    html_prefixes: dict[str, str] = field(default_factory=dict)

    def attribute(self, element: etree._Element, namespace: str, local: str) -> str | None:
        """The value of the attribute ``local`` in ``namespace`` on ``element``, whatever the
        prefix it was written with; None when absent."""
        value = element.get(f"{{{namespace}}}{local}")
        if value is not None or not self.html_prefixes:
            return value
        for key, candidate in element.attrib.items():
            prefix, colon, name = str(key).partition(":")
            if colon and name == local and self.html_prefixes.get(prefix) == namespace:
                return str(candidate)
        return None


def parse_markup(content: bytes) -> Markup:
    try:
        return Markup(etree.fromstring(content, hardened_parser()))
    except etree.XMLSyntaxError:
        pass
    root = etree.fromstring(content, etree.HTMLParser(no_network=True))
    if root is None:  # nothing that parses as markup at all
        root = etree.fromstring(b"<html><body/></html>", etree.HTMLParser())
    prefixes = dict(_RESERVED_PREFIXES)
    for element in root.iter():
        if isinstance(element.tag, str):
            for key, value in element.attrib.items():
                if str(key).startswith("xmlns:"):
                    prefixes[str(key)[6:]] = str(value)
    return Markup(root, prefixes)


def parse_xml(content: bytes) -> etree._Element:
    """Strict XML (navigation files): raises etree.XMLSyntaxError."""
    return etree.fromstring(content, hardened_parser())


def is_element(node: object) -> bool:
    """Comments, processing instructions and entities are nodes too, with a non-string tag."""
    return isinstance(getattr(node, "tag", None), str)


def local_name(element: etree._Element) -> str:
    """The element's name without namespace or prefix, lower case (``{ns}nav``, ``epub:nav``
    and ``NAV`` are all ``nav``)."""
    return str(element.tag).rpartition("}")[2].rpartition(":")[2].lower()


def children(element: etree._Element, names: Collection[str]) -> Iterator[etree._Element]:
    for child in element:
        if is_element(child) and local_name(child) in names:
            yield child


def descendants(element: etree._Element, names: Collection[str]) -> Iterator[etree._Element]:
    for node in element.iterdescendants():
        if is_element(node) and local_name(node) in names:
            yield node


def first_child(element: etree._Element, names: Collection[str]) -> etree._Element | None:
    return next(children(element, names), None)


def first_descendant(element: etree._Element, names: Collection[str]) -> etree._Element | None:
    return next(descendants(element, names), None)


def first_or_self(element: etree._Element, names: Collection[str]) -> etree._Element | None:
    if local_name(element) in names:
        return element
    return first_descendant(element, names)


def text_of(element: etree._Element, separator: str = "") -> str:
    """The text inside ``element`` (comments and processing instructions left out)."""
    return separator.join(element.itertext())
