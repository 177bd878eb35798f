"""Manuscript readers (pipeline.text.readers, pipeline.text.markdown) on real files."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.models import Chapter, Document, Word
from pipeline.text.readers import read_manuscript

DEMO = Path(__file__).resolve().parent.parent / "data" / "manuscripts" / "the-lighthouse-keepers-ledger.md"
_SCRATCH = tempfile.TemporaryDirectory(prefix="narrate-readers-")


def write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def read(tmp: Path, name: str, content: str | bytes, *, keep_notes: bool = False) -> Document:
    return read_manuscript(write(tmp, name, content), display_name=name, keep_notes=keep_notes)


def all_words(document: Document) -> list[Word]:
    """Every word of the document in reading order, headings included."""
    return [w for chapter in document.chapters for w in _chapter_words(chapter)]


def _chapter_words(chapter: Chapter) -> Iterator[Word]:
    if chapter.heading is not None:
        yield from chapter.heading.words
    yield from chapter.words


def assert_offsets_hold(document: Document) -> None:
    for word in all_words(document):
        assert document.text[word.start : word.end] == word.text


def paragraph_texts(chapter: Chapter) -> list[str]:
    return [" ".join(s.text for s in p.sentences) for p in chapter.paragraphs]


# --- plain text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "title"),
    [
        ("Chapter 3", "Chapter 3"),
        ("CHAPTER IV. The Title", "CHAPTER IV. The Title"),
        ("Chapter Twelve: Homecoming", "Chapter Twelve: Homecoming"),
        ("chapter twenty-one", "chapter twenty-one"),
        ("Chapter xii", "Chapter xii"),
        ("Part Two", "Part Two"),
        ("PROLOGUE", "PROLOGUE"),
        ("Epilogue: Ten Years Later", "Epilogue: Ten Years Later"),
        ("Chapter 7 The Flood", "Chapter 7 The Flood"),
        ("  BOOK III.  ", "BOOK III"),
    ],
)
def test_plain_text_chapter_headings(tmp_path: Path, line: str, title: str) -> None:
    document = read(tmp_path, "book.txt", f"Some opening words.\n\n{line}\n\nThe chapter's text.\n")
    assert [c.title for c in document.chapters] == ["Opening", title]
    chapter = document.chapters[1]
    assert chapter.heading is not None
    assert chapter.heading.text == " ".join(line.split())
    assert paragraph_texts(chapter) == ["The chapter's text."]
    assert_offsets_hold(document)


@pytest.mark.parametrize(
    "line",
    [
        "Part two of the plan was simple.",
        "Chapter and verse",
        "Chapters are long.",
        "Prologues bore me",
    ],
)
def test_plain_text_lines_that_are_not_headings(tmp_path: Path, line: str) -> None:
    document = read(tmp_path, "story.txt", f"{line}\n\nMore text.\n")
    assert len(document.chapters) == 1
    assert document.chapters[0].heading is None
    assert document.chapters[0].title == "story"  # no headings at all: named after the file
    assert paragraph_texts(document.chapters[0])[0] == line


def test_plain_text_title_on_the_line_after_the_heading(tmp_path: Path) -> None:
    text = "CHAPTER I.\n\nThe Storm\n\nIt rained.\n\nCHAPTER II.\nThe Calm\n\nIt stopped.\n"
    document = read(tmp_path, "book.txt", text)
    assert [c.title for c in document.chapters] == ["CHAPTER I. The Storm", "CHAPTER II. The Calm"]
    assert [paragraph_texts(c) for c in document.chapters] == [["It rained."], ["It stopped."]]


def test_plain_text_paragraphs_hard_wraps_and_scene_breaks(tmp_path: Path) -> None:
    text = (
        "\ufeffChapter 1\n"
        "\n"
        "The rain fell on the roofs of the town all night long, and in\r\n"
        "the morning the river had risen over the lower road.\r\n"
        "\r\n"
        "* * *\r\n"
        "\r\n"
        "Nobody went out.\r\n"
        "\n"
        "#\n"
        "\n"
        "Then the sun.\n"
        "***\n"
        "And after.\n"
    )
    document = read(tmp_path, "book.txt", text)
    assert not document.text.startswith("\ufeff")
    (chapter,) = document.chapters
    assert chapter.title == "Chapter 1"
    assert paragraph_texts(chapter) == [
        "The rain fell on the roofs of the town all night long, and in the morning the river"
        " had risen over the lower road.",
        "Nobody went out.",
        "Then the sun.",
        "And after.",
    ]
    assert [p.scene_break_before for p in chapter.paragraphs] == [False, True, True, True]
    assert not any(w.text in {"*", "#", "***"} for w in all_words(document))
    assert_offsets_hold(document)


def test_plain_text_one_paragraph_per_line(tmp_path: Path) -> None:
    lines = [
        "The first paragraph is a single long line, as word processors save them.",
        "Short one.",
        "The third paragraph says rather more than the second one did, at some length.",
        '"Yes," she said.',
    ]
    document = read(tmp_path, "lines.txt", "\n".join(lines) + "\n")
    assert paragraph_texts(document.chapters[0]) == lines


def test_plain_text_indented_paragraphs_without_blank_lines(tmp_path: Path) -> None:
    text = (
        "    It was the best of times, it was the worst\n"
        "of times, it was the age of wisdom.\n"
        "    It was the epoch of belief, it was the\n"
        "epoch of incredulity.\n"
    )
    document = read(tmp_path, "tale.txt", text)
    assert paragraph_texts(document.chapters[0]) == [
        "It was the best of times, it was the worst of times, it was the age of wisdom.",
        "It was the epoch of belief, it was the epoch of incredulity.",
    ]


def test_heading_without_text_is_kept_and_blank_opening_is_not(tmp_path: Path) -> None:
    document = read(tmp_path, "b.txt", "\n \n\nPrologue\n\nChapter 1\n\nText.\n")
    assert [c.title for c in document.chapters] == ["Prologue", "Chapter 1"]
    assert document.chapters[0].paragraphs == ()
    assert [c.index for c in document.chapters] == [0, 1]
    assert {c.source for c in document.chapters} == {"b.txt"}


_PLAIN_ALPHABET = st.characters(blacklist_characters="*#~•⁂-_=\x00", blacklist_categories=["Cs"])
_SCENE_BREAKS = ["* * *", "***", "#", "  ~~~  ", "----"]
_SPECIAL_LINES = [*_SCENE_BREAKS, "", "Chapter 3", "PROLOGUE", "CHAPTER IV. The Title", "The Title"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(_PLAIN_ALPHABET, max_size=120), st.sampled_from(_SPECIAL_LINES)),
        min_size=1,
        max_size=12,
    )
)
def test_plain_text_keeps_every_token_with_true_offsets(lines: list[str]) -> None:
    """Unicode of every kind, headings and scene breaks mixed in: every token but the scene
    breaks' is a word, in order, and its offsets point at it."""
    lines = [*lines, "", "The end."]  # a text of nothing but headings is an InputError
    text = "\n".join(lines)
    visible = [line for line in lines if line not in _SCENE_BREAKS]
    path = write(Path(_SCRATCH.name), "any.txt", text)
    document = read_manuscript(path, display_name="any.txt")
    words = all_words(document)
    # Control characters are read as spaces (they are neither speech nor subtitle text).
    expected = re.sub(r"[\x01-\x08\x0e-\x1f\x7f-\x9f]", " ", "\n".join(visible).removeprefix("\ufeff"))
    assert [w.text for w in words] == expected.split()
    assert_offsets_hold(document)
    assert [w.start for w in words] == sorted(w.start for w in words)


