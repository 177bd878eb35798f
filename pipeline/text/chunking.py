"""Chapters to chunks: the units sent to a speech engine.

A chunk holds whole sentences of one paragraph, packed greedily up to ``max_chars`` of spoken
text (``" ".join(w.spoken)``, what the engine is sent and billed for). A paragraph boundary
is a pause of its own, so no chunk crosses one. A sentence longer than ``max_chars`` is cut
at clause punctuation, then between words; a word longer than ``max_chars`` is never cut and
goes alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pipeline.models import Boundary, Chapter, Chunk, Paragraph, Sentence, Word

# A word ending in one of these closes a clause: a good place to cut a long sentence.
_CLAUSE_ENDINGS = frozenset(",;:—–")
_CLOSERS = "\"'”’»›)]}"


@dataclass(frozen=True, slots=True)
class _Piece:
    """A sentence, or a part of one that had to be cut, with its sentence index."""

    words: tuple[Word, ...]
    sentence_id: int

    @property
    def length(self) -> int:
        return spoken_length(self.words)


def spoken_length(words: Sequence[Word]) -> int:
    """Characters the engine is sent for ``words``: their spoken forms joined by spaces."""
    return sum(len(w.spoken) for w in words) + max(len(words) - 1, 0)


def chunk_id(chapter: int, seq: int) -> str:
    return f"c{chapter:04d}-{seq:05d}"


def empty_chapters(chapters: Sequence[Chapter], *, first_chapter_index: int = 0) -> list[tuple[int, Chapter]]:
    """The chapters without a word of body text (book-wide index, chapter), which
    ``chunk_document`` skips: the caller reports them rather than speak a lone title."""
    return [
        (first_chapter_index + position, chapter)
        for position, chapter in enumerate(chapters)
        if not any(paragraph.sentences for paragraph in chapter.paragraphs)
    ]


def chunk_document(
    chapters: Sequence[Chapter],
    *,
    max_chars: int,
    read_titles: bool = True,
    first_chapter_index: int = 0,
) -> list[Chunk]:
    """Every chapter's chunks in reading order; chapter ``k`` of ``chapters`` is numbered
    ``first_chapter_index + k`` in chunk ids and ``Chunk.chapter``."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    chunks: list[Chunk] = []
    for position, chapter in enumerate(chapters):
        chunks.extend(
            _chunk_chapter(
                chapter,
                book_index=first_chapter_index + position,
                max_chars=max_chars,
                read_titles=read_titles,
            )
        )
    return chunks


def _chunk_chapter(chapter: Chapter, *, book_index: int, max_chars: int, read_titles: bool) -> list[Chunk]:
    # Paragraphs with words, each with whether a scene break comes before it; a scene break
    # on a paragraph without words carries over to the next one that has some.
    spoken: list[tuple[Paragraph, bool]] = []
    scene_break = False
    for paragraph in chapter.paragraphs:
        scene_break = scene_break or paragraph.scene_break_before
        if paragraph.sentences:
            spoken.append((paragraph, scene_break))
            scene_break = False
    if not spoken:
        return []
    # Each group is packed on its own: (pieces, the pause after its last chunk).
    groups: list[tuple[list[_Piece], Boundary]] = []
    sentence_id = 0
    has_title = read_titles and chapter.heading is not None
    if has_title and chapter.heading is not None:
        groups.append((list(_pieces(chapter.heading, 0, max_chars)), Boundary.PARAGRAPH))
        sentence_id = 1
    for index, (paragraph, _) in enumerate(spoken):
        pieces: list[_Piece] = []
        for sentence in paragraph.sentences:
            pieces.extend(_pieces(sentence, sentence_id, max_chars))
            sentence_id += 1
        if index == len(spoken) - 1:
            boundary = Boundary.CHAPTER
        else:
            boundary = Boundary.SCENE if spoken[index + 1][1] else Boundary.PARAGRAPH
        groups.append((pieces, boundary))

    chunks: list[Chunk] = []
    for number, (pieces, boundary) in enumerate(groups):
        packed = list(_pack(pieces, max_chars))
        for batch_number, batch in enumerate(packed):
            last = batch_number == len(packed) - 1
            chunks.append(
                Chunk(
                    id=chunk_id(book_index, len(chunks)),
                    chapter=book_index,
                    seq=len(chunks),
                    source=chapter.source,
                    words=tuple(w for piece in batch for w in piece.words),
                    # Inside a paragraph the pause is a sentence's, also where a long
                    # sentence had to be cut: the smallest pause there is.
                    pause_after=boundary if last else Boundary.SENTENCE,
                    is_heading=has_title and number == 0,
                    sentence_ids=tuple(piece.sentence_id for piece in batch for _ in piece.words),
                )
            )
    return chunks


def _pack(pieces: list[_Piece], max_chars: int) -> Iterator[list[_Piece]]:
    """Greedy: add pieces to the current chunk while its spoken text stays within max_chars."""
    batch: list[_Piece] = []
    length = 0
    for piece in pieces:
        added = piece.length if not batch else length + 1 + piece.length
        if batch and added > max_chars:
            yield batch
            batch, added = [], piece.length
        batch.append(piece)
        length = added
    if batch:
        yield batch


def _pieces(sentence: Sentence, sentence_id: int, max_chars: int) -> Iterator[_Piece]:
    """The sentence whole if it fits, else cut at clause ends, then between words."""
    if spoken_length(sentence.words) <= max_chars:
        yield _Piece(sentence.words, sentence_id)
        return
    # Whole clauses are packed together while they fit; a clause too long for one chunk is
    # packed word by word on its own, so every cut but those inside it falls on a clause end.
    merged: list[tuple[Word, ...]] = []
    last_is_clause = False
    for clause in _clauses(sentence.words):
        if spoken_length(clause) > max_chars:
            merged.extend(_pack_words(clause, max_chars))
            last_is_clause = False
        elif last_is_clause and spoken_length(merged[-1]) + 1 + spoken_length(clause) <= max_chars:
            merged[-1] = merged[-1] + clause
        else:
            merged.append(clause)
            last_is_clause = True
    for words in merged:
        yield _Piece(words, sentence_id)


def _clauses(words: tuple[Word, ...]) -> Iterator[tuple[Word, ...]]:
    start = 0
    for index, word in enumerate(words):
        core = word.text.rstrip(_CLOSERS)
        if core and core[-1] in _CLAUSE_ENDINGS:
            yield words[start : index + 1]
            start = index + 1
    if start < len(words):
        yield words[start:]


def _pack_words(words: tuple[Word, ...], max_chars: int) -> Iterator[tuple[Word, ...]]:
    start, length = 0, -1
    for index, word in enumerate(words):
        added = length + 1 + len(word.spoken)
        if index > start and added > max_chars:
            yield words[start:index]
            start, added = index, len(word.spoken)
        length = added
    yield words[start:]
