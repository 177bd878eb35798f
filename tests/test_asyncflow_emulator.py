"""The AsyncFlow engine against the emulator: real espeak speech, real validation, real faults.

In-process (httpx.ASGITransport) where that is enough; over loopback HTTP (slow-marked) for what
needs a socket: dropped connections, truncated bodies, true parallel requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from pipeline.config import EngineConfig, LimitsConfig
from pipeline.emulator.app import create_app
from pipeline.emulator.server import serve_in_thread
from pipeline.emulator.settings import EmulatorSettings, FaultKind
from pipeline.emulator.state import EmulatorState
from pipeline.errors import AuthError, VoiceNotFoundError
from pipeline.models import ChunkAudio
from pipeline.tts.asyncflow import AsyncFlowEngine
from pipeline.tts.voices import list_voices
from tests.emulator_support import SARAH, assert_speech

KEY = "sk_test_client_side_0042"
WORDS = [
    "“Hello,”", "she", "said,", "<break time='300ms'/>", "“it's", "forty-two", "degrees",
    "—", "<phonemes>təˈmɑːtoʊ</phonemes>", "weather!”", "",
]  # fmt: skip


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


@asynccontextmanager
async def engine_on(
    state: EmulatorState, *, key: str = KEY, voice: str = SARAH, wait: bool = False, **engine: Any
) -> AsyncIterator[AsyncFlowEngine]:
    client = AsyncFlowEngine(
        engine=EngineConfig(kind="asyncflow", voice=voice, base_url="http://emulator", **engine),
        limits=LimitsConfig(requests_per_minute=6000, max_concurrency=4),
        api_key=key,
        transport=httpx.ASGITransport(app=create_app(state=state)),
        sleep=asyncio.sleep if wait else no_wait,
    )
    try:
        yield client
    finally:
        await client.aclose()


def assert_plausible(audio: ChunkAudio, words: list[str]) -> None:
    assert_speech(audio.samples, audio.sample_rate)
    assert len(audio.timings) == len(words)
    for timing, word in zip(audio.timings, words, strict=True):
        if any(c.isalpha() for c in word) and "<break" not in word:
            assert timing.end_ms > timing.start_ms, word
    ends = [t.end_ms for t in audio.timings]
    assert ends == sorted(ends) and ends[-1] <= audio.duration_ms


async def test_real_speech_and_word_timings_from_the_emulator() -> None:
    state = EmulatorState(EmulatorSettings(api_keys=(KEY,)))
    async with engine_on(state) as engine:
        await engine.check()
        timed = await engine.synthesize(WORDS, chunk_id="c0000-00000", need_timings=True)
        plain = await engine.synthesize(WORDS, chunk_id="c0000-00001", need_timings=False)
    assert_plausible(timed, WORDS)
    assert_plausible(plain, WORDS)
    assert timed.sample_rate == plain.sample_rate == 24000
    # The break really is a pause: the next word starts well after it.
    brk, following = timed.timings[3], timed.timings[4]
    assert following.start_ms - brk.start_ms >= 250
    endpoints = state.snapshot()
    assert engine.stats.requests == 4 and engine.stats.retries == 0, endpoints


async def test_raw_container_at_another_rate() -> None:
    state = EmulatorState(EmulatorSettings())
    async with engine_on(state, container="raw", sample_rate=16000) as engine:
        audio = await engine.synthesize(["Plain", "raw", "audio."], chunk_id="c1", need_timings=True)
    assert audio.sample_rate == 16000
    assert_plausible(audio, ["Plain", "raw", "audio."])


async def test_check_names_the_wrong_key_or_voice() -> None:
    state = EmulatorState(EmulatorSettings(api_keys=(KEY,)))
    wrong_key = "sk_test_not_this_one_7777"
    async with engine_on(state, key=wrong_key) as engine:
        with pytest.raises(AuthError) as caught:
            await engine.check()
    assert "$ASYNCAI_API_KEY" in str(caught.value) and "sk_test" not in str(caught.value)
    async with engine_on(state, voice="no-such-voice") as engine:
        with pytest.raises(VoiceNotFoundError, match="'no-such-voice'"):
            await engine.check()


async def test_voices_come_back_from_the_emulator() -> None:
    state = EmulatorState(EmulatorSettings())
    app = create_app(state=state)
    engine = EngineConfig(kind="asyncflow", base_url="http://emulator")
    voices = await list_voices(engine, KEY, transport=httpx.ASGITransport(app=app))
    ids = [v["voice_id"] for v in voices]
    assert SARAH in ids and len(ids) == len(set(ids))
    english = await list_voices(engine, KEY, transport=httpx.ASGITransport(app=app), language="en")
    assert 0 < len(english) <= len(voices)


async def test_every_fault_is_survived_in_process() -> None:
    settings = EmulatorSettings(rpm=0, fail_rate=0.5, seed=7)
    state = EmulatorState(settings)
    sentences = [["Sentence", "number", str(i), "is", "here."] for i in range(6)]
    async with engine_on(state) as engine:
        results = await asyncio.gather(*(
            engine.synthesize(words, chunk_id=f"c0000-{i:05d}", need_timings=True)
            for i, words in enumerate(sentences)
        ))  # fmt: skip
    for words, audio in zip(sentences, results, strict=True):
        assert_plausible(audio, words)
    injected = state.snapshot()["faults_injected"]
    assert engine.stats.retries == sum(injected.values()) >= 3, injected
    assert len(injected) >= 3  # several kinds met, every one survived


def over_http(
    settings: EmulatorSettings, sentences: list[list[str]], *, max_concurrency: int
) -> tuple[list[ChunkAudio], AsyncFlowEngine, dict[str, Any]]:
    """Synthesize ``sentences`` concurrently against a real emulator on a loopback port."""

    async def run(url: str) -> tuple[list[ChunkAudio], AsyncFlowEngine]:
        engine = AsyncFlowEngine(
            engine=EngineConfig(kind="asyncflow", voice=SARAH, base_url=url),
            limits=LimitsConfig(requests_per_minute=6000, max_concurrency=max_concurrency, timeout_s=20),
            api_key=KEY,
        )
        try:
            results = await asyncio.gather(*(
                engine.synthesize(words, chunk_id=f"c0001-{i:05d}", need_timings=i % 2 == 0)
                for i, words in enumerate(sentences)
            ))  # fmt: skip
        finally:
            await engine.aclose()
        return list(results), engine

    with serve_in_thread(settings) as emulator:
        results, engine = asyncio.run(run(emulator.url))
        stats = emulator.stats()
    for words, audio in zip(sentences, results, strict=True):
        assert_plausible(audio, words)
    return results, engine, stats


def book(chunks: int) -> list[list[str]]:
    return [["Chunk", str(i), "of", "the", "book."] for i in range(chunks)]


@pytest.mark.slow
def test_over_http_a_job_at_the_servers_concurrency_limit_sees_no_429() -> None:
    settings = EmulatorSettings(rpm=0, concurrency=3, latency_ms=200)
    _, engine, stats = over_http(settings, book(18), max_concurrency=3)
    assert engine.stats.rate_limited == {} and engine.stats.retries == 0
    assert stats["peak_concurrent_requests"] == 3  # the limit was really used, never passed


@pytest.mark.slow
def test_over_http_a_lower_server_limit_is_learned() -> None:
    settings = EmulatorSettings(rpm=0, concurrency=2, latency_ms=200)
    _, engine, _ = over_http(settings, book(24), max_concurrency=6)
    assert engine.stats.concurrency_current == 2 and engine.stats.concurrency_min == 2
    # The first burst is refused; after that the cap holds at the server's limit.
    assert 1 <= engine.stats.rate_limited["TOO_MANY_CONCURRENT_REQUESTS"] <= 4


@pytest.mark.slow
def test_over_http_dropped_and_truncated_replies_are_retried() -> None:
    # Seed 5 gives both kinds, at most two in a row for any chunk (the emulator's dice are
    # deterministic per transcript and attempt), so the backoff stays short.
    faults = (FaultKind.DROP, FaultKind.TRUNCATE)
    settings = EmulatorSettings(rpm=0, fail_rate=0.4, faults=faults, seed=5)
    _, engine, stats = over_http(settings, book(8), max_concurrency=4)
    assert set(stats["faults_injected"]) == {"drop", "truncate"}
    assert engine.stats.server_errors == sum(stats["faults_injected"].values())
