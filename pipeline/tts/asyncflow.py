"""The ``asyncflow`` engine: the AsyncFlow HTTP API as a production client.

One ``httpx.AsyncClient`` per job (explicit timeouts, a connection pool no larger than the
in-flight cap). Every request, first try or retry, goes through the same three layers:
:mod:`pipeline.tts.retry` (the only retry layer) around :mod:`pipeline.tts.limits` (in-flight
cap, then start spacing) around one HTTP exchange checked by :mod:`pipeline.tts.wire`.

The API key lives only inside an ``httpx.Auth`` object that adds the header as a request is
sent; it is never logged, never put in a message (see ``wire.redact``), and no repr shows it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
from tenacity import RetryCallState

from pipeline.config import EngineConfig, LimitsConfig
from pipeline.errors import (
    AuthError,
    BadResponseError,
    EngineError,
    RateLimitedError,
    RetryableEngineError,
    ServerError,
    VoiceNotFoundError,
)
from pipeline.models import ChunkAudio, WordTiming
from pipeline.tts import wire
from pipeline.tts.limits import AdaptiveConcurrency, RequestRateLimiter
from pipeline.tts.retry import build_retry_policy
from pipeline.tts.wordmap import estimate_timings, has_letters, map_alignment

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0


def api_key_from_env(engine: EngineConfig) -> str:
    """The key from the variable ``engine.api_key_env`` names; errors name the variable only."""
    name = engine.api_key_env
    key = os.environ.get(name, "").strip()
    if not key:
        raise AuthError(f"no AsyncFlow API key: set the environment variable {name} (engine.api_key_env)")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise AuthError(
            f"the API key in {name} holds characters an HTTP header cannot carry (spaces, "
            "control or non-ASCII characters)"
        )
    return key


class ApiKeyAuth(httpx.Auth):
    """Adds ``x-api-key`` at send time, so the client's default headers never hold the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._key
        yield request

    def __repr__(self) -> str:
        return "ApiKeyAuth(<hidden>)"


def make_client(
    engine: EngineConfig,
    limits: LimitsConfig,
    api_key: str,
    transport: httpx.AsyncBaseTransport | None,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=engine.base_url,
        auth=ApiKeyAuth(api_key),
        headers={"version": wire.API_VERSION, "accept": "application/json, audio/*"},
        timeout=httpx.Timeout(limits.timeout_s, connect=min(CONNECT_TIMEOUT_S, limits.timeout_s)),
        # Never more connections than requests we allow in flight; keep them all alive.
        limits=httpx.Limits(max_connections=limits.max_concurrency, max_keepalive_connections=limits.max_concurrency),
        transport=transport,
        follow_redirects=False,
    )


def asyncflow_identity(engine: EngineConfig) -> dict[str, Any]:
    """Exactly the settings that shape the audio (the cache key): not the host, not the key."""
    return {
        "engine": "asyncflow",
        "model": engine.model,
        "voice": engine.voice,
        "language": engine.language,
        "speed": engine.speed,
        "stability": engine.stability,
        "sample_rate": engine.sample_rate,
        "container": engine.container,
        "encoding": wire.ENCODING,
    }


