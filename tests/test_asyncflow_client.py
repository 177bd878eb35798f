"""The AsyncFlow engine against a scripted API over httpx.MockTransport, in virtual time."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import numpy as np
import pytest

from pipeline.errors import (
    AuthError,
    BadResponseError,
    EngineError,
    QuotaExceededError,
    RequestRejectedError,
    ServerError,
    VoiceNotFoundError,
)
from pipeline.models import WordTiming
from tests.fake_asyncflow import (
    KEY,
    MS_PER_WORD,
    VOICE,
    FakeApi,
    VirtualTime,
    error,
    make_engine,
    retry_waits,
    speak,
    timestamps_body,
    tone,
    wav_bytes,
)

# --- request shape -----------------------------------------------------------------------


async def test_request_carries_key_version_and_the_jobs_settings() -> None:
    api, vt = FakeApi(sample_rate=22050), VirtualTime()
    engine = make_engine(api, vt, sample_rate=22050, language="fr", speed=1.25, stability=40)
    await speak(engine, vt, ["Bonjour", "", "le", "monde."])
    [seen] = api.seen
    assert (seen.method, seen.path) == ("POST", "/text_to_speech/with_timestamps")
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["version"] == "v1"
    assert "authorization" not in seen.headers
    assert seen.body == {
        "model_id": "async_flash_v1.0",
        "transcript": "Bonjour le monde.",
        "voice": {"mode": "id", "id": VOICE},
        "output_format": {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 22050},
        "language": "fr",
        "speed_control": 1.25,
        "stability": 40,
    }


async def test_optional_fields_are_left_out_when_unset_and_no_timings_uses_plain_endpoint() -> None:
    api, vt = FakeApi(container="raw"), VirtualTime()
    engine = make_engine(api, vt, language=None, container="raw")
    audio = await speak(engine, vt, ["Hello", "there"], timings=False)
    [seen] = api.seen
    assert seen.path == "/text_to_speech"
    assert set(seen.body) == {"model_id", "transcript", "voice", "output_format"}
    assert seen.body["output_format"]["container"] == "raw"
    assert audio.samples.dtype == np.int16 and audio.sample_rate == 24000
    assert audio.duration_ms == 2 * MS_PER_WORD
    # Estimated from letter counts: "Hello" (5) then "there" (5) split the 200 ms evenly.
    assert audio.timings == (WordTiming(0, 100), WordTiming(100, 200))


async def test_timestamps_are_decoded_and_mapped_onto_our_words() -> None:
    reply = timestamps_body(["Hello", ",", "world", "!"], 24000)
    api, vt = FakeApi(script=[httpx.Response(200, json=reply)]), VirtualTime()
    audio = await speak(make_engine(api, vt), vt, ["Hello,", "world!"])
    assert audio.duration_ms == 400
    assert audio.timings == (WordTiming(0, 100), WordTiming(200, 300))
    expected = tone(400, 24000)
    assert np.array_equal(audio.samples, expected)


async def test_a_chunk_with_nothing_to_say_costs_no_request() -> None:
    api, vt = FakeApi(), VirtualTime()
    audio = await speak(make_engine(api, vt), vt, ["", ""])
    assert api.seen == [] and len(audio.samples) == 0
    assert audio.timings == (WordTiming(0, 0), WordTiming(0, 0))


# --- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("flat", [False, True])
async def test_rate_limit_waits_retry_after_ms_and_is_not_a_failure(flat: bool) -> None:
    script = [error(429, "RATE_LIMIT_EXCEEDED", flat=flat, limit=120, retry_after_ms=2500)]
    api, vt = FakeApi(script=list(script)), VirtualTime()
    engine = make_engine(api, vt, retries=0)  # no retries for failures: a 429 is not one
    audio = await speak(engine, vt, ["one", "two"])
    assert len(audio.timings) == 2
    assert retry_waits(vt) == [2.5]
    assert engine.stats.rate_limited == {"RATE_LIMIT_EXCEEDED": 1}
    assert engine.stats.retries == 1 and len(api.seen) == 2


async def test_retry_after_header_is_the_fallback() -> None:
    script = [error(429, "RATE_LIMIT_EXCEEDED", headers={"Retry-After": "7"}, limit=120)]
    api, vt = FakeApi(script=script), VirtualTime()
    await speak(make_engine(api, vt), vt, ["one"])
    assert retry_waits(vt) == [7.0]


async def test_server_errors_back_off_exponentially_within_bounds() -> None:
    body_500 = {"message": "Internal Server Error", "method": "POST", "url": "/x", "detail": "boom"}
    script = [httpx.Response(500, json=body_500)] * 9 + [httpx.Response(503, text="busy")]
    api, vt = FakeApi(script=list(script)), VirtualTime()
    engine = make_engine(api, vt, retries=10)
    await speak(engine, vt, ["finally"])
    waits = retry_waits(vt)
    assert len(waits) == 10 and engine.stats.server_errors == 10
    for n, wait in enumerate(waits, start=1):
        step = min(30.0, 0.5 * 2 ** (n - 1))
        assert step / 2 <= wait <= step
    assert max(waits) <= 30.0


async def test_a_chunk_that_keeps_failing_raises_its_last_error_naming_the_chunk() -> None:
    body_500 = {"message": "Internal Server Error", "method": "POST", "url": "/x", "detail": "boom"}
    api, vt = FakeApi(script=[httpx.Response(500, json=body_500)] * 3), VirtualTime()
    with pytest.raises(ServerError) as caught:
        await speak(make_engine(api, vt, retries=2), vt, ["never"], chunk_id="c0003-00007")
    message = str(caught.value)
    assert message.startswith("chunk c0003-00007: server error (500)")
    assert "Internal Server Error" in message and "after 3 attempts" in message
    assert "\n" not in message and len(api.seen) == 3


async def test_timeouts_and_dropped_connections_are_retried() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    api, vt = FakeApi(script=[timeout, dropped]), VirtualTime()
    engine = make_engine(api, vt)
    audio = await speak(engine, vt, ["made", "it"])
    assert len(audio.timings) == 2 and engine.stats.server_errors == 2 and engine.stats.retries == 2


@pytest.mark.parametrize(
    ("reply", "exc_type", "needle"),
    [
        (error(401, "INVALID_API_KEY", api_key="sk_liv..."), AuthError, "$ASYNCAI_API_KEY"),
        (error(404, "VOICE_NOT_FOUND", flat=True, voice_id=VOICE), VoiceNotFoundError, VOICE),
        (error(400, "INVALID_LANGUAGE"), RequestRejectedError, "engine.language"),
        (
            error(400, "VALIDATION_ERROR", field="output_format.sample_rate"),
            RequestRejectedError,
            "engine.sample_rate",
        ),
        (
            httpx.Response(422, json={"detail": [{"loc": ["body", "stability"], "msg": "too big"}]}),
            RequestRejectedError,
            "engine.stability",
        ),
        (error(404, "VERSION_NOT_FOUND"), RequestRejectedError, "API version v1"),
        (
            error(429, "USAGE_LIMIT_EXCEEDED", limit=100000, current=100000),
            QuotaExceededError,
            "100000 of 100000 characters",
        ),
    ],
)
async def test_fatal_errors_stop_at_once_with_one_clear_line(
    reply: httpx.Response, exc_type: type[EngineError], needle: str
) -> None:
    api, vt = FakeApi(script=[reply]), VirtualTime()
    with pytest.raises(exc_type) as caught:
        await speak(make_engine(api, vt), vt, ["hello"], chunk_id="c0001-00002")
    message = str(caught.value)
    assert len(api.seen) == 1 and retry_waits(vt) == []
    assert message.startswith("chunk c0001-00002: ") and needle in message and "\n" not in message


def truncated_wav() -> bytes:
    return wav_bytes(tone(300, 24000), 24000)[:-200]


def bad_alignment(**changes: Any) -> httpx.Response:
    body = timestamps_body(["one", "two"], 24000)
    body["alignment"].update(changes)
    return httpx.Response(200, json=body)


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (httpx.Response(200, content=b'{"audio_base64": "UklG'), "not valid JSON"),
        (bad_alignment(word_end_times_milliseconds=[100]), "differ in length"),
        (
            bad_alignment(word_start_times_milliseconds=[50, 0], word_end_times_milliseconds=[60, 70]),
            "backwards",
        ),
        (
            bad_alignment(word_start_times_milliseconds=[0, 100], word_end_times_milliseconds=[100, 5000]),
            "after the audio",
        ),
        (bad_alignment(word_start_times_milliseconds=[0, -5]), "out of order"),
        (httpx.Response(200, json={"audio_base64": "!!", "alignment": {}}), "base64"),
        (
            httpx.Response(
                200,
                json={
                    "audio_base64": base64.b64encode(truncated_wav()).decode(),
                    "alignment": {
                        "words": ["one"],
                        "word_start_times_milliseconds": [0],
                        "word_end_times_milliseconds": [100],
                    },
                },
            ),
            "cut short",
        ),
        (httpx.Response(200, json=timestamps_body(["one", "two"], 16000)), "16000 Hz"),
    ],
)
async def test_broken_replies_are_retried_then_reported(reply: httpx.Response, needle: str) -> None:
    api, vt = FakeApi(script=[reply] * 3), VirtualTime()
    engine = make_engine(api, vt, retries=2)
    with pytest.raises(BadResponseError) as caught:
        await speak(engine, vt, ["one", "two"], chunk_id="c0002-00001")
    assert len(api.seen) == 3 and engine.stats.bad_responses == 3
    assert str(caught.value).startswith("chunk c0002-00001: ") and needle in str(caught.value)


async def test_a_broken_reply_followed_by_a_good_one_succeeds() -> None:
    api, vt = FakeApi(script=[bad_alignment(word_end_times_milliseconds=[1])]), VirtualTime()
    audio = await speak(make_engine(api, vt), vt, ["one", "two"])
    assert audio.timings == (WordTiming(0, 100), WordTiming(100, 200))


async def test_concurrent_chunks_keep_their_own_retry_state_and_results() -> None:
    # Every chunk's first attempt fails, and chunks saying "doomed" always fail: each of 30
    # chunks gets exactly its own timings or its own error with its own attempt count.
    api, vt = FakeApi(latency_s=0.2), VirtualTime()
    failed_once: set[bytes] = set()
    original = api.handle

    async def sometimes_503(request: httpx.Request) -> httpx.Response:
        if request.content not in failed_once or b"doomed" in request.content:
            failed_once.add(request.content)
            await vt.sleep(0.1)  # fail while others are mid-flight
            return httpx.Response(503, text="busy")
        return await original(request)

    api.handle = sometimes_503  # type: ignore[method-assign]
    api.time = vt
    engine = make_engine(api, vt, concurrency=4, retries=3)
    chunks = [["doomed", str(i)] if i % 7 == 3 else [f"w{i}"] * (i % 5 + 1) for i in range(30)]
    results = await vt.run(
        asyncio.gather(
            *(engine.synthesize(words, chunk_id=f"c0000-{i:05d}", need_timings=True) for i, words in enumerate(chunks)),
            return_exceptions=True,
        )
    )
    for i, (words, result) in enumerate(zip(chunks, results, strict=True)):
        if words[0] == "doomed":
            assert isinstance(result, ServerError)
            assert str(result).startswith(f"chunk c0000-{i:05d}: ") and "after 4 attempts" in str(result)
        else:
            assert not isinstance(result, BaseException), result
            assert len(result.timings) == len(words)
            assert result.duration_ms == MS_PER_WORD * len(words)
    assert engine.stats.peak_in_flight <= 4


# --- limits end to end -------------------------------------------------------------------


def max_in_any_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u <= t + window) for t in times)


async def test_a_job_at_the_servers_limits_never_sees_a_429() -> None:
    vt = VirtualTime()
    api = FakeApi(time=vt, rpm=10, concurrency=3, latency_s=2.0)
    engine = make_engine(api, vt, rpm=10, concurrency=3)
    results = await vt.run(
        asyncio.gather(
            *(engine.synthesize(["a", "b"], chunk_id=f"c0000-{i:05d}", need_timings=True) for i in range(25))
        )
    )
    assert len(results) == 25
    assert engine.stats.rate_limited == {} and engine.stats.retries == 0
    assert max_in_any_window([s.at for s in api.seen]) <= 10
    assert api.peak_in_flight <= 3
    assert vt.now >= 2 * 60  # 25 at 10 a minute: the third window opens no sooner (virtual time)


async def test_too_many_concurrent_requests_lowers_the_cap_and_loses_nothing() -> None:
    vt = VirtualTime()
    api = FakeApi(time=vt, concurrency=2, latency_s=1.0)
    engine = make_engine(api, vt, concurrency=8, retries=0)
    results = await vt.run(
        asyncio.gather(*(engine.synthesize(["x"], chunk_id=f"c0000-{i:05d}", need_timings=True) for i in range(60)))
    )
    assert len(results) == 60
    assert engine.stats.rate_limited.get("TOO_MANY_CONCURRENT_REQUESTS", 0) >= 1
    assert engine.stats.concurrency_min <= 2
    # Requests after the drop mostly get through: far fewer 429s than chunks.
    assert engine.stats.rate_limited["TOO_MANY_CONCURRENT_REQUESTS"] < 30


async def test_raw_odd_byte_count_is_a_bad_response() -> None:
    api = FakeApi(script=[httpx.Response(200, content=b"\x00\x01\x02")] * 2, container="raw")
    vt = VirtualTime()
    with pytest.raises(BadResponseError, match="odd byte count"):
        await speak(make_engine(api, vt, container="raw", retries=1), vt, ["x"], timings=False)
