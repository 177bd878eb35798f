"""Preview mode: the opening seconds of every chapter, to audition a voice cheaply."""

from __future__ import annotations

from dataclasses import replace

from pipeline.estimate import WORDS_PER_MINUTE
from pipeline.models import Boundary
from pipeline.prepare import PreparedBook


def preview_book(book: PreparedBook, *, seconds: float) -> PreparedBook:
    """Keep each chapter's first chunks until about ``seconds`` of speech (estimated from the
    word count, so nothing is synthesized to decide); the last kept chunk ends the chapter."""
    kept = []
    for index in range(len(book.chapters)):
        budget = seconds
        chapter_chunks = book.chunks_of(index)
        for n, chunk in enumerate(chapter_chunks):
            budget -= len(chunk.words) * 60 / WORDS_PER_MINUTE
            last = budget <= 0 or n == len(chapter_chunks) - 1
            kept.append(replace(chunk, pause_after=Boundary.CHAPTER) if last else chunk)
            if last:
                break
    return replace(book, chunks=tuple(kept))
