"""input.chapters: numbers and title patterns pick chapters, in book order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.models import Chapter
from pipeline.text.select import select_chapters

TITLES = ["Prologue", "CHAPTER I. The Start", "CHAPTER II. The Sea", "Chapter 3: Home", "Epilogue"]
BOOK = [Chapter(index=i, title=t, source="b.epub", paragraphs=()) for i, t in enumerate(TITLES)]


def titles(selection: list[int | str] | None) -> list[str]:
    return [c.title for c in select_chapters(BOOK, selection)]


def test_none_means_every_chapter() -> None:
    assert titles(None) == TITLES


def test_numbers_are_one_based_and_book_order_is_kept() -> None:
    assert titles([4, 2, 2]) == ["CHAPTER I. The Start", "Chapter 3: Home"]


def test_patterns_are_case_insensitive_searches() -> None:
    assert titles(["^chapter", "logue$"]) == TITLES
    assert titles(["the s"]) == ["CHAPTER I. The Start", "CHAPTER II. The Sea"]
    assert titles([5, "home"]) == ["Chapter 3: Home", "Epilogue"]


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ([6], r"input\.chapters\[0\]: no chapter 6; the book has 5 chapters"),
        ([1, 0], r"input\.chapters\[1\]: no chapter 0"),
        (["Appendix"], r"input\.chapters\[0\]: no chapter title matches 'Appendix'"),
        (["(unclosed"], r"input\.chapters\[0\]: invalid regular expression"),
        ([True], r"input\.chapters\[0\]: expected a chapter number or a title"),
        ([], r"input\.chapters: the list is empty"),
    ],
)
def test_a_selector_that_picks_nothing_is_named(selection: list[int | str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        select_chapters(BOOK, selection)


@given(st.lists(st.integers(min_value=1, max_value=len(BOOK)), min_size=1))
def test_selection_is_a_sorted_subset_without_repeats(numbers: list[int]) -> None:
    picked = select_chapters(BOOK, list(numbers))
    assert [c.index for c in picked] == sorted(set(n - 1 for n in numbers))
