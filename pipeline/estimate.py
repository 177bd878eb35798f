"""What a run will cost before it spends anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from pipeline.cache import ChunkCache
from pipeline.config import JobConfig
from pipeline.models import Chunk
from pipeline.synthesis import keys_for
from pipeline.tts.base import Engine

# Narration pace used for the duration estimate; espeak and the flash voices both land near it.
WORDS_PER_MINUTE = 160


@dataclass(frozen=True, slots=True)
class Estimate:
    chapters: int
    characters: int
    words: int
    chunks: int
    chunks_cached: int
    requests: int
    audio_seconds: float
    cost_usd: float
    cost_usd_remaining: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def lines(self) -> list[str]:
        return [
            f"chapters:   {self.chapters}",
            f"characters: {self.characters:,}",
            f"chunks:     {self.chunks:,} ({self.chunks_cached:,} already in the cache)",
            f"requests:   {self.requests:,} (at least)",
            f"audio:      about {self.audio_seconds / 3600:.2f} h",
            f"cost:       about ${self.cost_usd:,.2f} for the whole book, ${self.cost_usd_remaining:,.2f} still to pay",
        ]


def estimate(
    cfg: JobConfig, chunks: Sequence[Chunk], engine: Engine, cache: ChunkCache, *, need_timings: bool
) -> Estimate:
    keys = keys_for(chunks, engine)
    cached = [cache.has(k, need_exact_timings=need_timings) for k in keys]
    words = [len(c.words) for c in chunks]
    seconds = [n * 60 / WORDS_PER_MINUTE for n in words]
    price = cfg.engine.price_per_hour_usd if cfg.engine.kind == "asyncflow" else 0.0
    total_s = sum(seconds)
    remaining_s = sum(s for s, hit in zip(seconds, cached, strict=True) if not hit)
    return Estimate(
        chapters=len({c.chapter for c in chunks}),
        characters=sum(len(" ".join(c.spoken_words)) for c in chunks),
        words=sum(words),
        chunks=len(chunks),
        chunks_cached=sum(cached),
        requests=len(chunks) - sum(cached),
        audio_seconds=round(total_s, 1),
        cost_usd=round(total_s / 3600 * price, 4),
        cost_usd_remaining=round(remaining_s / 3600 * price, 4),
    )
