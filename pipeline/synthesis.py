"""Synthesis fan-out: every chunk either comes from the cache or from the engine, once.

Plain asyncio, no Prefect: a fixed pool of workers pulls chunks in book order, so memory
stays flat however long the book is and the engine's own limiter decides the pace. A chunk
that still fails after the engine's retries is recorded and the others go on; a fatal error
(wrong key, unknown voice, quota exhausted) stops the pool at once, keeping what is finished
(every finished chunk is already in the cache).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from pipeline.cache import ChunkCache, cache_key
from pipeline.errors import EngineError, FatalEngineError
from pipeline.models import Chunk, SynthesizedChunk
from pipeline.tts.base import Engine

ProgressCallback = Callable[["SynthesisProgress"], None]


@dataclass(slots=True)
class SynthesisProgress:
    total: int
    done: int = 0
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
            "excerpt": text if len(text) <= 80 else text[:77] + "...",
            "reason": self.reason,
        }


@dataclass(slots=True)
class SynthesisResult:
    chunks: list[SynthesizedChunk] = field(default_factory=list)  # in book order
    failures: list[ChunkFailure] = field(default_factory=list)
    fatal: FatalEngineError | None = None


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
    keys = keys_for(chunks, engine)
    state = SynthesisProgress(total=len(chunks))
    results: dict[int, SynthesizedChunk] = {}
    failures: dict[int, ChunkFailure] = {}
    fatal: list[FatalEngineError] = []
    queue: Iterator[int] = iter(range(len(chunks)))

    def report() -> None:
        if progress is not None:
            progress(state)

    async def one(i: int) -> None:
        chunk, key = chunks[i], keys[i]
        if not fresh:
            cached = cache.get(key, need_exact_timings=need_timings)
            if cached is not None and len(cached.timings) == len(chunk.words):
                results[i] = SynthesizedChunk(chunk, key, cached.timings, len(cached.samples), cached.sample_rate, True)
                state.from_cache += 1
                return
        audio = await engine.synthesize(chunk.spoken_words, chunk_id=chunk.id, need_timings=need_timings)
        if len(audio.timings) != len(chunk.words):
            raise EngineError(
                f"chunk {chunk.id}: engine returned {len(audio.timings)} word timings for {len(chunk.words)} words"
            )
        cache.put(key, audio, exact_timings=need_timings)
        results[i] = SynthesizedChunk(chunk, key, audio.timings, len(audio.samples), audio.sample_rate, False)

    async def worker() -> None:
        for i in queue:  # shared iterator: each index is taken by exactly one worker
            if fatal:
                return
            try:
                await one(i)
            except FatalEngineError as exc:
                fatal.append(exc)
                return
            except EngineError as exc:
                failures[i] = ChunkFailure(chunks[i], str(exc))
                state.failed += 1
            state.done += 1
            report()

    report()
    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
    return SynthesisResult(
        chunks=[results[i] for i in sorted(results)],
        failures=[failures[i] for i in sorted(failures)],
        fatal=fatal[0] if fatal else None,
    )
