"""Spoken-text normalization: what the engine hears for numbers, money, times, abbreviations,
headings and pause markup, while the written words stay as written."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import Word
from pipeline.text.normalize import extract_breaks, normalize_text, normalize_words


def words_of(text: str) -> tuple[Word, ...]:
    return tuple(Word(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text))


def spoken(text: str, *, language: str | None = "en", in_heading: bool = False) -> str:
    out = normalize_words(words_of(text), language=language, in_heading=in_heading)
    return " ".join(w.spoken for w in out)


@pytest.mark.parametrize(
    ("written", "said"),
    [
        # numbers
        ("1,250 people", "one thousand two hundred and fifty people"),
        ("3.5 miles", "three point five miles"),
        ("-4 degrees", "minus four degrees"),
        ("3.50 exactly", "three point five zero exactly"),
        ("room 007", "room zero zero seven"),
        # ordinals
        ("the 42nd time", "the forty-second time"),
        ("my 1st go", "my first go"),
        ("21ST floor", "twenty-first floor"),
        # years (only where a number reads as a year)
        ("born in 1987.", "born in nineteen eighty-seven."),
        ("in 1987 ships", "in one thousand nine hundred and eighty-seven ships"),
        ("1987 sheep", "one thousand nine hundred and eighty-seven sheep"),
        ("in 1,987.", "in one thousand nine hundred and eighty-seven."),
        ("on May 4, 1632 we", "on May four, sixteen thirty-two we"),
        ("the year 2005", "the year two thousand and five"),
        ("in 1066 AD", "in ten sixty-six AD"),
        ("the 1980s", "the nineteen eighties"),
        ("the '80s", "the eighties"),
        ("from 1914-1918", "from nineteen fourteen to nineteen eighteen"),
        ("pages 10-20", "pages ten to twenty"),
        ("a 5-year-old", "a five-year-old"),
        # currency
        ("$5, please", "five dollars, please"),
        ("$3.50", "three dollars and fifty cents"),
        ("$1", "one dollar"),
        ("$0.99", "ninety-nine cents"),
        ("£10", "ten pounds"),
        ("€20", "twenty euros"),
        ("5 USD", "five dollars"),
        ("1 EUR", "one euro"),
        ("$5 million.", "five million dollars."),
        ("(£2.01)", "(two pounds and one penny)"),
        # percent
        ("50% off", "fifty percent off"),
        ("3.5 %", "three point five percent"),
        # times
        ("at 3:45", "at three forty-five"),
        ("at 3:05", "at three oh five"),
        ("at 3:00", "at three o'clock"),
        ("at 10 a.m. sharp", "at ten ay em sharp"),
        ("at 10:30 p.m.", "at ten thirty pee em."),
        ("at 10:00 p.m., then", "at ten pee em, then"),
        ("at 7pm", "at seven pee em"),
        ("at 23:15", "at twenty-three fifteen"),
        # abbreviations
        ("Mr. Smith", "Mister Smith"),
        ("Mrs. Jones", "Missus Jones"),
        ("Ms. Lee", "Miz Lee"),
        ("Dr. Who", "Doctor Who"),
        ("Mr Brown", "Mister Brown"),
        ("St. Paul's", "Saint Paul's"),
        ("Baker St. is", "Baker Street is"),
        ("on Baker St.", "on Baker Street."),
        ("Mt. Fuji", "Mount Fuji"),
        ("cats vs. dogs", "cats versus dogs"),
        ("pens, etc. and", "pens, et cetera and"),
        ("pens, etc.", "pens, et cetera."),
        ("fruit, e.g. apples", "fruit, for example apples"),
        ("one, i.e., two", "one, that is, two"),
        ("No. 5", "number five"),
        ("he said No.", "he said No."),
        ("Mulholland Dr. is", "Mulholland Drive is"),
        ("Jan. 5", "January five"),
        ("I saw Jan.", "I saw Jan."),
        ("salt & pepper", "salt and pepper"),
        # "I" in prose is a pronoun, never a numeral
        ("I think I am.", "I think I am."),
        # plain words are left alone
        ("Nothing to change here.", "Nothing to change here."),
    ],
)
def test_english_examples(written: str, said: str) -> None:
    assert spoken(written) == said


@pytest.mark.parametrize(
    ("heading", "said"),
    [
        ("CHAPTER IV", "Chapter four"),
        ("CHAPTER I. Down the Rabbit-Hole", "Chapter one. Down the Rabbit-Hole"),
        ("CHAPTER XI. FINDS PRINT OF MAN’S FOOT", "Chapter eleven. Finds Print Of Man’s Foot"),
        ("IV. The Pool of Tears", "four. The Pool of Tears"),
        ("Part ii: Home", "Part two: Home"),
        ("Chapter 4", "Chapter four"),
        ("I Remember", "I Remember"),
        ("Book the First", "Book the First"),
    ],
)
def test_headings(heading: str, said: str) -> None:
    assert spoken(heading, in_heading=True) == said


def test_roman_numerals_are_read_only_in_headings() -> None:
    assert spoken("Chapter IV was long") == "Chapter IV was long"
    assert spoken("CHAPTER IV") == "CHAPTER IV"


def test_written_text_and_offsets_never_change() -> None:
    source = "Mr. Pell paid $3.50 at 10 a.m. on 14 March 1887."
    before = words_of(source)
    after = normalize_words(before, language="en")
    assert [(w.text, w.start, w.end) for w in after] == [(w.text, w.start, w.end) for w in before]
    assert all(source[w.start : w.end] == w.text for w in after)
    assert [w.spoken for w in after] == [
        "Mister",
        "Pell",
        "paid",
        "three dollars and fifty cents",
        "at",
        "ten",
        "ay em",
        "on",
        "fourteen",
        "March",
        "eighteen eighty-seven.",
    ]


@pytest.mark.parametrize(
    ("language", "written", "said"),
    [
        (
            "fr",
            "1.250 et 3,5 et 50%",
            "mille deux cent cinquante et trois virgule cinq et cinquante pour cent",
        ),
        ("de-DE", "21 Äpfel für 5€", "einundzwanzig Äpfel für fünf Euro"),
        ("es", "en 1987", "en mil novecientos ochenta y siete"),
        ("pt-BR", "2 casas", "dois casas"),
    ],
)
def test_other_languages_use_their_own_words(language: str, written: str, said: str) -> None:
    assert spoken(written, language=language) == said


@pytest.mark.parametrize("language", ["zh", "xx-YY", "tlh", ""])
def test_unknown_languages_fall_back_to_english(language: str) -> None:
    assert spoken("42 cats", language=language) == "forty-two cats"


def test_abbreviations_are_english_only() -> None:
    assert spoken("Dr. Müller", language="de") == "Dr. Müller"


def test_normalize_text_for_dataset_transcripts() -> None:
    assert (
        normalize_text("Pay Dr. Fenn $5 <break time='1s'/> at 3:45.", language="en")
        == "Pay Doctor Fenn five dollars at three forty-five."
    )


# --- pauses -------------------------------------------------------------------------------


def test_break_markup_leaves_the_written_words_and_joins_the_spoken_form() -> None:
    source = "Wait <break time='500ms'/> for it."
    out = extract_breaks(words_of(source))
    assert [w.text for w in out] == ["Wait", "for", "it."]
    assert out[0].spoken == "Wait <break time='500ms'/>"
    assert all(source[w.start : w.end] == w.text for w in out)


def test_break_glued_to_words_keeps_their_characters() -> None:
    source = 'end.<break time = "1.5s" />Next word'
    out = extract_breaks(words_of(source))
    assert [w.text for w in out] == ["end.", "Next", "word"]
    assert out[0].spoken == "end. <break time='1.5s'/>"
    assert all(source[w.start : w.end] == w.text for w in out)


def test_break_at_the_start_goes_before_the_first_word() -> None:
    out = extract_breaks(words_of("<break time='2s'/> Hello"))
    assert [(w.text, w.spoken) for w in out] == [("Hello", "<break time='2s'/> Hello")]


def test_a_sequence_of_only_pauses_comes_back_empty() -> None:
    assert extract_breaks(words_of("<break time='2s'/>")) == ()


def test_normalization_keeps_pauses_attached_by_extract_breaks() -> None:
    out = normalize_words(extract_breaks(words_of("$5 <break time='300ms'/> now")), language="en")
    assert [w.spoken for w in out] == ["five dollars <break time='300ms'/>", "now"]


# --- properties ---------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        "$5",
        "3.5",
        "1,250",
        "-4",
        "42nd",
        "1987",
        "in",
        "St.",
        "Dr.",
        "Mr.",
        "10",
        "a.m.",
        "3:45",
        "50%",
        "IV",
        "I",
        "etc.",
        "No.",
        "5",
        "USD",
        "million",
        "€3",
        "'80s",
        "1914-1918",
        "&",
        "%",
        "word,",
        "(x)",
        "“Quote”",
        "—",
        "<break",
        "time='1s'/>",
    ]
)
_ANY_TOKEN = st.text(min_size=1, max_size=8).filter(lambda t: not t.isspace())
_TEXT = st.lists(st.one_of(_TOKENS, _ANY_TOKEN), max_size=14)


@settings(max_examples=200, deadline=None)
@given(
    parts=_TEXT,
    language=st.sampled_from(["en", "fr", "de", "ja", None, "xx"]),
    heading=st.booleans(),
)
def test_normalization_never_fails_and_never_touches_written_words(
    parts: list[str], language: str | None, heading: bool
) -> None:
    source = " ".join(p.replace(" ", "") or "x" for p in parts)
    before = words_of(source)
    after = normalize_words(extract_breaks(before), language=language, in_heading=heading)
    assert all(source[w.start : w.end] == w.text for w in after)
    assert all(w.spoken.strip() for w in after)
    kept = [w.text for w in after]
    assert len(kept) <= len(before)
    assert normalize_words(after, language=language, in_heading=heading) == after
