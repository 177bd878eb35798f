"""Pure parts of the local engine: markup parsing, IPA conversion, timing realignment."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import RequestRejectedError
from pipeline.tts.espeak import WordEvent
from pipeline.tts.ipa import to_espeak
from pipeline.tts.markup import (
    Break,
    Digits,
    Phonemes,
    Segment,
    Text,
    parse_markup,
    strip_markup,
    total_break_ms,
)
from pipeline.tts.realign import starts_from_events, voiced_range, word_ranges

# ---- markup ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "ms"),
    [
        ("<break time='500ms'/>", 500),
        ('<break time="1s"/>', 1000),
        ("<break time='1.5s' />", 1500),
        ("<BREAK time = '250ms'/>", 250),
        ("<break time='.2s'>", 200),
    ],
)
def test_break_forms(tag: str, ms: int) -> None:
    assert parse_markup(f"a{tag}b") == [Text("a"), Break(ms), Text("b")]


def test_tags_and_their_content() -> None:
    text = "Call <digits>555 1234</digits> and say <phonemes>təˈmɑːtəʊ</phonemes>."
    assert parse_markup(text) == [
        Text("Call "),
        Digits("555 1234"),
        Text(" and say "),
        Phonemes("təˈmɑːtəʊ"),
        Text("."),
    ]
    assert strip_markup(text) == "Call 555 1234 and say təˈmɑːtəʊ."


def test_other_angle_brackets_are_text() -> None:
    for text in ("x < y and y > z", "<html> is not ours", "<breakfast>", "a <b>bold</b> claim"):
        assert parse_markup(text) == [Text(text)]


@pytest.mark.parametrize(
    "bad",
    [
        "<break time='soon'/>",
        "<break/>",
        "<break time=500ms/>",
        "<break time='11s'/>",
        "<digits>12",
        "12</digits>",
        "<phonemes>a<digits>1</digits></phonemes>",
        "<digits lang='en'>1</digits>",
        "</break>",
    ],
)
def test_malformed_tags_are_rejected_in_one_line(bad: str) -> None:
    with pytest.raises(RequestRejectedError) as caught:
        parse_markup(f"before {bad} after")
    message = str(caught.value)
    assert message.startswith("markup:") and "\n" not in message


def test_strip_markup_and_total_break() -> None:
    text = "Hello<break time='1s'/>world, <break time='300ms'/> again"
    assert strip_markup(text) == "Hello world, again"
    assert total_break_ms(text) == 1300
    assert parse_markup("") == [] and strip_markup("  ") == ""


_plain = st.text(alphabet=st.characters(blacklist_characters="<>", codec="utf-8"))


@st.composite
def segment_lists(draw: st.DrawFn) -> list[Segment]:
    kinds = draw(st.lists(st.sampled_from(["text", "break", "digits", "phonemes"]), max_size=8))
    segments: list[Segment] = []
    for kind in kinds:
        if kind == "break":
            segments.append(Break(draw(st.integers(0, 10_000))))
        elif kind == "digits":
            segments.append(Digits(draw(_plain)))
        elif kind == "phonemes":
            segments.append(Phonemes(draw(_plain)))
        else:
            piece = draw(_plain.filter(bool))
            if segments and isinstance(segments[-1], Text):
                segments[-1] = Text(segments[-1].text + piece)  # parse_markup merges runs
            else:
                segments.append(Text(piece))
    return segments


def _write(segment: Segment) -> str:
    if isinstance(segment, Break):
        return f"<break time='{segment.ms}ms'/>"
    if isinstance(segment, Digits):
        return f"<digits>{segment.digits}</digits>"
    if isinstance(segment, Phonemes):
        return f"<phonemes>{segment.phonemes}</phonemes>"
    return segment.text


@given(segment_lists())
def test_parse_reads_back_what_was_written(segments: list[Segment]) -> None:
    assert parse_markup("".join(_write(s) for s in segments)) == segments


@given(_plain)
def test_plain_text_passes_through(text: str) -> None:
    assert parse_markup(text) == ([Text(text)] if text else [])
    assert strip_markup(text) == " ".join(text.split())


# ---- IPA ---------------------------------------------------------------------------------


def test_ipa_to_espeak() -> None:
    # Stress marks stay where IPA puts them (before the syllable); espeak applies a mark to
    # the next vowel, so "h@'loU" and "h@l'oU" sound the same (test_local_engine checks it).
    assert to_espeak("həˈloʊ") == "h@'loU"
    assert to_espeak("/təˈmɑːtəʊ/") == "t@'mA:toU"
    assert to_espeak("ˈθɪŋkɪŋ") == "'TINkIN"
    assert to_espeak("tʃɜːtʃ") == "tS3:tS"
    assert to_espeak("h@l'oU") == "h@l'oU"  # espeak's own notation passes through
    assert to_espeak("ʘ") is None  # a click: not in the table
    assert to_espeak("  ") is None
    assert to_espeak("a]]b") is None  # would close espeak's phoneme input early
    assert to_espeak("a[[b") is None


# ---- realignment -------------------------------------------------------------------------


def _spans(lengths: list[int]) -> list[tuple[int, int]]:
    spans, at = [], 0
    for length in lengths:
        spans.append((at, at + length))
        at += length + 1
    return spans


def test_words_without_an_event_share_the_time_by_length() -> None:
    spans = _spans([2, 3, 5, 4])  # "of the quick fox": "the" got no event of its own
    events = [WordEvent(0, 0), WordEvent(7, 500), WordEvent(13, 900)]
    assert starts_from_events(spans, events, 1200) == [0, 200, 500, 900]


def test_several_events_in_one_word_keep_the_first() -> None:
    spans = _spans([3, 5, 7])  # "was 1,250 dollars"
    events = [WordEvent(0, 0), WordEvent(4, 300), WordEvent(5, 700), WordEvent(6, 900),
              WordEvent(10, 1500)]
    assert starts_from_events(spans, events, 2000) == [0, 300, 1500]


def test_an_event_between_words_starts_the_next() -> None:
    assert starts_from_events(_spans([3, 3]), [WordEvent(0, 0), WordEvent(3, 400)], 800) == [0, 400]


@given(
    st.lists(st.integers(1, 12), min_size=1, max_size=30),
    st.lists(st.tuples(st.integers(-5, 400), st.integers(-100, 5000)), max_size=40),
    st.integers(0, 5000),
)
def test_starts_are_ordered_and_inside(
    lengths: list[int], raw: list[tuple[int, int]], total: int
) -> None:
    events = [WordEvent(c, s) for c, s in raw]
    starts = starts_from_events(_spans(lengths), events, total)
    assert len(starts) == len(lengths)
    assert all(0 <= a <= b <= total for a, b in zip(starts, [*starts[1:], total], strict=True))


def test_voiced_range_trims_silence() -> None:
    samples = np.zeros(1000, dtype=np.int16)
    samples[300:620] = 5000
    assert voiced_range(samples, 100, 900, frame=10, threshold=100) == (300, 620)
    assert voiced_range(samples, 700, 900, frame=10, threshold=100) == (700, 700)
    assert voiced_range(samples, 500, 500, frame=10, threshold=100) == (500, 500)
    assert voiced_range(samples, 610, 615, frame=10, threshold=100) == (610, 615)  # partial frame


@given(
    st.lists(st.integers(1, 8), min_size=1, max_size=20),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 4000)), max_size=30),
    st.lists(st.tuples(st.integers(0, 3999), st.integers(1, 400)), max_size=10),
)
def test_word_ranges_never_overlap(
    lengths: list[int], raw: list[tuple[int, int]], loud: list[tuple[int, int]]
) -> None:
    samples = np.zeros(4000, dtype=np.int16)
    for at, size in loud:
        samples[at : at + size] = 3000
    events = sorted((WordEvent(c, s) for c, s in raw), key=lambda e: e.sample)
    ranges = word_ranges(samples, _spans(lengths), events, frame=16, threshold=100)
    assert len(ranges) == len(lengths)
    previous = 0
    for first, last in ranges:
        assert previous <= first <= last <= len(samples)
        previous = last
