"""EPUB 3 Media Overlays: the read-along form of the book (text highlighted as it is heard).

EPUB 3 pairs each content document (XHTML) with a SMIL document whose ``<par>`` elements each
join a text fragment (``chapter-001.xhtml#c001-s00003``) with a clip of audio (``clipBegin`` /
``clipEnd`` in an audio file); a reading system plays the clips in order and gives the element
being read the package's ``media:active-class``. We emit one sentence per ``<par>`` and write
everything to a standalone folder, ``media-overlays/`` in the job's output folder:

    chapter-NNN.xhtml   the chapter text, each sentence in an element with its own id
    chapter-NNN.smil    the overlay: one <par> per sentence, clips in the chapter's audio file
    nav.xhtml           the table of contents an EPUB 3 package requires
    overlay.css         the highlight style for the active class
    package.opf         an EPUB 3 package document: manifest (with media-overlay links),
                        spine, and the media:duration metadata per overlay and in total
    README.txt          what this is and how to turn it into an .epub

Audio paths are the chapter files relative to the output folder, so from this folder they
read ``../chapters/...``; ``write_epub`` packs the folder and that audio into a read-along
``.epub`` (it passes epubcheck 5.3, see tests/test_smil.py). Clips run from a sentence's
first word to the next sentence's first word, so the pauses between sentences are played,
not skipped.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape, quoteattr

from pipeline.errors import OutputError
from pipeline.fsutil import write_text_atomic
from pipeline.models import Chapter, ChapterTimeline, TimedWord

FOLDER = "media-overlays"
ACTIVE_CLASS = "-epub-media-overlay-active"
_AUDIO_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".m4b": "audio/mp4",
    ".mp4": "audio/mp4",
    ".opus": "audio/ogg; codecs=opus",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
}


@dataclass(frozen=True, slots=True)
class ChapterShape:
    """What the timeline does not know about a chapter's text: where its spoken heading and
    its paragraphs begin (character offsets of their first words)."""

    heading_start: int | None
    paragraph_starts: frozenset[int]


def chapter_shape(chapter: Chapter) -> ChapterShape:
    heading = chapter.heading.start if chapter.heading and chapter.heading.words else None
    starts = frozenset(
        p.sentences[0].start for p in chapter.paragraphs if p.sentences and p.sentences[0].words
    )
    return ChapterShape(heading, starts)


@dataclass(frozen=True, slots=True)
class _Clip:
    element_id: str
    words: tuple[TimedWord, ...]
    begin_ms: int
    end_ms: int


def clock(ms: int) -> str:
    """A SMIL full clock value, ``H:MM:SS.mmm``."""
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def media_overlay_files(
    timelines: Sequence[ChapterTimeline],
    *,
    audio_files: Mapping[int, str],
    title: str,
    identifier: str,
    language: str = "en",
    shapes: Mapping[int, ChapterShape] | None = None,
    modified: datetime | None = None,
) -> dict[str, str]:
    """File name (inside ``media-overlays/``) -> content, for every file of the folder.

    ``audio_files`` maps a book-wide chapter index to its audio file relative to the output
    folder; a chapter without one gets its text document but no overlay. ``shapes`` (keyed the
    same way, see ``chapter_shape``) restores headings and paragraphs; without it the title
    becomes an unsynchronised heading and the sentences share one paragraph.
    """
    stamp = (modified or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    files: dict[str, str] = {}
    manifest: list[str] = []
    durations: list[str] = []
    spine: list[str] = []
    audio_ids: dict[str, str] = {}
    total_ms = 0
    for timeline in timelines:
        number = f"{timeline.chapter + 1:03d}"
        doc, smil = f"chapter-{number}.xhtml", f"chapter-{number}.smil"
        clips = _clips(timeline, number)
        shape = (shapes or {}).get(timeline.chapter)
        files[doc] = _xhtml(timeline.title, language, clips, shape)
        audio = audio_files.get(timeline.chapter)
        overlay = ""
        if audio is not None and clips:
            src = str(PurePosixPath("..") / PurePosixPath(audio))
            if src not in audio_ids:
                audio_ids[src] = f"audio-{number}"
                kind = _AUDIO_TYPES.get(PurePosixPath(audio).suffix.lower(), "audio/mpeg")
                manifest.append(
                    f'<item id="audio-{number}" href={quoteattr(src)} media-type="{kind}"/>'
                )
            files[smil] = _smil(doc, src, clips, number)
            manifest.append(
                f'<item id="mo-{number}" href="{smil}" media-type="application/smil+xml"/>'
            )
            length = sum(c.end_ms - c.begin_ms for c in clips)
            total_ms += length
            durations.append(
                f'<meta property="media:duration" refines="#mo-{number}">{clock(length)}</meta>'
            )
            overlay = f' media-overlay="mo-{number}"'
        manifest.append(
            f'<item id="ch-{number}" href="{doc}" media-type="application/xhtml+xml"{overlay}/>'
        )
        spine.append(f'<itemref idref="ch-{number}"/>')
    files["nav.xhtml"] = _nav(timelines, language)
    files["overlay.css"] = f".{ACTIVE_CLASS} {{ background-color: #ffe58a; color: inherit; }}\n"
    total = total_ms if durations else None
    files["package.opf"] = _package(
        title, identifier, language, stamp, manifest, durations, spine, total
    )
    files["README.txt"] = _README
    return files


def write_media_overlays(output_dir: Path, files: Mapping[str, str]) -> list[Path]:
    """Write the folder ``output_dir/media-overlays`` (each file atomically)."""
    written = []
    for name, content in files.items():
        path = output_dir / FOLDER / name
        write_text_atomic(path, content)
        written.append(path)
    return written


_CONTAINER = """\
<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
 <rootfiles>
  <rootfile full-path="media-overlays/package.opf" media-type="application/oebps-package+xml"/>
 </rootfiles>
