"""The ``asyncflow`` engine over the WebSocket (``engine.transport: websocket``).

Each chapter is read through one socket and one context, as one continuous performance: its
sentence groups (the chunks) are sent in order, each as one text message with ``force``, and
the audio is kept as it arrives. The API marks no boundary between the audio of two messages
of a context, so the client paces itself: group ``k+1`` is sent once group ``k``'s audio has
stopped arriving (:data:`QUIET_S` without a frame) and is long enough to be all of it (at least
:data:`PLAUSIBLE_SHARE` of the speaking rate seen so far); the last group of a run ends with
``close_context`` and its final frame. A confirmed group is returned at once, so the synthesis
stage caches it under its content key before the next one is heard.

The synthesis stage asks for chunks one by one (``synthesize``) with many calls in flight;
calls are gathered per chapter (from the chunk id) and each chapter gets a streaming task.
At most ``limits.max_concurrency`` sockets are open (chapters beyond that wait), and socket
opens are spaced by ``limits.requests_per_minute``. A dropped socket, an error frame or a
stall (no frame for ``limits.timeout_s``) costs only the group being heard: the chapter goes
on over a new socket from that group, after a backoff; a group that fails ``limits.retries``
times fails alone. A fatal error (key, voice, quota) fails every waiting chunk.

Word timings: the WebSocket returns none; they come from forced alignment of each group's
audio against its words (:mod:`pipeline.tts.ws_timings`). The stats say where they came from:
``timings_source`` (what this run uses) and ``timings_by_source`` (groups per source).
"""

from __future__ import annotations

import asyncio
import heapq
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipeline.config import EngineConfig, LimitsConfig
from pipeline.errors import (
    BadResponseError,
    EngineError,
    FatalEngineError,
    RateLimitedError,
    RetryableEngineError,
    ServerError,
)
from pipeline.models import ChunkAudio, WordTiming
from pipeline.tts.asyncflow import AsyncFlowEngine, asyncflow_identity
from pipeline.tts.limits import AdaptiveConcurrency, RequestRateLimiter
from pipeline.tts.retry import MAX_RATE_LIMITED_ATTEMPTS, MAX_SERVER_WAIT_S, JitteredBackoff
from pipeline.tts.ws_client import WsSession
from pipeline.tts.ws_timings import timings_for, timings_source

# A group's audio is over when no frame came for this long (and it is long enough).
QUIET_S = 0.25
# ...long enough: at least this share of the chapter's speaking rate so far (ms per character).
PLAUSIBLE_SHARE = 0.6
# The rate assumed before any group is heard: about 15 characters a second.
PRIOR_MS_PER_CHAR = 65.0
DRAIN_S = 0.05
KEEPALIVE_S = 10.0
RATE_MIN_CHARS = 30
_CHUNK_ID = re.compile(r"^c(\d+)-(\d+)$")


@dataclass
class WsEngineStats:
    """Counters for report.json (``requests``)."""

    transport: str = "websocket"
    timings_source: str = ""  # what the timings come from when alignment succeeds
    timings_by_source: dict[str, int] = field(default_factory=dict)  # groups per source, this run
    requests: int = 0  # sockets opened
    contexts: int = 0
    retries: int = 0
    rate_limited: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0  # drops, error frames, stalls
    bad_responses: int = 0
    bytes_received: int = 0
    characters_sent: int = 0
    groups_confirmed: int = 0
    peak_in_flight: int = 0  # sockets open at once
    first_audio_s: float | None = None  # from the first socket opened to the first audio frame

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(eq=False)
class _Group:
    seq: int
    chunk_id: str
    words: tuple[str, ...]
    transcript: str
    future: asyncio.Future[ChunkAudio]
    failures: int = 0
    rate_limited: int = 0


@dataclass(eq=False)
class _Chapter:
    index: int
    pending: list[tuple[int, _Group]] = field(default_factory=list)  # a heap by seq
    task: asyncio.Task[None] | None = None
    runs: int = 0
    heard_ms: float = 0.0  # audio of the confirmed groups long enough to measure a rate by
    heard_chars: int = 0

    def ms_per_char(self, prior: float) -> float:
        return self.heard_ms / self.heard_chars if self.heard_chars else prior


def chapter_of(chunk_id: str) -> tuple[int, int]:
    match = _CHUNK_ID.match(chunk_id)
    if match is None:  # not one of ours (a probe): a chapter of its own
        return -1, 0
    return int(match.group(1)), int(match.group(2))


