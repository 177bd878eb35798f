"""EPUB input: the right chapters (titles, order, nothing empty or doubled), nothing read that
should not be (front matter, notes, markers), clear errors for what is not a readable book;
checked on small books written byte by byte, the sample book and two Project Gutenberg
EPUBs."""

from __future__ import annotations

import tempfile
import zipfile
from html import escape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.models import Document
from pipeline.text.epub import read_epub
from tests.conftest import SHARED_CORPUS
from tests.epub_builder import Doc, Nav, encryption_xml, write_epub

CORPUS = SHARED_CORPUS
DATA = Path(__file__).parent.parent / "data"
SAMPLE = DATA / "manuscripts" / "the-lamplighter-of-harrow-quay.epub"


def read(path: Path, **options: bool) -> Document:
    doc = read_epub(path, display_name=path.name, **options)
    assert_offsets_hold(doc)
    return doc


def assert_offsets_hold(doc: Document) -> None:
    for chapter in doc.chapters:
        heading = chapter.heading.words if chapter.heading else ()
        for word in (*heading, *chapter.words):
            assert doc.text[word.start : word.end] == word.text


def titles(doc: Document) -> list[str]:
    return [c.title for c in doc.chapters]


def body(doc: Document, n: int) -> str:
    return " ".join(w.text for w in doc.chapters[n].words)


def p(text: str) -> str:
    return f"<p>{text}</p>"


# --- navigation and titles ----------------------------------------------------------------


# Namespaced attributes are matched by namespace URI: a book that declares the OPS namespace
# under another prefix than the conventional ``epub`` reads the same.
PREFIXES = pytest.mark.parametrize("prefix", ["epub", "ops"])


@PREFIXES
def test_nested_navigation_titles_each_chapter_and_a_part_page_is_no_chapter(tmp_path: Path, prefix: str) -> None:
    book = write_epub(
        tmp_path / "nested.epub",
        [
            Doc("part1.xhtml", "<h1>Part One</h1>", body_type="part"),
            Doc("c1.xhtml", "<h2>One</h2>" + p("First text.")),
            Doc("c2.xhtml", "<h2>Two</h2>" + p("Second text.")),
            Doc("part2.xhtml", "<h1>Part Two</h1>" + p("An opening note for part two.")),
            Doc("c3.xhtml", p("Third text, no heading.")),
        ],
        nav=[
            Nav(
                "Part One",
                "part1.xhtml",
                [Nav("Chapter One", "c1.xhtml"), Nav("Chapter Two", "c2.xhtml")],
            ),
            Nav("Part Two", "part2.xhtml", [Nav("Chapter Three", "c3.xhtml")]),
        ],
        ops_prefix=prefix,
    )
    doc = read(book)
    assert titles(doc) == ["Chapter One", "Chapter Two", "Part Two", "Chapter Three"]
    assert [c.source for c in doc.chapters] == [
        "nested.epub#c1.xhtml",
        "nested.epub#c2.xhtml",
        "nested.epub#part2.xhtml",
        "nested.epub#c3.xhtml",
    ]
    assert doc.chapters[0].heading is not None and doc.chapters[0].heading.text == "One"
    assert doc.chapters[3].heading is None  # the title exists only in the navigation
    assert [c.index for c in doc.chapters] == [0, 1, 2, 3]


def test_a_span_heading_in_the_nav_and_a_part_sharing_its_first_chapters_file(
    tmp_path: Path,
) -> None:
    book = write_epub(
        tmp_path / "span.epub",
        [Doc("a.xhtml", "<h1>Book One</h1><h2>1</h2>" + p("Alpha.")), Doc("b.xhtml", p("Beta."))],
        nav=[
            Nav("Book One", "a.xhtml", [Nav("The First", "a.xhtml")]),
            Nav("Extras", None, [Nav("The Second", "b.xhtml")]),
        ],
    )
    doc = read(book)
    assert titles(doc) == ["The First", "The Second"]  # the most specific entry names it
    assert doc.chapters[0].heading is not None and doc.chapters[0].heading.text == "Book One 1"


