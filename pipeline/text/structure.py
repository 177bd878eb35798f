"""From a flat list of blocks (headings, paragraphs, scene breaks) to chapters.

Both text readers find blocks in their own way and share this step, so a chapter means the
same thing whichever format a manuscript is written in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum

from pipeline.models import Chapter, Paragraph, Sentence, Word
from pipeline.text.segment import segment_paragraph, tokenize


class BlockKind(Enum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    SCENE_BREAK = "scene_break"


@dataclass(frozen=True, slots=True)
class Block:
    """A span ``text[start:end]`` of the document text; ``level`` only matters for headings
    (1 = outermost). A scene break has no text and an empty span."""

    kind: BlockKind
    start: int = 0
    end: int = 0
    level: int = 1


@dataclass(slots=True)
class _OpenChapter:
    title: str
    heading: Sentence | None
    paragraphs: list[Paragraph]
    is_opening: bool = False  # the text before the first chapter heading
    scene_break_pending: bool = False


def display_title(heading: Sentence) -> str:
    """A heading as a title: its words on one line, without a closing full stop or colon."""
    return heading.text.rstrip(".:").strip() or heading.text


def build_chapters(
    text: str,
    blocks: Iterable[Block],
    *,
    source: str,
    chapter_level: int,
    opening_title: str,
    title_block: Block | None = None,
) -> tuple[Chapter, ...]:
    """Chapters from ``blocks`` in reading order.

    A heading at ``chapter_level`` starts a chapter; a deeper heading is read as a paragraph
    of its chapter. Text before the first chapter heading becomes a chapter titled
    ``opening_title`` only if it holds any words; ``title_block`` (the book's title heading,
    when there is one) is then spoken as its heading. Scene breaks mark the next paragraph
    and are dropped at the very start of a chapter, where the chapter pause already is.
    """
    finished: list[_OpenChapter] = []
    title_heading = _heading_sentence(text, title_block) if title_block else None
    current = _OpenChapter(opening_title, title_heading, [], is_opening=True)
    for block in blocks:
        if block.kind is BlockKind.SCENE_BREAK:
            current.scene_break_pending = bool(current.paragraphs)
            continue
        if block.kind is BlockKind.HEADING and block.level <= chapter_level:
            heading = _heading_sentence(text, block)
            if heading is None:
                continue
            _close(current, finished)
            current = _OpenChapter(display_title(heading), heading, [])
            continue
        sentences = segment_paragraph(text, block.start, block.end)
        if sentences:
            current.paragraphs.append(Paragraph(sentences, current.scene_break_pending))
            current.scene_break_pending = False
    _close(current, finished)
    return tuple(
        Chapter(
            index=index,
            title=chapter.title,
            source=source,
            paragraphs=tuple(chapter.paragraphs),
            heading=chapter.heading,
        )
        for index, chapter in enumerate(finished)
    )


def _close(chapter: _OpenChapter, finished: list[_OpenChapter]) -> None:
    # The text before the first heading is kept only when it has words; a chapter that has a
    # heading of its own is kept even when empty, so the caller can report it.
    if chapter.is_opening and not chapter.paragraphs:
        return
    finished.append(chapter)


def _heading_sentence(text: str, block: Block) -> Sentence | None:
    words = tokenize(text, block.start, block.end)
    return Sentence(words) if words else None


# --- chapters that are only a heading -------------------------------------------------------

HEADING_ONLY_PAUSE = "<break time='700ms'/>"  # between a merged part title and the chapter's own


@dataclass(frozen=True, slots=True)
class HeadingOnly:
    """What was done with a chapter that is only a heading (``input.heading_only``)."""

    title: str
    source: str
    action: str  # "merged" | "kept" | "skipped"
    into: str | None = None  # the chapter it was merged into

    def describe(self) -> str:
        if self.action == "merged":
            return f"'{self.title}' is only a heading: merged into '{self.into}' (spoken before its title)"
        if self.action == "kept":
            return f"'{self.title}' is only a heading: kept as a chapter of its own (its title is its text)"
        return f"'{self.title}' is only a heading: skipped"


def is_heading_only(chapter: Chapter) -> bool:
    return chapter.heading is not None and not any(p.sentences for p in chapter.paragraphs)


def apply_heading_only_rule(chapters: Iterable[Chapter], rule: str) -> tuple[list[Chapter], list[HeadingOnly]]:
    """Chapters with the heading-only ones merged into the next chapter (``merge``), turned into
    a chapter whose one paragraph is the heading (``keep``), or dropped (``skip``); a lone
    heading at the very end has nothing to merge into and is skipped. Chapters with neither
    heading nor text are dropped, as before. Returns the chapters and what was done."""
    out: list[Chapter] = []
    notes: list[HeadingOnly] = []
    pending: list[Chapter] = []  # heading-only chapters waiting for the next real one
    for chapter in chapters:
        if is_heading_only(chapter):
            assert chapter.heading is not None
            if rule == "keep":
                notes.append(HeadingOnly(chapter.title, chapter.source, "kept"))
                out.append(replace(chapter, paragraphs=(Paragraph((chapter.heading,)),), heading=None))
            elif rule == "merge":
                pending.append(chapter)
            else:
                notes.append(HeadingOnly(chapter.title, chapter.source, "skipped"))
            continue
        if not any(p.sentences for p in chapter.paragraphs):
            continue
        if pending and _document_of(pending[0]) != _document_of(chapter):
            # offsets index one document's text: a heading never moves to another file
            notes.extend(HeadingOnly(p.title, p.source, "skipped") for p in pending)
            pending = []
        if pending:
            chapter = _merge_headings(pending, chapter)
            notes.extend(HeadingOnly(p.title, p.source, "merged", chapter.title) for p in pending)
            pending = []
        out.append(chapter)
    notes.extend(HeadingOnly(p.title, p.source, "skipped") for p in pending)
    return out, notes


def _document_of(chapter: Chapter) -> str:
    return chapter.source.split("#", 1)[0]


def _merge_headings(leading: list[Chapter], chapter: Chapter) -> Chapter:
    """``chapter`` with the headings of ``leading`` spoken before its own, a pause after each.
    Word offsets are kept: both come from the same document."""
    words: list[Word] = []
    for lead in leading:
        assert lead.heading is not None
        heading_words = list(lead.heading.words)
        last = heading_words[-1]
        heading_words[-1] = last.with_spoken(last.spoken + HEADING_ONLY_PAUSE)
        words.extend(heading_words)
    own = chapter.heading.words if chapter.heading is not None else ()
    return replace(chapter, heading=Sentence((*words, *own)))
