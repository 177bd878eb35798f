"""Markdown words lead back to the .md file: Document.file_span and alignment.json's char offsets.

Each word's span of the decoded file, with the Markdown markup in it removed, must be the word
as read. "Markup removed" is defined here on its own, by the constructs these tests write:
comments, backslash escapes, entities, autolinks, footnote references, link targets, and the
characters of emphasis, code spans and link brackets.
"""

from __future__ import annotations

import functools
import html
import re
import tempfile
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.align.alignment import alignment_document, alignment_schema, document_file_spans
from pipeline.models import ChapterTimeline, Document, TimedWord, Word
from pipeline.text.markdown import parse_markdown
from pipeline.text.readers import read_manuscript

DEMO = Path(__file__).resolve().parent.parent / "data" / "manuscripts" / "the-lighthouse-keepers-ledger.md"
_SCRATCH = tempfile.TemporaryDirectory(prefix="narrate-md-offsets-")

_MARKUP = re.compile(
    r"<!--.*?-->"  # a comment, wherever it stands
    r"|\\(?P<escaped>[!-/:-@\[-`{-~])"  # a backslash escape: the character itself
    r"|(?P<entity>&#?[A-Za-z0-9]+;)"
    r"|(?P<url>[a-z]+://[^\s<>]*)>"  # an autolink, whose "<" is before the word's first character
    r"|\[\^[^\]]*\]"  # a footnote reference
    r"|\]\([^)]*\)"  # the end of a link: its label's closing bracket and its target
    r"|[*_~`\[\]]",  # emphasis, code spans, a link's opening bracket
    re.DOTALL,
)


def without_markup(raw: str) -> str:
    def visible(match: re.Match[str]) -> str:
        if match["escaped"] or match["url"]:
            return match["escaped"] or match["url"]
        return html.unescape(match["entity"]) if match["entity"] else ""

    return _MARKUP.sub(visible, raw)


def decoded(path: Path) -> str:
    """The file as the readers decode it: UTF-8, byte-order mark removed, line endings kept."""
    return path.read_bytes().decode("utf-8").removeprefix("\ufeff")


def read(name: str, source: str, *, keep_notes: bool = False, bom: bool = False) -> tuple[Document, str]:
    path = Path(_SCRATCH.name) / name
    path.write_bytes(("\ufeff" if bom else "").encode() + source.encode("utf-8"))
    return read_manuscript(path, display_name=name, keep_notes=keep_notes), decoded(path)


def words_in_text_order(document: Document) -> list[Word]:
    words = [w for c in document.chapters for w in ((c.heading.words if c.heading else ()) + c.words)]
    return sorted(words, key=lambda w: w.start)


def assert_spans_lead_to_the_file(document: Document, file_text: str) -> list[str]:
    """Every word's file span shows the word (markup aside); spans increase and never overlap.
    Returns the raw file slices, in text order."""
    raws = []
    previous_end = 0
    for word in words_in_text_order(document):
        assert document.text[word.start : word.end] == word.text
        start, end = document.file_span(word.start, word.end)
        raw = file_text[start:end]
        assert without_markup(raw) == word.text, (word, raw)
        assert previous_end <= start < end
        previous_end = end
        raws.append(raw)
    return raws


# --- the constructs one at a time -----------------------------------------------------------


def test_the_span_runs_from_the_first_visible_character_to_the_last() -> None:
    source = (
        "# The *Book*\n\n"
        "It was *hers*. A &ldquo;quote,&rdquo; \\*starred\\* and [a *fine* link](http://x.org/a_b).\n"
        "Noted[^1] wo<!-- a\ncomment -->rd <https://example.org/p> and ![a picture](pic.png) end.\n"
    )
    document, file_text = read("example.md", source)
    raws = assert_spans_lead_to_the_file(document, file_text)
    assert raws == [
        "The", "Book",  # the closing "*" is after the last visible character: not included
        "It", "was", "hers*.", "A", "&ldquo;quote,&rdquo;", "\\*starred\\*", "and", "a", "fine",
        "link](http://x.org/a_b).", "Noted", "wo<!-- a\ncomment -->rd", "https://example.org/p",
        "and", "end.",
    ]  # fmt: skip
    assert document.file_spans is not None and document.file_spans.dtype == np.int32
    assert document.file_spans.shape == (len(document.text), 2)