# --- Markdown ---------------------------------------------------------------------------

MARKDOWN = """\
---
title: Front Matter Title
author: A. Writer
---
# The Book

An *epigraph* with [a link](http://x.org/a_(b)) and ![a picture](pic.png) and `code`.<!-- a note -->

## Chapter One: *The Start*

It was **hers**. Mr. Smith said, "Go." Then snake_case, 5 * 3 and __strong__ words.
A <span class="x">tagged</span> word &amp; an entity, and a pause <break time='500ms'/> here.

> Quoted *text* here
> continues.

- item one
- item _two_
1. numbered

```python
print("never spoken")
```

<!--
a comment
over lines
-->

* * *

After the break[^1], see [the docs][ref].

[^1]: A footnote.
    It continues.

[ref]: http://example.com

Chapter Two
-----------

Text two.

---

After a rule.
"""


def test_markdown_structure_and_markup(tmp_path: Path) -> None:
    document = read(tmp_path, "book.md", MARKDOWN)
    assert document.title == "Front Matter Title"
    assert document.author == "A. Writer"
    assert [c.title for c in document.chapters] == [
        "Front Matter Title",  # the text under the book title, before the first chapter
        "Chapter One: The Start",
        "Chapter Two",
    ]
    opening, one, two = document.chapters
    assert opening.heading is not None and opening.heading.text == "The Book"
    assert paragraph_texts(opening) == ["An epigraph with a link and and code."]
    assert one.heading is not None and one.heading.text == "Chapter One: The Start"
    assert paragraph_texts(one) == [
        'It was hers. Mr. Smith said, "Go." Then snake_case, 5 * 3 and strong words.'
        " A tagged word & an entity, and a pause <break time='500ms'/> here.",
        "Quoted text here continues.",
        "item one",
        "item two",
        "numbered",
        "After the break, see the docs.",
    ]
    assert [p.scene_break_before for p in one.paragraphs] == [False] * 5 + [True]
    assert paragraph_texts(two) == ["Text two.", "After a rule."]
    assert [p.scene_break_before for p in two.paragraphs] == [False, True]
    spoken = " ".join(w.text for w in all_words(document))
    for hidden in ("never spoken", "comment", "footnote", "http", "pic.png", "picture", "**", "`"):
        assert hidden not in spoken
    assert_offsets_hold(document)


