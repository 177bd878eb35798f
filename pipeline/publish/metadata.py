"""The book's metadata: read from an EPUB's package document (OPF), overridden by the job.

The OPF is read with lxml by namespace URI (never by prefix: books bind ``dc:`` and ``opf:``
to whatever prefix they like), straight from the archive. EPUB 2 marks a creator's role with
``opf:role`` and calibre's series with ``<meta name="calibre:series">``; EPUB 3 refines ids
with ``<meta refines="#id" property="role|title-type|group-position">``. Both are read.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lxml import etree

from pipeline.config import JobConfig

OPF = "http://www.idpf.org/2007/opf"
DC = "http://purl.org/dc/elements/1.1/"
CONTAINER = "urn:oasis:names:tc:opendocument:xmlns:container"
_ISBN = re.compile(r"^(?:97[89])?\d{9}[\dXx]$")
_YEAR = re.compile(r"\b(\d{4})\b")
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class BookMetadata:
    """Everything the tags, credits and store packages say about the book."""

    title: str
    subtitle: str | None = None
    authors: tuple[str, ...] = ()
    narrator: str | None = None
    publisher: str | None = None
    year: int | None = None
    language: str | None = None
    description: str | None = None
    series: str | None = None
    series_position: float | None = None
    genre: str | None = None
    isbn: str | None = None
    copyright: str | None = None
    # Where the cover comes from: ("file", path) or ("epub", path-of-epub, member-in-archive).
    cover_source: tuple[str, ...] | None = field(default=None, compare=False)

    @property
    def author(self) -> str | None:
        return ", ".join(self.authors) or None

    @property
    def series_label(self) -> str | None:
        if not self.series:
            return None
        if self.series_position is None:
            return self.series
        pos = self.series_position
        return f"{self.series} #{int(pos) if pos == int(pos) else pos}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["authors"] = list(self.authors)
        data.pop("cover_source")
        return data


@dataclass(frozen=True, slots=True)
class OpfMetadata:
    title: str | None = None
    subtitle: str | None = None
    authors: tuple[str, ...] = ()
    narrators: tuple[str, ...] = ()
    publisher: str | None = None
    year: int | None = None
    language: str | None = None
    description: str | None = None
    series: str | None = None
    series_position: float | None = None
    subjects: tuple[str, ...] = ()
    isbn: str | None = None
    rights: str | None = None
    cover_member: str | None = None  # the cover image's path inside the archive


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(_TAG.sub(" ", text).split())
    return text or None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, recover=True)


def read_opf(path: Path) -> OpfMetadata:
    """The OPF metadata of the EPUB at ``path``; empty when it has none readable (the text
    reader reports a broken book; metadata never stops a run)."""
    try:
        with zipfile.ZipFile(path) as archive:
            container = etree.fromstring(archive.read("META-INF/container.xml"), _parser())
            rootfile = container.find(f".//{{{CONTAINER}}}rootfile")
            if rootfile is None or not rootfile.get("full-path"):
                return OpfMetadata()
            opf_path = rootfile.get("full-path", "")
            root = etree.fromstring(archive.read(opf_path), _parser())
            names = set(archive.namelist())
    except (zipfile.BadZipFile, KeyError, OSError, etree.XMLSyntaxError, ValueError):
        return OpfMetadata()
    if root is None:
        return OpfMetadata()
    return _parse_opf(root, posixpath.dirname(opf_path), names)


def _parse_opf(root: Any, base: str, names: set[str]) -> OpfMetadata:
    meta = root.find(f"{{{OPF}}}metadata")
    if meta is None:
        return OpfMetadata()
    refines: dict[str, dict[str, str]] = {}
    for m in meta.iter(f"{{{OPF}}}meta"):
        target, prop = m.get("refines", ""), m.get("property")
        if target.startswith("#") and prop:
            refines.setdefault(target[1:], {})[prop] = (m.text or "").strip()

    def dc(name: str) -> list[Any]:
        return list(meta.iter(f"{{{DC}}}{name}"))

    title = subtitle = None
    for el in dc("title"):
        kind = refines.get(el.get("id", ""), {}).get("title-type")
        text = _clean(el.text)
        if kind == "subtitle":
            subtitle = subtitle or text
        elif title is None or kind == "main":
            title = text
    authors: list[str] = []
    narrators: list[str] = []
    for el in dc("creator") + dc("contributor"):
        role = el.get(f"{{{OPF}}}role") or refines.get(el.get("id", ""), {}).get("role")
        name = _clean(el.text)
        if not name:
            continue
        if role == "nrt":
            narrators.append(name)
        elif el.tag == f"{{{DC}}}creator" and role in (None, "", "aut"):
            authors.append(name)
    dates = dc("date")
    published = [d for d in dates if d.get(f"{{{OPF}}}event") in (None, "publication", "original-publication")]
    year = None
    for d in published or dates:
        found = _YEAR.search(d.text or "")
        if found:
            year = int(found.group(1))
            break
    series, position = _series(meta, refines)
    return OpfMetadata(
        title=title,
        subtitle=subtitle,
        authors=tuple(authors),
        narrators=tuple(narrators),
        publisher=_first(dc("publisher")),
        year=year,
        language=_first(dc("language")),
        description=_first(dc("description")),
        series=series,
        series_position=position,
        subjects=tuple(s for s in (_clean(el.text) for el in dc("subject")) if s),
        isbn=_isbn(dc("identifier")),
        rights=_first(dc("rights")),
        cover_member=_cover_member(root, meta, base, names),
    )


def _first(elements: list[Any]) -> str | None:
    return next((t for t in (_clean(e.text) for e in elements) if t), None)


def _series(meta: Any, refines: dict[str, dict[str, str]]) -> tuple[str | None, float | None]:
    for m in meta.iter(f"{{{OPF}}}meta"):
        if m.get("property") == "belongs-to-collection" and (m.text or "").strip():
            extra = refines.get(m.get("id", ""), {})
            if extra.get("collection-type", "series") == "series":
                return _clean(m.text), _number(extra.get("group-position"))
    named = {m.get("name"): m.get("content") for m in meta.iter(f"{{{OPF}}}meta") if m.get("name")}
    if named.get("calibre:series"):
        return _clean(named["calibre:series"]), _number(named.get("calibre:series_index"))
    return None, None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _isbn(identifiers: list[Any]) -> str | None:
    for el in identifiers:
        value = (el.text or "").strip()
        scheme = (el.get(f"{{{OPF}}}scheme") or "").lower()
        digits = re.sub(r"^urn:isbn:", "", value, flags=re.IGNORECASE).replace("-", "").replace(" ", "")
        if (scheme == "isbn" or value.lower().startswith("urn:isbn:") or _ISBN.fullmatch(digits)) and _ISBN.fullmatch(
            digits
        ):
            return digits.upper()
    return None


def _cover_member(root: Any, meta: Any, base: str, names: set[str]) -> str | None:
    manifest = root.find(f"{{{OPF}}}manifest")
    if manifest is None:
        return None
    items = list(manifest.iter(f"{{{OPF}}}item"))
    chosen = next((i for i in items if "cover-image" in (i.get("properties") or "").split()), None)
    if chosen is None:
        cover_id = next((m.get("content") for m in meta.iter(f"{{{OPF}}}meta") if m.get("name") == "cover"), None)
        chosen = next((i for i in items if cover_id and i.get("id") == cover_id), None)
        if chosen is None and cover_id:  # some books name the file, not the item
            chosen = next((i for i in items if i.get("href") == cover_id), None)
    if chosen is None or not (chosen.get("media-type") or "").startswith("image/"):
        return None
    member = posixpath.normpath(posixpath.join(base, chosen.get("href", "")))
    return member if member in names else None


def resolve_metadata(
    cfg: JobConfig, *, job_base: Path, epubs: list[Path], fallback_title: str, fallback_author: str | None
) -> BookMetadata:
    """The job's ``metadata:`` over its top-level ``title``/``author``, over the first EPUB's
    OPF, over what the text readers found (``fallback_*``). The narrator defaults to the voice."""
    opf = read_opf(epubs[0]) if epubs else OpfMetadata()
    m = cfg.metadata
    if m.authors is not None:
        authors: tuple[str, ...] = tuple(a.strip() for a in m.authors if a.strip())
    elif cfg.author:
        authors = (cfg.author,)
    elif opf.authors:
        authors = opf.authors
    else:
        authors = (fallback_author,) if fallback_author else ()
    cover: tuple[str, ...] | None = None
    if m.cover:
        p = Path(m.cover).expanduser()
        cover = ("file", str(p if p.is_absolute() else job_base / p))
    elif opf.cover_member:
        cover = ("epub", str(epubs[0]), opf.cover_member)
    meta = BookMetadata(
        title=m.title or cfg.title or opf.title or fallback_title,
        subtitle=m.subtitle or opf.subtitle,
        authors=authors,
        narrator=m.narrator or cfg.engine.voice,
        publisher=m.publisher or opf.publisher,
        year=m.year if m.year is not None else opf.year,
        language=m.language or opf.language or cfg.engine.language,
        description=m.description or opf.description,
        series=m.series or opf.series,
        series_position=m.series_position if m.series_position is not None else opf.series_position,
        genre=m.genre or (opf.subjects[0] if opf.subjects else None),
        isbn=(m.isbn.replace("-", "").replace(" ", "").upper() if m.isbn else opf.isbn),
        copyright=m.copyright or opf.rights,
        cover_source=cover,
    )
    return meta if meta.title else replace(meta, title=fallback_title)
