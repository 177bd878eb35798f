"""An EPUB's navigation: the table of contents (EPUB 3 nav document or EPUB 2 NCX), flattened
in reading order with each entry's depth, and its landmarks (EPUB 3 ``landmarks`` nav or
the EPUB 2 OPF ``guide``).

Every href is resolved to the path of a manifest item relative to the OPF's folder (what
ebooklib's ``item.get_name()`` returns) plus an optional fragment.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from lxml import etree

from pipeline.text.epub_html import semantics
from pipeline.text.xmltree import (
    children,
    descendants,
    first_child,
    first_descendant,
    first_or_self,
    local_name,
    parse_markup,
    parse_xml,
    text_of,
)

# EPUB 2 guide types -> the EPUB 3 structural vocabulary used for everything else.
_GUIDE_TYPES = {"title-page": "titlepage", "copyright-page": "copyright-page", "text": "bodymatter"}


@dataclass(frozen=True, slots=True)
class Target:
    href: str  # manifest item path relative to the OPF folder
    fragment: str | None


@dataclass(frozen=True, slots=True)
class NavEntry:
    title: str
    target: Target
    depth: int  # 0 = top level


@dataclass(frozen=True, slots=True)
class Landmark:
    kind: str
    target: Target


def resolve(base: str, href: str) -> Target | None:
    """``href`` as written in the document at ``base`` (both relative to the OPF folder);
    None for links outside the book."""
    href = href.strip()
    if not href or re.match(r"[a-z][a-z0-9+.-]*:", href, re.IGNORECASE):
        return None
    path, _, fragment = href.partition("#")
    if path:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(path)))
    else:
        joined = base
    return Target(joined, unquote(fragment) or None)


def _clean(text: str) -> str:
    return " ".join(text.split())


def parse_nav_document(content: bytes, nav_href: str) -> tuple[list[NavEntry], list[Landmark]]:
    """The ``toc`` entries and ``landmarks`` of an EPUB 3 navigation document."""
    markup = parse_markup(content)
    entries: list[NavEntry] = []
    landmarks: list[Landmark] = []
    for nav in descendants(markup.root, ("nav",)):
        kinds = semantics(markup, nav)
        top = first_descendant(nav, ("ol", "ul"))
        if top is None:
            continue
        if "toc" in kinds and not entries:
            entries = list(_list_entries(top, nav_href, 0))
        elif "landmarks" in kinds:
            for link in descendants(top, ("a",)):
                target = resolve(nav_href, link.get("href") or "")
                for kind in semantics(markup, link):
                    if target is not None:
                        landmarks.append(Landmark(kind, target))
    return entries, landmarks


def _list_entries(list_element: etree._Element, base: str, depth: int) -> Iterable[NavEntry]:
    for item in children(list_element, ("li",)):
        label = first_child(item, ("a", "span"))
        if label is not None and local_name(label) == "a":
            target = resolve(base, label.get("href") or "")
            title = _clean(text_of(label, " ")) or _clean(label.get("title") or "")
            if target is not None:
                yield NavEntry(title, target, depth)
        sub = first_child(item, ("ol", "ul"))
        if sub is not None:
            yield from _list_entries(sub, base, depth + 1)


def parse_ncx(content: bytes, ncx_href: str) -> list[NavEntry]:
    """The navMap of an EPUB 2 NCX, flattened in document order (which is reading order).
    Elements are matched by local name, so a default or prefixed NCX namespace (or none)
    reads the same."""
    nav_map = first_or_self(parse_xml(content), ("navmap",))
    return list(_ncx_points(nav_map, ncx_href, 0)) if nav_map is not None else []


def _ncx_points(parent: etree._Element, base: str, depth: int) -> Iterable[NavEntry]:
    for point in children(parent, ("navpoint",)):
        label = first_child(point, ("navlabel",))
        content = first_child(point, ("content",))
        title = _clean(text_of(label, " ")) if label is not None else ""
        target = resolve(base, (content.get("src") or "") if content is not None else "")
        if target is not None:
            yield NavEntry(title, target, depth)
        yield from _ncx_points(point, base, depth + 1)


def guide_landmarks(guide: Iterable[dict[str, str | None]]) -> list[Landmark]:
    """The OPF ``<guide>`` references (hrefs there are relative to the OPF itself)."""
    out = []
    for reference in guide:
        kind = (reference.get("type") or "").strip().lower()
        target = resolve("package.opf", reference.get("href") or "")
        if kind and target is not None:
            out.append(Landmark(_GUIDE_TYPES.get(kind, kind), target))
    return out
