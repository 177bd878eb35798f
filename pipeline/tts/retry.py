"""The one retry layer for AsyncFlow requests (nothing else retries: not Prefect, not httpx).

What is retried is exactly ``RetryableEngineError`` (429 rate limits, 5xx, timeouts, dropped
connections, bad 200s); a ``FatalEngineError`` (401, 404, 400, monthly quota) goes straight
through so the job stops at once. Waits:

- the server's own advice when it gave one (``extra.retry_after_ms``, else ``Retry-After``),
  capped at :data:`MAX_SERVER_WAIT_S` so a wild value cannot park the job;
- otherwise a jittered exponential backoff: 0.5 s doubling to a 30 s cap, each wait drawn
  from the upper half of its step so that parallel requests spread out but never hurry.

A 429 is the server pacing us, not a failure of the request: it does not use up
``limits.retries`` (which bounds real failures), only the separate, generous
:data:`MAX_RATE_LIMITED_ATTEMPTS`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from weakref import WeakKeyDictionary

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from pipeline.config import LimitsConfig
from pipeline.errors import RateLimitedError, RetryableEngineError

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
MAX_SERVER_WAIT_S = 120.0
MAX_RATE_LIMITED_ATTEMPTS = 50


class JitteredBackoff(wait_base):
    """Retry ``n`` waits a random time in [step/2, step], step = min(first * 2**(n-1), cap)."""

    def __init__(self, first_s: float = BACKOFF_FIRST_S, max_s: float = BACKOFF_MAX_S) -> None:
        self.first_s = first_s
        self.max_s = max_s

    def step(self, retry_number: int) -> float:
        # Exponent bounded so a long run of retries cannot overflow a float.
        return min(self.max_s, self.first_s * 2 ** min(retry_number - 1, 60))

    def __call__(self, retry_state: RetryCallState) -> float:
        step = self.step(retry_state.attempt_number)
        return step / 2 + random.uniform(0, step / 2)


class WaitForServerAdvice(wait_base):
    """The server's ``retry_after`` when the failure carried one, else ``fallback``."""

    def __init__(self, fallback: wait_base, max_s: float = MAX_SERVER_WAIT_S) -> None:
        self.fallback = fallback
        self.max_s = max_s

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after_s is not None:
            return min(self.max_s, max(0.0, error.retry_after_s))
        return self.fallback(retry_state)


class StopAfterFailures(stop_base):
    """Stop after ``retries`` retried failures, counting 429s separately (see module doc).

    tenacity calls a stop strategy exactly once per failed attempt it would retry, and keeps no
    history of past outcomes, so the counts live here, keyed weakly by each call's state.
    """

    def __init__(self, retries: int, max_rate_limited: int = MAX_RATE_LIMITED_ATTEMPTS) -> None:
        self.retries = retries
        self.max_rate_limited = max_rate_limited
        self._counts: WeakKeyDictionary[RetryCallState, list[int]] = WeakKeyDictionary()

    def __call__(self, retry_state: RetryCallState) -> bool:
        counts = self._counts.setdefault(retry_state, [0, 0])  # [failures, rate-limited]
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, RateLimitedError):
            counts[1] += 1
            return counts[1] >= self.max_rate_limited
        counts[0] += 1
        return counts[0] > self.retries


def build_retry_policy(
    limits: LimitsConfig,
    *,
    sleep: Callable[[float], Awaitable[None]],
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """The job's retry policy. tenacity keeps per-call state on the object, so every call must
    run on its own ``policy.copy()`` (concurrent calls on one object would trample each other)."""
    return AsyncRetrying(
        retry=retry_if_exception_type(RetryableEngineError),
        stop=StopAfterFailures(limits.retries),
        wait=WaitForServerAdvice(JitteredBackoff()),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