</container>
"""


def write_epub(
    output_dir: Path, files: Mapping[str, str], audio_files: Mapping[int, str], epub_path: Path
) -> Path:
    """Pack the overlay files and the chapter audio they play into one read-along ``.epub``.

    The container mirrors the output folder (``media-overlays/...`` beside ``chapters/...``)
    so the relative audio paths hold; ``mimetype`` comes first and uncompressed, as the OCF
    spec requires. Written to a temporary file and renamed, like every final output.
    """
    for audio in audio_files.values():
        if not (output_dir / audio).is_file():
            raise OutputError(f"{epub_path}: chapter audio {output_dir / audio} does not exist")
    tmp = epub_path.with_name(f".{epub_path.name}.tmp")
    try:
        epub_path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp, "w") as z:
            z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", zipfile.ZIP_STORED)
            z.writestr("META-INF/container.xml", _CONTAINER, zipfile.ZIP_DEFLATED)
            for name, content in files.items():
                if name != "README.txt":  # not part of the publication
                    z.writestr(f"{FOLDER}/{name}", content, zipfile.ZIP_DEFLATED)
            for audio in sorted(set(audio_files.values())):
                # Compressed audio gains nothing from deflate; store it.
                z.write(output_dir / audio, str(PurePosixPath(audio)), zipfile.ZIP_STORED)
        os.replace(tmp, epub_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{epub_path}: cannot write: {exc.strerror or exc}") from None
    return epub_path


def _clips(timeline: ChapterTimeline, number: str) -> list[_Clip]:
    """One clip per sentence (run of words with one sentence index), contiguous and strictly
    increasing: each ends where the next begins, the last at the end of the chapter audio."""
    runs: list[tuple[TimedWord, ...]] = []
    for w in timeline.words:
        if runs and runs[-1][-1].sentence == w.sentence:
            runs[-1] = (*runs[-1], w)
        else:
            runs.append((w,))
    clips: list[_Clip] = []
    begin = 0
    for k, run in enumerate(runs):
        begin = max(run[0].start_ms, begin)
        if k + 1 < len(runs):
            end = runs[k + 1][0].start_ms
        else:
            end = max(timeline.duration_ms, run[-1].end_ms)
        end = max(end, begin + 1)
        clips.append(_Clip(f"c{number}-s{k + 1:05d}", run, begin, end))
        begin = end
    return clips


def _text(clip: _Clip) -> str:
    return escape(" ".join(w.word.text for w in clip.words))


def _xhtml(title: str, language: str, clips: Sequence[_Clip], shape: ChapterShape | None) -> str:
    body: list[str] = []
    paragraph: list[str] = []
    rest = list(clips)
    if rest and _is_heading(rest[0], title, shape):
        body.append(f'<h1 id="{rest[0].element_id}">{_text(rest[0])}</h1>')
        rest = rest[1:]
    else:
        body.append(f"<h1>{escape(title)}</h1>")
    for clip in rest:
        if paragraph and shape is not None and clip.words[0].word.start in shape.paragraph_starts:
            body.append(f"<p>{' '.join(paragraph)}</p>")
            paragraph = []
        paragraph.append(f'<span id="{clip.element_id}">{_text(clip)}</span>')
    if paragraph:
        body.append(f"<p>{' '.join(paragraph)}</p>")
    content = "\n".join(f"   {line}" for line in body)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" '
        f"xml:lang={quoteattr(language)} lang={quoteattr(language)}>\n"
        f' <head>\n  <meta charset="utf-8"/>\n  <title>{escape(title)}</title>\n'
        '  <link rel="stylesheet" type="text/css" href="overlay.css"/>\n </head>\n'
        f' <body>\n  <section epub:type="chapter" role="doc-chapter">\n{content}\n  </section>\n'
        " </body>\n</html>\n"
    )


def _is_heading(clip: _Clip, title: str, shape: ChapterShape | None) -> bool:
    if shape is not None:
        return shape.heading_start is not None and clip.words[0].word.start == shape.heading_start
    spoken = " ".join(w.word.text for w in clip.words).strip().rstrip(".:")
    return spoken.casefold() == title.strip().rstrip(".:").casefold()


def _smil(doc: str, audio_src: str, clips: Sequence[_Clip], number: str) -> str:
    pars = "\n".join(
        f'   <par id="c{number}-p{k:05d}">\n'
        f'    <text src="{doc}#{clip.element_id}"/>\n'
        f"    <audio src={quoteattr(audio_src)} "
        f'clipBegin="{clock(clip.begin_ms)}" clipEnd="{clock(clip.end_ms)}"/>\n'
        "   </par>"
        for k, clip in enumerate(clips, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<smil xmlns="http://www.w3.org/ns/SMIL" '
        'xmlns:epub="http://www.idpf.org/2007/ops" version="3.0">\n'
        f' <body>\n  <seq id="c{number}-seq" epub:textref="{doc}" epub:type="chapter">\n'
        f"{pars}\n  </seq>\n </body>\n</smil>\n"
    )


def _nav(timelines: Sequence[ChapterTimeline], language: str) -> str:
    items = "\n".join(
        f'    <li><a href="chapter-{t.chapter + 1:03d}.xhtml">{escape(t.title)}</a></li>'
        for t in timelines
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" '
        f"xml:lang={quoteattr(language)} lang={quoteattr(language)}>\n"
        ' <head>\n  <meta charset="utf-8"/>\n  <title>Contents</title>\n </head>\n'
        ' <body>\n  <nav epub:type="toc" id="toc">\n   <h1>Contents</h1>\n   <ol>\n'
        f"{items}\n   </ol>\n  </nav>\n </body>\n</html>\n"
    )


def _package(
    title: str,
    identifier: str,
    language: str,
    stamp: str,
    manifest: Sequence[str],
    durations: Sequence[str],
    spine: Sequence[str],
    total_ms: int | None,
) -> str:
    meta = [
        f'<dc:identifier id="pub-id">{escape(identifier)}</dc:identifier>',
        f"<dc:title>{escape(title)}</dc:title>",
        f"<dc:language>{escape(language)}</dc:language>",
        f'<meta property="dcterms:modified">{stamp}</meta>',
        *durations,
    ]
    if total_ms is not None:
        meta.append(f'<meta property="media:duration">{clock(total_ms)}</meta>')
        meta.append(f'<meta property="media:active-class">{ACTIVE_CLASS}</meta>')
    items = [
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>',
        '<item id="css" href="overlay.css" media-type="text/css"/>',
        *manifest,
    ]

    def block(lines: Sequence[str]) -> str:
        return "\n".join(f"  {line}" for line in lines)

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="pub-id" '
        f"xml:lang={quoteattr(language)}>\n"
        f' <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\n{block(meta)}\n </metadata>\n'
        f" <manifest>\n{block(items)}\n </manifest>\n"
        f" <spine>\n{block(spine)}\n </spine>\n</package>\n"
    )


_README = """\
EPUB 3 Media Overlays (read-along) for this audiobook, written by narrate.

Each chapter-NNN.xhtml holds the chapter's text with every sentence in an element of its own
id; chapter-NNN.smil pairs each of those ids with the stretch of the chapter's audio file where
it is spoken (one <par> per sentence: <text src="...#id"/> and <audio clipBegin clipEnd/>).
package.opf lists everything, links each text to its overlay (media-overlay="mo-NNN") and gives
the media:duration of every overlay and of the whole book; overlay.css styles the active
sentence (media:active-class).

The audio is referenced as ../chapters/..., i.e. the chapter files beside this folder. An
.epub holds: "mimetype" (first, uncompressed, containing application/epub+zip),
META-INF/container.xml naming media-overlays/package.opf, the files of this folder except this
README, and the chapter audio under chapters/ (narrate's pipeline.align.smil.write_epub packs
exactly that). EPUB readers play MP3 and AAC/M4A (and Opus in newer ones); WAV and FLAC chapter
files are not EPUB core media types.
"""
