"""Synthesis fan-out: every chunk either comes from the cache or from the engine, once.

Plain asyncio, no Prefect. The cache is consulted for every chunk first, so the progress
display knows from the start how much is left to pay for; then a fixed pool of workers pulls
the missing chunks in book order, so memory stays flat however long the book is and the
engine's own limiter decides the pace. Chunks with the same spoken text share one request.
A chunk that still fails after the engine's retries is recorded and the others go on; a fatal
error (wrong key, unknown voice, quota exhausted, an unwritable cache) stops the pool at once,
keeping what is finished: every finished chunk is already in the cache, so a rerun resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from pipeline.cache import ChunkCache, cache_key
from pipeline.errors import EngineError, FatalEngineError, NarrateError
from pipeline.models import Chunk, SynthesizedChunk
from pipeline.tts.base import Engine

ProgressCallback = Callable[["SynthesisProgress"], None]

EXCERPT_CHARS = 80


@dataclass(slots=True)
class SynthesisProgress:
    total: int
    done: int = 0  # finished either way: from the cache, synthesized, or failed
    from_cache: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class ChunkFailure:
    chunk: Chunk
    reason: str

    def to_dict(self) -> dict[str, object]:
        text = self.chunk.text
        return {
            "chunk": self.chunk.id,
            "chapter": self.chunk.chapter + 1,
            "source": self.chunk.source,
            "excerpt": text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "...",
            "reason": self.reason,
        }


@dataclass(slots=True)
class SynthesisResult:
    chunks: list[SynthesizedChunk] = field(default_factory=list)  # in book order
    failures: list[ChunkFailure] = field(default_factory=list)
    # Why the run stopped early: a FatalEngineError, or an OutputError from the cache.
    fatal: NarrateError | None = None


def keys_for(chunks: Sequence[Chunk], engine: Engine) -> list[str]:
    identity = engine.identity()
    return [cache_key(identity, c.spoken_words) for c in chunks]


async def synthesize_all(
    chunks: Sequence[Chunk],
    *,
    engine: Engine,
    cache: ChunkCache,
    need_timings: bool,
    workers: int,
    fresh: bool = False,
    progress: ProgressCallback | None = None,
) -> SynthesisResult:
    """``fresh`` ignores what the cache holds (everything is synthesized again and stored)."""
    keys = keys_for(chunks, engine)
    state = SynthesisProgress(total=len(chunks))
    results: dict[int, SynthesizedChunk] = {}
    failures: dict[int, ChunkFailure] = {}
    fatal: list[NarrateError] = []

    def report() -> None:
        if progress is not None:
            progress(state)

    def found(i: int, key: str) -> bool:
        cached = cache.get(key, need_exact_timings=need_timings)
        if cached is None or len(cached.timings) != len(chunks[i].words):
            return False
        results[i] = SynthesizedChunk(chunks[i], key, cached.timings, len(cached.samples), cached.sample_rate, True)
        return True

    # Missing chunks grouped by key, in book order: the first index is the one synthesized.
    missing: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key in missing:
            missing[key].append(i)
        elif fresh or not found(i, key):
            missing[key] = [i]
    state.from_cache = state.done = len(results)

    async def one(indices: list[int], key: str) -> None:
        chunk = chunks[indices[0]]
        audio = await engine.synthesize(chunk.spoken_words, chunk_id=chunk.id, need_timings=need_timings)
        if len(audio.timings) != len(chunk.words):
            raise EngineError(
                f"chunk {chunk.id}: engine returned {len(audio.timings)} word timings for {len(chunk.words)} words"
            )
        # In a thread: the write (with its fsync) would otherwise hold the event loop, and with
        # it the start of the next request, for a few milliseconds per chunk.
        await asyncio.to_thread(cache.put, key, audio, exact_timings=need_timings)
        for n, i in enumerate(indices):
            # Repeats of the same spoken text were never requested: count them as cached.
            results[i] = SynthesizedChunk(
                chunks[i], key, audio.timings, len(audio.samples), audio.sample_rate, n > 0
            )
        state.from_cache += len(indices) - 1

    queue: Iterator[tuple[str, list[int]]] = iter(list(missing.items()))

    async def worker() -> None:
        for key, indices in queue:  # shared iterator: each key is taken by exactly one worker
            if fatal:
                return
            try:
                await one(indices, key)
            except FatalEngineError as exc:
                fatal.append(exc)
                return
            except EngineError as exc:
                for i in indices:
                    failures[i] = ChunkFailure(chunks[i], str(exc))
                state.failed += len(indices)
            except NarrateError as exc:  # the cache cannot be written: nothing would be kept
                fatal.append(exc)
                return
            state.done += len(indices)
            report()

    report()
    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
    return SynthesisResult(
        chunks=[results[i] for i in sorted(results)],
        failures=[failures[i] for i in sorted(failures)],
        fatal=fatal[0] if fatal else None,
    )
