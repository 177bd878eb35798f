"""The emulator's limits, quota, fault injection, latency and counters (in-process, no socket)."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.emulator.faults import FaultInjector
from pipeline.emulator.limits import account_label
from pipeline.emulator.settings import EmulatorSettings, FaultKind, parse_faults
from pipeline.emulator.state import EmulatorState
from pipeline.emulator.stats import transcript_hash
from pipeline.emulator.synth_routes import QUOTA_MARKER
from pipeline.emulator.synthesis import transcript_entries
from pipeline.emulator.validation import Endpoint, parse_synthesis_request
from tests.emulator_support import KEY, error_of, in_process, synth_body

OTHER_KEY = "sk_test_second_account_02"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rpm_window_answers_429_until_a_slot_frees() -> None:
    clock = FakeClock()
    state = EmulatorState(EmulatorSettings(rpm=3), clock=clock)
    async with in_process(state) as client:
        statuses = []
        for offset in (0.0, 1.0, 2.0):
            clock.now = 1000.0 + offset
            statuses.append((await client.post("/text_to_speech", json=synth_body("One."))).status_code)
        clock.now = 1002.5
        limited = await client.post("/text_to_speech", json=synth_body("Two."))
        other_account = await client.post(
            "/text_to_speech", json=synth_body("Three."), headers={"x-api-key": OTHER_KEY}
        )
        clock.now = 1060.0  # the first request leaves the 60 s window
        freed = await client.post("/text_to_speech", json=synth_body("Four."))
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    error = error_of(limited)
    assert error["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert error["extra"] == {"limit": 3, "retry_after_ms": 57500}
    assert limited.headers["retry-after"] == "58"
    assert other_account.status_code == 200  # limits are per key
    assert freed.status_code == 200
    stats = state.snapshot()
    assert stats["rate_limited"] == stats["sent_429"] == {"RATE_LIMIT_EXCEEDED": 1}
    assert stats["accounts"][account_label(KEY)]["peak_requests_per_window"] == 4


async def test_concurrency_limit_rejects_only_the_excess() -> None:
    state = EmulatorState(EmulatorSettings(concurrency=2, latency_ms=300))
    async with in_process(state) as client:
        responses = await asyncio.gather(
            *(client.post("/text_to_speech", json=synth_body(f"Word {i}.")) for i in range(4))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429]
    rejected = next(r for r in responses if r.status_code == 429)
    assert error_of(rejected) == {
        "error_code": "TOO_MANY_CONCURRENT_REQUESTS",
        "message": "too many concurrent requests: 2 in flight, limit 2",
        "extra": {"limit": 2, "current": 2},
    }
    stats = state.snapshot()
    # What the client attempted: two in flight plus one more knocking (a rejected request
    # leaves at once, so the fourth arrives after the third has gone).
    assert stats["peak_concurrent_requests"] == 3
    assert stats["rate_limited"] == {"TOO_MANY_CONCURRENT_REQUESTS": 2}
    assert stats["in_flight"] == 0


async def test_a_client_within_the_limits_sees_no_429() -> None:
    state = EmulatorState(EmulatorSettings(concurrency=3, rpm=10, latency_ms=100))
    async with in_process(state) as client:
        for batch in range(3):
            responses = await asyncio.gather(
                *(client.post("/text_to_speech", json=synth_body(f"Batch {batch} item {i}.")) for i in range(3))
            )
            assert [r.status_code for r in responses] == [200, 200, 200]
    stats = state.snapshot()
    assert stats["rate_limited_total"] == 0
    account = stats["accounts"][account_label(KEY)]
    assert account["peak_concurrent_requests"] == 3 and account["peak_requests_per_window"] == 9


async def test_monthly_quota_and_the_mid_stream_marker() -> None:
    state = EmulatorState(EmulatorSettings(monthly_chars=60))
    first = "Thirty characters of speech!!"  # 29 characters
    async with in_process(state) as client:
        ok = await client.post("/text_to_speech", json=synth_body(first))
        too_long = await client.post("/text_to_speech", json=synth_body(first + " and more."))
        raw = {"container": "raw"}
        streamed = await client.post(
            "/text_to_speech/streaming", json=synth_body(first + " and more.", output_format=raw)
        )
        exhausted = await client.post("/text_to_speech", json=synth_body("Hi."))
    assert ok.status_code == 200
    assert too_long.status_code == 429
    assert error_of(too_long)["extra"] == {"limit": 60, "current": 29}
    assert streamed.status_code == 200
    assert streamed.content.endswith(QUOTA_MARKER)
    audio = streamed.content[: -len(QUOTA_MARKER)]
    assert len(audio) > 2000 and np.abs(np.frombuffer(audio, "<i2")).max() > 1000
    assert exhausted.status_code == 429 and error_of(exhausted)["error_code"] == "USAGE_LIMIT_EXCEEDED"
    stats = state.snapshot()
    assert stats["accounts"][account_label(KEY)]["characters_used"] == 60
    assert stats["characters_synthesized"] == len(first)  # the cut stream is not a success


@pytest.mark.parametrize("kind", [k for k in FaultKind if k not in (FaultKind.DROP, FaultKind.TRUNCATE)])
async def test_each_fault_kind_breaks_the_response_as_documented(kind: FaultKind) -> None:
    state = EmulatorState(EmulatorSettings(fail_rate=1.0, faults=(kind,), monthly_chars=1000))
    async with in_process(state) as client:
        response = await client.post("/text_to_speech/with_timestamps", json=synth_body())
    if kind is FaultKind.RATE_429:
        assert response.status_code == 429 and error_of(response)["extra"]["retry_after_ms"] == 200
    elif kind is FaultKind.CONCURRENCY_429:
        assert error_of(response)["error_code"] == "TOO_MANY_CONCURRENT_REQUESTS"
    elif kind is FaultKind.SERVER_500:
        assert response.status_code == 500
        assert set(response.json()) == {"message", "method", "url", "detail"}
    elif kind is FaultKind.UNAVAILABLE_503:
        assert response.status_code == 503
    elif kind is FaultKind.MALFORMED_JSON:
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)
    else:
        alignment = response.json()["alignment"]
        assert len(alignment["words"]) != len(alignment["word_end_times_milliseconds"])
    stats = state.snapshot()
    assert stats["faults_injected"] == {kind.value: 1}
    if response.status_code == 429:
        assert stats["sent_429"] == {error_of(response)["error_code"]: 1}
    assert stats["characters_synthesized"] == 0 and stats["synth_successes"] == {}
    assert stats["accounts"][account_label(KEY)]["characters_used"] == 0  # refunded


async def test_json_faults_are_never_sent_where_the_body_is_audio() -> None:
    state = EmulatorState(EmulatorSettings(fail_rate=1.0, faults=(FaultKind.MALFORMED_JSON,)))
    async with in_process(state) as client:
        response = await client.post("/text_to_speech", json=synth_body())
    assert response.status_code == 200 and response.content[:4] == b"RIFF"


def test_fault_rate_is_close_to_the_setting_and_repeatable() -> None:
    def failing(seed: int, fail_rate: float) -> set[str]:
        injector = FaultInjector()
        settings = EmulatorSettings(fail_rate=fail_rate, seed=seed)
        texts = [f"Item {i}." for i in range(2000)]
        return {t for t in texts if injector.decide(settings, Endpoint.BYTES, t) is not None}

    first = failing(seed=7, fail_rate=0.2)
    assert 330 <= len(first) <= 470  # 400 expected; the binomial sd is about 18
    assert failing(seed=7, fail_rate=0.2) == first
    assert failing(seed=8, fail_rate=0.2) != first


async def test_requests_fail_exactly_as_the_seeded_injector_decides() -> None:
    kinds = (FaultKind.SERVER_500, FaultKind.UNAVAILABLE_503)
    settings = EmulatorSettings(fail_rate=0.3, faults=kinds, seed=5)
    texts = [f"Item {i}." for i in range(30)]
    predictor = FaultInjector()
    expected = {t for t in texts if predictor.decide(settings, Endpoint.BYTES, t) is not None}
    state = EmulatorState(settings)
    async with in_process(state) as client:
        failed = set()
        for text in texts:
            response = await client.post("/text_to_speech", json=synth_body(text))
            if response.status_code != 200:
                assert response.status_code in (500, 503)
                failed.add(text)
    assert failed == expected and 0 < len(failed) < len(texts)
    assert state.snapshot()["faults_injected_total"] == len(failed)


async def test_latency_has_a_base_and_a_per_character_part() -> None:
    state = EmulatorState(EmulatorSettings(latency_ms=20, latency_per_char_ms=3))
    waits: list[float] = []
    real_sleep = state.sleep

    async def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(seconds)

    state.sleep = recording_sleep
    long_text = "A considerably longer transcript that takes the emulator a while to say."
    async with in_process(state) as client:
        assert (await client.post("/text_to_speech", json=synth_body("Short."))).status_code == 200
        started = time.perf_counter()
        assert (await client.post("/text_to_speech", json=synth_body(long_text))).status_code == 200
        elapsed = time.perf_counter() - started
        await client.post("/voices", json={})  # not a synthesis request: no latency
    assert waits == pytest.approx([0.020 + 6 * 0.003, 0.020 + len(long_text) * 0.003])
    assert elapsed >= waits[1]  # the wait is real


async def test_stats_count_by_route_and_status_and_reset_clears_them() -> None:
    state = EmulatorState(EmulatorSettings(api_keys=(KEY,)))
    async with in_process(state) as client:
        await client.post("/text_to_speech", json=synth_body("Once."))
        await client.post("/text_to_speech", json=synth_body("Once."))
        await client.post("/text_to_speech", json=synth_body(language="xx"))
        await client.post("/text_to_speech", json=synth_body(), headers={"x-api-key": "sk_nope_nope"})
        await client.get("/voices/e0f39dc4-f691-4e78-bba5-5c636692cc04")
        over_http = (await client.get("/_emulator/stats")).json()
        reset = await client.post("/_emulator/reset")
        after = (await client.get("/_emulator/stats")).json()
    assert over_http["requests"]["/text_to_speech"] == {"200": 2, "400": 1, "401": 1}
    assert over_http["requests"]["/voices/{voice_id}"] == {"200": 1}
    assert over_http["synth_successes"] == {transcript_hash("Once."): 2}
    assert over_http["characters_synthesized"] == 10
    assert KEY not in json.dumps(over_http)  # accounts are labelled, never named in full
    assert reset.status_code == 200
    assert after["requests"] == {} and after["characters_synthesized"] == 0


async def test_config_endpoint_changes_a_running_server() -> None:
    state = EmulatorState(EmulatorSettings(monthly_chars=5))
    async with in_process(state) as client:
        before = await client.post("/text_to_speech", json=synth_body("Too long."))
        changed = await client.post("/_emulator/config", json={"monthly_chars": 1000, "faults": ["500"]})
        after = await client.post("/text_to_speech", json=synth_body("Too long."))
        rejected = await client.post("/_emulator/config", json={"fail_rate": 3})
    assert before.status_code == 429 and after.status_code == 200
    assert changed.json()["monthly_chars"] == 1000 and changed.json()["faults"] == ["500"]
    assert rejected.status_code == 400 and "fail_rate" in rejected.json()["detail"]


def test_parse_faults() -> None:
    assert parse_faults("all") == tuple(FaultKind)
    assert parse_faults("500, drop,500") == (FaultKind.SERVER_500, FaultKind.DROP)
    with pytest.raises(ValueError, match="unknown fault kind 'boom'"):
        parse_faults("500,boom")


_WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Z", "Cc")), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(_WORDS, min_size=1, max_size=8),
    gaps=st.lists(st.sampled_from([" ", "  ", "\n", "\t "]), min_size=8, max_size=8),
)
def test_entries_are_the_whitespace_tokens(words: list[str], gaps: list[str]) -> None:
    transcript = "".join(w + g for w, g in zip(words, gaps, strict=False))
    assert transcript_entries(transcript) == transcript.split()


def test_entries_keep_tags_whole() -> None:
    text = "say <break time = '1s' /> it <digits>1 2 3</digits>, twice<break time='2s'/>now"
    expected = ["say", "<break time = '1s' />", "it", "<digits>1 2 3</digits>,"]
    assert transcript_entries(text) == [*expected, "twice<break time='2s'/>now"]


@settings(max_examples=200, deadline=None)
@given(rate=st.integers(min_value=0, max_value=100_000))
def test_sample_rate_range(rate: int) -> None:
    body = json.dumps(synth_body(output_format={"sample_rate": rate})).encode()
    if 8000 <= rate <= 48000:
        assert parse_synthesis_request(body, Endpoint.BYTES).output_format.sample_rate == rate
    else:
        with pytest.raises(Exception, match=r"^output_format\.sample_rate: must be between"):
            parse_synthesis_request(body, Endpoint.BYTES)