@dataclass
class EngineStats:
    """Counters for report.json."""

    requests: int = 0
    retries: int = 0
    rate_limited: dict[str, int] = field(default_factory=dict)  # 429s by error_code
    server_errors: int = 0  # 5xx, timeouts, dropped connections
    bad_responses: int = 0
    bytes_received: int = 0
    characters_sent: int = 0
    concurrency_current: int = 0
    concurrency_min: int = 0
    peak_in_flight: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AsyncFlowEngine:
    """Implements :class:`pipeline.tts.base.Engine` over the AsyncFlow HTTP API."""

    def __init__(
        self,
        *,
        engine: EngineConfig,
        limits: LimitsConfig,
        api_key: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        request_gate: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    ) -> None:
        self._engine = engine
        self._limits = limits
        self._secret = api_key
        self._transport = transport
        # Made on first use: an engine built only for identity() (cache keys, estimates) never
        # opens a connection pool that nobody closes.
        self._http: httpx.AsyncClient | None = None
        self._concurrency = AdaptiveConcurrency(limits.max_concurrency)
        self._rate = RequestRateLimiter(limits.requests_per_minute, clock=clock, sleep=sleep)
        self._retrying = build_retry_policy(limits, sleep=sleep, before_sleep=self._before_retry)
        # Entered around each HTTP exchange, after the in-process limits: how limits shared with
        # other processes (pipeline.orchestrate.shared_limits) hold a request until it may go.
        self._request_gate = request_gate or nullcontext
        self.stats = EngineStats(concurrency_current=limits.max_concurrency, concurrency_min=limits.max_concurrency)

    def __repr__(self) -> str:
        e = self._engine
        return f"AsyncFlowEngine(base_url={e.base_url!r}, model={e.model!r}, voice={e.voice!r})"

    def identity(self) -> dict[str, Any]:
        return asyncflow_identity(self._engine)

    @property
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = make_client(self._engine, self._limits, self._secret, self._transport)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        # A shared gate gives its cross-process slots back now rather than when leases end.
        close_gate = getattr(self._request_gate, "aclose", None)
        if close_gate is not None:
            await close_gate()

    async def __aenter__(self) -> AsyncFlowEngine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- synthesis -------------------------------------------------------------------------

    async def synthesize(self, words: Sequence[str], *, chunk_id: str, need_timings: bool) -> ChunkAudio:
        rate = self._engine.sample_rate
        transcript = " ".join(w for w in words if w)
        if not transcript.strip():
            # Nothing to say: the API would refuse an empty transcript, and silence is free.
            return ChunkAudio(np.zeros(0, np.int16), rate, tuple(WordTiming(0, 0) for _ in words))
        body = wire.synthesis_body(self._engine, transcript)
        path = wire.TIMESTAMPS_PATH if need_timings else wire.SPEECH_PATH
        context = f"chunk {chunk_id}"

        async def once() -> ChunkAudio:
            response = await self._send("POST", path, context=context, json=body)
            self.stats.characters_sent += len(transcript)
            # Decoding and word mapping take milliseconds of CPU: off the event loop, so other
            # chunks' requests start meanwhile instead of waiting behind it.
            return await asyncio.to_thread(
                self._read_speech, response, words, context=context, need_timings=need_timings
            )

        return await self._with_retries(once)

    def _read_speech(
        self, response: httpx.Response, words: Sequence[str], *, context: str, need_timings: bool
    ) -> ChunkAudio:
        e = self._engine
        try:
            if need_timings:
                audio_bytes, alignment = wire.parse_timestamps_body(response.content, context=context)
            else:
                audio_bytes, alignment = response.content, None
            samples = wire.decode_audio(audio_bytes, container=e.container, sample_rate=e.sample_rate, context=context)
            duration_ms = len(samples) * 1000 / e.sample_rate
            if len(samples) == 0 and any(has_letters(w) for w in words):
                raise BadResponseError(f"{context}: the reply holds no audio")
            if alignment is None:
                timings = estimate_timings(words, round(duration_ms))
            else:
                wire.check_alignment(alignment, duration_ms, context=context)
                try:
                    timings = map_alignment(words, alignment, round(duration_ms))
                except ValueError as exc:
                    raise BadResponseError(f"{context}: {exc}") from None
        except BadResponseError:
            self.stats.bad_responses += 1
            raise
        return ChunkAudio(samples, e.sample_rate, timings)

    # --- checks ----------------------------------------------------------------------------

    async def check(self) -> None:
        """GET / (is the server there and speaking v1), then the voice, with the key."""
        context = "AsyncFlow check"

        async def status() -> None:
            await self._send("GET", "/", context=context)

        async def voice() -> None:
            await self._send("GET", f"/voices/{quote(self._engine.voice, safe='')}", context=context)

        async def voice_batch() -> None:
            found = await self.request_json(
                "POST", "/voices/batch", context=context, json={"voice_ids": [self._engine.voice]}
            )
            if not isinstance(found, list) or not any(
                isinstance(v, dict) and v.get("voice_id") == self._engine.voice for v in found
            ):
                voice_id = self._engine.voice
                raise VoiceNotFoundError(f"{context}: voice {voice_id!r} (engine.voice) does not exist at AsyncFlow")

        await self._with_retries(status)
        try:
            await self._with_retries(voice)
        except EngineError as exc:
            # A server without GET /voices/{id} (plain 404/405, no VOICE_NOT_FOUND): ask in bulk.
            if isinstance(exc, AuthError | VoiceNotFoundError | RetryableEngineError):
                raise
            await voice_batch()  # request_json retries on its own

    async def request_json(self, method: str, path: str, *, context: str, json: Any = None) -> Any:
        """Any other API call, with the same limits and retries; the parsed JSON of its 200."""

        async def once() -> Any:
            response = await self._send(method, path, context=context, json=json)
            try:
                return response.json()
            except ValueError:
                self.stats.bad_responses += 1
                raise BadResponseError(f"{context}: the reply is not valid JSON") from None

        return await self._with_retries(once)

    # --- one request -----------------------------------------------------------------------

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]]) -> T:
        retrying = self._retrying.copy()  # per-call state; see build_retry_policy
        try:
            return await retrying(attempt)
        except RetryableEngineError as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            exc.args = (f"{exc} (gave up after {attempts} attempts)",)
            raise

    async def _send(self, method: str, path: str, *, context: str, json: Any = None) -> httpx.Response:
        """One HTTP exchange through both limits; returns a 200, raises anything else."""
        async with self._concurrency.slot() as generation:
            await self._rate.acquire()
            self.stats.requests += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._concurrency.in_flight)
            try:
                async with self._request_gate():
                    response = await self._client.request(method, path, json=json)
            except httpx.TimeoutException as exc:
                self.stats.server_errors += 1
                raise ServerError(f"{context}: no answer in time ({type(exc).__name__})") from None
            except (httpx.HTTPError, OSError) as exc:
                # from None: httpx exceptions carry the request, whose headers hold the key.
                # OSError: a transport that does not wrap socket errors (e.g. in-process ASGI).
                self.stats.server_errors += 1
                reason = wire.one_line(str(exc), self._secret) or type(exc).__name__
                raise ServerError(f"{context}: connection failed ({reason})") from None
            self.stats.bytes_received += len(response.content)
            if response.status_code == 200:
                self._concurrency.succeeded(generation)
                self._note_concurrency()
                return response
            error = wire.error_from_response(response, context=context, engine=self._engine, secret=self._secret)
            if isinstance(error, RateLimitedError):
                self._note_rate_limited(error, response, generation)
            elif isinstance(error, ServerError):
                self.stats.server_errors += 1
            raise error

    def _note_rate_limited(self, error: RateLimitedError, response: httpx.Response, generation: int) -> None:
        code = wire.error_code(response) or "429"
        self.stats.rate_limited[code] = self.stats.rate_limited.get(code, 0) + 1
        if error.concurrency:
            hint = wire.concurrency_limit_hint(error, response)
            if self._concurrency.overloaded(generation, server_limit=hint):
                log.warning("AsyncFlow: too many requests in flight; now at most %d", self._concurrency.cap)
        elif error.retry_after_s is not None:
            self._rate.defer(error.retry_after_s)
        self._note_concurrency()

    def _note_concurrency(self) -> None:
        self.stats.concurrency_current = self._concurrency.cap
        self.stats.concurrency_min = self._concurrency.lowest_cap

    def _before_retry(self, retry_state: RetryCallState) -> None:
        self.stats.retries += 1
        error = retry_state.outcome.exception() if retry_state.outcome else None
        log.info("retrying in %.1f s: %s", retry_state.upcoming_sleep, error)