BLOCKS = {
    "emphasis": ("So *one*, **two**; _three_ ~~four~~ in*ner*most `code`.", "So one, two; three four innermost code."),
    "links": (
        "See [the *docs*](http://x.y/a_b) and [ref][r] or <http://x.y/c>.\n\n[r]: http://x.y/r",
        "See the docs and ref or http://x.y/c.",
    ),
    "headings": (
        "Lead.\n\n# Part *One*\n\nText.\n\nSetext *Two*\n============\n\n### Deep _three_ ###\n\nMore.",
        "Lead. Part One Text. Setext Two Deep three More.",
    ),
    "lists": (
        "Lead.\n\n- item *one*\n- item\n  wrapped\n1. numbered _two_\n\n* star",
        "Lead. item one item wrapped numbered two star",
    ),
    "quotes": (
        "Lead.\n\n> Quoted *text*\n> continues.\n>\n> > nested **deep**.",
        "Lead. Quoted text continues. nested deep.",
    ),
    "footnotes": (
        "Text[^a] and[^b].\n\n[^a]: The *note*.\n    More of it.\n\n[^b]: Other.\n\nAfter.",
        "Text and. After.",
    ),
    "comments": ("One <!-- gone --> two<!--\nx\n-->three.\n\n<!--\n# hidden\n-->\n\nFour.", "One twothree. Four."),
    "entities and escapes": (
        "AT&amp;T said &#8220;hi&#x201D; \\# \\_x\\_ 5\\*3 &hellip;",
        "AT&T said “hi” # _x_ 5*3 …",
    ),
    "code fence and scene break": ("Before.\n\n```\n*code*\n```\n\n* * *\n\nAfter <br> line.", "Before. After line."),
    "front matter": ("---\ntitle: T\nauthor: A\n---\nBody *text*.", "Body text."),
}


@pytest.mark.parametrize("name", list(BLOCKS))
@pytest.mark.parametrize("crlf", [False, True])
def test_each_construct(name: str, crlf: bool) -> None:
    source, expected = BLOCKS[name]
    if crlf:
        source = source.replace("\n", "\r\n")
    document, file_text = read("construct.md", source, bom=crlf)
    assert_spans_lead_to_the_file(document, file_text)
    assert " ".join(w.text for w in words_in_text_order(document)) == expected


def test_kept_footnotes_lead_to_their_definitions() -> None:
    document, file_text = read("notes.md", "Text[^a].\n\n[^a]: The *note*.\n", keep_notes=True)
    raws = assert_spans_lead_to_the_file(document, file_text)
    assert raws == ["Text[^a].", "The", "note*."]


def test_demo_manuscript_spans() -> None:
    document = read_manuscript(DEMO, display_name="demo.md")
    raws = assert_spans_lead_to_the_file(document, decoded(DEMO))
    assert len(raws) > 1000 and sum(raw.count("*") for raw in raws) >= 2


def test_plain_text_spans_are_the_offsets(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_text("Chapter 1\n\nIt was *hers*.\n", encoding="utf-8")
    document = read_manuscript(path, display_name="plain.txt")
    assert document.file_spans is None
    words = words_in_text_order(document)
    assert [document.file_span(w.start, w.end) for w in words] == [(w.start, w.end) for w in words]


def test_spans_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        Document("x.md", "abc", (), file_spans=np.zeros((2, 2), dtype=np.int32))


# --- a generated mix ------------------------------------------------------------------------

_LETTERS = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Lo"), max_codepoint=0x1FFFF), min_size=1, max_size=7
)
_TAIL = st.sampled_from(["", ".", ",", "!", "?", ";", ":"])
# Each form: (its Markdown, the words read from it), from two words and trailing punctuation.
_FORMS = {
    "plain": lambda w, v, t: (f"{w}{t}", [w + t]),
    "emphasis": lambda w, v, t: (f"*{w}*{t}", [w + t]),
    "strong": lambda w, v, t: (f"**{w}**{t}", [w + t]),
    "underscore": lambda w, v, t: (f"_{w}_{t}", [w + t]),
    "strike": lambda w, v, t: (f"~~{w}~~{t}", [w + t]),
    "inner": lambda w, v, t: (f"{w}*{v}*{t}", [w + v + t]),
    "code": lambda w, v, t: (f"`{w}`{t}", [w + t]),
    "link": lambda w, v, t: (f"[{w} *{v}*](http://example.org/p_q.html){t}", [w, v + t]),
    "footnote": lambda w, v, t: (f"{w}[^{len(v)}]{t}", [w + t]),
    "comment": lambda w, v, t: (f"{w}<!-- {v}\n# x -->{v}{t}", [w + v + t]),
    "entity": lambda w, v, t: (f"&ldquo;{w}&amp;{v}&rdquo;{t}", [f"“{w}&{v}”{t}"]),
    "escape": lambda w, v, t: (f"\\*{w}\\_{t}", [f"*{w}_{t}"]),
    "autolink": lambda w, v, t: (f"<https://example.org/{w}>", [f"https://example.org/{w}"]),
    "line break": lambda w, v, t: (f"{w}<br>{v}{t}", [w, v + t]),
    "image": lambda w, v, t: (f"![{w}](pic.png)", []),
    "pause": lambda w, v, t: ("<break time='500ms'/>", ["<break", "time='500ms'/>"]),
}