def test_fragments_split_one_file_into_chapters(tmp_path: Path) -> None:
    book = write_epub(
        tmp_path / "frag.epub",
        [
            Doc(
                "all.xhtml",
                p("Before any anchor.")
                + '<h2 id="one">One</h2>'
                + p("Text one.")
                + '<div id="two"><h2>Two</h2>'
                + p("Text two.")
                + "</div>"
                + '<h2 id="three">Three</h2>'
                + p("Text three."),
            )
        ],
        nav=[
            Nav("First", "all.xhtml#one"),
            Nav("Second", "all.xhtml#two"),
            Nav("Third", "all.xhtml#three"),
        ],
    )
    doc = read(book)
    assert titles(doc) == ["Chapter 1", "First", "Second", "Third"]  # untitled opening text
    assert [body(doc, n) for n in range(4)] == [
        "Before any anchor.",
        "Text one.",
        "Text two.",
        "Text three.",
    ]
    assert [c.heading.text if c.heading else None for c in doc.chapters] == [
        None,
        "One",
        "Two",
        "Three",
    ]
    assert {c.source for c in doc.chapters} == {"frag.epub#all.xhtml"}


def test_missing_titles_fall_back_to_the_heading_then_chapter_n(tmp_path: Path) -> None:
    with_nav = write_epub(
        tmp_path / "titles.epub",
        [
            Doc("c1.xhtml", "<h1>Arrival.</h1>" + p("Text one.")),
            Doc("c2.xhtml", "<h1>Departure</h1>" + p("Text two.")),
            Doc("c2b.xhtml", p("Still chapter two, split over two files.")),
        ],
        nav=[Nav("Arrival", "c1.xhtml")],
    )
    doc = read(with_nav)
    assert titles(doc) == ["Arrival", "Departure"]
    assert body(doc, 1) == "Text two. Still chapter two, split over two files."
    no_nav = write_epub(
        tmp_path / "bare.epub",
        [Doc("x.xhtml", p("Nameless one.")), Doc("y.xhtml", p("Nameless two."))],
        nav=[],
    )
    assert titles(read(no_nav)) == ["Chapter 1", "Chapter 2"]


def test_epub2_with_only_an_ncx(tmp_path: Path) -> None:
    book = write_epub(
        tmp_path / "old.epub",
        [
            Doc("cover.xhtml", '<div><img src="c.jpg" alt="Cover"/></div>'),
            Doc("toc.xhtml", "<h1>Contents</h1>" + p('<a href="c1.xhtml">I</a>')),
            Doc("c1.xhtml", "<h1>CHAPTER I.</h1>" + p("The beginning.")),
            Doc("c2.xhtml", "<h1>CHAPTER II.</h1>" + p("The end.")),
        ],
        ncx=[
            Nav("Contents", "toc.xhtml"),
            Nav(
                "Volume",
                "c1.xhtml",
                [Nav("CHAPTER I. Beginning", "c1.xhtml"), Nav("CHAPTER II. End", "c2.xhtml")],
            ),
        ],
        guide=[("cover", "cover.xhtml"), ("toc", "toc.xhtml")],
        creators=[("Old Author", None)],
    )
    doc = read(book)
    assert titles(doc) == ["CHAPTER I. Beginning", "CHAPTER II. End"]
    assert doc.author == "Old Author"
    assert "Contents" not in doc.text


