"""Test doubles for the AsyncFlow client: virtual time and a scripted API behind
``httpx.MockTransport`` (real httpx request/response objects, no sockets, no waiting)."""

from __future__ import annotations

import asyncio
import base64
import heapq
import io
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import numpy as np
import soundfile

from pipeline.config import EngineConfig, LimitsConfig
from pipeline.models import ChunkAudio
from pipeline.tts.asyncflow import AsyncFlowEngine

KEY = "sk_live_4f9d2c7e8b1a6f3d0c5e"
VOICE = "e0f39dc4-f691-4e78-bba5-5c636692cc04"
MS_PER_WORD = 100
T = TypeVar("T")


class VirtualTime:
    """A clock and a ``sleep`` that only advance when every task is waiting: ``run`` lets all
    runnable tasks run, then jumps to the earliest sleeper's wake-up time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake

    async def run(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        while not task.done():
            for _ in range(30):  # let every runnable task get to its next wait
                await asyncio.sleep(0)
            if task.done() or not self._sleepers:
                continue
            when, _, wake = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not wake.done():
                wake.set_result(None)
        return task.result()


def tone(duration_ms: int, sample_rate: int) -> np.ndarray:
    n = duration_ms * sample_rate // 1000
    t = np.arange(n) / sample_rate
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def audio_bytes(samples: np.ndarray, sample_rate: int, container: str) -> bytes:
    return wav_bytes(samples, sample_rate) if container == "wav" else samples.astype("<i2").tobytes()


def timestamps_body(
    words: list[str], sample_rate: int, container: str = "wav", *, ms_per_word: int = MS_PER_WORD
) -> dict[str, Any]:
    """A well-formed with_timestamps reply: each word ``ms_per_word`` long, back to back."""
    audio = tone(ms_per_word * len(words), sample_rate)
    return {
        "audio_base64": base64.b64encode(audio_bytes(audio, sample_rate, container)).decode(),
        "alignment": {
            "words": words,
            "word_start_times_milliseconds": [i * ms_per_word for i in range(len(words))],
            "word_end_times_milliseconds": [(i + 1) * ms_per_word for i in range(len(words))],
        },
    }


def error(
    status: int,
    code: str,
    *,
    flat: bool = False,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    body = {"error_code": code, "message": f"{code.lower()} happened", "extra": extra}
    return httpx.Response(status, json=body if flat else {"detail": body}, headers=headers)


@dataclass
class Seen:
    method: str
    path: str
    headers: httpx.Headers
    body: Any
    at: float


Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeApi:
    """Answers like AsyncFlow. ``script`` replies are used first, one per request, then every
    synthesis succeeds. Optional server-side limits (checked at virtual arrival time) answer
    429 the way the service documents: ``rpm`` over a closed sliding 60 s window and
    ``concurrency`` requests in flight, each request taking ``latency_s``."""

    sample_rate: int = 24000
    container: str = "wav"
    script: list[Any] = field(default_factory=list)  # of Reply
    time: VirtualTime | None = None
    rpm: int | None = None
    concurrency: int | None = None
    latency_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    admitted_at: list[float] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def bodies(self) -> list[Any]:
        return [s.body for s in self.seen]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        now = self.time.now if self.time else 0.0
        body = json.loads(request.content) if request.content else None
        self.seen.append(Seen(request.method, request.url.path, request.headers, body, now))
        if self.script:
            reply = self.script.pop(0)
            return reply(request) if callable(reply) else reply
        if self.rpm is not None:
            recent = [t for t in self.admitted_at if t >= now - 60.0]
            if len(recent) >= self.rpm:
                return error(429, "RATE_LIMIT_EXCEEDED", limit=self.rpm, retry_after_ms=1000)
        if self.concurrency is not None and self.in_flight >= self.concurrency:
            return error(429, "TOO_MANY_CONCURRENT_REQUESTS", limit=self.concurrency, current=self.in_flight)
        self.admitted_at.append(now)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency_s and self.time:
                await self.time.sleep(self.latency_s)
            return self.success(request, body)
        finally:
            self.in_flight -= 1

    def success(self, request: httpx.Request, body: Any) -> httpx.Response:
        path = request.url.path
        if path == "/":
            return httpx.Response(200, json={"status": "ok", "version": "v1"})
        if path.startswith("/voices/"):
            return httpx.Response(200, json={"voice_id": path.rsplit("/", 1)[1], "name": "Test"})
        words = body["transcript"].split()
        if path == "/text_to_speech/with_timestamps":
            return httpx.Response(200, json=timestamps_body(words, self.sample_rate, self.container))
        audio = tone(MS_PER_WORD * len(words), self.sample_rate)
        return httpx.Response(200, content=audio_bytes(audio, self.sample_rate, self.container))


# --- an engine wired to a FakeApi in virtual time -----------------------------------------

# Fast enough that limiter spacing (1 ms) never looks like a retry wait (>= 0.25 s).
UNLIMITED_RPM = 60_000


def engine_config(**overrides: Any) -> EngineConfig:
    fields: dict[str, Any] = {"kind": "asyncflow", "voice": VOICE, "base_url": "https://api.test"}
    return EngineConfig(**(fields | overrides))


def make_engine(
    api: FakeApi,
    vt: VirtualTime,
    *,
    retries: int = 6,
    rpm: int = UNLIMITED_RPM,
    concurrency: int = 5,
    **engine: Any,
) -> AsyncFlowEngine:
    return AsyncFlowEngine(
        engine=engine_config(**engine),
        limits=LimitsConfig(requests_per_minute=rpm, max_concurrency=concurrency, retries=retries),
        api_key=KEY,
        sleep=vt.sleep,
        clock=vt.clock,
        transport=api.transport(),
    )


def retry_waits(vt: VirtualTime) -> list[float]:
    return [s for s in vt.slept if s >= 0.1]


async def speak(
    engine: AsyncFlowEngine,
    vt: VirtualTime,
    words: list[str],
    *,
    timings: bool = True,
    chunk_id: str = "c0000-00001",
) -> ChunkAudio:
    return await vt.run(engine.synthesize(words, chunk_id=chunk_id, need_timings=timings))