@st.composite
def inline(draw: st.DrawFn) -> tuple[str, list[str]]:
    form = _FORMS[draw(st.sampled_from(sorted(_FORMS)))]
    return form(draw(_LETTERS), draw(_LETTERS), draw(_TAIL))


@st.composite
def block(draw: st.DrawFn, keep_notes: bool) -> tuple[str, list[str]]:
    items = draw(st.lists(inline(), min_size=1, max_size=6))
    visible = [word for _, words in items for word in words]
    kind = draw(st.sampled_from(["paragraph", "heading", "setext", "list", "quote", "footnote", "hidden"]))
    if kind in ("paragraph", "quote"):
        prefix = "> " if kind == "quote" else ""
        breaks = draw(st.lists(st.sampled_from([" ", "\n" + prefix]), min_size=len(items), max_size=len(items)))
        text = prefix + "So " + "".join(md + gap for (md, _), gap in zip(items, breaks, strict=True))
        return text.rstrip(), ["So", *visible]
    line = " ".join(md for md, _ in items)
    if kind == "heading":
        return "#" * draw(st.integers(1, 3)) + " " + line, visible
    if kind == "setext":
        return f"{line}\n" + draw(st.sampled_from(["===", "---"])), visible
    if kind == "list":
        return draw(st.sampled_from(["- ", "1. ", "* "])) + line, visible
    if kind == "footnote":
        return f"[^n]: {line}", visible if keep_notes else []
    hidden = draw(st.sampled_from(["<!--\n{}\n-->", "```\n{}\n```", "* * *\n\n<!-- {} -->"]))
    if "-->" in line:
        hidden = "```\n{}\n```"  # comments do not nest
    return hidden.format(line), []


@st.composite
def manuscript(draw: st.DrawFn) -> tuple[str, list[str], bool]:
    keep_notes = draw(st.booleans())
    # A paragraph first, so that a title heading is read too (as the opening's heading).
    blocks = [("Opening words.", ["Opening", "words."]), *draw(st.lists(block(keep_notes), max_size=8))]
    text = "\n\n".join(md for md, _ in blocks) + "\n"
    if draw(st.booleans()):
        text = "---\ntitle: Generated\n---\n" + text
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text, [word for _, words in blocks for word in words], keep_notes


@settings(max_examples=120, deadline=None)
@given(manuscript(), st.booleans())
def test_generated_markdown_spans_lead_to_the_file(case: tuple[str, list[str], bool], bom: bool) -> None:
    source, expected, keep_notes = case
    document, file_text = read("mix.md", source, keep_notes=keep_notes, bom=bom)
    assert_spans_lead_to_the_file(document, file_text)
    assert [w.text for w in words_in_text_order(document)] == expected


