"""The AsyncFlow emulator for benchmarks: served on loopback in a thread of the bench process,
with a stopwatch around every synthesis request.

The emulator's own counters say what happened (statuses, 429s); the stopwatch adds when:
the first request's arrival and the last response's end (the span over which a client's
requests per minute are measured) and each request's time in the server (the latency the
theoretical maximum ``concurrency / mean latency`` is computed from). The clients being
measured run in their own processes, so they do not share this process's interpreter.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.emulator.app import create_app
from pipeline.emulator.settings import EmulatorSettings
from pipeline.emulator.state import EmulatorState

SYNTHESIS_PREFIX = "/text_to_speech"
VOICE_ID = "e0f39dc4-f691-4e78-bba5-5c636692cc04"  # a predefined voice of the emulator
MODEL_ID = "async_flash_v1.0"


@dataclass
class RequestClock:
    """Per synthesis request: the API key it came with, its arrival and finish times
    (``time.monotonic``) and its status."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    spans: list[tuple[str, float, float, int]] = field(default_factory=list)

    def reset(self) -> None:
        with self.lock:
            self.spans = []

    def record(self, key: str, started: float, ended: float, status: int) -> None:
        with self.lock:
            self.spans.append((key, started, ended, status))

    def summary(self, key: str | None = None) -> ClockSummary:
        """The requests of one key (one client), or of all."""
        with self.lock:
            spans = [(s, e, status) for k, s, e, status in self.spans if key is None or k == key]
        if not spans:
            return ClockSummary(0, 0, 0, 0.0, 0.0, 0.0, 0.0)
        ok = [(s, e) for s, e, status in spans if status == 200]
        first = min(s for s, _, _ in spans)
        last = max(e for _, e, _ in spans)
        mean = statistics.fmean(e - s for s, e in ok) if ok else 0.0
        rejected = sum(1 for _, _, status in spans if status == 429)
        return ClockSummary(len(spans), len(ok), rejected, first, last, last - first, mean)


@dataclass(frozen=True, slots=True)
class ClockSummary:
    requests: int
    succeeded: int
    rejected_429: int
    first_arrival: float  # time.monotonic()
    last_end: float
    span_s: float  # first arrival to last response end, any status
    mean_latency_s: float  # mean time in the server of the requests answered 200


class _TimedSend:
    """Wraps ``send`` as a bound method whose owner still exposes the transport: the
    emulator's outer layer finds the socket through ``send.__self__.transport``."""

    def __init__(self, send: Send, on_done: Callable[[int], None]) -> None:
        self._send = send
        self._on_done = on_done
        self._status = 0
        self.transport = getattr(getattr(send, "__self__", None), "transport", None)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = int(message["status"])
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._on_done(self._status)


def timed(app: ASGIApp, clock: RequestClock) -> ASGIApp:
    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(SYNTHESIS_PREFIX):
            await app(scope, receive, send)
            return
        started = time.monotonic()
        key = dict(scope.get("headers", ())).get(b"x-api-key", b"").decode("latin-1")
        timed_send = _TimedSend(send, lambda status: clock.record(key, started, time.monotonic(), status))
        await app(scope, receive, timed_send.send)

    return wrapper


@dataclass
class HostedEmulator:
    url: str
    state: EmulatorState
    clock: RequestClock

    def stats(self) -> dict[str, Any]:
        return self.state.snapshot()

    def reset(self, **settings: Any) -> None:
        """Forget counters, limit windows and timings; apply ``settings`` (EmulatorSettings
        fields) if given."""
        if settings:
            self.state.configure(**settings)
        self.state.reset()
        self.clock.reset()


@contextmanager
def hosted_emulator(settings: EmulatorSettings) -> Iterator[HostedEmulator]:
    """The emulator on 127.0.0.1 (a free port) until the block ends."""
    state = EmulatorState(settings)
    clock = RequestClock()
    config = uvicorn.Config(
        timed(create_app(state=state), clock),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bench-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the emulator did not start")
        time.sleep(0.01)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield HostedEmulator(f"http://127.0.0.1:{port}", state, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
