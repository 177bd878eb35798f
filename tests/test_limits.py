"""The client-side limiter, the adaptive in-flight cap and the retry policy, on their own."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import RetryCallState

from pipeline.config import LimitsConfig
from pipeline.errors import (
    BadResponseError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
)
from pipeline.tts.limits import AdaptiveConcurrency, RequestRateLimiter
from pipeline.tts.retry import JitteredBackoff, build_retry_policy
from tests.fake_asyncflow import VirtualTime


def most_in_a_closed_window(times: list[float], window: float = 60.0) -> int:
    """The largest number of ``times`` inside any [t, t + window], both ends included: the
    strictest way a server can count a sliding window."""
    times = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] < t - window:
            left += 1
        best = max(best, right - left + 1)
    return best


class SteppedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def no_sleep(_: float) -> None:
    return None


# --- requests per minute -----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    rpm=st.integers(min_value=1, max_value=300),
    gaps=st.lists(
        st.one_of(st.just(0.0), st.floats(min_value=0, max_value=120, allow_nan=False)),
        min_size=1,
        max_size=400,
    ),
)
def test_no_sixty_second_window_ever_holds_more_than_the_limit(rpm: int, gaps: list[float]) -> None:
    clock = SteppedClock()
    limiter = RequestRateLimiter(rpm, clock=clock, sleep=no_sleep)
    starts = []
    for gap in gaps:  # requests arrive in bursts (gap 0) and after pauses of any length
        clock.now += gap
        starts.append(clock.now + limiter.reserve())
    assert most_in_a_closed_window(starts) <= rpm
    assert all(later >= earlier for earlier, later in itertools.pairwise(starts))


def test_sustained_demand_takes_each_window_whole() -> None:
    clock = SteppedClock()
    limiter = RequestRateLimiter(120, clock=clock, sleep=no_sleep)
    starts = [limiter.reserve() for _ in range(1200)]  # everyone asks at t=0
    assert most_in_a_closed_window(starts) == 120
    # The first window's 120 go at once; then 120 more each time the window has moved on.
    assert starts[:120] == [0.0] * 120 and starts[120] == pytest.approx(60.5)
    assert starts[-1] == pytest.approx(9 * 60.5)  # 1200 in 9 windows + 1: the limit's rate


def test_a_full_burst_after_an_idle_window_and_never_more() -> None:
    clock = SteppedClock()
    limiter = RequestRateLimiter(60, clock=clock, sleep=no_sleep)
    for _ in range(60):
        limiter.reserve()
    clock.now = 30.0  # the window is still full: the next start waits for the oldest to leave it
    assert limiter.reserve() == pytest.approx(30.5)
    clock.now = 10_000.0
    waits = [limiter.reserve() for _ in range(61)]
    assert waits[:60] == [0.0] * 60 and waits[60] == pytest.approx(60.5)


def test_server_advice_pushes_back_the_next_start() -> None:
    clock = SteppedClock()
    limiter = RequestRateLimiter(600, clock=clock, sleep=no_sleep)
    limiter.reserve()
    limiter.defer(5.0)
    assert limiter.reserve() == pytest.approx(5.0)
    limiter.defer(1.0)  # a shorter pause never pulls booked starts earlier
    assert limiter.reserve() == pytest.approx(5.0)


async def test_acquire_really_waits_for_its_slot() -> None:
    vt = VirtualTime()
    limiter = RequestRateLimiter(3, clock=vt.clock, sleep=vt.sleep)
    started: list[float] = []

    async def request() -> None:
        await limiter.acquire()
        started.append(vt.now)

    await vt.run(asyncio.gather(*(request() for _ in range(7))))
    assert started == pytest.approx([0, 0, 0, 60.5, 60.5, 60.5, 121.0])


# --- in flight ---------------------------------------------------------------------------


async def test_never_more_in_flight_than_the_cap() -> None:
    vt = VirtualTime()
    gate = AdaptiveConcurrency(3)
    seen: list[int] = []

    async def request(i: int) -> None:
        async with gate.slot():
            seen.append(gate.in_flight)
            await vt.sleep(1 + i % 3)

    await vt.run(asyncio.gather(*(request(i) for i in range(20))))
    assert max(seen) == 3 and gate.in_flight == 0 and gate.peak_in_flight == 3


def test_one_drop_per_congestion_episode_then_slow_recovery() -> None:
    gate = AdaptiveConcurrency(8, recover_after=4)
    before = 0  # all these requests started in generation 0
    assert gate.overloaded(before) is True and gate.cap == 4
    assert gate.overloaded(before) is False and gate.cap == 4  # same episode: no second drop
    now = 1
    gate.succeeded(before)  # started under the old cap: says nothing about the new one
    for _ in range(3):
        gate.succeeded(now)
    assert gate.cap == 4
    gate.succeeded(now)
    assert gate.cap == 5
    for _ in range(4 * 10):
        gate.succeeded(now)
    assert gate.cap == 8 and gate.lowest_cap == 4  # back to the configured ceiling, no further


def test_halving_stops_at_one_and_a_stated_server_limit_is_used_directly() -> None:
    gate = AdaptiveConcurrency(5)
    for generation in range(5):
        gate.overloaded(generation)
    assert gate.cap == 1 and gate.lowest_cap == 1

    gate = AdaptiveConcurrency(10, recover_after=1)
    gate.overloaded(0, server_limit=3)  # we were above the server's limit: go to it
    assert gate.cap == 3
    for _ in range(5):
        gate.succeeded(1)
    assert gate.cap == 3  # and never climb past it again
    gate.overloaded(1, server_limit=3)  # at the limit and still refused: the account is shared
    assert gate.cap == 1


async def test_a_raised_cap_wakes_waiters_and_cancelled_waiters_leak_nothing() -> None:
    gate = AdaptiveConcurrency(2, recover_after=1)
    gate.overloaded(0)  # cap 1
    first = await gate.acquire()
    waiter = asyncio.ensure_future(gate.acquire())
    cancelled = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    cancelled.cancel()
    gate.succeeded(first)  # recovery to 2 lets one waiter in while the first is still busy
    await asyncio.sleep(0)
    assert waiter.done() and gate.in_flight == 2
    gate.release()
    gate.release()
    assert gate.in_flight == 0
    assert await asyncio.wait_for(gate.acquire(), 1) == 1


# --- retry policy ------------------------------------------------------------------------


class Script:
    def __init__(self, *outcomes: Exception | str) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def run_policy(retries: int, script: Script) -> tuple[str, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = build_retry_policy(LimitsConfig(retries=retries), sleep=sleep)
    return await policy.copy()(script), slept


async def test_policy_stops_after_the_configured_retries_and_reraises_the_last_error() -> None:
    script = Script(ServerError("a"), BadResponseError("b"), ServerError("c"), "ok")
    with pytest.raises(ServerError, match=r"^c$"):
        await run_policy(2, script)
    assert script.calls == 3


async def test_policy_honours_server_advice_and_does_not_count_429s() -> None:
    pacing = [RateLimitedError("slow down", retry_after_s=s) for s in (0.25, 3.0, 500.0)]
    script = Script(*pacing, ServerError("x"), "ok")
    result, slept = await run_policy(1, script)
    assert result == "ok"
    assert slept[:3] == [0.25, 3.0, 120.0]  # the server's advice, capped at two minutes
    assert 0.25 * 2**3 <= slept[3] <= 0.5 * 2**3 * 2  # backoff for the 4th attempt's failure


async def test_policy_never_retries_a_fatal_error() -> None:
    script = Script(QuotaExceededError("quota"), "ok")
    with pytest.raises(QuotaExceededError):
        await run_policy(6, script)
    assert script.calls == 1


@given(st.integers(min_value=1, max_value=10_000))
def test_backoff_is_jittered_doubling_and_bounded(retry_number: int) -> None:
    backoff = JitteredBackoff()
    state = RetryCallState(retry_object=build_retry_policy(LimitsConfig(), sleep=no_sleep), fn=None, args=(), kwargs={})
    state.attempt_number = retry_number
    step = 30.0 if retry_number >= 7 else 0.5 * 2 ** (retry_number - 1)  # 0.5 * 2**6 = 32 > the 30 s cap
    assert backoff.step(retry_number) == step
    assert step / 2 <= backoff(state) <= step <= 30.0