def test_duplicate_and_empty_spine_items_give_no_chapters(tmp_path: Path) -> None:
    book = write_epub(
        tmp_path / "dup.epub",
        [
            Doc("c1.xhtml", "<h1>One</h1>" + p("Only once.")),
            Doc("img.xhtml", '<div><img src="map.png" alt="A map"/></div>  <p> </p>'),
        ],
        nav=[Nav("One", "c1.xhtml"), Nav("Map", "img.xhtml")],
    )
    with zipfile.ZipFile(book) as archive:
        opf = archive.read("OEBPS/content.opf").decode()
        files = {n: archive.read(n) for n in archive.namelist()}
    files["OEBPS/content.opf"] = opf.replace("</spine>", '<itemref idref="i0"/></spine>').encode()
    with zipfile.ZipFile(book, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    doc = read(book)
    assert titles(doc) == ["One"]
    assert doc.text == "One\n\nOnly once."


# --- what is not read ---------------------------------------------------------------------


def _front_matter_book(tmp_path: Path, prefix: str = "epub") -> Path:
    return write_epub(
        tmp_path / "front.epub",
        [
            Doc("title.xhtml", "<h1>The Book</h1>" + p("by Someone"), body_type="titlepage"),
            Doc(
                "legal.xhtml",
                '<section epub:type="copyright-page">' + p("Copyright 2024.") + "</section>",
            ),
            Doc("ded.xhtml", p("For my mother."), body_type="dedication"),
            Doc("c1.xhtml", "<h1>One</h1>" + p("Story.")),
            Doc("colo.xhtml", p("Set in Garamond."), body_type="colophon"),
            Doc("land.xhtml", "<h1>Acknowledgements</h1>" + p("Thanks to all.")),
        ],
        nav=[
            Nav("Title", "title.xhtml"),
            Nav("Dedication", "ded.xhtml"),
            Nav("One", "c1.xhtml"),
            Nav("Thanks", "land.xhtml"),
        ],
        nav_in_spine=True,
        landmarks=[("index", "land.xhtml")],
        ops_prefix=prefix,
    )


@PREFIXES
def test_front_and_back_matter_are_skipped_by_their_semantics(tmp_path: Path, prefix: str) -> None:
    doc = read(_front_matter_book(tmp_path, prefix))
    assert titles(doc) == ["Dedication", "One"]  # a dedication is part of the book
    for unread in ("The Book", "Copyright", "Garamond", "Thanks", "Contents"):
        assert unread not in doc.text


def test_front_matter_can_be_kept(tmp_path: Path) -> None:
    doc = read(_front_matter_book(tmp_path), keep_front_matter=True)
    assert titles(doc) == [
        "Contents",
        "Title",
        "Chapter 3",
        "Dedication",
        "One",
        "Chapter 6",
        "Thanks",
    ]
    assert "Copyright 2024." in doc.text and "Set in Garamond." in doc.text


@PREFIXES
def test_footnotes_markers_and_page_numbers_are_not_spoken(tmp_path: Path, prefix: str) -> None:
    text = (
        "<h1>One</h1>"
        + p(
            'Alpha<a epub:type="noteref" href="#n1">1</a> beta<sup><a href="#n2">2</a></sup> '
            'gamma<a href="notes.xhtml#n3">[3]</a> '
            'delta<span epub:type="pagebreak" id="p4">4</span> '
            'epsilon<span class="pagenum">[Pg 5]</span> zeta<a role="doc-noteref" href="#n4">*</a>.'
        )
        + '<aside epub:type="footnote" id="n1">'
        + p("Footnote one.")
        + "</aside>"
        + '<div role="doc-footnote" id="n2">'
        + p("Footnote two.")
        + "</div>"
        + p('the 1<sup>st</sup> and <a href="c2.xhtml">a real link</a>.')
    )
    book = write_epub(
        tmp_path / "notes.epub",
        [
            Doc("c1.xhtml", text),
            Doc("notes.xhtml", "<h1>Notes</h1>" + p('<span id="n3">Endnote three.</span>')),
            Doc("c2.xhtml", "<h1>Two</h1>" + p("More."), linear=True),
            Doc("aux.xhtml", p("An answer key."), linear=False),
        ],
        nav=[Nav("One", "c1.xhtml"), Nav("Notes", "notes.xhtml"), Nav("Two", "c2.xhtml")],
        ops_prefix=prefix,
    )
    doc = read(book)
    assert titles(doc) == ["One", "Two"]
    assert body(doc, 0) == "Alpha beta gamma delta epsilon zeta. the 1st and a real link."
    kept = read(book, keep_notes=True)
    assert titles(kept) == ["One", "Notes", "Two", "Chapter 4"]
    assert "Footnote one. Footnote two." in body(kept, 0)
    assert body(kept, 0).startswith("Alpha beta gamma delta epsilon zeta.")  # markers still silent


def test_gutenberg_style_contents_page_is_recognised_by_its_links(tmp_path: Path) -> None:
    links = "".join(f'<p><a href="c{i}.xhtml">Chapter the {i}th, in which things happen</a></p>' for i in range(1, 4))
    book = write_epub(
        tmp_path / "links.epub",
        [
            Doc("front.xhtml", "<h2>Index of chapters</h2>" + links),
            Doc("c1.xhtml", "<h1>I</h1>" + p("Go.")),
        ],
        nav=[Nav("List", "front.xhtml"), Nav("I", "c1.xhtml")],
    )
    assert titles(read(book)) == ["I"]


# --- paragraphs and text ------------------------------------------------------------------


def test_text_is_paragraphs_separated_by_blank_lines(tmp_path: Path) -> None:
    book = write_epub(
        tmp_path / "text.epub",
        [
            Doc(
                "c1.xhtml",
                "<h1>CHAPTER I.<br/>The Start</h1>"
                "<p>One\n   line  <i>with</i>\u00a0spaces.</p><hr/>"
                "<p>After the break.</p><p>* * *</p>"
                "<p>Line one<br/>line two<br/><br/>stanza two</p>"
                '<script>alert(1)</script><p hidden="">hidden</p>',
            )
        ],
        nav=[Nav("CHAPTER I. The Start", "c1.xhtml")],
    )
    doc = read(book)
    assert doc.text == (
        "CHAPTER I.\nThe Start\n\nOne line with spaces.\n\nAfter the break.\n\nLine one\nline two\n\nstanza two"
    )
    chapter = doc.chapters[0]
    assert chapter.heading is not None and chapter.heading.text == "CHAPTER I. The Start"
    assert [para.scene_break_before for para in chapter.paragraphs] == [False, True, True, False]


def test_content_that_is_not_well_formed_xml_is_still_read(tmp_path: Path) -> None:
    book = write_epub(
        tmp_path / "html.epub",
        [Doc("c.xhtml", "<h1>One</h1><p>Caf&eacute;&nbsp;society<p>Second paragraph")],
        nav=[Nav("One", "c.xhtml")],
    )
    assert read(book).text == "One\n\nCafé society\n\nSecond paragraph"


def test_semantics_are_read_in_markup_that_is_not_well_formed_xml(tmp_path: Path) -> None:
    """The HTML parser keeps ``prefix:type`` as written; the prefix is resolved through the
    file's own declaration (``ops`` here), and an undeclared ``epub`` is the OPS namespace."""
    declared = (
        '<?xml version="1.0"?><html xmlns:ops="http://www.idpf.org/2007/ops"><body>'
        '<section ops:type="copyright-page"><p>Copyright&nbsp;2024.</p></section>'
        "<h1>One</h1><p>Story&nbsp;time<p>Next</body></html>"
    )
    undeclared = (
        '<html><body><h1>Two</h1><p>More&nbsp;story.<aside epub:type="footnote"><p>A note.</p></aside></body></html>'
    )
    book = tmp_path / "loose.epub"
    write_epub(book, [Doc("a.xhtml", ""), Doc("b.xhtml", "")], nav=[Nav("One", "a.xhtml"), Nav("Two", "b.xhtml")])
    with zipfile.ZipFile(book) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["OEBPS/a.xhtml"], files["OEBPS/b.xhtml"] = declared.encode(), undeclared.encode()
    with zipfile.ZipFile(book, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    doc = read(book)
    assert titles(doc) == ["One", "Two"]
    assert "Copyright" not in doc.text and "A note" not in doc.text
    assert doc.text == "One\n\nStory time\n\nNext\n\nTwo\n\nMore story."


def test_pause_markup_survives_as_text_for_the_spoken_form(tmp_path: Path) -> None:
    book = write_epub(
        tmp_path / "pause.epub",
        [
            Doc(
                "c.xhtml",
                "<h1>One</h1><p>Wait<break time=\"1s\"/>for it &lt;break time='2s'/&gt; now.</p>",
            )
        ],
        nav=[Nav("One", "c.xhtml")],
    )
    assert read(book).text == "One\n\nWait <break time='1s'/> for it <break time='2s'/> now."


def test_metadata_fills_the_document(tmp_path: Path) -> None:
    book = write_epub(
        tmp_path / "meta.epub",
        [Doc("c.xhtml", p("Words."))],
        nav=[Nav("Only", "c.xhtml")],
        title="  A   Title ",
        creators=[("First Author", "aut"), ("An Illustrator", "ill"), ("Second Author", None)],
        language="fr-CA",
    )
    doc = read(book)
    assert (doc.title, doc.author, doc.language, doc.path) == (
        "A Title",
        "First Author, Second Author",
        "fr-CA",
        "meta.epub",
    )


_LETTERS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp"))
_WORDS = st.text(_LETTERS, min_size=1, max_size=10)
# A paragraph made only of "* * *"-style marks is a scene break, not words.
_PARAGRAPH = st.lists(_WORDS, min_size=1, max_size=8).filter(lambda words: not set("".join(words)) <= set("*#~•⁂·.—-"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paragraphs=st.lists(_PARAGRAPH, min_size=1, max_size=5))
def test_every_written_word_comes_out_in_order(paragraphs: list[list[str]]) -> None:
    html = "<h1>T</h1>" + "".join(p(escape(" ".join(words))) for words in paragraphs)
    with tempfile.TemporaryDirectory() as folder:
        book = write_epub(Path(folder) / "h.epub", [Doc("c.xhtml", html)], nav=[Nav("T", "c.xhtml")])
        doc = read(book)
    expected = [w for words in paragraphs for w in " ".join(words).split()]
    assert [w.text for w in doc.chapters[0].words] == expected
    assert doc.text.split("\n\n")[1:] == [" ".join(" ".join(ws).split()) for ws in paragraphs]


# --- errors -------------------------------------------------------------------------------


def test_not_an_epub_is_one_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.epub"
    text.write_text("just text")
    with pytest.raises(InputError, match=r"^notes\.epub: not an EPUB \(not a zip archive"):
        read_epub(text, display_name="notes.epub")
    bare = tmp_path / "bare.epub"
    with zipfile.ZipFile(bare, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(InputError, match=r"^bare\.epub: not an EPUB \(no META-INF/container\.xml\)"):
        read_epub(bare, display_name="bare.epub")


def test_a_damaged_epub_is_one_clear_error(tmp_path: Path) -> None:
    good = write_epub(tmp_path / "good.epub", [Doc("c.xhtml", p("Hi."))], nav=[Nav("C", "c.xhtml")])
    truncated = tmp_path / "cut.epub"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(InputError, match=r"^cut\.epub: not an EPUB"):
        read_epub(truncated, display_name="cut.epub")
    broken = tmp_path / "broken.epub"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            if name != "OEBPS/c.xhtml":  # the manifest names a file that is not there
                dst.writestr(name, src.read(name))
    with pytest.raises(InputError, match=r"^broken\.epub: not a readable EPUB") as caught:
        read_epub(broken, display_name="broken.epub")
    assert "\n" not in str(caught.value)


def test_drm_is_refused_but_font_obfuscation_is_fine(tmp_path: Path) -> None:
    docs, nav = [Doc("c.xhtml", p("Hi."))], [Nav("C", "c.xhtml")]
    drm = write_epub(
        tmp_path / "drm.epub",
        docs,
        nav=nav,
        encryption=encryption_xml("OEBPS/c.xhtml", "http://www.w3.org/2001/04/xmlenc#aes128-cbc"),
    )
    with pytest.raises(InputError, match=r"^drm\.epub: the EPUB is DRM-encrypted"):
        read_epub(drm, display_name="drm.epub")
    fonts = write_epub(
        tmp_path / "fonts.epub",
        docs,
        nav=nav,
        encryption=encryption_xml("OEBPS/f.otf", "http://www.idpf.org/2008/embedding"),
    )
    assert titles(read(fonts)) == ["C"]


def test_a_book_with_nothing_to_read_says_so(tmp_path: Path) -> None:
    book = write_epub(tmp_path / "cover.epub", [Doc("c.xhtml", "<img src='x.png'/>", body_type="cover")], nav=[])
    with pytest.raises(InputError, match=r"^cover\.epub: no chapter with text to read"):
        read_epub(book, display_name="cover.epub")


# --- the sample book and real books -------------------------------------------------------


def test_the_sample_book(tmp_path: Path) -> None:
    doc = read(SAMPLE)
    assert (doc.title, doc.author, doc.language) == (
        "The Lamplighter of Harrow Quay",
        "Wren Halloway",
        "en",
    )
    assert titles(doc) == [
        "Chapter 1: The Last Lamp",
        "Chapter 2: Ledger and Tide",
        "Chapter 3: The Harbourmaster’s Visit",
        "Chapter 4: Under the Third Stone",  # not in the navigation: from its heading
        "Chapter 5: Morning on the Quay",
    ]
    for unread in (
        "A story in five short chapters",
        "Copyright",
        "Part One",
        "crew as six men",
        "county archive",
    ):
        assert unread not in doc.text
    assert "never come home." in body(doc, 1)  # the footnote marker "1" is not read
    assert 1100 <= len(doc.text.split()) <= 1300
    everything = read(SAMPLE, keep_front_matter=True, keep_notes=True)
    assert titles(everything)[:3] == ["Title Page", "Contents", "Copyright"]
    assert titles(everything)[-1] == "Notes"
    assert "crew as six men" in everything.text


def test_the_sample_book_is_what_its_script_builds(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample_epub", DATA / "make_sample_epub.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = module.build(tmp_path / "again.epub")
    assert rebuilt.read_bytes() == SAMPLE.read_bytes(), "run data/make_sample_epub.py again"


def test_a_book_laid_out_like_project_gutenbergs(tmp_path: Path) -> None:
    """What the corpus tests check on the real Gutenberg books, on a book of our own laid out
    the same way: licence header and footer in ``pg-boilerplate`` sections (the footer also
    in the navigation), a contents page of links, two-line chapter headings, a last "THE END"."""
    header = (
        '<section class="pg-boilerplate pgheader" id="pg-header">'
        + p("The Project Gutenberg eBook of A Small Test, by Ada Writer.")
        + p("This ebook is for the use of anyone anywhere at no cost.")
        + "</section>"
    )
    contents = "<h2>Contents</h2>" + "".join(
        f'<p><a href="c{i}.xhtml">CHAPTER {r}. The {name}</a></p>'
        for i, r, name in ((1, "I", "Start"), (2, "II", "End"))
    )
    footer = (
        '<section class="pg-boilerplate pgfooter" id="pg-footer">'
        '<h2 id="licence">THE FULL PROJECT GUTENBERG LICENSE</h2>'
        + p("To protect the Project Gutenberg mission of promoting free distribution...")
        + "</section>"
    )
    book = write_epub(
        tmp_path / "pg.epub",
        [
            Doc("header.xhtml", header + contents),
            Doc("c1.xhtml", "<h2>CHAPTER I.<br/>The Start</h2>" + p("It began on a Tuesday.")),
            Doc("c2.xhtml", "<h2>CHAPTER II.<br/>The End</h2>" + p("It ended on a Friday.") + p("THE END")),
            Doc("footer.xhtml", footer),
        ],
        nav=[
            Nav("CHAPTER I. The Start", "c1.xhtml"),
            Nav("CHAPTER II. The End", "c2.xhtml"),
            Nav("THE FULL PROJECT GUTENBERG LICENSE", "footer.xhtml#licence"),
        ],
    )
    doc = read(book)
    assert titles(doc) == ["CHAPTER I. The Start", "CHAPTER II. The End"]
    assert doc.chapters[0].heading is not None
    assert doc.chapters[0].heading.text == "CHAPTER I. The Start"
    assert doc.text.startswith("CHAPTER I.\nThe Start\n\nIt began on a Tuesday.")
    assert doc.text.endswith("It ended on a Friday.\n\nTHE END")
    assert "Gutenberg" not in doc.text and "Contents" not in doc.text
    everything = read(book, keep_front_matter=True)
    assert "THE FULL PROJECT GUTENBERG LICENSE" in titles(everything)
    assert "Project Gutenberg mission" in everything.text


@pytest.mark.corpus
def test_alice_from_project_gutenberg() -> None:
    doc = read(CORPUS / "alice-gutenberg-pg11.epub")
    romans = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
    assert [t.split(".")[0] for t in titles(doc)] == [f"CHAPTER {r}" for r in romans]
    assert titles(doc)[0] == "CHAPTER I. Down the Rabbit-Hole"
    assert doc.chapters[0].heading is not None
    assert doc.chapters[0].heading.text == "CHAPTER I. Down the Rabbit-Hole"
    assert doc.text.startswith("CHAPTER I.\nDown the Rabbit-Hole\n\nAlice was beginning")
    assert "Gutenberg" not in doc.text and "Contents" not in doc.text
    assert doc.text.endswith("the happy summer days.\n\nTHE END")
    assert (doc.title, doc.author, doc.language) == (
        "Alice's Adventures in Wonderland",
        "Lewis Carroll",
        "en",
    )
    everything = read(CORPUS / "alice-gutenberg-pg11.epub", keep_front_matter=True)
    assert "THE FULL PROJECT GUTENBERG LICENSE" in titles(everything)


@pytest.mark.corpus
def test_robinson_crusoe_from_project_gutenberg() -> None:
    doc = read(CORPUS / "robinson-crusoe-gutenberg-pg521.epub")
    assert len(doc.chapters) == 20
    assert titles(doc)[0] == "CHAPTER I. START IN LIFE"
    assert titles(doc)[-1] == "CHAPTER XX. FIGHT BETWEEN FRIDAY AND A BEAR"
    assert "Gutenberg" not in doc.text and "Seeley, Service" not in doc.text
    assert body(doc, 0).startswith("I was born in the year 1632, in the city of York")
    assert doc.author == "Daniel Defoe"
