"""Server-side limits, per API key (one key is one account), as the service describes them.

- requests per minute: a sliding window over the synthesis requests admitted in the last
  ``rpm_window_s`` seconds; the 429 says when the oldest of them leaves the window;
- concurrent requests: synthesis requests in flight;
- monthly characters: transcript characters billed; a request is billed when admitted and
  refunded if it then fails, so concurrent requests cannot overdraw the quota together.

Besides enforcing, it records what clients *attempted* (every synthesis request that arrived
with a valid key, rejected or not): the peak number in flight and the peak number inside one
window. Those peaks are how a test proves a client stayed under its limits by itself.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.emulator.responses import ApiError, truncate_key
from pipeline.emulator.settings import EmulatorSettings


def account_label(key: str) -> str:
    """How stats name an account: recognisable, distinct, and never the whole key."""
    return f"{truncate_key(key)}#{hashlib.sha256(key.encode()).hexdigest()[:6]}"


@dataclass
class _Account:
    admitted: deque[float] = field(default_factory=deque)  # admission times inside the window
    arrivals: deque[float] = field(default_factory=deque)  # every attempt inside the window
    in_flight: int = 0
    used_chars: int = 0
    peak_in_flight: int = 0
    peak_in_window: int = 0


class Accounts:
    """Thread-safe: requests arrive on the server's loop, tests read peaks from elsewhere."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._in_flight_total = 0
        self._peak_in_flight_total = 0

    def _account(self, key: str) -> _Account:
        return self._accounts.setdefault(key, _Account())

    def arrive(self, key: str, settings: EmulatorSettings) -> None:
        """A synthesis request with a valid key arrived: count it in flight (until ``leave``)."""
        now = self._clock()
        with self._lock:
            acct = self._account(key)
            _prune(acct.arrivals, now - settings.rpm_window_s)
            acct.arrivals.append(now)
            acct.peak_in_window = max(acct.peak_in_window, len(acct.arrivals))
            acct.in_flight += 1
            acct.peak_in_flight = max(acct.peak_in_flight, acct.in_flight)
            self._in_flight_total += 1
            self._peak_in_flight_total = max(self._peak_in_flight_total, self._in_flight_total)

    def leave(self, key: str) -> None:
        with self._lock:
            self._account(key).in_flight -= 1
            self._in_flight_total -= 1

    def admit(self, key: str, settings: EmulatorSettings) -> None:
        """Apply the per-minute and concurrency limits to a request that has ``arrive``d."""
        now = self._clock()
        with self._lock:
            acct = self._account(key)
            if settings.rpm:
                _prune(acct.admitted, now - settings.rpm_window_s)
                if len(acct.admitted) >= settings.rpm:
                    wait_s = acct.admitted[0] + settings.rpm_window_s - now
                    retry_ms = max(1, math.ceil(wait_s * 1000))
                    raise ApiError(
                        429,
                        "RATE_LIMIT_EXCEEDED",
                        f"rate limit of {settings.rpm} requests per minute exceeded; retry in {retry_ms} ms",
                        {"limit": settings.rpm, "retry_after_ms": retry_ms},
                        {"Retry-After": str(math.ceil(retry_ms / 1000))},
                    )
            others = acct.in_flight - 1  # this request has arrived already
            if settings.concurrency and others >= settings.concurrency:
                raise ApiError(
                    429,
                    "TOO_MANY_CONCURRENT_REQUESTS",
                    f"too many concurrent requests: {others} in flight, limit {settings.concurrency}",
                    {"limit": settings.concurrency, "current": others},
                )
            if settings.rpm:
                acct.admitted.append(now)

    def charge(self, key: str, chars: int, settings: EmulatorSettings, *, partial: bool = False) -> int:
        """Bill ``chars`` against the monthly quota and return how many were granted. With
        ``partial`` (streaming), grant what is left when that is less; 429 when nothing is."""
        with self._lock:
            acct = self._account(key)
            limit = settings.monthly_chars
            left = chars if limit is None else max(0, limit - acct.used_chars)
            granted = min(chars, left)
            if granted == 0 or (granted < chars and not partial):
                raise ApiError(
                    429,
                    "USAGE_LIMIT_EXCEEDED",
                    f"monthly character quota exhausted: {acct.used_chars} of {limit} used, this request needs {chars}",
                    {"limit": limit, "current": acct.used_chars},
                )
            acct.used_chars += granted
            return granted

    def refund(self, key: str, chars: int) -> None:
        with self._lock:
            acct = self._account(key)
            acct.used_chars = max(0, acct.used_chars - chars)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "in_flight": self._in_flight_total,
                "peak_concurrent_requests": self._peak_in_flight_total,
                "accounts": {
                    account_label(key): {
                        "in_flight": a.in_flight,
                        "peak_concurrent_requests": a.peak_in_flight,
                        "peak_requests_per_window": a.peak_in_window,
                        "characters_used": a.used_chars,
                    }
                    for key, a in self._accounts.items()
                },
            }

    def reset(self) -> None:
        with self._lock:
            # Requests still in flight keep their slots so their ``leave`` stays balanced.
            in_flight = {k: a.in_flight for k, a in self._accounts.items() if a.in_flight}
            self._accounts = {k: _Account(in_flight=n, peak_in_flight=n) for k, n in in_flight.items()}
            self._peak_in_flight_total = self._in_flight_total


def _prune(times: deque[float], cutoff: float) -> None:
    while times and times[0] <= cutoff:
        times.popleft()
