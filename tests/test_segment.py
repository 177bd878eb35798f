"""Tokens and sentence boundaries (pipeline.text.segment)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.text.segment import segment_paragraph, tokenize


def sentences_of(text: str) -> list[str]:
    return [s.text for s in segment_paragraph(text, 0, len(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. and Mrs. Hale met Dr. Okafor on St. Anne's Row. They talked.",
            ["Mr. and Mrs. Hale met Dr. Okafor on St. Anne's Row.", "They talked."],
        ),
        (
            "Bring tools, e.g. a saw, i.e. something sharp. Also nails, glue, etc. Then go.",
            [
                "Bring tools, e.g. a saw, i.e. something sharp.",
                "Also nails, glue, etc.",
                "Then go.",
            ],
        ),
        (
            "We left at 6 a.m. and came back at 9 p.m. Nobody noticed.",
            ["We left at 6 a.m. and came back at 9 p.m.", "Nobody noticed."],
        ),
        (
            "It was No. 5 on the list. Mt. Kenya vs. Mt. Fuji.",
            ["It was No. 5 on the list.", "Mt. Kenya vs. Mt. Fuji."],
        ),
        (
            "J. R. R. Tolkien wrote it. Everyone read it.",
            ["J. R. R. Tolkien wrote it.", "Everyone read it."],
        ),
        (
            "It weighed 3.5 kg and cost 1,250 dollars. A bargain.",
            ["It weighed 3.5 kg and cost 1,250 dollars.", "A bargain."],
        ),
        ("'Stop!' she said. \"Why?\" he asked.", ["'Stop!' she said.", '"Why?" he asked.']),
        ('He said, "Go." Then he left.', ['He said, "Go."', "Then he left."]),
        (
            "“Stop!” she cried. ‘Never,’ he said. It’s late.",
            ["“Stop!” she cried.", "‘Never,’ he said.", "It’s late."],
        ),
        (
            "Wait... what was that? Nothing... Nothing at all.",
            ["Wait... what was that?", "Nothing...", "Nothing at all."],
        ),
        ("Really?! No way!! Yes… True.", ["Really?!", "No way!!", "Yes…", "True."]),
        (
            "She lived in the U.S. for years. Then Paris.",
            ["She lived in the U.S. for years.", "Then Paris."],
        ),
        ("In 1987. Then in 1990.", ["In 1987.", "Then in 1990."]),
        ("(See the map.) The road bends.", ["(See the map.)", "The road bends."]),
        ("He paused — then spoke.", ["He paused — then spoke."]),
        ("你好。 世界！ 再见", ["你好。", "世界！", "再见"]),
        ("שלום. עולם", ["שלום.", "עולם"]),
        ("Done 🎉. Next 🚀!", ["Done 🎉.", "Next 🚀!"]),
    ],
)
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert sentences_of(text) == expected


def test_offsets_are_absolute_into_the_source() -> None:
    source = "IGNORED PREFIX. Hello there. General Kenobi! IGNORED SUFFIX"
    start, end = source.index("Hello"), source.index(" IGNORED SUFFIX")
    sentences = segment_paragraph(source, start, end)
    assert [s.text for s in sentences] == ["Hello there.", "General Kenobi!"]
    assert sentences[0].start == start
    assert sentences[-1].end == end
    for word in sentences[1].words:
        assert source[word.start : word.end] == word.text


def test_punctuation_only_and_empty() -> None:
    assert segment_paragraph("   \n\t ", 0, 6) == ()
    assert sentences_of("... !!! ???") == ["... !!! ???"]


def test_a_very_long_sentence_without_punctuation_is_one_sentence_quickly() -> None:
    text = " ".join(["word"] * 4000) + "x" * 2000  # 22,000 characters
    started = time.perf_counter()
    sentences = segment_paragraph(text, 0, len(text))
    assert time.perf_counter() - started < 1.0
    assert len(sentences) == 1
    assert len(sentences[0].words) == 4000


@given(st.text(), st.data())
def test_every_character_that_is_not_whitespace_lands_in_exactly_one_word(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    words = tokenize(text, start, end)
    assert [w.text for w in words] == text[start:end].split()
    previous_end = start
    for word in words:
        assert text[word.start : word.end] == word.text
        assert previous_end <= word.start < word.end <= end
        assert word.spoken == word.text
        previous_end = word.end
    sentences = segment_paragraph(text, start, end)
    assert all(s.words for s in sentences)
    assert tuple(w for s in sentences for w in s.words) == words
