"""LocalPoolEngine: the local engine in worker processes gives exactly LocalEngine's audio.

Every test here starts worker processes (about a second each), so all are slow-marked; one
pool is shared by the module's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import FatalEngineError, RequestRejectedError, VoiceNotFoundError
from pipeline.tts.local import LocalEngine, speak
from pipeline.tts.local_pool import LocalPoolEngine, default_processes

pytestmark = pytest.mark.slow

RATE = 22050
CHUNKS = [
    ["The", "keeper", "climbed", "the", "stairs", "at", "dusk."],
    ["There", "were", "one hundred and twelve", "of", "them,", "iron", "and", "salt-bitten."],
    ["A", "pause", "<break time='300ms'/>", "and", "then", "the", "lamp."],
    ["", "Empty", "words", "", "keep", "their", "places."],
]


@pytest.fixture(scope="module")
def pool() -> Iterator[LocalPoolEngine]:
    # The executor is not bound to an event loop, so one started here serves every test's loop.
    engine = LocalPoolEngine(voice="en-us", sample_rate=RATE, processes=2)
    asyncio.run(engine.check())
    try:
        yield engine
    finally:
        asyncio.run(engine.aclose())


async def test_audio_and_timings_are_exactly_the_local_engines(pool: LocalPoolEngine) -> None:
    # All chunks at once, so both processes work and results must come back to the right caller.
    results = await asyncio.gather(
        *(pool.synthesize(words, chunk_id=f"c{i}", need_timings=True) for i, words in enumerate(CHUNKS * 3))
    )
    for words, audio in zip(CHUNKS * 3, results, strict=True):
        expected = speak(words, voice="en-us", sample_rate=RATE)
        assert audio.sample_rate == RATE
        assert np.array_equal(audio.samples, expected.samples)
        assert audio.timings == expected.timings
        assert len(audio.timings) == len(words)


async def test_shares_the_local_engines_cache_identity(pool: LocalPoolEngine) -> None:
    single = LocalEngine(voice="en-us", sample_rate=RATE)
    assert pool.identity() == single.identity()
    other = LocalPoolEngine(voice="en-us", sample_rate=RATE, speed=1.2)
    assert other.identity() != pool.identity()  # nothing started: identity needs no pool
    await other.aclose()


async def test_an_unknown_voice_is_one_clear_error_naming_the_chunk() -> None:
    engine = LocalPoolEngine(voice="xx-nonexistent", sample_rate=RATE, processes=1)
    try:
        with pytest.raises(VoiceNotFoundError, match=r"^chunk c0007-00001: .*xx-nonexistent"):
            await engine.synthesize(["hello"], chunk_id="c0007-00001", need_timings=True)
        with pytest.raises(VoiceNotFoundError, match="xx-nonexistent"):
            await engine.check()
    finally:
        await engine.aclose()


async def test_malformed_markup_is_rejected_with_the_chunk_id(pool: LocalPoolEngine) -> None:
    with pytest.raises(RequestRejectedError, match=r"^chunk c9: "):
        await pool.synthesize(["<break time='soon'/>"], chunk_id="c9", need_timings=True)


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(RequestRejectedError, match="speed"):
        LocalPoolEngine(voice="en", sample_rate=RATE, speed=-1.0)
    with pytest.raises(ValueError, match="processes"):
        LocalPoolEngine(voice="en", sample_rate=RATE, processes=0)
    assert default_processes() >= 1


async def test_a_killed_worker_is_a_fatal_error_not_a_hang() -> None:
    engine = LocalPoolEngine(voice="en-us", sample_rate=RATE, processes=1)
    await engine.check()
    pool = engine._executor()
    for process in list(pool._processes.values()):  # the pool's own workers, started by this test
        process.kill()
    try:
        with pytest.raises(FatalEngineError, match=r"^chunk c1: a local speech process died"):
            await asyncio.wait_for(engine.synthesize(["hello"], chunk_id="c1", need_timings=True), timeout=60)
    finally:
        await engine.aclose()


def test_the_factory_speaks_long_books_on_every_core(tmp_path: Path) -> None:
    from pipeline.config import load_job
    from pipeline.tts.factory import POOL_MIN_CHUNKS, make_engine
    from pipeline.tts.local import LocalEngine
    from pipeline.tts.local_pool import LocalPoolEngine, default_processes
    from tests.jobs import write_job

    cfg = load_job(write_job(tmp_path)).config
    short, long = make_engine(cfg, chunks=POOL_MIN_CHUNKS - 1), make_engine(cfg, chunks=POOL_MIN_CHUNKS)
    assert isinstance(short, LocalEngine)
    assert isinstance(long, LocalPoolEngine if default_processes() > 1 else LocalEngine)
    assert long.identity() == short.identity()  # the same cache entries either way
