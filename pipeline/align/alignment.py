"""alignment.json: every word and sentence of the book with its place in the text and the audio.

The layout is documented by ``alignment.schema.json`` beside this module (JSON Schema 2020-12)
and carries ``"version": 1``; a consumer should check the version, and we add fields rather than
change them. In short::

    {"version": 1, "job": ..., "sample_rate": ..., "book_file": "book.mp3" | null,
     "duration_ms": ..., "chapters": [
       {"index", "title", "source", "audio_file", "offset_ms", "duration_ms",
        "words": [{"text", "chapter", "source", "char_start", "char_end", "start_ms", "end_ms",
                   "book_start_ms", "book_end_ms", "sentence"}, ...],
        "sentences": [{"index", "text", "char_start", "char_end", "first_word", "last_word",
                       "start_ms", "end_ms", "book_start_ms", "book_end_ms"}, ...]}]}

``char_start``/``char_end`` index the decoded ``source`` file (decoded with ``input.encoding``,
UTF-8 by default, byte-order mark removed) for .txt and .md manuscripts, and for an EPUB the
text extracted from it (``Document.text``: the kept blocks of its spine items, separated by blank
lines). For plain text and EPUB ``text[char_start:char_end]`` is the word as written; for
Markdown it runs from the word's first visible character to its last one, markup inside
included (``*hers*.`` is read as ``hers.`` and spans ``hers*.``), which is what a reader app
highlights. ``start_ms``/``end_ms`` count from the start of the chapter's own audio
file and ``book_*_ms`` from the start of the whole-book file; ``first_word``/``last_word`` are
indexes into the chapter's ``words`` (inclusive).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.models import ChapterTimeline, Document, TimedWord

SCHEMA_PATH = Path(__file__).with_name("alignment.schema.json")
VERSION = 1

# (chapter source, start, end) in the text the words index -> the span of the source file.
FileSpan = Callable[[str, int, int], tuple[int, int]]


def _same_span(source: str, start: int, end: int) -> tuple[int, int]:
    return start, end


def document_file_spans(documents: Iterable[Document]) -> FileSpan:
    """The ``file_span`` for ``alignment_document`` that leads each chapter's word offsets back
    to its document's file (``Document.file_span``), found by the chapter's ``source``."""
    by_source = {chapter.source: document for document in documents for chapter in document.chapters}

    def file_span(source: str, start: int, end: int) -> tuple[int, int]:
        document = by_source.get(source)
        if document is None:
            raise ValueError(f"alignment: no document holds the chapter source {source!r}")
        return document.file_span(start, end)

    return file_span


def alignment_schema() -> dict[str, Any]:
    """The JSON Schema that every alignment document validates against."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def alignment_document(
    chapters: Sequence[tuple[ChapterTimeline, int]],
    *,
    job_name: str,
    sample_rate: int,
    audio_files: Mapping[int, str],
    book_file: str | None,
    file_span: FileSpan | None = None,
) -> dict[str, Any]:
    """The alignment document for ``chapters``: (timeline, the chapter's offset in ms in the
    whole-book file). ``audio_files`` maps a chapter index to its audio file (a path relative
    to the output folder); a chapter without one gets ``null``. ``file_span`` turns word
    offsets into file offsets for ``char_start``/``char_end`` (see ``document_file_spans``);
    without it the word offsets are written as they are."""
    span = file_span or _same_span
    out_chapters = [
        _chapter(timeline, offset_ms, audio_files.get(timeline.chapter), span) for timeline, offset_ms in chapters
    ]
    book_end = max((offset + t.duration_ms for t, offset in chapters), default=0)
    return {
        "version": VERSION,
        "job": job_name,
        "sample_rate": sample_rate,
        "book_file": book_file,
        "duration_ms": book_end,
        "chapters": out_chapters,
    }


def _chapter(timeline: ChapterTimeline, offset_ms: int, audio_file: str | None, span: FileSpan) -> dict[str, Any]:
    return {
        "index": timeline.chapter,
        "title": timeline.title,
        "source": timeline.source,
        "audio_file": audio_file,
        "offset_ms": offset_ms,
        "duration_ms": timeline.duration_ms,
        "words": [_word(w, offset_ms, span) for w in timeline.words],
        "sentences": _sentences(timeline.words, offset_ms, span),
    }


def _word(w: TimedWord, offset_ms: int, span: FileSpan) -> dict[str, Any]:
    char_start, char_end = span(w.source, w.word.start, w.word.end)
    return {
        "text": w.word.text,
        "chapter": w.chapter,
        "source": w.source,
        "char_start": char_start,
        "char_end": char_end,
        "start_ms": w.start_ms,
        "end_ms": w.end_ms,
        "book_start_ms": w.start_ms + offset_ms,
        "book_end_ms": w.end_ms + offset_ms,
        "sentence": w.sentence,
    }


def _sentences(words: Sequence[TimedWord], offset_ms: int, span: FileSpan) -> list[dict[str, Any]]:
    """One entry per run of consecutive words with the same sentence index."""
    out: list[dict[str, Any]] = []
    first = 0
    for k in range(1, len(words) + 1):
        if k < len(words) and words[k].sentence == words[first].sentence:
            continue
        run = words[first:k]
        char_start, char_end = span(run[0].source, run[0].word.start, run[-1].word.end)
        out.append(
            {
                "index": run[0].sentence,
                "text": " ".join(w.word.text for w in run),
                "char_start": char_start,
                "char_end": char_end,
                "first_word": first,
                "last_word": k - 1,
                "start_ms": run[0].start_ms,
                "end_ms": run[-1].end_ms,
                "book_start_ms": run[0].start_ms + offset_ms,
                "book_end_ms": run[-1].end_ms + offset_ms,
            }
        )
        first = k
    return out
