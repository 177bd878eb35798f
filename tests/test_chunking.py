"""Chunking (pipeline.text.chunking) on chapters built by the real segmenter and readers."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import Boundary, Chapter, Chunk, Paragraph, Sentence, Word
from pipeline.text.chunking import chunk_document, empty_chapters, spoken_length
from pipeline.text.readers import read_manuscript
from pipeline.text.segment import segment_paragraph, tokenize

DEMO = Path(__file__).resolve().parent.parent / "data" / "manuscripts" / "the-lighthouse-keepers-ledger.md"


def make_chapter(
    paragraphs: list[str],
    *,
    heading: str | None = None,
    scene_breaks: list[bool] | None = None,
    index: int = 0,
) -> Chapter:
    """A chapter whose text is ``heading`` and ``paragraphs`` separated by blank lines."""
    source = ""
    heading_sentence = None
    if heading is not None:
        words = tokenize(heading, 0, len(heading))
        heading_sentence = Sentence(words) if words else None
        source = heading + "\n\n"
    built = []
    for number, paragraph in enumerate(paragraphs):
        start = len(source)
        source += paragraph + "\n\n"
        scene = bool(scene_breaks and scene_breaks[number])
        built.append(Paragraph(segment_paragraph(source, start, start + len(paragraph)), scene))
    return Chapter(index, heading or "Untitled", "test.txt", tuple(built), heading_sentence)


def texts(chunks: list[Chunk]) -> list[str]:
    return [chunk.text for chunk in chunks]


def test_sentences_pack_greedily_within_a_paragraph_only() -> None:
    chapter = make_chapter(["One two. Three four. Five six.", "Seven eight."])
    chunks = chunk_document([chapter], max_chars=20)
    assert texts(chunks) == ["One two. Three four.", "Five six.", "Seven eight."]
    assert [c.pause_after for c in chunks] == [
        Boundary.SENTENCE,
        Boundary.PARAGRAPH,
        Boundary.CHAPTER,
    ]
    assert [c.sentence_ids for c in chunks] == [(0, 0, 1, 1), (2, 2), (3, 3)]


def test_a_long_sentence_is_cut_at_clauses_then_between_words() -> None:
    sentence = "one two three, four five six; seven eight nine ten eleven twelve thirteen."
    chunks = chunk_document([make_chapter([sentence])], max_chars=20)
    assert texts(chunks) == [
        "one two three,",
        "four five six;",
        "seven eight nine ten",
        "eleven twelve",
        "thirteen.",
    ]
    assert all(spoken_length(c.words) <= 20 for c in chunks)
    assert {c.sentence_ids for c in chunks} == {(0,) * len(c.words) for c in chunks}
    assert [c.pause_after for c in chunks][-2:] == [Boundary.SENTENCE, Boundary.CHAPTER]


def test_clauses_rejoin_when_they_fit_and_a_giant_word_stays_whole() -> None:
    giant = "x" * 50
    chunks = chunk_document([make_chapter([f"a, b, c, d, {giant} e, f."])], max_chars=10)
    assert texts(chunks) == ["a, b, c,", "d,", giant, "e, f."]


def test_length_is_measured_on_the_spoken_form() -> None:
    chapter = make_chapter(["It cost 42. It was cheap."])
    words = {w.text: w for w in chapter.words}
    spoken = replace(
        chapter,
        paragraphs=tuple(
            Paragraph(
                tuple(
                    Sentence(tuple(w.with_spoken("forty-two.") if w.text == "42." else w for w in s.words))
                    for s in p.sentences
                )
            )
            for p in chapter.paragraphs
        ),
    )
    assert words["42."].spoken == "42."
    assert texts(chunk_document([chapter], max_chars=25)) == ["It cost 42. It was cheap."]
    assert texts(chunk_document([spoken], max_chars=25)) == ["It cost 42.", "It was cheap."]


def test_headings_scene_breaks_and_book_wide_numbering() -> None:
    first = make_chapter(["Alpha.", "Beta.", "Gamma."], heading="Chapter 1: Start", scene_breaks=[False, True, False])
    second = make_chapter(["Delta."], heading="Chapter 2")
    chunks = chunk_document([first, second], max_chars=100, first_chapter_index=7)
    assert [(c.id, c.chapter, c.seq, c.text, c.is_heading, c.pause_after) for c in chunks] == [
        ("c0007-00000", 7, 0, "Chapter 1: Start", True, Boundary.PARAGRAPH),
        ("c0007-00001", 7, 1, "Alpha.", False, Boundary.SCENE),
        ("c0007-00002", 7, 2, "Beta.", False, Boundary.PARAGRAPH),
        ("c0007-00003", 7, 3, "Gamma.", False, Boundary.CHAPTER),
        ("c0008-00000", 8, 0, "Chapter 2", True, Boundary.PARAGRAPH),
        ("c0008-00001", 8, 1, "Delta.", False, Boundary.CHAPTER),
    ]
    assert [c.sentence_ids for c in chunks] == [(0, 0, 0), (1,), (2,), (3,), (0, 0), (1,)]
    untitled = chunk_document([first], max_chars=100, read_titles=False)
    assert texts(untitled) == ["Alpha.", "Beta.", "Gamma."]
    assert [c.sentence_ids for c in untitled] == [(0,), (1,), (2,)]
    assert not any(c.is_heading for c in untitled)


def test_empty_chapters_give_no_chunks_and_are_reported() -> None:
    empty = make_chapter([], heading="Prologue")
    blank = make_chapter(["   "], heading="Interlude")
    full = make_chapter(["Words."], heading="Chapter 1")
    chunks = chunk_document([empty, full, blank], max_chars=50, first_chapter_index=3)
    assert [(c.chapter, c.text) for c in chunks] == [(4, "Chapter 1"), (4, "Words.")]
    assert [(i, c.title) for i, c in empty_chapters([empty, full, blank], first_chapter_index=3)] == [
        (3, "Prologue"),
        (5, "Interlude"),
    ]


def test_the_demo_manuscript_chunks() -> None:
    document = read_manuscript(DEMO, display_name="demo.md")
    for max_chars in (400, 120):
        chunks = chunk_document(document.chapters, max_chars=max_chars)
        assert all(spoken_length(c.words) <= max_chars for c in chunks)
        pauses = Counter(c.pause_after for c in chunks)
        assert pauses[Boundary.CHAPTER] == 3
        assert pauses[Boundary.SCENE] == 1
        assert sum(c.is_heading for c in chunks) == 3
        assert [w for c in chunks if not c.is_heading for w in c.words] == [
            w for chapter in document.chapters for w in chapter.words
        ]
        for chunk in chunks:
            assert all(document.text[w.start : w.end] == w.text for w in chunk.words)


# --- properties -------------------------------------------------------------------------

_TEXT = st.text(
    st.one_of(
        st.characters(blacklist_categories=["Cs"]),
        st.sampled_from(" ,;:—–.!?\n"),
    ),
    max_size=160,
)
_CHAPTER = st.tuples(
    st.one_of(st.none(), st.text(min_size=1, max_size=40)),
    st.lists(st.tuples(_TEXT, st.booleans()), max_size=5),
)


def _with_digits_spoken_longer(chapter: Chapter) -> Chapter:
    """Words with digits get a longer spoken form, as normalization gives them."""

    def respeak(sentence: Sentence) -> Sentence:
        return Sentence(
            tuple(
                w.with_spoken(f"{w.text} and more") if any(c.isdigit() for c in w.text) else w for w in sentence.words
            )
        )

    return replace(
        chapter,
        paragraphs=tuple(
            Paragraph(tuple(respeak(s) for s in p.sentences), p.scene_break_before) for p in chapter.paragraphs
        ),
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_CHAPTER, min_size=1, max_size=3),
    st.integers(1, 120),
    st.booleans(),
    st.integers(0, 50),
)
def test_chunking_properties(
    specs: list[tuple[str | None, list[tuple[str, bool]]]],
    max_chars: int,
    read_titles: bool,
    first_chapter_index: int,
) -> None:
    chapters = [
        _with_digits_spoken_longer(
            make_chapter([p for p, _ in paragraphs], heading=heading, scene_breaks=[s for _, s in paragraphs])
        )
        for heading, paragraphs in specs
    ]
    chunks = chunk_document(
        chapters,
        max_chars=max_chars,
        read_titles=read_titles,
        first_chapter_index=first_chapter_index,
    )
    for position, chapter in enumerate(chapters):
        number = first_chapter_index + position
        mine = [c for c in chunks if c.chapter == number]
        _check_chapter(chapter, mine, number, max_chars=max_chars, read_titles=read_titles)
    assert [c.chapter for c in chunks] == sorted(c.chapter for c in chunks)


def _check_chapter(chapter: Chapter, chunks: list[Chunk], number: int, *, max_chars: int, read_titles: bool) -> None:
    # Where every word belongs: (paragraph, sentence id, is it the last word of its paragraph).
    spoken_paragraphs = [p for p in chapter.paragraphs if p.sentences]
    # A scene break marked on a paragraph without words belongs to the next one with words.
    scene_before, carried = [], False
    for written in chapter.paragraphs:
        carried = carried or written.scene_break_before
        if written.sentences:
            scene_before.append(carried)
            carried = False
    if not spoken_paragraphs:
        assert chunks == []
        return
    expected: list[Word] = []
    place: list[tuple[int, int, bool]] = []
    sentence_id = 0
    if read_titles and chapter.heading is not None:
        expected += chapter.heading.words
        place += [(-1, 0, i == len(chapter.heading.words) - 1) for i in range(len(chapter.heading.words))]
        sentence_id = 1
    for p_index, paragraph in enumerate(spoken_paragraphs):
        for sentence in paragraph.sentences:
            expected += sentence.words
            place += [(p_index, sentence_id, False) for _ in sentence.words]
            sentence_id += 1
        place[-1] = (p_index, place[-1][1], True)

    # Nothing dropped, duplicated or reordered; no word cut.
    assert [w for c in chunks for w in c.words] == expected
    assert [c.id for c in chunks] == [f"c{number:04d}-{seq:05d}" for seq in range(len(chunks))]
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    cursor = 0
    for chunk in chunks:
        spots = place[cursor : cursor + len(chunk.words)]
        cursor += len(chunk.words)
        assert chunk.words, "a chunk always has words"
        assert spoken_length(chunk.words) <= max_chars or len(chunk.words) == 1
        assert len({where for where, _, _ in spots}) == 1, "a chunk never crosses a paragraph"
        assert chunk.sentence_ids == tuple(sentence for _, sentence, _ in spots)
        assert chunk.is_heading == (spots[0][0] == -1)
        last_paragraph, _, ends_paragraph = spots[-1]
        if chunk is chunks[-1]:
            assert chunk.pause_after is Boundary.CHAPTER
        elif not ends_paragraph:
            assert chunk.pause_after is Boundary.SENTENCE
        elif last_paragraph >= 0 and scene_before[last_paragraph + 1]:
            assert chunk.pause_after is Boundary.SCENE
        else:
            assert chunk.pause_after is Boundary.PARAGRAPH


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk_document([make_chapter(["Words."])], max_chars=0)
