"""Build data/manuscripts/the-lamplighter-of-harrow-quay.epub, the sample EPUB.

An original short story (written for narrate; free to copy, change and share) laid out the
way published EPUBs are, so that every EPUB rule of the reader has something to act on:
a cover, a title page, a contents page, a copyright page, footnotes and endnotes with
reference markers, page-break markers, nested navigation (a part holding three chapters,
its own page only a heading), and a chapter that the navigation leaves out. Read with the
defaults it gives exactly five chapters.

Run: .venv/bin/python data/make_sample_epub.py   (the output is byte-for-byte reproducible)
"""

from __future__ import annotations

import datetime
import struct
import zipfile
import zlib
from pathlib import Path

from ebooklib import epub

OUT = Path(__file__).parent / "manuscripts" / "the-lamplighter-of-harrow-quay.epub"
TITLE = "The Lamplighter of Harrow Quay"
AUTHOR = "Wren Halloway"
FIXED_TIME = datetime.datetime(2025, 1, 1, 0, 0, 0)

# file -> (title, paragraphs, what follows the paragraphs: notes)
CHAPTERS: dict[str, tuple[str, list[str], str]] = {
    "chapter-1.xhtml": (
        "Chapter 1: The Last Lamp",
        [
            "Oona Vell had lit the lamps of Harrow Quay for 11 years, and in all that time "
            "she had never once missed the last one. It stood at the very end of the "
            "breakwater, leaning a little toward the sea, as if it wanted to hear what the "
            "waves were saying. The town council paid her $3.50 a week for the work, which "
            "was not much, but the work suited her. She liked the quiet, and she liked the "
            "way the light climbed up the glass when the wick caught.",
            "On the evening this story begins, the wind came in hard from the north. Oona "
            "tucked her ladder under one arm and her tin of matches into her coat, and she "
            "walked the length of the quay, lamp by lamp, counting as she went. There were "
            "27 lamps in all. She had named most of them. The crooked one by the fish market "
            "was Mr. Pell, after the fishmonger who leaned the same way. The tall one outside "
            "the chapel of St. Brannoc was the Bishop.",
            "People in the town said she talked to the lamps, which was true, and that the "
            "lamps talked back, which was not. What they did do, if you watched them long "
            "enough, was tell you things: which way the weather was turning, how much salt "
            "was in the air, whether the fishing boats would go out in the morning.",
            'By the time she reached the breakwater, the sky had gone the colour of slate. '
            'She set the ladder against the last lamp, climbed, and opened the little door.'
            '<span epub:type="pagebreak" id="page-2" title="2"></span> Inside, on the ledge '
            "where the oil can usually sat, was a book she had never seen before.",
        ],
        "",
    ),
    "chapter-2.xhtml": (
        "Chapter 2: Ledger and Tide",
        [
            "It was a ledger, the kind shopkeepers use, bound in green cloth gone grey at the "
            "corners. Oona lit the lamp first, because the lamp came first, and then she "
            "carried the book home under her coat.",
            "At the kitchen table she opened it. The first page was dated 14 March 1887, and "
            "the handwriting was small and careful. Each line recorded a tide: the hour it "
            "turned, the height of the water, and a short note. “High water 10:40 p.m., 5.2 "
            "metres. Wind from the northeast. Saw the lights of the Mary Quill far out.” The "
            "notes went on for pages, year after year, in the same patient hand.",
            "Oona knew the Mary Quill. Everyone in Harrow knew the Mary Quill. She was the "
            "schooner that had sailed out in the autumn of 1891 and never come home."
            '<a epub:type="noteref" href="#fn-crew" id="ref-crew">1</a>',
            "She turned to the end of the ledger. The last entry was not a tide at all. It "
            "said only: “For whoever lights the last lamp. Look under the 3rd stone.”",
        ],
        '<aside epub:type="footnote" id="fn-crew"><p><a href="#ref-crew">1</a> The harbour '
        "records list her crew as six men and a boy. The boy’s name was never written "
        "down.</p></aside>",
    ),
    "chapter-3.xhtml": (
        "Chapter 3: The Harbourmaster’s Visit",
        [
            "Before Oona could decide what to make of it, someone knocked at the door. It was "
            "Dr. Amsel Fenn, the harbourmaster, who was not a doctor of anything but liked "
            "the title, and who had never knocked on her door before in his life.",
            "“You were late tonight,” he said. “The last lamp was lit at 7:05. It is usually "
            "lit by a quarter to seven.”",
            "“The wind,” said Oona.",
            "Dr. Fenn looked past her at the green ledger on the table, and something in his "
            "face changed. He asked where she had found it. She told him the truth, because "
            "she could not think of a good lie quickly enough. He said the book was harbour "
            "property, that it had gone missing from his office about 30 years ago, and that "
            "he would take it now, thank you.",
            "Oona said she would bring it to his office in the morning, once she had dried "
            "the pages. It was not a very good lie either, but it was late, and the "
            "harbourmaster was tired, and he went away. She locked the door behind him and "
            "sat down again with the ledger open in front of her.",
            "She read until the candle was half gone. Somewhere around the year 1890 the "
            "handwriting began to change. It grew larger and less careful, as if the writer "
            "were in a hurry, or getting old, or both. The tides were still there, night "
            "after night, but the notes grew shorter, until most of them said only: “No "
            "lights tonight.”",
        ],
        "",
    ),
    # Left out of the navigation on purpose: its title must come from its heading.
    "chapter-4.xhtml": (
        "Chapter 4: Under the Third Stone",
        [
            "At first light she walked back along the breakwater. The stones there were old "
            "and square, each one the size of a loaf of bread, and she counted them from the "
            "foot of the last lamp: one, two, three. The third stone was loose. Under it, "
            "wrapped in oilcloth, was a small brass key and a folded letter.",
            "The letter was from a woman named Hester Quill, the wife of the captain of the "
            "Mary Quill. She had written it in 1902, eleven years after the schooner was "
            "lost. She wrote that her husband had not drowned at all. He had put the boy "
            "ashore at St. Ives before the storm, with a key to a strongbox and instructions "
            "to wait. The boy had waited, she wrote, and waited, and in the end had become a "
            "lamplighter, so that he could keep a light burning for a ship that would not "
            "come.",
            "Oona read the letter twice. Then she read the name at the bottom of the "
            "ledger’s first page, which she had not noticed before, because it was so small. "
            "It said: T. Vell. Her grandfather’s name.",
        ],
        "",
    ),
    "chapter-5.xhtml": (
        "Chapter 5: Morning on the Quay",
        [
            "The strongbox was in the council’s storeroom, where it had sat unopened for "
            'decades because no one could find the key.<a epub:type="noteref" '
            'href="notes.xhtml#note-storeroom" id="ref-storeroom">2</a> The clerk, Mrs. '
            "Dunmore, let Oona try it on condition that she be allowed to watch.",
            "Inside were letters, a few coins worth about £10 altogether, and a photograph of "
            "a boy of about 12 standing beside a man in a captain’s coat. On the back, in the "
            "same careful hand as the ledger, someone had written: “Keep the light, Tom. "
            "I’ll find it.”",
            "Oona gave the ledger to the harbourmaster that afternoon, as she had promised. "
            "She kept the photograph. That evening she lit the lamps of Harrow Quay as she "
            "always did, 27 of them, from Mr. Pell to the Bishop and on out to the last lamp "
            "on the breakwater, and when she was done she stood for a while beside it and "
            "watched the dark water.",
            "Nothing came in from the sea. She had not expected anything to. But the light "
            "was burning, and for the first time in 11 years she knew who it was for.",
            "In the spring the council voted to put electric lamps along the quay, and "
            "Oona was thanked for her service with a small dinner at the Anchor and a clock "
            "that did not keep good time. The last lamp on the breakwater they left alone. "
            "Nobody could say afterwards who had asked for that, and Oona never told them.",
        ],
        "",
    ),
}


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain one-colour PNG: the cover image, made here so the script needs no files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 9))
        + chunk(b"IEND", b"")
    )