class WebSocketEngine:
    """Implements :class:`pipeline.tts.base.Engine`; see the module doc."""

    def __init__(
        self,
        *,
        engine: EngineConfig,
        limits: LimitsConfig,
        api_key: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        request_gate: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    ) -> None:
        self._engine = engine
        self._limits = limits
        self._secret = api_key
        self._sleep = sleep
        self._request_gate = request_gate or nullcontext
        # The HTTP engine answers check(): the same key and voice checks, before any socket.
        self._http = AsyncFlowEngine(engine=engine, limits=limits, api_key=api_key, request_gate=request_gate)
        self._sockets = AdaptiveConcurrency(limits.max_concurrency)
        self._rate = RequestRateLimiter(limits.requests_per_minute, clock=time.monotonic, sleep=sleep)
        self._backoff = JitteredBackoff()
        self._chapters: dict[int, _Chapter] = {}
        self._fatal: FatalEngineError | None = None
        self._started: float | None = None
        self._aligning: set[asyncio.Task[None]] = set()
        self.stats = WsEngineStats(timings_source=timings_source())

    def __repr__(self) -> str:
        e = self._engine
        return f"WebSocketEngine(base_url={e.base_url!r}, model={e.model!r}, voice={e.voice!r})"

    def identity(self) -> dict[str, Any]:
        # Another transport's audio is another performance (and raw PCM): its own cache entries.
        return asyncflow_identity(self._engine) | {
            "transport": "websocket",
            "container": "raw",
            "timings": timings_source(),
        }

    async def check(self) -> None:
        await self._http.check()

    async def aclose(self) -> None:
        for chapter in self._chapters.values():
            if chapter.task is not None and not chapter.task.done():
                chapter.task.cancel()
        await self._http.aclose()

    # --- the Engine call -------------------------------------------------------------------

    async def synthesize(self, words: Sequence[str], *, chunk_id: str, need_timings: bool) -> ChunkAudio:
        rate = self._engine.sample_rate
        transcript = " ".join(w for w in words if w)
        if not transcript.strip():
            return ChunkAudio(np.zeros(0, np.int16), rate, tuple(WordTiming(0, 0) for _ in words))
        if self._fatal is not None:
            raise self._fatal
        index, seq = chapter_of(chunk_id)
        group = _Group(seq, chunk_id, tuple(words), transcript, asyncio.get_running_loop().create_future())
        chapter = self._chapters.setdefault(index, _Chapter(index))
        heapq.heappush(chapter.pending, (seq, group))
        if chapter.task is None or chapter.task.done():
            chapter.task = asyncio.create_task(self._stream(chapter))
        return await group.future

    # --- one chapter -----------------------------------------------------------------------

    async def _stream(self, chapter: _Chapter) -> None:
        """Until the chapter has nothing pending: a run over one socket, then retry or end."""
        while chapter.pending:
            if self._fatal is not None:
                self._fail_all(self._fatal)
                return
            wait_s = 0.0
            try:
                async with self._sockets.slot(), self._request_gate():
                    await self._rate.acquire()
                    await self._run(chapter)
            except FatalEngineError as exc:
                self._fatal = exc
                self._fail_all(exc)
                return
            except RetryableEngineError as exc:
                wait_s = self._after_failure(chapter, exc)
            except Exception as exc:  # a bug must not leave chunks waiting forever
                self._fail_chapter(chapter, EngineError(f"chapter {chapter.index + 1}: {type(exc).__name__}: {exc}"))
                raise
            if wait_s > 0 and chapter.pending:
                await self._sleep(wait_s)

    def _after_failure(self, chapter: _Chapter, exc: RetryableEngineError) -> float:
        """Count the failure against the group being heard; how long to wait before the next run."""
        self.stats.retries += 1
        _, group = chapter.pending[0]
        if isinstance(exc, RateLimitedError):
            code = "TOO_MANY_CONCURRENT_REQUESTS" if exc.concurrency else "RATE_LIMIT_EXCEEDED"
            self.stats.rate_limited[code] = self.stats.rate_limited.get(code, 0) + 1
            group.rate_limited += 1
            if group.rate_limited < MAX_RATE_LIMITED_ATTEMPTS:
                if exc.retry_after_s is not None:
                    return min(MAX_SERVER_WAIT_S, exc.retry_after_s)
                return self._backoff.step(group.rate_limited)
        else:
            if isinstance(exc, BadResponseError):
                self.stats.bad_responses += 1
            else:
                self.stats.server_errors += 1
            group.failures += 1
            if group.failures <= self._limits.retries:
                step = self._backoff.step(group.failures)
                return step / 2 + (step / 2) * ((group.seq * 7919) % 100) / 100  # spread, no RNG
        heapq.heappop(chapter.pending)
        attempts = group.failures + group.rate_limited
        if not group.future.done():
            group.future.set_exception(type(exc)(f"{exc} (gave up after {attempts} attempts)"))
        return 0.0

    async def _run(self, chapter: _Chapter) -> None:
        """One socket: one context after another until nothing is pending. Raises on failure,
        with the group being heard still first in ``pending``."""
        chapter.runs += 1
        label = f"chapter {chapter.index + 1}"
        session = WsSession(self._engine, self._secret, timeout_s=self._limits.timeout_s)
        self.stats.requests += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._sockets.in_flight)
        if self._started is None:
            self._started = time.monotonic()
        try:
            await session.open(label)
            while chapter.pending:
                self.stats.contexts += 1
                context_id = f"ch{chapter.index + 1:04d}-run{chapter.runs}-{self.stats.contexts}"
                await self._context(chapter, session, context_id)
            self._sockets.succeeded(0)
        finally:
            await session.close()

    async def _context(self, chapter: _Chapter, session: WsSession, context_id: str) -> None:
        while chapter.pending:
            _, group = chapter.pending[0]
            context = f"chunk {group.chunk_id}"
            last = len(chapter.pending) == 1
            message = {"transcript": group.transcript + " ", "context_id": context_id, "force": True}
            await session.send(message, context)
            self.stats.characters_sent += len(group.transcript)
            if last:
                await session.send({"context_id": context_id, "close_context": True, "transcript": ""}, context)
            pcm, final = await self._hear(chapter, session, group, context_id, expect_final=last)
            heapq.heappop(chapter.pending)
            # Aligned while the next group is heard: the socket never waits for the aligner.
            task = self._confirm(chapter, group, pcm)
            self._aligning.add(task)
            task.add_done_callback(self._aligning.discard)
            if final:
                return
        # More groups arrived after this run began; they were sent on this context: close it.
        await session.send({"context_id": context_id, "close_context": True, "transcript": ""}, "close")

    async def _hear(
        self, chapter: _Chapter, session: WsSession, group: _Group, context_id: str, *, expect_final: bool
    ) -> tuple[bytes, bool]:
        """The audio of ``group``: frames until the final one, or until they pause and what
        arrived is long enough to be the whole group."""
        context = f"chunk {group.chunk_id}"
        pcm = bytearray()
        last_frame = last_send = time.monotonic()
        rate = chapter.ms_per_char(PRIOR_MS_PER_CHAR / (self._engine.speed or 1.0))
        needed_ms = PLAUSIBLE_SHARE * rate * len(group.transcript)
        while True:
            now = time.monotonic()
            quiet_left = QUIET_S - (now - last_frame) if pcm and not expect_final else float("inf")
            stall_left = self._limits.timeout_s - (now - last_frame)
            wait = max(0.01, min(quiet_left, stall_left, KEEPALIVE_S - (now - last_send)))
            got = await session.recv(wait, context)
            now = time.monotonic()
            if got is None:
                if now - last_send >= KEEPALIVE_S:
                    await session.send({"transcript": " ", "context_id": context_id}, context)
                    last_send = now
                if now - last_frame >= self._limits.timeout_s:
                    raise ServerError(f"{context}: no audio for {self._limits.timeout_s:g} s (the WebSocket stalled)")
                if pcm and not expect_final and now - last_frame >= QUIET_S and self._ms(pcm) >= needed_ms:
                    # A busy event loop can fire the timer before reading frames that already
                    # arrived: one more short look before calling the group complete.
                    late = await session.recv(DRAIN_S, context)
                    if late is None:
                        return bytes(pcm), False
                    got = late
                else:
                    continue
            frame_context, data, final = got
            now = time.monotonic()
            if frame_context != context_id:
                continue  # a frame of an earlier context of this socket
            last_frame = now
            if data:
                if self.stats.first_audio_s is None and self._started is not None:
                    self.stats.first_audio_s = round(now - self._started, 3)
                self.stats.bytes_received += len(data)
                pcm += data
            if final:  # the server's own word that the context is complete
                if len(pcm) % 2:
                    raise BadResponseError(f"{context}: the audio ends inside a sample")
                if not pcm:
                    raise BadResponseError(f"{context}: the context ended without audio")
                return bytes(pcm), True

    def _ms(self, pcm: bytearray | bytes) -> float:
        return len(pcm) / 2 * 1000 / self._engine.sample_rate

    def _confirm(self, chapter: _Chapter, group: _Group, pcm: bytes) -> asyncio.Task[None]:
        """Count the group's speaking rate now; align it (and hand it over) on a task."""
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], "<i2").astype(np.int16)
        if len(group.transcript) >= RATE_MIN_CHARS:  # a heading's pauses would skew the rate
            chapter.heard_ms += self._ms(pcm)
            chapter.heard_chars += len(group.transcript)
        return asyncio.create_task(self._align(group, samples))

    async def _align(self, group: _Group, samples: np.ndarray) -> None:
        rate = self._engine.sample_rate
        try:
            timings, source = await asyncio.to_thread(timings_for, group.words, samples, rate)
        except Exception as exc:  # the chunk fails alone, never waits forever
            if not group.future.done():
                group.future.set_exception(EngineError(f"chunk {group.chunk_id}: word timings failed ({exc})"))
            return
        self.stats.timings_by_source[source] = self.stats.timings_by_source.get(source, 0) + 1
        self.stats.groups_confirmed += 1
        if not group.future.done():
            group.future.set_result(ChunkAudio(samples, rate, timings))

    def _fail_chapter(self, chapter: _Chapter, exc: EngineError) -> None:
        while chapter.pending:
            _, group = heapq.heappop(chapter.pending)
            if not group.future.done():
                group.future.set_exception(exc)

    def _fail_all(self, exc: EngineError) -> None:
        for chapter in self._chapters.values():
            self._fail_chapter(chapter, exc)

