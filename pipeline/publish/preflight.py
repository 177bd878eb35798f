"""The structure pre-flight: the chapters that will be spoken, and what looks wrong, before
anything is paid for. Shown by ``narrate validate``, ``narrate estimate`` and ``narrate run``.

Each warning says what narrate will do about it (or that it does nothing), so a user can fix
the job before a wrongly split book is synthesized.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Job
from pipeline.estimate import WORDS_PER_MINUTE
from pipeline.prepare import PreparedBook
from pipeline.text.gutenberg import gutenberg_span

SHORT_WORDS = 80  # fewer words than a paragraph or two: a heading page, a dedication...
LONG_MINUTES = 120.0  # ACX's longest file; players and stores handle longer ones badly
_MATTER_TITLE = re.compile(
    r"(table of )?contents|title ?page|half ?title|copyright( page)?|colophon|index|imprint|dedication"
    r"|acknowledge?ments?|about the (author|authors|publisher)|also by .*|other books by .*|bibliography"
    r"|glossary|list of (illustrations|figures|tables|maps)|transcriber'?s? notes?|errata|credits|licen[cs]e"
    r"|.*project gutenberg.*",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+\.[\w.-]+", re.IGNORECASE)
_MD_NOTE_REF = re.compile(r"\[\^[^\]\s]+\](?!:)")
_MD_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE)
_PG_MENTION = re.compile(r"project gutenberg", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ChapterRow:
    index: int  # 1-based, as input.chapters counts
    title: str
    words: int
    minutes: float
    source: str


@dataclass(frozen=True, slots=True)
class PreflightWarning:
    kind: str  # heading_only | short | long | front_back_matter | gutenberg | unspoken | duplicate_title
    message: str
    chapter: int | None = None  # 1-based


@dataclass(frozen=True, slots=True)
class Preflight:
    chapters: tuple[ChapterRow, ...]
    warnings: tuple[PreflightWarning, ...]

    @property
    def words(self) -> int:
        return sum(c.words for c in self.chapters)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chapters": [asdict(c) for c in self.chapters],
            "warnings": [asdict(w) for w in self.warnings],
            "words": self.words,
            "minutes": round(sum(c.minutes for c in self.chapters), 1),
        }

    def lines(self) -> list[str]:
        width = max([len(c.title) for c in self.chapters] + [5])
        width = min(width, 48)
        out = [f"{'#':>3}  {'title':<{width}}  {'words':>7}  {'min':>6}  source"]
        for c in self.chapters:
            title = c.title if len(c.title) <= width else c.title[: width - 1] + "…"
            out.append(f"{c.index:>3}  {title:<{width}}  {c.words:>7,}  {c.minutes:>6.1f}  {c.source}")
        out.append(f"{'':>3}  {'total':<{width}}  {self.words:>7,}  {sum(c.minutes for c in self.chapters):>6.1f}")
        out.extend(f"warning: {w.message}" for w in self.warnings)
        return out


def preflight(job: Job, book: PreparedBook) -> Preflight:
    """The chapter table and warnings for ``book`` as ``prepare_book`` made it from ``job``."""
    rows = []
    for i, chapter in enumerate(book.chapters):
        words = sum(len(s.words) for p in chapter.paragraphs for s in p.sentences)
        heading = len(chapter.heading.words) if chapter.heading is not None and job.config.input.read_titles else 0
        total = words + heading
        rows.append(ChapterRow(i + 1, chapter.title, total, round(total / WORDS_PER_MINUTE, 1), chapter.source))
    warnings: list[PreflightWarning] = [
        PreflightWarning("heading_only", f"{h.describe()} (input.heading_only: {job.config.input.heading_only})")
        for h in book.heading_only
    ]
    warnings += _chapter_warnings(book, rows)
    warnings += _duplicates(rows)
    warnings += _source_warnings(job, book)
    return Preflight(tuple(rows), tuple(warnings))


def _chapter_warnings(book: PreparedBook, rows: list[ChapterRow]) -> list[PreflightWarning]:
    out: list[PreflightWarning] = []
    for row, chapter in zip(rows, book.chapters, strict=True):
        plain = re.sub(r"\W+", " ", row.title).strip()
        if _MATTER_TITLE.fullmatch(plain):
            out.append(
                PreflightWarning(
                    "front_back_matter",
                    f"chapter {row.index} '{row.title}' looks like front or back "
                    "matter; it will be read (leave it out with input.chapters)",
                    row.index,
                )
            )
        if row.words < SHORT_WORDS:
            out.append(
                PreflightWarning(
                    "short", f"chapter {row.index} '{row.title}' is very short ({row.words} words)", row.index
                )
            )
        if row.minutes > LONG_MINUTES:
            out.append(
                PreflightWarning(
                    "long",
                    f"chapter {row.index} '{row.title}' is very long (about {row.minutes:.0f} "
                    f"minutes; ACX accepts at most {LONG_MINUTES:.0f} per file)",
                    row.index,
                )
            )
        text = " ".join(w.text for w in chapter.words)
        if _PG_MENTION.search(text):
            out.append(
                PreflightWarning(
                    "gutenberg",
                    f"chapter {row.index} '{row.title}' mentions Project Gutenberg: licence text may be read aloud",
                    row.index,
                )
            )
        addresses = len(_ADDRESS.findall(text))
        if addresses:
            out.append(
                PreflightWarning(
                    "unspoken",
                    f"chapter {row.index} '{row.title}' holds {addresses} web or e-mail "
                    "address(es), read out as written (a text.lexicon entry can say them better)",
                    row.index,
                )
            )
    return out


def _duplicates(rows: list[ChapterRow]) -> list[PreflightWarning]:
    counts = Counter(r.title.casefold() for r in rows)
    out = []
    for title, n in counts.items():
        if n > 1:
            where = [r.index for r in rows if r.title.casefold() == title]
            shown = next(r.title for r in rows if r.title.casefold() == title)
            out.append(
                PreflightWarning(
                    "duplicate_title",
                    f"{n} chapters are titled '{shown}' (chapters "
                    f"{', '.join(map(str, where))}): players will show the same name",
                )
            )
    return out


def _source_warnings(job: Job, book: PreparedBook) -> list[PreflightWarning]:
    """What the readers leave out of a source, found by reading the source itself."""
    out: list[PreflightWarning] = []
    used = {c.source.split("#", 1)[0] for c in book.chapters}
    for path in job.input_files():
        try:
            display = str(path.relative_to(job.base))
        except ValueError:
            display = str(path)
        if display not in used and str(path) not in used:
            continue
        suffix = path.suffix.lower()
        try:
            if suffix == ".epub":
                out += _epub_source(path, display, job)
            elif suffix in (".md", ".markdown"):
                out += _markdown_source(path.read_text(encoding=job.config.input.encoding, errors="replace"), display)
            elif suffix in (".txt", ".text"):
                out += _text_source(path.read_text(encoding=job.config.input.encoding, errors="replace"), display, job)
        except (OSError, zipfile.BadZipFile):
            continue  # the reader has already read it; a race with a deleted file is not our report
    return out


def _text_source(text: str, display: str, job: Job) -> list[PreflightWarning]:
    span = gutenberg_span(text)
    if span is None:
        return []
    outside = span.body_start + len(text) - span.body_end
    if job.config.input.keep_gutenberg:
        return [
            PreflightWarning(
                "gutenberg",
                f"{display}: Project Gutenberg's header and licence ({outside:,} characters) "
                "are read (input.keep_gutenberg: true)",
            )
        ]
    return [
        PreflightWarning(
            "gutenberg",
            f"{display}: Project Gutenberg's header and licence ({outside:,} characters) "
            "are left out (input.keep_gutenberg: true keeps them)",
        )
    ]


def _markdown_source(text: str, display: str) -> list[PreflightWarning]:
    out = []
    refs = len(_MD_NOTE_REF.findall(text))
    if refs:
        out.append(PreflightWarning("unspoken", f"{display}: {refs} footnote marker(s) are not spoken"))
    rows = len(_MD_TABLE_ROW.findall(text))
    if rows:
        out.append(
            PreflightWarning("unspoken", f"{display}: {rows} table row(s) are read as plain text, pipes and all")
        )
    return out


def _epub_source(path: Path, display: str, job: Job) -> list[PreflightWarning]:
    tables = refs = 0
    gutenberg = False
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.lower().endswith((".xhtml", ".html", ".htm", ".xml")):
                continue
            data = archive.read(name).decode("utf-8", "replace")
            tables += len(re.findall(r"<table\b", data, re.IGNORECASE))
            refs += len(re.findall(r"epub:type=\"[^\"]*\bnoteref\b|role=\"doc-noteref\"", data))
            gutenberg = gutenberg or "pg-boilerplate" in data or "START OF THE PROJECT GUTENBERG" in data.upper()
    out = []
    if refs:
        out.append(
            PreflightWarning(
                "unspoken",
                f"{display}: {refs} footnote marker(s) are not spoken"
                + ("" if job.config.input.keep_notes else "; the notes are skipped (input.keep_notes)"),
            )
        )
    if tables:
        out.append(PreflightWarning("unspoken", f"{display}: {tables} table(s) are read cell by cell as plain text"))
    if gutenberg and not job.config.input.keep_front_matter:
        out.append(
            PreflightWarning(
                "gutenberg",
                f"{display}: Project Gutenberg's header and licence are left out "
                "(input.keep_front_matter: true keeps them)",
            )
        )
    return out
