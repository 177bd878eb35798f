"""Which synthesis requests fail, and how.

The decision for a request depends only on the seed, the transcript and how many times that
transcript has been asked for, not on arrival order: a concurrent client sees the same faults
on every run with the same seed, so a failing end-to-end test can be replayed exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading

from starlette.responses import Response

from pipeline.emulator.responses import ApiError, DroppedConnection, TruncatedBody, internal_error
from pipeline.emulator.settings import EmulatorSettings, FaultKind, WsFaultKind
from pipeline.emulator.validation import Endpoint

# Faults that need a real response to corrupt; the others replace the response outright.
AFTER_SYNTHESIS = frozenset({FaultKind.TRUNCATE, FaultKind.MALFORMED_JSON, FaultKind.BAD_ALIGNMENT})
FAULT_429_CODES = {
    FaultKind.RATE_429: "RATE_LIMIT_EXCEEDED",
    FaultKind.CONCURRENCY_429: "TOO_MANY_CONCURRENT_REQUESTS",
}
_JSON_ONLY = frozenset({FaultKind.MALFORMED_JSON, FaultKind.BAD_ALIGNMENT})


def applicable(kind: FaultKind, endpoint: Endpoint) -> bool:
    """Malformed JSON and bad alignment only make sense where the body is JSON."""
    return endpoint is Endpoint.TIMESTAMPS or kind not in _JSON_ONLY


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}

    def decide(self, settings: EmulatorSettings, endpoint: Endpoint, transcript: str) -> FaultKind | None:
        if settings.fail_rate <= 0:
            return None
        digest = hashlib.sha256(transcript.encode()).hexdigest()
        with self._lock:
            attempt = self._attempts.get(digest, 0)
            self._attempts[digest] = attempt + 1
        rng = random.Random(f"{settings.seed}:{endpoint.value}:{digest}:{attempt}")
        if rng.random() >= settings.fail_rate:
            return None
        kinds = [k for k in settings.faults if applicable(k, endpoint)]
        return rng.choice(kinds) if kinds else None

    def decide_ws(self, settings: EmulatorSettings, text: str) -> WsFaultKind | None:
        """The same rule for one piece of text a WebSocket context speaks."""
        if settings.fail_rate <= 0 or not settings.ws_faults:
            return None
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            attempt = self._attempts.get("ws:" + digest, 0)
            self._attempts["ws:" + digest] = attempt + 1
        rng = random.Random(f"{settings.seed}:websocket:{digest}:{attempt}")
        if rng.random() >= settings.fail_rate:
            return None
        return rng.choice(settings.ws_faults)

    def reset(self) -> None:
        with self._lock:
            self._attempts.clear()


def replacement_response(kind: FaultKind, settings: EmulatorSettings, method: str, url: str) -> Response:
    """The response for a fault that stands in for synthesis entirely."""
    flat = settings.flat_errors
    if kind is FaultKind.RATE_429:
        wait_ms = settings.fault_retry_after_ms
        return ApiError(
            429,
            FAULT_429_CODES[kind],
            f"rate limit exceeded; retry in {wait_ms} ms",
            {"limit": settings.rpm, "retry_after_ms": wait_ms},
            {"Retry-After": str(max(1, -(-wait_ms // 1000)))},
        ).response(flat=flat)
    if kind is FaultKind.CONCURRENCY_429:
        limit = settings.concurrency
        return ApiError(
            429,
            FAULT_429_CODES[kind],
            f"too many concurrent requests: limit {limit}",
            {"limit": limit, "current": limit},
        ).response(flat=flat)
    if kind is FaultKind.SERVER_500:
        return internal_error(method, url, "injected fault: the synthesis worker crashed")
    if kind is FaultKind.UNAVAILABLE_503:
        return ApiError(503, "SERVICE_UNAVAILABLE", "the service is temporarily unavailable").response(flat=flat)
    if kind is FaultKind.DROP:
        return DroppedConnection()
    raise ValueError(f"{kind.value} corrupts a real response; use corrupted_response")


def corrupted_response(kind: FaultKind, body: bytes, media_type: str) -> Response:
    """A 200 that breaks the API's rules, made from the real ``body``."""
    if kind is FaultKind.TRUNCATE:
        return TruncatedBody(body, media_type)
    if kind is FaultKind.MALFORMED_JSON:
        # Cut inside the document: a client that parses it must fail, not read half the data.
        return Response(body[: max(1, len(body) // 2)], 200, media_type="application/json")
    if kind is FaultKind.BAD_ALIGNMENT:
        data = json.loads(body)
        alignment = data["alignment"]
        # Lose the last end time (or invent one when there are no words): lengths now differ.
        ends = alignment["word_end_times_milliseconds"]
        alignment["word_end_times_milliseconds"] = ends[:-1] if ends else [0]
        return Response(json.dumps(data).encode(), 200, media_type="application/json")
    raise ValueError(f"{kind.value} replaces the response; use replacement_response")
