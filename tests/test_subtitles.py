"""SRT and WebVTT output, checked by parsing it back with the `srt` and `webvtt-py` libraries."""

from __future__ import annotations

import html
import io
import re
from datetime import timedelta

import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.align.cues import build_cues
from pipeline.align.subtitles import compose_srt, compose_vtt, word_cues
from pipeline.config import SubtitleStyle
from pipeline.models import ChapterTimeline, Cue, TimedWord, Word

# Word text as a manuscript may have it: any printable character but whitespace; lines are
# words joined by single spaces, so no line is empty or starts or ends with a space.
word_text = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="\ufeff"
    ),
    min_size=1,
    max_size=12,
)
line_text = st.lists(word_text, min_size=1, max_size=6).map(" ".join)


@st.composite
def cue_lists(draw: st.DrawFn) -> list[Cue]:
    cues, t = [], draw(st.integers(0, 5000))
    for _ in range(draw(st.integers(0, 8))):
        start = t + draw(st.integers(0, 400_000_000))  # up to about 111 hours in
        end = start + draw(st.integers(1, 10_000))
        cues.append(Cue(start, end, tuple(draw(st.lists(line_text, min_size=1, max_size=3)))))
        t = end
    return cues


def ms(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)


@settings(max_examples=200, deadline=None)
@given(cue_lists())
def test_srt_round_trips_through_the_srt_library(cues: list[Cue]) -> None:
    parsed = list(srt.parse(compose_srt(cues)))
    assert [s.index for s in parsed] == list(range(1, len(cues) + 1))
    assert [(ms(s.start), ms(s.end), tuple(s.content.split("\n"))) for s in parsed] == [
        (c.start_ms, c.end_ms, c.lines) for c in cues
    ]


@settings(max_examples=200, deadline=None)
@given(cue_lists())
def test_vtt_round_trips_through_webvtt_py(cues: list[Cue]) -> None:
    text = compose_vtt(cues)
    assert text.startswith("WEBVTT\n")
    parsed = webvtt.from_buffer(io.StringIO(text)).captions
    assert [
        (
            c.start_time.in_milliseconds(),
            c.end_time.in_milliseconds(),
            tuple(html.unescape(x) for x in c.lines),
        )
        for c in parsed
    ] == [(c.start_ms, c.end_ms, c.lines) for c in cues]
    # Markup characters never reach a player unescaped.
    for c in parsed:
        assert "<" not in c.raw_text and ">" not in c.raw_text


def test_exact_formats() -> None:
    cues = [Cue(0, 1500, ("Hello, world.",)), Cue(3_723_004, 3_725_000, ("A & B <i>", "two"))]
    assert compose_srt(cues) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello, world.\n\n"
        "2\n01:02:03,004 --> 01:02:05,000\nA & B <i>\ntwo\n"
    )
    assert compose_vtt(cues) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello, world.\n\n"
        "01:02:03.004 --> 01:02:05.000\nA &amp; B &lt;i&gt;\ntwo\n"
    )
    assert compose_srt([]) == "" and compose_vtt([]) == "WEBVTT\n"


def timeline(spec: list[tuple[str, int, int]]) -> ChapterTimeline:
    words, offset = [], 0
    for text, start, end in spec:
        words.append(TimedWord(Word(text, offset, offset + len(text)), 0, "b.txt", start, end, 0))
        offset += len(text) + 1
    return ChapterTimeline(0, "t", "b.txt", spec[-1][2] + 1000 if spec else 0, tuple(words))


INNER = re.compile(r"<(\d\d):(\d\d):(\d\d)\.(\d{3})>")


def inner_times(line: str) -> list[int]:
    return [
        ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(f) for h, m, s, f in INNER.findall(line)
    ]


words_strategy = st.lists(
    st.tuples(
        st.sampled_from(["and", "the", "River", "flows,", "a<b", "fast.", "x"]),
        st.integers(0, 600),
        st.integers(0, 700),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(words_strategy)
def test_karaoke_timestamps_lie_strictly_inside_their_cue_and_increase(
    raw: list[tuple[str, int, int]],
) -> None:
    spec, t = [], 0
    for text, gap, duration in raw:
        spec.append((text, t + gap, t + gap + duration))
        t += gap + duration
    tl = timeline(spec)
    cues = build_cues(tl, SubtitleStyle())
    text = compose_vtt(cues, karaoke=True)
    parsed = webvtt.from_buffer(io.StringIO(text)).captions
    assert len(parsed) == len(cues)
    for caption, cue in zip(parsed, cues, strict=True):
        stamps = [t for line in caption.lines for t in inner_times(line)]
        assert all(cue.start_ms < s < cue.end_ms for s in stamps)
        assert stamps == sorted(set(stamps))
        # Each stamp is the start of a word, and taking the tags out gives the plain cue back.
        assert set(stamps) <= {w.start_ms for w in cue.words}
        assert [html.unescape(INNER.sub("", x)) for x in caption.lines] == list(cue.lines)


def test_karaoke_marks_every_word_with_its_own_start() -> None:
    tl = timeline(
        [
            ("Row,", 0, 300),
            ("row,", 400, 700),
            ("row", 800, 1000),
            ("your", 1100, 1300),
            ("boat", 1400, 2000),
        ]
    )
    text = compose_vtt([Cue(0, 2500, ("Row, row, row", "your boat"), tl.words)], karaoke=True)
    assert text.endswith(
        "00:00:00.000 --> 00:00:02.500\n"
        "Row, <00:00:00.400>row, <00:00:00.800>row\n<00:00:01.100>your <00:00:01.400>boat\n"
    )


def test_word_per_cue_srt() -> None:
    tl = timeline([("One", 0, 250), ("two", 250, 250), ("three.", 600, 900)])
    cues = word_cues(tl.words)
    assert [(c.start_ms, c.end_ms, c.lines) for c in cues] == [
        (0, 250, ("One",)),
        (250, 251, ("two",)),  # a zero-length word still gets a cue a player will show
        (600, 900, ("three.",)),
    ]
    parsed = list(srt.parse(compose_srt(cues)))
    assert [s.content for s in parsed] == ["One", "two", "three."]