_SOUP = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=6),
        st.sampled_from(["# ", "*", "**", "_", "`", "```", "[", "](", ")", "![", "> ", "- ", "1. ", "<!--", "-->",
                         "<br>", "&amp;", "&#x1F600;", "\\", "\n", "\r\n", "\n\n", "---", "===", "[^1]", "[^1]: "]),
    ),
    max_size=40,
).map(lambda pieces: "Words. " + "".join(pieces))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(_SOUP)
def test_any_markdown_maps_in_order_into_the_file(source: str) -> None:
    """Whatever the Markdown, the rendered text maps into the file in reading order."""
    parsed = parse_markdown(source)
    assert parsed.file_spans.shape == (len(parsed.text), 2)
    starts, ends = parsed.file_spans[:, 0], parsed.file_spans[:, 1]
    assert np.all(starts <= ends) and np.all(starts >= 0) and np.all(ends <= len(source))
    assert np.all(np.diff(starts) >= 0) and np.all(np.diff(ends) >= 0)
    visible = ~np.array([c.isspace() for c in parsed.text], dtype=bool)
    assert np.all(starts[visible] < ends[visible])  # every visible character came from somewhere


# --- alignment.json -------------------------------------------------------------------------


@functools.cache
def validator() -> jsonschema.protocols.Validator:
    schema = alignment_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def timelines(document: Document) -> list[tuple[ChapterTimeline, int]]:
    """Every chapter's words on a made-up timeline, 100 ms each, numbered by sentence."""
    out = []
    for chapter in document.chapters:
        sentences = ([chapter.heading] if chapter.heading else []) + [
            s for p in chapter.paragraphs for s in p.sentences
        ]
        timed = [
            TimedWord(word, chapter.index, chapter.source, 100 * k, 100 * k + 90, sentence)
            for k, (sentence, word) in enumerate((i, w) for i, s in enumerate(sentences) for w in s.words)
        ]
        out.append((ChapterTimeline(chapter.index, chapter.title, chapter.source, 100 * len(timed), tuple(timed)), 0))
    return out


def test_alignment_offsets_slice_the_markdown_file() -> None:
    source = BLOCKS["emphasis"][0] + "\n\n## Chapter *Two*\n\nIt was *hers*. She said[^1], &ldquo;no.&rdquo;\n"
    document, file_text = read("book.md", source)
    chapters = timelines(document)
    doc = alignment_document(
        chapters,
        job_name="j",
        sample_rate=24000,
        audio_files={},
        book_file=None,
        file_span=document_file_spans([document]),
    )
    validator().validate(doc)
    slices = []
    for chapter in doc["chapters"]:
        for word in chapter["words"]:
            slices.append(file_text[word["char_start"] : word["char_end"]])
            assert without_markup(slices[-1]) == word["text"]
        for sentence in chapter["sentences"]:
            first, last = chapter["words"][sentence["first_word"]], chapter["words"][sentence["last_word"]]
            assert (sentence["char_start"], sentence["char_end"]) == (first["char_start"], last["char_end"])
            raw = file_text[sentence["char_start"] : sentence["char_end"]]
            assert " ".join(without_markup(raw).split()) == sentence["text"]
    assert slices[-6:] == ["It", "was", "hers*.", "She", "said[^1],", "&ldquo;no.&rdquo;"]
    # Without file_span the offsets are the rendered text's, as before.
    rendered = alignment_document(chapters, job_name="j", sample_rate=24000, audio_files={}, book_file=None)
    assert all(
        document.text[w["char_start"] : w["char_end"]] == w["text"]
        for chapter in rendered["chapters"]
        for w in chapter["words"]
    )


def test_alignment_with_several_documents(tmp_path: Path) -> None:
    plain = tmp_path / "one.txt"
    plain.write_text("Chapter 1\n\nPlain *text* here.\n", encoding="utf-8")
    text_document = read_manuscript(plain, display_name="one.txt")
    md_document, md_text = read("two.md", "# Two\n\nMarked *text* here.\n")
    chapters = timelines(text_document) + timelines(md_document)
    doc = alignment_document(
        chapters,
        job_name="j",
        sample_rate=24000,
        audio_files={},
        book_file=None,
        file_span=document_file_spans([text_document, md_document]),
    )
    files = {"one.txt": plain.read_text(encoding="utf-8"), "two.md": md_text}
    got = [files[w["source"]][w["char_start"] : w["char_end"]] for c in doc["chapters"] for w in c["words"]]
    assert got == ["Chapter", "1", "Plain", "*text*", "here.", "Two", "Marked", "text", "here."]
    with pytest.raises(ValueError, match=r"three\.md"):
        document_file_spans([text_document])("three.md", 0, 1)
