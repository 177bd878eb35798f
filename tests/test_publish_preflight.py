"""The structure pre-flight and the book's metadata: the chapter table a user sees before
paying, the heading-only rule, Project Gutenberg's header and licence, the OPF read by
namespace URI, and the job's ``metadata:`` over it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import load_job
from pipeline.errors import ConfigError
from pipeline.prepare import prepare_book
from pipeline.publish.metadata import read_opf
from pipeline.publish.preflight import preflight
from tests.conftest import REPO, SHARED_CORPUS
from tests.jobs import write_job

SAMPLE_EPUB = REPO / "data" / "manuscripts" / "the-lamplighter-of-harrow-quay.epub"


def _book(tmp_path: Path, name: str = "t", **overrides: object):  # type: ignore[no-untyped-def]
    job = load_job(write_job(tmp_path, name=name, title=None, **overrides))
    book = prepare_book(job)
    return job, book


# --- heading-only chapters ----------------------------------------------------------------


def test_a_part_page_is_merged_into_the_next_chapter_by_default_and_said(tmp_path: Path) -> None:
    job, book = _book(tmp_path, input={"files": [str(SAMPLE_EPUB)]})
    report = preflight(job, book)
    assert [c.title for c in report.chapters][:1] == ["Chapter 1: The Last Lamp"]
    assert len(report.chapters) == 5
    merged = [w for w in report.warnings if w.kind == "heading_only"]
    assert len(merged) == 1 and "'Part One: Evening'" in merged[0].message and "merged into" in merged[0].message
    heading = book.chunks[0]
    assert heading.text == "Part One: Evening Chapter 1: The Last Lamp"
    spoken = " ".join(heading.spoken_words)
    assert "<break time='700ms'/>" in spoken.split("Chapter")[0]  # a pause between the two titles


def test_heading_only_keep_makes_it_a_chapter_and_skip_drops_it(tmp_path: Path) -> None:
    job, kept = _book(tmp_path, name="k", input={"files": [str(SAMPLE_EPUB)], "heading_only": "keep"})
    assert [c.title for c in kept.chapters][:2] == ["Part One: Evening", "Chapter 1: The Last Lamp"]
    assert [c.text for c in kept.chunks_of(0)] == ["Part One: Evening"]
    assert "kept as a chapter" in preflight(job, kept).warnings[0].message
    job, skipped = _book(tmp_path, name="s", input={"files": [str(SAMPLE_EPUB)], "heading_only": "skip"})
    assert len(skipped.chapters) == 5
    assert skipped.chunks[0].text == "Chapter 1: The Last Lamp"
    assert "skipped" in preflight(job, skipped).warnings[0].message
    with pytest.raises(ConfigError, match=r"input\.heading_only"):
        load_job(write_job(tmp_path, name="bad", input={"heading_only": "drop"}))


def test_heading_only_rule_in_plain_text(tmp_path: Path) -> None:
    text = tmp_path / "parts.txt"
    text.write_text(
        "PART ONE\n\nCHAPTER 1\n\nThe first chapter has words in it.\n\n"
        "CHAPTER 2\n\nThe second one has words too.\n\nPART TWO\n",
        encoding="utf-8",
    )
    job, book = _book(tmp_path, input={"files": [str(text)]})
    assert [c.title for c in book.chapters] == ["CHAPTER 1", "CHAPTER 2"]
    assert book.chunks[0].text == "PART ONE CHAPTER 1"
    notes = [w.message for w in preflight(job, book).warnings if w.kind == "heading_only"]
    assert notes[0].startswith("'PART ONE' is only a heading: merged into 'CHAPTER 1'")
    assert notes[1].startswith("'PART TWO' is only a heading: skipped")  # nothing after it


# --- Project Gutenberg ------------------------------------------------------------------------

_PG_TEXT = (
    "The Project Gutenberg eBook of A Small Test\n\nThis ebook is for the use of anyone anywhere.\n\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK A SMALL TEST ***\n\n"
    "CHAPTER I\n\nThe real book begins here, with a sentence or two.\n\n"
    "CHAPTER II\n\nAnd it ends here.\n\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK A SMALL TEST ***\n\n"
    "Section 1. General Terms of Use and Redistributing Project Gutenberg electronic works.\n"
)


def test_gutenberg_header_and_licence_are_left_out_of_plain_text_unless_kept(tmp_path: Path) -> None:
    text = tmp_path / "pg.txt"
    text.write_text(_PG_TEXT, encoding="utf-8")
    job, book = _book(tmp_path, input={"files": [str(text)]})
    assert [c.title for c in book.chapters] == ["CHAPTER I", "CHAPTER II"]
    spoken = " ".join(c.text for c in book.chunks)
    assert "Gutenberg" not in spoken and "real book begins" in spoken
    warning = next(w for w in preflight(job, book).warnings if w.kind == "gutenberg")
    assert "left out" in warning.message and "input.keep_gutenberg" in warning.message
    job, kept = _book(tmp_path, name="keep", input={"files": [str(text)], "keep_gutenberg": True})
    assert "Gutenberg" in " ".join(c.text for c in kept.chunks)
    assert kept.chapters[0].title != "CHAPTER I"  # the header is an opening chapter now
    assert any(w.kind == "gutenberg" and "mentions" in w.message for w in preflight(job, kept).warnings)


@pytest.mark.corpus
def test_gutenberg_epubs_chapter_tables(tmp_path: Path) -> None:
    job, alice = _book(tmp_path, name="alice", input={"files": [str(SHARED_CORPUS / "alice-gutenberg-pg11.epub")]})
    report = preflight(job, alice)
    titles = [c.title for c in report.chapters]
    assert len(titles) == 12 and titles[0] == "CHAPTER I. Down the Rabbit-Hole"
    assert titles[-1].startswith("CHAPTER XII")
    assert not any("Gutenberg" in c.text for c in alice.chunks)
    assert any(w.kind == "gutenberg" and "left out" in w.message for w in report.warnings)
    assert all(1000 < c.words < 4000 for c in report.chapters)
    job, crusoe = _book(
        tmp_path, name="crusoe", input={"files": [str(SHARED_CORPUS / "robinson-crusoe-gutenberg-pg521.epub")]}
    )
    rows = preflight(job, crusoe).chapters
    assert len(rows) == 20 and rows[0].title == "CHAPTER I. START IN LIFE"
    assert not any("Gutenberg" in c.text for c in crusoe.chunks)


# --- other warnings ---------------------------------------------------------------------------


def test_short_front_matter_duplicates_addresses_and_markdown_notes_are_warned(tmp_path: Path) -> None:
    md = tmp_path / "book.md"
    md.write_text(
        "# Contents\n\nOne, two, three.\n\n# Chapter\n\nSee https://example.org for more.[^1]\n\n"
        "# Chapter\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[^1]: A note.\n",
        encoding="utf-8",
    )
    job, book = _book(tmp_path, input={"files": [str(md)]})
    kinds = {(w.kind, w.chapter) for w in preflight(job, book).warnings}
    assert ("front_back_matter", 1) in kinds and ("short", 1) in kinds
    assert ("unspoken", 2) in kinds  # the address
    messages = [w.message for w in preflight(job, book).warnings]
    assert any("2 chapters are titled 'Chapter'" in m for m in messages)
    assert any("1 footnote marker(s) are not spoken" in m for m in messages)
    assert any("3 table row(s)" in m for m in messages)


def test_validate_and_estimate_print_the_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_job(tmp_path, input={"files": [str(SAMPLE_EPUB)]})
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Chapter 3: The Harbourmaster’s Visit" in out and "warning: 'Part One: Evening'" in out
    assert main(["validate", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["index"] for c in data["chapters"]] == [1, 2, 3, 4, 5]
    assert data["words"] == sum(c["words"] for c in data["chapters"]) > 1000
    assert data["warnings"][0]["kind"] == "heading_only"
    assert main(["estimate", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["chapters"] == 5 and len(data["preflight"]["chapters"]) == 5


# --- metadata ---------------------------------------------------------------------------------

_OPF = """<?xml version="1.0" encoding="utf-8"?>
<pkg:package xmlns:pkg="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid">
 <pkg:metadata xmlns:d="http://purl.org/dc/elements/1.1/">
  <d:title id="t1">The Quiet Harbour</d:title>
  <d:title id="t2">A Tale of Two Tides</d:title>
  <pkg:meta refines="#t1" property="title-type">main</pkg:meta>
  <pkg:meta refines="#t2" property="title-type">subtitle</pkg:meta>
  <d:creator id="a1">Mara Penhale</d:creator>
  <pkg:meta refines="#a1" property="role">aut</pkg:meta>
  <d:creator id="a2">Tobias Wren</d:creator>
  <d:creator id="ill">Iris Drew</d:creator>
  <pkg:meta refines="#ill" property="role">ill</pkg:meta>
  <d:publisher>Breakwater Press</d:publisher>
  <d:date>2019-04-02</d:date>
  <d:language>en-GB</d:language>
  <d:description>&lt;p&gt;A &lt;b&gt;short&lt;/b&gt; book.&lt;/p&gt;</d:description>
  <d:subject>Sea stories</d:subject>
  <d:identifier id="uid">urn:uuid:1234</d:identifier>
  <d:identifier>urn:isbn:978-0-306-40615-7</d:identifier>
  <d:rights>Copyright 2019 Mara Penhale</d:rights>
  <pkg:meta property="belongs-to-collection" id="c1">Harbour Books</pkg:meta>
  <pkg:meta refines="#c1" property="group-position">2</pkg:meta>
 </pkg:metadata>
 <pkg:manifest>
  <pkg:item id="c" href="ch.xhtml" media-type="application/xhtml+xml"/>
  <pkg:item id="img" href="images/front.png" media-type="image/png" properties="cover-image"/>
 </pkg:manifest>
 <pkg:spine><pkg:itemref idref="c"/></pkg:spine>
