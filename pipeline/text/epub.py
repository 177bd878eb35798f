"""EPUB manuscripts to a Document: chapters in spine order, titled from the navigation.

- Chapters follow the spine. A chapter's title is the navigation entry pointing at it (the
  most specific one when a part and its first chapter point at the same place); several
  entries into one file at different fragments cut the file into several chapters. With no
  entry, the title is the chapter's first heading, else "Chapter N". A file with neither an
  entry nor a heading, in a book that has navigation, continues the chapter before it (a
  long chapter split over two files).
- Skipped unless asked for: front and back matter (cover, title page, table of contents,
  copyright page, colophon, index, ... by ``epub:type``/``role``, by landmarks or guide, and
  the nav document itself; for books without semantics, by a title such as "Contents", a
  title page that just repeats the book's title, a page that is mostly links into the book,
  and Project Gutenberg's licence), and notes (footnotes, endnotes, and non-linear spine
  items). Footnote markers and page numbers are never spoken.
- ``Document.text`` is the kept text, one block per paragraph, blocks separated by a blank
  line; every word's offsets index into it. ``Chapter.source`` is ``name#item-path``.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebooklib import epub
from lxml import etree

from pipeline.errors import InputError
from pipeline.models import Chapter, Document, Paragraph, Sentence
from pipeline.text import epub_nav
from pipeline.text.epub_html import FRONT_MATTER_TYPES, NOTE_TYPES, Block, Segment, parse_content
from pipeline.text.segment import segment_paragraph, tokenize

_CONTENT_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}
# Font obfuscation is not DRM: the text is readable.
_FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
_FONT_SUFFIXES = (".ttf", ".otf", ".woff", ".woff2")
_FRONT_TITLE = re.compile(
    r"(table of )?contents|cover|title ?page|copyright( page)?|colophon|index"
    r"|list of (illustrations|figures|tables|maps)|(the )?(full )?project gutenberg licen[cs]e",
    re.IGNORECASE,
)
_NOTES_TITLE = re.compile(r"(foot|end)?notes", re.IGNORECASE)
_DIVISIONS = frozenset({"bodymatter", "frontmatter", "backmatter"})  # say nothing on their own
_TITLE_PAGE_MAX_WORDS = 80  # a title page is short; a chapter named like the book is not


@dataclass(slots=True)
class _Part:
    """A chapter in the making: its title (None = none yet) and its blocks."""

    href: str
    title: str | None
    blocks: list[Block] = field(default_factory=list)


def read_epub(
    path: Path,
    *,
    display_name: str,
    keep_front_matter: bool = False,
    keep_notes: bool = False,
    keep_heading_only: bool = False,
) -> Document:
    """Read an EPUB 2 or 3 file; InputError (one line naming ``display_name``) when it is
    not an EPUB, is damaged, is DRM-encrypted, or holds no text to read. A heading with
    nothing under it (a part's title page) is no chapter unless ``keep_heading_only``: then
    it is a chapter without paragraphs, for ``structure.apply_heading_only_rule`` to handle."""
    _check_archive(path, display_name)
    book = _load(path, display_name)
    entries, landmarks = _navigation(book, display_name)
    reader = _SpineReader(
        book_title=_first_metadata(book, "title"),
        book_has_nav=bool(entries),
        keep_front_matter=keep_front_matter,
        keep_notes=keep_notes,
    )
    for entry in entries:
        reader.entries[entry.target.href].append(entry)
    for mark in landmarks:
        reader.marks[mark.target.href].append(mark)
    seen: set[str] = set()
    for idref, linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_name() in seen or item.media_type not in _CONTENT_TYPES:
            continue  # a duplicate spine entry, an image, a missing item
        seen.add(item.get_name())
        is_nav = isinstance(item, epub.EpubNav) or "nav" in (getattr(item, "properties", []) or [])
        linear_item = str(linear).lower() != "no"
        _check_no_entities(item.get_name(), item.content, display_name)
        try:
            reader.read(item.get_name(), item.content, linear=linear_item, is_nav=is_nav)
        except RecursionError:
            raise InputError(f"{display_name}: {item.get_name()} is nested too deeply to read") from None
    return _build_document(reader.parts, book, display_name, reader.book_title, keep_heading_only)


@dataclass
class _SpineReader:
    """Turns spine items, one after the other, into chapters in the making."""

    book_title: str | None
    book_has_nav: bool
    keep_front_matter: bool
    keep_notes: bool
    entries: dict[str, list[epub_nav.NavEntry]] = field(default_factory=lambda: defaultdict(list))
    marks: dict[str, list[epub_nav.Landmark]] = field(default_factory=lambda: defaultdict(list))
    parts: list[_Part] = field(default_factory=list)

    def read(self, href: str, content: bytes, *, linear: bool, is_nav: bool) -> None:
        entries, marks = self.entries[href], self.marks[href]
        file_kinds = {m.kind for m in marks if m.target.fragment is None}
        if is_nav:
            file_kinds.add("toc")
        if not linear:
            file_kinds.add("notes")  # auxiliary content, outside the reading order
        parsed = parse_content(
            content,
            split_ids={e.target.fragment for e in entries if e.target.fragment},
            watch_ids={m.target.fragment for m in marks if m.target.fragment},
            keep_front_matter=self.keep_front_matter,
            keep_notes=self.keep_notes,
        )
        titles = _segment_titles(parsed.segments, entries)
        for index, segment in enumerate(parsed.segments):
            kinds = file_kinds | parsed.body_types
            here = {f for f, at in parsed.id_segment.items() if at == index}
            kinds |= {m.kind for m in marks if m.target.fragment in here}
            nav_title = titles.get(index)
            kinds |= _guessed_kinds(segment, nav_title or _first_heading(segment), self.book_title)
            if self._skipped(kinds):
                continue
            # Only plain text can be the rest of the chapter before it; a segment that says
            # what it is (a dedication, a chapter) stands on its own.
            continues = self.book_has_nav and not (kinds | segment.opening_types) - _DIVISIONS
            _add_segment(self.parts, segment, href, nav_title, may_continue=continues)

    def _skipped(self, kinds: set[str]) -> bool:
        front = bool(kinds & FRONT_MATTER_TYPES) and not self.keep_front_matter
        return front or (bool(kinds & NOTE_TYPES) and not self.keep_notes)


def _segment_titles(segments: list[Segment], entries: list[epub_nav.NavEntry]) -> dict[int, str]:
    """Which navigation title names which segment of a file. Entries come in reading order,
    so a later entry for the same place (a part's first chapter) overrides an earlier one;
    an entry whose fragment is not in the file names the start of the file."""
    at = {segment.anchor: i for i, segment in enumerate(segments)}
    titles: dict[int, str] = {}
    for entry in entries:
        if not entry.title:
            continue
        fragment = entry.target.fragment
        if fragment is None or at.get(fragment) is not None:
            titles[at.get(fragment, 0) if fragment else 0] = entry.title
        elif 0 not in titles:
            titles[0] = entry.title
    return titles


def _first_heading(segment: Segment) -> str | None:
    heading = next((b for b in segment.blocks if b.heading), None)
    return _display(heading.text) if heading else None


def _display(text: str) -> str:
    return " ".join(text.split()).rstrip(".:").strip() or " ".join(text.split())


def _plain(text: str | None) -> str:
    """For comparing titles: letters and digits only, lower case, curly quotes ignored."""
    return re.sub(r"\W+", " ", (text or "").casefold()).strip()


def _guessed_kinds(segment: Segment, title: str | None, book_title: str | None) -> set[str]:
    """Front matter or notes in books that do not say so in their markup."""
    kinds: set[str] = set()
    plain = _plain(title)
    if title and _FRONT_TITLE.fullmatch(plain):
        kinds.add("toc")
    if title and _NOTES_TITLE.fullmatch(plain):
        kinds.add("notes")
    if plain and plain == _plain(book_title) and segment.words <= _TITLE_PAGE_MAX_WORDS:
        kinds.add("titlepage")
    if segment.link_words >= 6 and segment.link_words * 2 >= segment.words:
        kinds.add("toc")
    return kinds


def _add_segment(parts: list[_Part], segment: Segment, href: str, nav_title: str | None, *, may_continue: bool) -> None:
    if not segment.blocks:
        return
    untitled = nav_title is None and not any(b.heading for b in segment.blocks)
    if untitled and may_continue and parts:
        parts[-1].blocks.extend(segment.blocks)  # the rest of the previous chapter
        return
    parts.append(_Part(href, nav_title, list(segment.blocks)))


def _build_document(
    parts: list[_Part], book: Any, display_name: str, title: str | None, keep_heading_only: bool = False
) -> Document:
    text_pieces: list[str] = []
    length = 0

    def place(block_text: str) -> tuple[int, int]:
        nonlocal length
        if text_pieces:
            text_pieces.append("\n\n")
            length += 2
        text_pieces.append(block_text)
        start, length = length, length + len(block_text)
        return start, length

    spans: list[tuple[_Part, list[tuple[int, int]], list[tuple[int, int, bool]]]] = []
    for part in parts:
        heading_count = 0
        while heading_count < len(part.blocks) and part.blocks[heading_count].heading:
            heading_count += 1
        if heading_count == 0 and part.title and _plain(part.blocks[0].text) == _plain(part.title):
            heading_count = 1  # a title set as a plain paragraph is still the heading
        body = part.blocks[heading_count:]
        if not body and not (keep_heading_only and heading_count):
            continue  # a heading with nothing under it (a part's title page): no chapter
        heading_spans = [place(b.text) for b in part.blocks[:heading_count]]
        body_spans = [(*place(b.text), i > 0 and b.scene_break_before) for i, b in enumerate(body)]
        if part.title is None and heading_count:
            part.title = _display(" ".join(b.text for b in part.blocks[:heading_count]))
        spans.append((part, heading_spans, body_spans))

    text = "".join(text_pieces)
    chapters = []
    for index, (part, heading_spans, body_spans) in enumerate(spans):
        heading_words = tuple(w for start, end in heading_spans for w in tokenize(text, start, end))
        paragraphs = []
        for start, end, scene_break in body_spans:
            sentences = segment_paragraph(text, start, end)
            if sentences:
                paragraphs.append(Paragraph(sentences, scene_break))
        chapters.append(
            Chapter(
                index=index,
                title=part.title or f"Chapter {index + 1}",
                source=f"{display_name}#{part.href}",
                paragraphs=tuple(paragraphs),
                heading=Sentence(heading_words) if heading_words else None,
            )
        )
    if not any(chapter.paragraphs for chapter in chapters):
        raise InputError(
            f"{display_name}: no chapter with text to read (front matter and notes are skipped "
            "unless input.keep_front_matter / input.keep_notes are set)"
        )
    return Document(
        path=display_name,
        text=text,
        chapters=tuple(chapters),
        title=title,
        author=_author(book),
        language=_first_metadata(book, "language"),
    )


# --- the container ------------------------------------------------------------------------


# An EPUB is a zip of XML from strangers, and the whole book is read into memory: caps on
# what it may unpack to stop a zip bomb before a byte is inflated. A long novel's largest
# XHTML file is a few MB and its whole archive rarely 100 MB (with images); text compresses
# about 3-10x, so a file inflating over 200x its stored size is made to explode, not to read.
MAX_ENTRY_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 1024 * 2**20
MAX_RATIO = 200
_RATIO_FLOOR_BYTES = 2**20  # small files may compress as well as they like
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)


def _check_sizes(archive: zipfile.ZipFile, name: str) -> None:
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.file_size > MAX_ENTRY_BYTES:
            raise InputError(
                f"{name}: {info.filename} unpacks to {info.file_size / 2**20:.0f} MB, more than the "
                f"{MAX_ENTRY_BYTES // 2**20} MB narrate reads from one file of a book"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise InputError(
                f"{name}: {info.filename} inflates {ratio:.0f} times its stored size (a zip bomb?); not read"
            )
    if total > MAX_TOTAL_BYTES:
        raise InputError(f"{name}: unpacks to {total / 2**20:.0f} MB, more than {MAX_TOTAL_BYTES // 2**20} MB")


def _check_no_entities(href: str, content: bytes, name: str) -> None:
    """XHTML in an EPUB has no business declaring entities; the declarations are how entity
    bombs and external entities (local files) get in, so a document with one is refused."""
    if _ENTITY_DECLARATION.search(content):
        raise InputError(f"{name}: {href} declares XML entities (<!ENTITY>), which narrate does not read")


def _check_archive(path: Path, name: str) -> None:
    """Fail with one clear line for what is not a readable EPUB at all."""
    try:
        with zipfile.ZipFile(path) as archive:
            _check_sizes(archive, name)
            names = set(archive.namelist())
            if "META-INF/container.xml" not in names:
                raise InputError(f"{name}: not an EPUB (no META-INF/container.xml)")
            if "META-INF/encryption.xml" in names:
                _check_encryption(archive.read("META-INF/encryption.xml"), name)
    except zipfile.BadZipFile:
        raise InputError(f"{name}: not an EPUB (not a zip archive, or a damaged one)") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None


def _check_encryption(xml: bytes, name: str) -> None:
    """DRM encrypts the content documents; fonts may be obfuscated harmlessly."""
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        raise InputError(f"{name}: encrypted EPUB (DRM); unreadable encryption.xml") from None
    for data in root.iter("{*}EncryptedData"):
        method = data.find("{*}EncryptionMethod")
        algorithm = method.get("Algorithm", "") if method is not None else ""
        uris = [ref.get("URI", "") for ref in data.iter("{*}CipherReference")]
        fonts_only = all(uri.lower().endswith(_FONT_SUFFIXES) for uri in uris)
        if algorithm not in _FONT_OBFUSCATION or not fonts_only:
            raise InputError(
                f"{name}: the EPUB is DRM-encrypted ({uris[0] if uris else 'content'} is "
                "encrypted); narrate can only read DRM-free books"
            )


def _load(path: Path, name: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return epub.read_epub(str(path), {"ignore_ncx": True})
    except InputError:
        raise
    except Exception as exc:  # ebooklib raises anything at all on a damaged book
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"{name}: not a readable EPUB ({reason})") from None


def _navigation(book: Any, name: str) -> tuple[list[epub_nav.NavEntry], list[epub_nav.Landmark]]:
    entries: list[epub_nav.NavEntry] = []
    landmarks: list[epub_nav.Landmark] = []
    try:
        for item in book.get_items():
            if isinstance(item, epub.EpubNav):
                entries, landmarks = epub_nav.parse_nav_document(item.content, item.get_name())
                break
        if not entries:
            for item in book.get_items():
                if isinstance(item, epub.EpubNcx):
                    entries = epub_nav.parse_ncx(item.content, item.get_name())
                    break
    except Exception as exc:  # a broken table of contents: read without one
        warnings.warn(f"{name}: ignoring unreadable navigation ({exc})", stacklevel=2)
        entries = []
    return entries, landmarks + epub_nav.guide_landmarks(book.guide or [])


def _first_metadata(book: Any, key: str) -> str | None:
    for value, _ in book.get_metadata("DC", key):
        if value and value.strip():
            return " ".join(value.split())
    return None


def _author(book: Any) -> str | None:
    """The creators who are authors: EPUB 2 marks roles with ``opf:role``, EPUB 3 with a
    ``role`` meta refining the creator's id; a creator with no role counts as an author."""
    roles: dict[str, str] = {}
    for namespace in book.metadata.values():
        for values in namespace.values():
            for value, attrs in values:
                if attrs.get("property") == "role" and attrs.get("refines", "").startswith("#"):
                    roles[attrs["refines"][1:]] = (value or "").strip()
    authors = []
    for value, attrs in book.get_metadata("DC", "creator"):
        role = next((v for k, v in attrs.items() if k.endswith("role")), None)
        role = role or roles.get(attrs.get("id", ""))
        if value and value.strip() and role in (None, "", "aut"):
            authors.append(" ".join(value.split()))
    return ", ".join(authors) or None
