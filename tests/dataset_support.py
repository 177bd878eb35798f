"""Real chapter audio and timelines for dataset tests: what the render stage does, step by step.

A manuscript goes through ``prepare_book``, the local espeak-ng engine (``synthesize_all``),
``assemble_chapter`` and ``chapter_timeline``; the result is each chapter's timeline and the
path of its assembled float32 WAV, the input ``export_dataset`` takes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pipeline.align.timeline import chapter_timeline
from pipeline.audio.assemble import PauseSettings, assemble_chapter
from pipeline.cache import ChunkCache
from pipeline.config import load_job
from pipeline.models import ChapterTimeline, SynthesizedChunk
from pipeline.prepare import PreparedBook, prepare_book
from pipeline.synthesis import synthesize_all
from pipeline.tts.factory import make_engine
from tests.jobs import write_job

TINY_BOOK = """\
# A Small Ledger

## Chapter One

The keeper climbed 112 stairs at 5 a.m. and wrote in her 42nd ledger.

"I know," said Agnes.

She paid $5 for the lamp oil, and Dr. Pell laughed, and the gulls circled the grey harbour wall, \
and the boats came home one by one, and the tide turned, and nobody said another word until supper.

## Chapter Two

Mr. Dunmore brought the post on Thursday. The wind had dropped.

By the 3rd of May the ledger held 1,250 nights.

## Chapter Three

The lamp turned all night. Somebody ought to be watching, she said.
"""


def build_chapters(
    folder: Path, manuscript: Path, *, pauses: PauseSettings | None = None, **job: Any
) -> tuple[PreparedBook, list[tuple[ChapterTimeline, Path]]]:
    """Every chapter of ``manuscript`` assembled under ``folder``; ``job`` overrides job keys."""
    job_path = write_job(folder, name="ds", input={"files": [str(manuscript)]}, **job)
    loaded = load_job(job_path)
    book = prepare_book(loaded)
    cache = ChunkCache(loaded.cache_dir)
    result = asyncio.run(
        synthesize_all(book.chunks, engine=make_engine(loaded.config), cache=cache, need_timings=True, workers=2)
    )
    assert not result.failures and len(result.chunks) == len(book.chunks)

    def load(item: SynthesizedChunk) -> Any:
        audio = cache.get(item.cache_key, need_exact_timings=False)
        assert audio is not None
        return audio.samples

    chapters = []
    for index, chapter in enumerate(book.chapters):
        items = [c for c in result.chunks if c.chunk.chapter == index]
        path = folder / "work" / f"{index:04d}.wav"
        layout = assemble_chapter(
            items, load, path, pauses=pauses or PauseSettings(), sample_rate=loaded.config.engine.sample_rate
        )
        chapters.append((chapter_timeline(items, layout, title=chapter.title, source=chapter.source), path))
    return book, chapters
