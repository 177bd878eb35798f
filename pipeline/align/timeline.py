"""Place every word of a chapter on the chapter's audio timeline.

An engine reports word times relative to the raw audio of one chunk. Assembly then trims each
chunk's head and tail silence and lays the rest at some offset in the chapter audio
(``ChunkPlacement``). A word's chapter time follows from both:

    chapter sample = placement.offset + (timing_ms * sample_rate / 1000 - placement.trim_start)

clamped into the part of the chunk that was kept, ``[offset, offset + length]``: a word the trim
cut into (a too-early start, a too-late end) sits on the edge of the kept audio instead of in
a neighbour's. All placement numbers are samples of the chapter audio (``layout.sample_rate``);
engine timings are milliseconds, so the chunk's own sample rate never enters the sum.

The output is monotonic (starts never decrease, a word never ends after the next one starts)
because subtitles and karaoke highlighting both need that, and engines do not promise it:
espeak-ng can give two short words one event, and realignment rounds.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.models import (
    ChapterLayout,
    ChapterTimeline,
    ChunkPlacement,
    SynthesizedChunk,
    TimedWord,
)


def chapter_timeline(
    items: Sequence[SynthesizedChunk], layout: ChapterLayout, *, title: str, source: str
) -> ChapterTimeline:
    """Every word of ``items`` (one chapter's chunks) in ms from the start of the chapter audio.

    Raises ValueError when the chunks and the layout disagree (a chunk of another chapter, a
    chunk assembly did not place, a timing count that differs from the word count): those are
    bugs in the stages before this one, not something a user's input can cause.
    """
    placements = {p.chunk_id: p for p in layout.placements}
    ordered = sorted(items, key=lambda item: item.chunk.seq)
    raw: list[tuple[TimedWord, int, int]] = []  # word, start sample, end sample
    next_fallback_sentence = 0
    for item in ordered:
        chunk = item.chunk
        if chunk.chapter != layout.chapter:
            raise ValueError(f"chunk {chunk.id} is not in chapter {layout.chapter}")
        placement = placements.get(chunk.id)
        if placement is None:
            raise ValueError(f"chunk {chunk.id} is not placed in chapter {layout.chapter}'s layout")
        n = len(chunk.words)
        if len(item.timings) != n:
            raise ValueError(f"chunk {chunk.id}: {len(item.timings)} timings for {n} words")
        sentence_ids = chunk.sentence_ids
        if not sentence_ids:
            # A chunker that does not track sentences: treat each chunk as one sentence so
            # grouping still works (chunks are whole sentences or pieces of one).
            sentence_ids = (next_fallback_sentence,) * n
        elif len(sentence_ids) != n:
            raise ValueError(f"chunk {chunk.id}: {len(sentence_ids)} sentence ids for {n} words")
        if sentence_ids:
            next_fallback_sentence = max(next_fallback_sentence, max(sentence_ids) + 1)
        for word, timing, sentence in zip(chunk.words, item.timings, sentence_ids, strict=True):
            start = _to_chapter_sample(timing.start_ms, placement, layout.sample_rate)
            end = _to_chapter_sample(timing.end_ms, placement, layout.sample_rate)
            timed = TimedWord(word, layout.chapter, chunk.source, 0, 0, sentence)
            raw.append((timed, start, end))
    words = _monotonic(raw, layout.sample_rate)
    return ChapterTimeline(layout.chapter, title, source, layout.duration_ms, words)


def _to_chapter_sample(ms: int, placement: ChunkPlacement, sample_rate: int) -> int:
    in_chunk = round(ms * sample_rate / 1000) - placement.trim_start
    return placement.offset + min(max(in_chunk, 0), placement.length)


def _monotonic(raw: list[tuple[TimedWord, int, int]], sample_rate: int) -> tuple[TimedWord, ...]:
    """Make starts non-decreasing and clip each end at the next start.

    A start is only ever moved later (never show or highlight a word before it is heard); an
    end that runs into the next word is cut back to where that word begins.
    """
    starts: list[int] = []
    latest = 0
    for _, start, _ in raw:
        latest = max(latest, start)
        starts.append(latest)
    out: list[TimedWord] = []
    for i, (timed, _, end) in enumerate(raw):
        start = starts[i]
        stop = max(end, start)
        if i + 1 < len(raw):
            stop = min(stop, starts[i + 1])
        start_ms = _ms(start, sample_rate)
        # Rounding the two ends separately can only keep order, never invert it.
        out.append(_retimed(timed, start_ms, max(_ms(stop, sample_rate), start_ms)))
    return tuple(out)


def _ms(samples: int, sample_rate: int) -> int:
    return round(samples * 1000 / sample_rate)


def _retimed(word: TimedWord, start_ms: int, end_ms: int) -> TimedWord:
    return TimedWord(word.word, word.chapter, word.source, start_ms, end_ms, word.sentence)
