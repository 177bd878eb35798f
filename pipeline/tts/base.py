"""What every engine provides: PCM plus one word timing per chunk word."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pipeline.models import ChunkAudio


class Engine(Protocol):
    """A speech engine. ``words`` are the spoken forms of a chunk's words, in order (a form may
    hold several words, e.g. "forty-two", or be empty); the result carries exactly one
    ``WordTiming`` per entry, relative to the start of the returned audio, which is mono int16
    at the job's sample rate."""

    async def synthesize(self, words: Sequence[str], *, chunk_id: str, need_timings: bool) -> ChunkAudio: ...

    async def check(self) -> None:
        """Fail fast (FatalEngineError) if the key or voice is wrong, before spending anything."""
        ...

    def identity(self) -> dict[str, Any]:
        """Exactly the settings that determine the audio, for the cache key (never the key)."""
        ...

    async def aclose(self) -> None: ...