def test_markdown_keep_notes_reads_footnotes(tmp_path: Path) -> None:
    document = read(tmp_path, "notes.md", "Text[^a].\n\n[^a]: The note.\n", keep_notes=True)
    assert paragraph_texts(document.chapters[0]) == ["Text.", "The note."]


def test_markdown_top_level_used_repeatedly_is_the_chapter_level(tmp_path: Path) -> None:
    text = "# One\n\nA.\n\n## Section\n\nB.\n\n# Two\n\nC.\n\n#\n\nD.\n"
    document = read(tmp_path, "levels.md", text)
    assert document.title is None
    assert [c.title for c in document.chapters] == ["One", "Two"]
    assert paragraph_texts(document.chapters[0]) == ["A.", "Section", "B."]
    assert [p.scene_break_before for p in document.chapters[1].paragraphs] == [False, True]


def test_markdown_setext_headings_and_quoted_hashes(tmp_path: Path) -> None:
    text = "Title\n=====\n\nPart One\n--------\n\nText.\n\n> # not a chapter\n\nPart Two\n--------\n\nMore.\n"
    document = read(tmp_path, "setext.md", text)
    assert document.title == "Title"
    assert [c.title for c in document.chapters] == ["Part One", "Part Two"]
    assert paragraph_texts(document.chapters[0]) == ["Text.", "not a chapter"]


_MD_WORD = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Lo", "Nd"), max_codepoint=0x1FFFF),
    min_size=1,
    max_size=8,
)
_MD_TRAIL = st.sampled_from(["", ".", ",", "!", "?", ":", ";", "'", '"'])
_WRAPPERS = ["{}", "*{}*", "**{}**", "_{}_", "`{}`", "[{}](http://x.y/z)", "[{}][]", "~~{}~~"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(_MD_WORD, _MD_TRAIL, st.sampled_from(_WRAPPERS)), min_size=1, max_size=12),
        min_size=1,
        max_size=5,
    )
)
def test_markdown_markup_never_reaches_words(paragraphs: list[list[tuple[str, str, str]]]) -> None:
    """Words wrapped in emphasis, code or links come out as the plain words, offsets true."""
    # Each paragraph opens with "So": "7. word" at the start of a paragraph is a list item.
    source = "\n\n".join(
        " ".join(["So", *(wrapper.format(word) + trail for word, trail, wrapper in paragraph)])
        for paragraph in paragraphs
    )
    expected = [text for paragraph in paragraphs for text in ["So", *(w + t for w, t, _ in paragraph)]]
    path = write(Path(_SCRATCH.name), "any.md", source)
    document = read_manuscript(path, display_name="any.md")
    assert [w.text for w in all_words(document)] == expected
    assert_offsets_hold(document)


_MARKDOWN_SOUP = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
        st.sampled_from(
            [
                "# ",
                "## ",
                "*",
                "**",
                "_",
                "`",
                "```",
                "[",
                "](",
                ")",
                "![",
                "> ",
                "- ",
                "1. ",
                "<!--",
                "-->",
                "<b>",
                "&amp;",
                "\\",
                "\n",
                "\n\n",
                "---",
                "===",
            ]
        ),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=60, deadline=None)
