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


def transcript_of(chunk: Chunk) -> str:
    """What an engine is sent (and billed for) for ``chunk``: the non-empty spoken forms."""
    return " ".join(w for w in chunk.spoken_words if w)


@dataclass(frozen=True, slots=True)
class Estimate:
    chapters: int
    characters: int  # billed characters of the whole book
    words: int
    chunks: int
    chunks_cached: int
    requests: int  # requests still to make, at least (retries come on top)
    audio_seconds: float
    cost_usd: float  # the whole book at the configured price per audio hour
    cost_usd_remaining: float  # the part the cache does not hold yet

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
    """Counts from the chunks, duration from the word count at WORDS_PER_MINUTE, cost at
    ``engine.price_per_hour_usd`` (the local engine costs nothing). Chunks with the same
    spoken text are one request, as in synthesis."""
    keys = keys_for(chunks, engine)
    hits: dict[str, bool] = {}
    for key in keys:
        if key not in hits:
            hits[key] = cache.has(key, need_exact_timings=need_timings)
    cached = [hits[k] for k in keys]
    seconds = [len(c.words) * 60 / WORDS_PER_MINUTE for c in chunks]
    price = cfg.engine.price_per_hour_usd if cfg.engine.kind == "asyncflow" else 0.0
    # One request per distinct text that is not silent; what is still to pay, those not cached.
    billed: dict[str, float] = {}
    to_send: dict[str, float] = {}
    for chunk, key, hit, s in zip(chunks, keys, cached, seconds, strict=True):
        if transcript_of(chunk):
            billed.setdefault(key, s)
            if not hit:
                to_send.setdefault(key, s)
    total_s = sum(seconds)
    return Estimate(
        chapters=len({c.chapter for c in chunks}),
        characters=sum(len(transcript_of(c)) for c in chunks),
        words=sum(len(c.words) for c in chunks),
        chunks=len(chunks),
        chunks_cached=sum(cached),
        requests=len(to_send),
        audio_seconds=round(total_s, 1),
        cost_usd=round(sum(billed.values()) / 3600 * price, 4),
        cost_usd_remaining=round(sum(to_send.values()) / 3600 * price, 4),
    )