</pkg:package>"""


def _opf_epub(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0"><rootfiles>'
            '<rootfile full-path="OPS/book.opf" media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        z.writestr("OPS/book.opf", _OPF)
        z.writestr(
            "OPS/ch.xhtml",
            '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>One</h1><p>Some words here.</p></body></html>',
        )
        z.writestr("OPS/images/front.png", b"\x89PNG not really")
    return path


def test_the_opf_is_read_by_namespace_uri_whatever_its_prefixes(tmp_path: Path) -> None:
    opf = read_opf(_opf_epub(tmp_path / "b.epub"))
    assert (opf.title, opf.subtitle) == ("The Quiet Harbour", "A Tale of Two Tides")
    assert opf.authors == ("Mara Penhale", "Tobias Wren")  # the illustrator is no author
    assert (opf.publisher, opf.year, opf.language) == ("Breakwater Press", 2019, "en-GB")
    assert opf.description == "A short book."
    assert (opf.series, opf.series_position) == ("Harbour Books", 2.0)
    assert opf.isbn == "9780306406157" and opf.rights == "Copyright 2019 Mara Penhale"
    assert opf.subjects == ("Sea stories",) and opf.cover_member == "OPS/images/front.png"


def test_the_jobs_metadata_section_overrides_the_opf(tmp_path: Path) -> None:
    epub = _opf_epub(tmp_path / "b.epub")
    _, book = _book(tmp_path, input={"files": [str(epub)]})
    meta = book.metadata
    assert meta is not None
    assert (meta.title, meta.author, meta.narrator) == ("The Quiet Harbour", "Mara Penhale, Tobias Wren", "en-us")
    assert meta.series_label == "Harbour Books #2" and meta.genre == "Sea stories"
    _, book = _book(
        tmp_path,
        name="o",
        input={"files": [str(epub)]},
        metadata={
            "title": "Another Title",
            "authors": ["A. N. Other"],
            "narrator": "Nell",
            "year": 2024,
            "series_position": 3,
            "isbn": "0-306-40615-2",
        },
    )
    meta = book.metadata
    assert meta is not None and book.title == "Another Title" and book.author == "A. N. Other"
    assert (meta.narrator, meta.year, meta.series_label, meta.isbn) == ("Nell", 2024, "Harbour Books #3", "0306406152")
    assert meta.publisher == "Breakwater Press"  # not overridden: from the OPF
    with pytest.raises(ConfigError, match=r"unknown key 'metadata.autor'"):
        load_job(write_job(tmp_path, name="bad", metadata={"autor": "x"}))


@pytest.mark.corpus
def test_corpus_opf_metadata() -> None:
    alice = read_opf(SHARED_CORPUS / "alice-gutenberg-pg11.epub")
    assert (alice.title, alice.authors, alice.language) == (
        "Alice's Adventures in Wonderland",
        ("Lewis Carroll",),
        "en",
    )
    assert alice.year == 2008 and alice.rights == "Public domain in the USA."
    assert alice.subjects[0] == "Fantasy fiction" and (alice.cover_member or "").endswith("_cover.jpg")
    crusoe = read_opf(SHARED_CORPUS / "robinson-crusoe-gutenberg-pg521.epub")
    assert crusoe.authors == ("Daniel Defoe",) and (crusoe.cover_member or "").endswith(".png")


def test_a_delivery_store_sets_the_audio_it_needs_and_refuses_contradictions(tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, delivery={"store": "acx"}, audio={"formats": ["wav"]}))
    assert job.config.audio.formats == ["wav", "mp3"] and job.config.audio.mp3_bitrate_kbps == 192
    with pytest.raises(ConfigError, match=r"mp3_bitrate_kbps: acx needs at least 192 kbps, not 128"):
        load_job(write_job(tmp_path, name="b", delivery={"store": "acx"}, audio={"mp3_bitrate_kbps": 128}))
    with pytest.raises(ConfigError, match=r"audio.loudness: podcast needs the 'podcast' profile"):
        load_job(write_job(tmp_path, name="c", delivery={"store": "podcast"}))