@given(_MARKDOWN_SOUP)
def test_any_markdown_reads_or_fails_cleanly(source: str) -> None:
    path = write(Path(_SCRATCH.name), "soup.md", source)
    try:
        document = read_manuscript(path, display_name="soup.md")
    except InputError as error:
        assert str(error).startswith(str(path))
        return
    assert all_words(document)
    assert_offsets_hold(document)


# --- the demo manuscript ----------------------------------------------------------------


def test_demo_manuscript() -> None:
    document = read_manuscript(DEMO, display_name="the-lighthouse-keepers-ledger.md")
    assert document.title == "The Lighthouse Keeper's Ledger"
    assert [c.title.split(":")[0] for c in document.chapters] == [
        "Chapter One",
        "Chapter Two",
        "Chapter Three",
    ]
    words = all_words(document)
    assert 1400 <= len(words) <= 1600
    texts = {w.text.strip(',"') for w in words}
    assert {"1,250", "3.5", "1987", "42nd", "Mr.", "Dr.", "St.", "a.m."} <= texts
    assert sum(p.scene_break_before for c in document.chapters for p in c.paragraphs) == 1
    assert sum(w.text.startswith(('"', "“")) for w in words) >= 10  # dialogue
    assert_offsets_hold(document)


# --- errors and size --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.txt", b"", "is empty"),
        ("blank.md", b"  \n\t\r\n", "only whitespace"),
        ("binary.txt", b"GIF89a\x00\x01\x02", "binary"),
        ("utf16.txt", "hello".encode("utf-16"), "UTF-16"),
        ("latin.txt", b"caf\xe9 au lait", "byte at offset 3"),
        ("code.md", b"```\nprint(1)\n```\n", "no readable text"),
        ("notes.pdf", b"%PDF-1.4", "unsupported manuscript type '.pdf'"),
        ("README", b"text", "unsupported manuscript type '(no suffix)'"),
    ],
)
def test_bad_files_raise_one_clear_input_error(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(InputError) as caught:
        read_manuscript(path, display_name=name)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert fragment in message
    assert "\n" not in message


def test_missing_file_directory_and_unknown_encoding(tmp_path: Path) -> None:
    missing = tmp_path / "missing.md"
    with pytest.raises(InputError, match=r"missing\.md: no such file"):
        read_manuscript(missing, display_name="missing.md")
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    with pytest.raises(InputError, match=r"folder\.txt: is a directory"):
        read_manuscript(folder, display_name="folder.txt")
    path = write(tmp_path, "ok.txt", "fine")
    with pytest.raises(InputError, match="unknown text encoding 'klingon'"):
        read_manuscript(path, display_name="ok.txt", encoding="klingon")


def test_epub_files_go_to_the_epub_reader(tmp_path: Path) -> None:
    path = write(tmp_path, "book.EPUB", b"not a zip archive")
    with pytest.raises(InputError, match="not an EPUB"):
        read_manuscript(path, display_name="book.EPUB")
    with pytest.raises(InputError, match=r"gone\.epub: no such file"):
        read_manuscript(tmp_path / "gone.epub", display_name="gone.epub")


def test_other_encodings_when_asked(tmp_path: Path) -> None:
    path = write(tmp_path, "latin.txt", "Caf\u00e9 au lait.".encode("latin-1"))
    document = read_manuscript(path, display_name="latin.txt", encoding="latin-1")
    assert [w.text for w in all_words(document)] == ["Café", "au", "lait."]
    path = write(tmp_path, "wide.txt", "Chapter 1\n\nWide text.".encode("utf-16"))
    document = read_manuscript(path, display_name="wide.txt", encoding="utf-16")
    assert [c.title for c in document.chapters] == ["Chapter 1"]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_a_one_megabyte_manuscript_parses_whole(tmp_path: Path, suffix: str) -> None:
    # Speed is measured in bench/, not asserted here; this checks a big file reads completely.
    body = DEMO.read_text(encoding="utf-8").split("\n", 1)[1]
    if suffix == ".txt":
        body = body.replace("## ", "").replace("*", "")
    path = write(tmp_path, "big" + suffix, body * (1_000_000 // len(body) + 1))
    document = read_manuscript(path, display_name="big" + suffix)
    copies = 1_000_000 // len(body) + 1
    assert len(document.chapters) == 3 * copies
    assert sum(len(c.words) for c in document.chapters) > 150_000
