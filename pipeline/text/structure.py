"""From a flat list of blocks (headings, paragraphs, scene breaks) to chapters.

Both text readers find blocks in their own way and share this step, so a chapter means the
same thing whichever format a manuscript is written in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from pipeline.models import Chapter, Paragraph, Sentence
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
