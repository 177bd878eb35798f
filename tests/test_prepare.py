"""The text stage as a job sees it: what is spoken changes with normalization and the lexicon,
what is shown (subtitles, alignment) never does; chapter selection and preview mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.align.cues import build_cues
from pipeline.config import SubtitleStyle, load_job
from pipeline.errors import ConfigError
from pipeline.models import Boundary, ChapterTimeline, TimedWord
from pipeline.prepare import prepare_book
from pipeline.preview import preview_book
from tests.conftest import REPO
from tests.jobs import write_job

SAMPLE_EPUB = REPO / "data" / "manuscripts" / "the-lamplighter-of-harrow-quay.epub"


def _fake_cues(chunks: list) -> list[str]:
    """Cue text for chunks laid end to end at 300 ms a word: enough to show what subtitles print."""
    words, t = [], 0
    for chunk in chunks:
        for i, w in enumerate(chunk.words):
            words.append(TimedWord(w, chunk.chapter, chunk.source, t, t + 250, chunk.sentence_ids[i]))
            t += 300
    timeline = ChapterTimeline(0, "t", "s", t + 1000, tuple(words))
    return [c.text for c in build_cues(timeline, SubtitleStyle())]


def test_normalization_and_lexicon_change_speech_not_subtitles(tmp_path: Path) -> None:
    plain = prepare_book(load_job(write_job(tmp_path, name="a", text={"normalize": False})))
    spoken = prepare_book(
        load_job(
            write_job(
                tmp_path,
                name="b",
                text={"normalize": True, "lexicon": [{"match": "Agnes", "say": "Ag-ness"}]},
            )
        )
    )
    assert [c.text for c in plain.chunks] == [c.text for c in spoken.chunks]
    plain_speech = " ".join(w for c in plain.chunks for w in c.spoken_words)
    speech = " ".join(w for c in spoken.chunks for w in c.spoken_words)
    assert "1,250" in plain_speech and "1,250" not in speech
    assert "one thousand, two hundred and fifty" in speech or "one thousand two hundred and fifty" in speech
    assert "Ag-ness" in speech and "Ag-ness" not in plain_speech
    chapter_one = [c for c in spoken.chunks if c.chapter == 0]
    cues = " ".join(_fake_cues(chapter_one))
    assert "Agnes" in cues and "Ag-ness" not in cues and "1,250" in cues
    assert spoken.lexicon_version and not plain.lexicon_version


def test_chapter_selection_by_index_and_title(tmp_path: Path) -> None:
    book = prepare_book(load_job(write_job(tmp_path, input={"chapters": [3, "(?i)light on the water"]})))
    assert [c.title for c in book.chapters] == [
        "Chapter Two: A Light on the Water",
        "Chapter Three: What the Light Is For",
    ]
    assert {c.chapter for c in book.chunks} == {0, 1}
    with pytest.raises(ConfigError, match="nothing-like-this"):
        prepare_book(load_job(write_job(tmp_path, name="x", input={"chapters": ["nothing-like-this"]})))


def test_epub_sample_reads_five_chapters_with_metadata(tmp_path: Path) -> None:
    book = prepare_book(load_job(write_job(tmp_path, title=None, input={"files": [str(SAMPLE_EPUB)]})))
    assert len(book.chapters) == 5
    assert book.author and book.title == "The Lamplighter of Harrow Quay"
    heading = book.chunks[0]
    # the part page before chapter 1 is only a heading: merged into it (input.heading_only)
    assert heading.is_heading and heading.text.startswith("Part One: Evening Chapter 1")
    assert "Chapter one" in " ".join(heading.spoken_words)  # spoken, not shown


def test_preview_keeps_the_opening_of_every_chapter(tmp_path: Path) -> None:
    book = prepare_book(load_job(write_job(tmp_path)))
    short = preview_book(book, seconds=20)
    for index in range(len(book.chapters)):
        full, kept = book.chunks_of(index), short.chunks_of(index)
        assert 0 < len(kept) < len(full)
        assert [c.id for c in kept] == [c.id for c in full[: len(kept)]]
        assert kept[-1].pause_after is Boundary.CHAPTER
        words = sum(len(c.words) for c in kept)
        assert words >= 20 * 160 / 60  # at least the asked-for seconds at narration pace
