"""Client-side limits, so a correctly configured job never provokes a 429.

Two independent gates, taken in this order for every HTTP request (retries included):

1. :class:`AdaptiveConcurrency`: at most ``cap`` requests in flight. The cap starts at
   ``limits.max_concurrency``, drops when the server answers TOO_MANY_CONCURRENT_REQUESTS (to
   the server's stated limit when we were above it, else by half: the account is shared) and
   climbs back by one after a run of successes.
2. :class:`RequestRateLimiter`: a sliding log of request starts, so no 60-second window ever
   holds more than ``requests_per_minute`` of them, while a job still gets a window's burst.

The slot is taken before the start time so that a request leaves the moment its start time
comes; the other way round, time spent queueing for a slot would bunch starts together.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

WINDOW_S = 60.0
# Added to every window: our clock and the server's see a request at slightly different
# moments (network jitter), and the server may count a window inclusively at both ends.
DEFAULT_SAFETY_S = 0.5
DEFAULT_RECOVER_AFTER = 20


class RequestRateLimiter:
    """A sliding log of request starts: request ``k`` may start once request ``k - rpm`` started
    more than ``60 s + safety`` ago (and not before a pause the server asked for).

    That is exactly the rule a sliding-window server applies, so a job gets the window's whole
    burst (``requests_per_minute`` starts at once when it begins or after an idle minute) and
    then one start per start that leaves the window, yet any ``rpm + 1`` consecutive starts lie
    more than 60 s apart: no 60-second window, however it is placed, ever holds more than the
    limit. (Even spacing would give up that first minute's burst; a token bucket refilled at
    ``rpm`` per minute on top of a full bucket would allow nearly twice the limit in a window.)
    The log holds at most ``rpm`` times. Slots are reserved synchronously, so concurrent callers
    on one event loop each get their own start without a lock.
    """

    def __init__(
        self,
        requests_per_minute: int,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        safety_s: float = DEFAULT_SAFETY_S,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1")
        self.requests_per_minute = requests_per_minute
        self.window = WINDOW_S + safety_s
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque(maxlen=requests_per_minute)  # booked, in order
        self._not_before = -math.inf  # the end of a pause the server asked for

    def reserve(self) -> float:
        """Book the next start time; return how long to wait for it (0 when it is now)."""
        now = self._clock()
        start = max(now, self._not_before, self._starts[-1] if self._starts else -math.inf)
        if len(self._starts) == self.requests_per_minute:  # the window is full: wait for its oldest
            start = max(start, self._starts[0] + self.window)
        self._starts.append(start)
        return start - now

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)

    def defer(self, seconds: float) -> None:
        """The server asked for a pause (``retry_after_ms``): book nothing before it ends, so
        other requests do not run into the same wall. Starts already booked stay booked."""
        self._not_before = max(self._not_before, self._clock() + max(0.0, seconds))


class AdaptiveConcurrency:
    """An asyncio semaphore whose size can shrink and grow while requests are in flight.

    A burst of rejections from requests that were all in flight together is one signal, not
    many: each request remembers the generation it started in, and only a rejection from the
    current generation lowers the cap (then a new generation begins), as TCP halves its window
    once per loss episode. Successes count toward recovery only when they started after the
    last decrease.
    """

    def __init__(self, max_in_flight: int, *, recover_after: int = DEFAULT_RECOVER_AFTER) -> None:
        if max_in_flight < 1 or recover_after < 1:
            raise ValueError("max_in_flight and recover_after must be at least 1")
        self.max_cap = max_in_flight
        self.cap = max_in_flight
        self.lowest_cap = max_in_flight
        self.recover_after = recover_after
        self.in_flight = 0
        self.peak_in_flight = 0
        self._generation = 0
        self._streak = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> int:
        """Wait for room; return the generation this request belongs to."""
        while self.in_flight >= self.cap:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return self._generation

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        generation = await self.acquire()
        try:
            yield generation
        finally:
            self.release()

    def succeeded(self, generation: int) -> None:
        if generation != self._generation:
            return
        self._streak += 1
        if self._streak >= self.recover_after and self.cap < self.max_cap:
            self.cap += 1
            self._streak = 0
            self._wake()

    def overloaded(self, generation: int, *, server_limit: int | None = None) -> bool:
        """The server said too many in flight; return True if this lowered the cap.

        When the server names its limit and we were above it, the limit is the cap (and the
        ceiling from now on: going higher can only be refused). At or below it, the account is
        shared with someone else, so halve.
        """
        self._streak = 0
        if generation != self._generation:
            return False
        if server_limit is not None and server_limit >= 1:
            self.max_cap = min(self.max_cap, server_limit)
        lowered = self.max_cap if self.cap > self.max_cap else max(1, self.cap // 2)
        self._generation += 1
        self.cap = lowered
        self.lowest_cap = min(self.lowest_cap, lowered)
        return True

    def _wake(self) -> None:
        # Wake everyone waiting; each re-checks the cap. Waiters are few (<= the job's
        # fan-out), and this stays correct when a woken waiter was cancelled meanwhile.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
