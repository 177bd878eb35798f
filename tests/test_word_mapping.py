"""Mapping the API's alignment words back onto our own words, however it tokenized them."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import WordTiming
from pipeline.tts.wordmap import Alignment, estimate_timings, map_alignment


def alignment(*tokens: tuple[str, float, float]) -> Alignment:
    return Alignment(tuple(t[0] for t in tokens), tuple(t[1] for t in tokens), tuple(t[2] for t in tokens))


def spans(timings: tuple[WordTiming, ...]) -> list[tuple[int, int]]:
    return [(t.start_ms, t.end_ms) for t in timings]


def test_same_tokens_give_the_apis_times() -> None:
    got = map_alignment(
        ["Welcome", "to", "Async."],
        alignment(("Welcome", 0, 871), ("to", 871, 900), ("Async.", 923, 1637)),
        1700,
    )
    assert spans(got) == [(0, 871), (871, 900), (923, 1637)]


def test_punctuation_split_off_by_the_api() -> None:
    got = map_alignment(
        ["“Hello,”", "world!"],
        alignment(
            ("“", 0, 0),
            ("Hello", 0, 400),
            (",", 400, 400),
            ("”", 400, 400),
            ("world", 500, 900),
            ("!", 900, 900),
        ),
        1000,
    )
    assert spans(got) == [(0, 400), (500, 900)]


def test_punctuation_of_ours_that_the_api_glued_on_or_dropped() -> None:
    got = map_alignment(["Wait", "—", "what?"], alignment(("Wait—", 0, 300), ("what", 350, 600)), 700)
    assert spans(got) == [(0, 300), (300, 300), (350, 600)]  # the dash: an instant, no speech


def test_case_and_accents_do_not_matter() -> None:
    got = map_alignment(["CAFÉ", "Noël"], alignment(("cafe", 0, 500), ("NOEL", 500, 900)), 900)
    assert spans(got) == [(0, 500), (500, 900)]


def test_one_api_token_for_two_of_our_words_is_shared_by_letters() -> None:
    got = map_alignment(["New", "York"], alignment(("New York", 0, 700)), 700)
    assert spans(got) == [(0, 300), (300, 700)]


def test_one_of_our_words_over_several_api_tokens() -> None:
    got = map_alignment(
        ["forty-two", "cats"],
        alignment(("forty", 0, 400), ("two", 420, 700), ("cats", 750, 1100)),
        1200,
    )
    assert spans(got) == [(0, 700), (750, 1100)]


def test_digits_the_api_spelled_out_are_matched_by_position() -> None:
    got = map_alignment(
        ["I", "have", "42", "cats"],
        alignment(
            ("I", 0, 100),
            ("have", 100, 400),
            ("forty", 400, 800),
            ("two", 800, 1000),
            ("cats", 1000, 1400),
        ),
        1500,
    )
    assert spans(got) == [(0, 100), (100, 400), (400, 1000), (1000, 1400)]


@pytest.mark.parametrize(
    "api_tokens",
    [
        [("Wait", 0, 300), ("now", 800, 1000)],  # the tag dropped
        [("Wait", 0, 300), ("<break", 300, 300), ("time='500ms'/>", 300, 300), ("now", 800, 1000)],
        [("Wait", 0, 300), ("<break time='500ms'/>", 300, 800), ("now", 800, 1000)],
    ],
)
def test_a_break_is_an_instant_between_its_neighbours(
    api_tokens: list[tuple[str, float, float]],
) -> None:
    got = map_alignment(["Wait", "<break time='500ms'/>", "now"], alignment(*api_tokens), 1000)
    assert spans(got) == [(0, 300), (300, 300), (800, 1000)]


def test_phonemes_match_whether_echoed_or_said_as_a_word() -> None:
    words = ["a", "<phonemes>təˈmɑːtoʊ</phonemes>", "salad"]
    echoed = alignment(("a", 0, 100), ("təˈmɑːtoʊ", 100, 600), ("salad", 600, 900))
    renamed = alignment(("a", 0, 100), ("tomato", 100, 600), ("salad", 600, 900))
    assert spans(map_alignment(words, echoed, 900)) == [(0, 100), (100, 600), (600, 900)]
    assert spans(map_alignment(words, renamed, 900)) == [(0, 100), (100, 600), (600, 900)]


def test_empty_and_unspoken_words_at_the_edges() -> None:
    got = map_alignment(["", "...", "Go", ""], alignment(("Go", 120, 400)), 500)
    assert spans(got) == [(120, 120), (120, 120), (120, 400), (400, 400)]


def test_overlapping_api_words_are_made_sequential_and_kept_inside_the_audio() -> None:
    got = map_alignment(["one", "two"], alignment(("one", 0, 520), ("two", 500, 1004.6)), 1000)
    assert spans(got) == [(0, 520), (520, 1000)]


def test_no_api_words_for_real_words_is_an_error() -> None:
    with pytest.raises(ValueError, match="no words"):
        map_alignment(["hello"], alignment(), 500)
    assert spans(map_alignment(["—"], alignment(), 500)) == [(0, 0)]


def test_estimates_share_the_duration_by_letters() -> None:
    got = estimate_timings(["Hi,", "", "there", "<break time='1s'/>"], 1400)
    assert spans(got) == [(0, 400), (400, 400), (400, 1400), (1400, 1400)]
    assert spans(estimate_timings(["?"], 300)) == [(0, 0)]


# --- properties --------------------------------------------------------------------------

word = st.text(alphabet="abcXYZé42,.!?'-— ", min_size=0, max_size=8).map(str.strip)


@st.composite
def retokenized(draw: st.DrawFn) -> tuple[list[str], Alignment, int]:
    """Our words, and the same text as the API might tokenize it: cut at arbitrary places,
    case changed, each token given a monotonic time span."""
    words = draw(st.lists(word, min_size=1, max_size=25))
    text = " ".join(w for w in words if w)
    cuts = sorted(draw(st.sets(st.integers(0, max(0, len(text))), max_size=30)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    tokens = [p.strip() for p in pieces if p.strip()]
    if draw(st.booleans()):
        tokens = [t.upper() for t in tokens]
    starts, ends, now = [], [], 0.0
    for _ in tokens:
        now += draw(st.floats(0, 200))
        starts.append(now)
        now += draw(st.floats(0, 400))
        ends.append(now)
    duration = int(now) + draw(st.integers(0, 300))
    return words, Alignment(tuple(tokens), tuple(starts), tuple(ends)), duration


@settings(max_examples=300, deadline=None)
@given(retokenized())
def test_any_retokenization_gives_one_ordered_timing_per_word_inside_the_audio(
    case: tuple[list[str], Alignment, int],
) -> None:
    words, api, duration = case
    try:
        got = map_alignment(words, api, duration)
    except ValueError:
        assert not "".join(c for c in "".join(api.words) if c.isalnum())
        return
    assert len(got) == len(words)
    for before, after in itertools.pairwise(got):
        assert before.end_ms <= after.start_ms
    assert all(0 <= t.start_ms <= t.end_ms <= duration for t in got)
    if api.words:  # nothing can start before the first sound or end after the last
        assert got[-1].end_ms <= round(max(api.ends)) or got[-1].end_ms == got[-1].start_ms


@settings(max_examples=200, deadline=None)
@given(st.lists(word, min_size=1, max_size=30), st.integers(0, 60_000))
def test_estimates_cover_the_audio_in_order(words: list[str], duration: int) -> None:
    got = estimate_timings(words, duration)
    assert len(got) == len(words)
    for before, after in itertools.pairwise(got):
        assert before.end_ms <= after.start_ms
    spoken = [t for t, w in zip(got, words, strict=True) if any(c.isalnum() for c in w)]
    if spoken:
        assert spoken[0].start_ms == 0 and spoken[-1].end_ms == duration


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(word, st.floats(0, 300), st.floats(0, 500)), min_size=1, max_size=30))
def test_when_the_api_keeps_our_tokens_its_times_come_back_unchanged(
    entries: list[tuple[str, float, float]],
) -> None:
    spoken = [(w, gap, length) for w, gap, length in entries if any(c.isalnum() for c in w)]
    if not spoken:
        return
    tokens, starts, ends, now = [], [], [], 0.0
    for w, gap, length in spoken:
        tokens.append(w.swapcase())
        starts.append(round(now + gap))
        ends.append(round(now + gap + length))
        now = ends[-1]
    got = map_alignment([w for w, _, _ in spoken], Alignment(tuple(tokens), tuple(starts), tuple(ends)), int(now))
    assert spans(got) == list(zip(starts, ends, strict=True))
