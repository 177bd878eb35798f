"""One EPUB content document (XHTML) to the text a listener should hear, in blocks.

A block is one paragraph-like element's visible text with whitespace collapsed (a ``<br/>``
kept as a line break). What is not read: markup that is not text (scripts, images, maths),
hidden elements, footnote reference markers, page-number markers, and unless asked for,
front/back matter and notes recognised by their EPUB semantics (``epub:type``, or the
equivalent DPUB-ARIA ``role``) and Project Gutenberg's licence boilerplate.

A ``<break time="..."/>`` element is kept as the pause markup narrate reads everywhere.

A file can be cut into segments at element ids (the fragments navigation entries point
at), so that one file holding several chapters gives several chapters.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from lxml import etree

from pipeline.text.spoken_numbers import word_set
from pipeline.text.xmltree import (
    OPS_NS,
    Markup,
    descendants,
    first_descendant,
    is_element,
    local_name,
    parse_markup,
    text_of,
)

FRONT_MATTER_TYPES = word_set(
    "cover titlepage halftitlepage title-page seriespage frontispiece toc landmarks page-list "
    "loi lot lov loa copyright-page colophon imprint imprimatur index errata other-credits"
)
NOTE_TYPES = word_set("footnote footnotes endnote endnotes rearnote rearnotes note notes")
_NOTE_REF_TYPES = word_set("noteref annoref biblioref glossref")
_PAGE_BREAK_TYPES = word_set("pagebreak")

_SKIPPED_TAGS = word_set(
    "head title script style svg math img picture object embed iframe video audio source "
    "track template noscript canvas map area rp rt button input select textarea link meta"
)
_BLOCK_TAGS = word_set(
    "html body p div h1 h2 h3 h4 h5 h6 li ul ol dl dt dd blockquote section article aside "
    "header footer main nav figure figcaption pre table caption thead tbody tfoot tr td th "
    "address hgroup details summary center"
)
_HEADING_TAGS = word_set("h1 h2 h3 h4 h5 h6")
# What a footnote marker link says: "1", "[12]", "*", "†", "a", or a "back to text" arrow.
_MARKER_TEXT = re.compile(r"[\[(]?(?:\d{1,4}|[*†‡§¶^↩↑]+|[a-z])[\])]?")
_DINKUS = re.compile(r"[\s*#~•⁂·.—-]+")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))
_SPACES = re.compile(r" {2,}")
_WHITESPACE = re.compile(r"\s+")
_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.IGNORECASE)


@dataclass(slots=True)
class Block:
    text: str
    heading: bool
    scene_break_before: bool = False


@dataclass(slots=True)
class Segment:
    """The part of a file from one split point to the next. ``anchor`` is the id it starts
    at (None for the start of the file); ``link_words`` counts words inside links to other
    places in the book, which is what a table of contents is made of."""

    anchor: str | None
    blocks: list[Block] = field(default_factory=list)
    words: int = 0
    link_words: int = 0
    opening_types: frozenset[str] = frozenset()  # semantics around its first block


@dataclass(slots=True)
class ParsedFile:
    segments: list[Segment]
    id_segment: dict[str, int]  # each watched id found -> the segment it is in
    body_types: frozenset[str]  # the semantics of <html>/<body>


def semantics(markup: Markup, element: etree._Element) -> frozenset[str]:
    """The element's structural semantics: ``epub:type`` tokens (matched by the OPS namespace,
    whatever its prefix) and ``doc-*`` roles."""
    found: set[str] = set()
    for token in (markup.attribute(element, OPS_NS, "type") or "").lower().split():
        found.add(token.split(":")[-1])  # "z3998:poem" style vocabulary prefixes
    for token in (element.get("role") or "").lower().split():
        found.add(token.split(":")[-1].removeprefix("doc-"))
    if "pagelist" in found:
        found.add("page-list")
    return frozenset(found)


def parse_content(
    content: bytes,
    *,
    split_ids: Collection[str] = (),
    watch_ids: Collection[str] = (),
    keep_front_matter: bool = False,
    keep_notes: bool = False,
) -> ParsedFile:
    markup = parse_markup(content)
    walker = _Walker(markup, set(split_ids), set(watch_ids), keep_front_matter, keep_notes)
    html = markup.root
    body = html if local_name(html) == "body" else first_descendant(html, ("body",))
    types: set[str] = set(semantics(markup, html))
    if body is not None:
        types |= semantics(markup, body)
    walker.element(body if body is not None else html)
    walker.flush()
    return ParsedFile(walker.segments, walker.id_segment, frozenset(types))


def _classes(element: etree._Element) -> list[str]:
    return (element.get("class") or "").split()


def _internal_href(element: etree._Element) -> str | None:
    href = element.get("href")
    if href is None or re.match(r"[a-z][a-z0-9+.-]*:", href, re.IGNORECASE):
        return None  # external (http:, mailto:) or absent
    return href


class _Walker:
    def __init__(
        self, markup: Markup, split_ids: set[str], watch_ids: set[str], keep_front: bool, keep_notes: bool
    ) -> None:
        self.markup = markup
        self.split_ids, self.watch_ids = split_ids, watch_ids
        self.keep_front, self.keep_notes = keep_front, keep_notes
        self.segments = [Segment(None)]
        self.id_segment: dict[str, int] = {}
        self.inline: list[str] = []
        self.heading_depth = 0
        self.link_depth = 0
        self.scene_break = False
        self.open_types: list[frozenset[str]] = []

    def walk(self, node: etree._Element) -> None:
        if node.text:
            self.text(node.text)
        for child in node:
            if is_element(child):
                self.element(child)
            if child.tail:  # text after a child belongs to this element, even after a comment
                self.text(child.tail)

    def element(self, tag: etree._Element) -> None:
        element_id = tag.get("id")
        if element_id is not None:
            if element_id in self.split_ids and element_id not in {s.anchor for s in self.segments}:
                self.flush()
                self.segments.append(Segment(element_id))
                self.scene_break = False
            if element_id in self.watch_ids:
                self.id_segment.setdefault(element_id, len(self.segments) - 1)
        if not self._readable(tag):
            return
        name = local_name(tag)
        self.open_types.append(semantics(self.markup, tag))
        try:
            self._enter(tag, name)
        finally:
            self.open_types.pop()

    def _enter(self, tag: etree._Element, name: str) -> None:
        if name == "break" and tag.get("time") is not None:
            # A pause written as an element: keep it as the markup the rest of the pipeline
            # reads (``normalize.extract_breaks``), rather than lose it with the tag.
            self.inline.append(f" <break time='{tag.get('time')}'/> ")
        elif name == "br":
            self.inline.append("\n")
        elif name == "hr":
            self.flush()
            self.scene_break = True
        elif name in _BLOCK_TAGS:
            self.flush()
            heading = name in _HEADING_TAGS
            self.heading_depth += heading
            self.walk(tag)
            self.flush()
            self.heading_depth -= heading
        else:
            link = name == "a" and _internal_href(tag) is not None
            self.link_depth += link
            self.walk(tag)
            self.link_depth -= link

    def _readable(self, tag: etree._Element) -> bool:
        name = local_name(tag)
        if name in _SKIPPED_TAGS or tag.get("hidden") is not None:
            return False
        if tag.get("aria-hidden") == "true" or _DISPLAY_NONE.search(tag.get("style") or ""):
            return False
        types = semantics(self.markup, tag)
        if types & (_NOTE_REF_TYPES | _PAGE_BREAK_TYPES) or "pagenum" in _classes(tag):
            return False
        if self._is_note_marker(tag, name):
            return False
        front = types & FRONT_MATTER_TYPES or "pg-boilerplate" in _classes(tag)
        if front and not self.keep_front:
            return False
        return self.keep_notes or not types & NOTE_TYPES

    @staticmethod
    def _is_note_marker(tag: etree._Element, name: str) -> bool:
        """A footnote reference without semantics: a superscript link, or a link inside the
        book whose whole text is a marker ("1", "[2]", "*")."""
        if name == "sup":
            return any(a.get("href") is not None for a in descendants(tag, ("a",)))
        if name == "a" and (href := _internal_href(tag)) and "#" in href:
            return _MARKER_TEXT.fullmatch(text_of(tag).strip()) is not None
        return False

    def text(self, text: str) -> None:
        # Line breaks in the source are just spaces in HTML; only <br/> breaks a line.
        text = _WHITESPACE.sub(" ", text.translate(_INVISIBLE))
        self.inline.append(text)
        count = len(text.split())
        self.segments[-1].words += count
        if self.link_depth:
            self.segments[-1].link_words += count

    def flush(self) -> None:
        """End the current block: the inline text gathered becomes one block, or several
        where a blank line was made with two <br/> (a stanza break in a poem)."""
        raw = _SPACES.sub(" ", "".join(self.inline))
        self.inline = []
        raw = re.sub(r" ?\n ?", "\n", raw)
        for piece in re.split(r"\n{2,}", raw):
            text = piece.strip()
            if not text:
                continue
            if _DINKUS.fullmatch(text) and any(c in text for c in "*#~•⁂·"):
                self.scene_break = True  # "* * *": a scene break, not words to say
                continue
            segment = self.segments[-1]
            if not segment.blocks:
                segment.opening_types = frozenset().union(*self.open_types)
            segment.blocks.append(Block(text, self.heading_depth > 0, self.scene_break))
            self.scene_break = False