def _page(file_name: str, title: str, body: str) -> epub.EpubHtml:
    page = epub.EpubHtml(title=title, file_name=file_name, lang="en")
    page.content = f"<html><body>{body}</body></html>"
    return page


def build(out: Path = OUT) -> Path:
    book = epub.EpubBook()
    book.set_identifier("urn:narrate:sample:lamplighter")
    book.set_title(TITLE)
    book.set_language("en")
    book.add_author(AUTHOR)
    book.set_cover("cover.png", _png(60, 90, (32, 48, 72)), create_page=True)

    title_page = _page(
        "title.xhtml",
        "Title Page",
        f'<section epub:type="titlepage"><h1>{TITLE}</h1>'
        f"<p>A story in five short chapters</p><p>by {AUTHOR}</p></section>",
    )
    contents = _page(
        "contents.xhtml",
        "Contents",
        '<nav epub:type="toc"><h1>Contents</h1><ol>'
        + "".join(f'<li><a href="{href}">{t}</a></li>' for href, (t, _, _) in CHAPTERS.items())
        + "</ol></nav>",
    )
    copyright_page = _page(
        "copyright.xhtml",
        "Copyright",
        '<section epub:type="copyright-page"><p>Copyright © 2025 the narrate project.</p>'
        "<p>This story was written as sample text for narrate. You may copy, change and "
        "share it freely.</p></section>",
    )
    part_one = _page(  # only a heading: the part names no chapter of its own
        "part-1.xhtml",
        "Part One: Evening",
        '<section epub:type="part"><h1>Part One: Evening</h1></section>',
    )
    chapters = {}
    for href, (title, paragraphs, after) in CHAPTERS.items():
        body = "".join(f"<p>{p}</p>" for p in paragraphs) + after
        chapters[href] = _page(
            href, title, f'<section epub:type="chapter"><h2>{title}</h2>{body}</section>'
        )
    notes = _page(
        "notes.xhtml",
        "Notes",
        '<section epub:type="endnotes"><h2>Notes</h2><ol><li id="note-storeroom">'
        '<p>The storeroom was cleared in 1968, and most of what it held went to the county '
        'archive. <a href="chapter-5.xhtml#ref-storeroom">Back</a></p></li></ol></section>',
    )
    pages = [title_page, contents, copyright_page, part_one, *chapters.values(), notes]
    for page in pages:
        book.add_item(page)

    c = chapters
    book.toc = [
        epub.Link("title.xhtml", "Title Page", "title"),
        epub.Link("contents.xhtml", "Contents", "contents"),
        epub.Link("copyright.xhtml", "Copyright", "copyright"),
        (
            epub.Section("Part One: Evening", href="part-1.xhtml"),
            [c["chapter-1.xhtml"], c["chapter-2.xhtml"], c["chapter-3.xhtml"]],
        ),
        c["chapter-5.xhtml"],
        epub.Link("notes.xhtml", "Notes", "notes"),
    ]
    book.guide = [
        {"type": "cover", "href": "cover.xhtml", "title": "Cover"},
        {"type": "toc", "href": "contents.xhtml", "title": "Contents"},
    ]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["cover", *pages]
    out.parent.mkdir(parents=True, exist_ok=True)
    options = {"mtime": FIXED_TIME, "raise_exceptions": True, "epub3_pages": False}
    epub.write_epub(str(out), book, options)
    _fix_timestamps(out)
    return out


def _fix_timestamps(path: Path) -> None:
    """Rewrite the archive with fixed entry times, so rebuilding gives the same bytes."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = 0o644 << 16
            archive.writestr(fixed, data)


if __name__ == "__main__":
    print(build())
