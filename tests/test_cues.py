"""Cue building: every word once, in order, inside the style limits where the speech allows."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.align.breaks import FORBIDDEN, break_penalties, split_lines
from pipeline.align.cues import build_cues, cue_chars, cue_stats
from pipeline.config import SubtitleStyle
from pipeline.models import ChapterTimeline, Cue, TimedWord, Word

STYLE = SubtitleStyle()


def timeline(spec: Sequence[tuple[str, int, int, int]], *, tail_ms: int = 1000) -> ChapterTimeline:
    """(text, gap before in ms, duration in ms, sentence) per word -> a chapter timeline."""
    words, t, offset = [], 0, 0
    for text, gap, duration, sentence in spec:
        t += gap
        words.append(
            TimedWord(
                Word(text, offset, offset + len(text)), 0, "book.txt", t, t + duration, sentence
            )
        )
        t += duration
        offset += len(text) + 1
    return ChapterTimeline(0, "One", "book.txt", t + tail_ms, tuple(words))


def spoken(text: str, *, ms_per_char: int = 70, sentence_pause: int = 400) -> ChapterTimeline:
    """A timeline for ``text`` at a steady rate; sentences end at . ! ?"""
    spec, sentence, gap = [], 0, 0
    for token in text.split():
        spec.append((token, gap, ms_per_char * len(token), sentence))
        gap = 30
        if token[-1] in ".!?" and token not in {"Mr.", "Mrs."}:
            sentence, gap = sentence + 1, sentence_pause
    return timeline(spec)


def cue_words(cues: Sequence[Cue]) -> list[str]:
    return [w.word.text for c in cues for w in c.words]


# --- random timelines ------------------------------------------------------------------------

VOCABULARY = [
    "the",
    "a",
    "an",
    "my",
    "their",
    "Ada",
    "Lovelace",
    "Mr.",
    "Smith",
    "and",
    "but",
    "with",
    "of",
    "house",
    "walked,",
    "slowly;",
    "end.",
    "Why?",
    "“Stop!”",
    "—",
    "”",
    "I",
    "x",
    "extraordinarily",
    "Montgomery-Wellington-Smythe-Fotheringay-Hughes",
    "café",
    "&",
    "<b>",
]

word_spec = st.tuples(
    st.sampled_from(VOCABULARY),
    st.sampled_from([0, 0, 10, 40, 120, 300, 900, 2500]),
    st.integers(0, 900),
    st.booleans(),
)
styles = st.builds(
    SubtitleStyle,
    max_chars_per_line=st.integers(10, 60),
    max_lines=st.integers(1, 3),
    max_cps=st.floats(5, 30),
    min_duration_ms=st.integers(0, 1500),
    max_duration_ms=st.integers(500, 9000),
    min_gap_ms=st.integers(0, 200),
)


def random_timeline(raw: list[tuple[str, int, int, bool]]) -> ChapterTimeline:
    spec, sentence = [], 0
    for text, gap, duration, new_sentence in raw:
        sentence += new_sentence
        spec.append((text, gap, duration, sentence))
    return timeline(spec, tail_ms=0)


@settings(max_examples=150, deadline=None)
@given(st.lists(word_spec, min_size=1, max_size=80), styles)
def test_random_timelines_keep_every_word_once_and_the_hard_limits(
    raw: list[tuple[str, int, int, bool]], style: SubtitleStyle
) -> None:
    tl = random_timeline(raw)
    cues = build_cues(tl, style)
    # Every word exactly once, in order, as written; lines are those words.
    assert [w.word for c in cues for w in c.words] == [w.word for w in tl.words]
    for cue in cues:
        assert " ".join(cue.lines) == " ".join(w.word.text for w in cue.words)
        assert 1 <= len(cue.lines) <= style.max_lines
        for line in cue.lines:
            assert len(line) <= style.max_chars_per_line or " " not in line
        assert cue.start_ms >= cue.words[0].start_ms  # never shown before it is heard
        assert cue.end_ms > cue.start_ms
        assert cue.end_ms - cue.start_ms <= style.max_duration_ms or len(cue.words) == 1
    for before, after in itertools.pairwise(cues):
        assert after.start_ms - before.end_ms >= style.min_gap_ms


@settings(max_examples=60, deadline=None)
@given(st.lists(word_spec, min_size=1, max_size=60))
def test_limits_only_broken_where_the_speech_leaves_no_room(
    raw: list[tuple[str, int, int, bool]],
) -> None:
    tl = random_timeline(raw)
    cues = build_cues(tl, STYLE)
    for k, cue in enumerate(cues):
        duration = cue.end_ms - cue.start_ms
        next_start = cues[k + 1].start_ms if k + 1 < len(cues) else max(tl.duration_ms, cue.end_ms)
        room = next_start - STYLE.min_gap_ms if k + 1 < len(cues) else next_start
        too_fast = cue_chars(cue) * 1000 > STYLE.max_cps * duration
        if too_fast or duration < STYLE.min_duration_ms:
            # Either the cue already runs to the next cue, or it is at the longest allowed.
            assert cue.end_ms >= room or duration >= STYLE.max_duration_ms


# --- break preferences -------------------------------------------------------------------------


def test_two_sentences_become_two_cues() -> None:
    cues = build_cues(spoken("The rain had stopped by noon. We walked down to the harbour."), STYLE)
    assert [c.text.replace("\n", " ") for c in cues] == [
        "The rain had stopped by noon.",
        "We walked down to the harbour.",
    ]


def test_a_long_sentence_breaks_after_its_comma() -> None:
    text = (
        "When the last of the fishing boats had come back into the harbour, "
        "the whole village gathered on the quay to count the catch."
    )
    cues = build_cues(spoken(text), STYLE)
    assert len(cues) == 2
    assert cues[0].words[-1].word.text == "harbour,"


ARTICLE_TEXT = (
    "She carried the heavy wooden box full of old letters up a narrow staircase to the attic "
    "where her grandmother kept the rest of an enormous collection of photographs"
)


def test_no_cue_or_line_ends_on_an_article_or_a_first_name() -> None:
    text = ARTICLE_TEXT + " that Ada Lovelace and Mary Shelley had once admired in the spring"
    for width in range(20, 43):
        style = SubtitleStyle(max_chars_per_line=width)
        cues = build_cues(spoken(text), style)
        assert cue_words(cues) == text.split()
        for cue in cues:
            for line in cue.lines:
                last = line.split()[-1]
                assert last.lower() not in {"the", "a", "an", "her"}, (width, cue.lines)
                assert last not in {"Ada", "Mary"}, (width, cue.lines)


def test_line_break_avoids_the_balanced_split_after_an_article() -> None:
    # The evenly balanced break would fall right after "the"; it must move.
    texts = ["We", "met", "at", "the", "station", "with", "the", "old", "dog"]
    tl = spoken(" ".join(texts))
    penalties = break_penalties(tl.words)
    assert penalties[3] == FORBIDDEN  # between "the" and "station"
    starts, _ = split_lines(texts, penalties, 22, 2)
    first = texts[: starts[0]]
    assert first[-1] not in {"the", "a"}
    assert all(len(" ".join(x)) <= 22 for x in (first, texts[starts[0] :]))


def test_titles_and_name_pairs_are_forbidden_breaks() -> None:
    tl = spoken("Yesterday Mr. Darcy met Ada Lovelace, and I saw them.")
    texts = [w.word.text for w in tl.words]
    penalties = dict(
        zip(itertools.pairwise(texts), break_penalties(tl.words), strict=True)
    )
    assert penalties[("Mr.", "Darcy")] == FORBIDDEN
    assert penalties[("Ada", "Lovelace,")] == FORBIDDEN
    assert penalties[("Lovelace,", "and")] < penalties[("met", "Ada")]
    assert penalties[("I", "saw")] != FORBIDDEN  # "I" is no first name


# --- timing ----------------------------------------------------------------------------------


def test_a_short_cue_is_stretched_into_the_following_silence() -> None:
    tl = timeline([("Yes.", 100, 300, 0), ("Then", 3000, 300, 1), ("go.", 30, 300, 1)])
    first = build_cues(tl, STYLE)[0]
    assert first.start_ms == 100
    assert first.end_ms - first.start_ms >= STYLE.min_duration_ms


def test_a_cue_is_never_stretched_into_the_next_one() -> None:
    # Fast speech: no room to reach min duration or max cps; stay in sync and count it.
    spec = [
        ("Quickly.", 0, 250, 0),
        ("Now.", 100, 250, 1),
        ("Again", 100, 250, 2),
        ("and", 0, 100, 2),
    ]
    spec += [("again!", 0, 250, 2)]
    tl = timeline(spec, tail_ms=0)
    cues = build_cues(tl, STYLE)
    for before, after in itertools.pairwise(cues):
        assert before.end_ms <= after.start_ms - STYLE.min_gap_ms
        assert after.start_ms == after.words[0].start_ms
    stats = cue_stats(cues, STYLE)
    assert stats["within_limits"] < stats["cues"]
    assert stats["broken"]["too_fast"] >= 1


def test_cue_stats_counts_each_broken_limit() -> None:
    w = timeline([("hi", 0, 100, 0)]).words[0]
    cues = [
        Cue(0, 1000, ("fine",), (w,)),
        Cue(1050, 1200, ("x" * 50,)),  # line too long, too short, too fast, close to the previous
        Cue(2000, 10000, ("a", "b", "c")),  # too long, too many lines
    ]
    stats = cue_stats(cues, STYLE)
    assert stats["cues"] == 3 and stats["within_limits"] == 0
    assert stats["broken"] == {
        "line_too_long": 1,
        "too_many_lines": 1,
        "too_short": 1,
        "too_long": 1,
        "too_fast": 1,
        "gap_too_small": 1,
        "starts_before_speech": 0,
    }
    assert cue_stats([], STYLE)["fraction_within_limits"] == 1.0
    # Two chapters' chapter-relative lists in a row: the restart at 0 is no gap problem.
    two_chapters = [Cue(0, 1000, ("one",)), Cue(1100, 2000, ("two",)), Cue(0, 1000, ("three",))]
    assert cue_stats(two_chapters, STYLE)["within_limits"] == 3


def test_a_book_length_chapter_at_narration_speed_stays_within_limits() -> None:
    # About 2,400 words at 70 ms a letter (near espeak-ng's 175 words a minute).
    sentences = [
        "The river ran fast and cold under the old stone bridge.",
        "Nobody in the village could remember when it had last frozen over, not even Mrs. Hale.",
        "She said, with a laugh, that the winters of her childhood had been longer and darker.",
        "Children skated from the mill to the church and back again before supper.",
        "Then the thaw came.",
    ]
    text = " ".join(sentences * 40)
    cues = build_cues(spoken(text), STYLE)
    assert cue_words(cues) == text.split()
    stats = cue_stats(cues, STYLE)
    assert stats["within_limits"] / stats["cues"] >= 0.99, stats
