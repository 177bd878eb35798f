"""The AsyncFlow engine's secrecy, start-up check and voice listing, against a scripted API."""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime

import httpx
import pytest

from pipeline.errors import AuthError, BadResponseError, EngineError, RequestRejectedError, VoiceNotFoundError
from pipeline.tts.asyncflow import api_key_from_env
from pipeline.tts.voices import list_voices
from pipeline.tts.wire import redact, retry_after_header
from tests.fake_asyncflow import KEY, VOICE, FakeApi, VirtualTime, engine_config, error, make_engine, speak

# --- the key stays secret ----------------------------------------------------------------


async def test_the_key_never_appears_in_messages_logs_reprs_or_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = error(401, "INVALID_API_KEY", api_key=KEY[:6] + "...", flat=True)
    echo_body = echo.json()
    echo_body["message"] = f"invalid api key {KEY} (starts {KEY[:10]})"

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused while sending {request.headers}", request=request)

    api = FakeApi(
        script=[
            refused,
            httpx.Response(500, text=f"oops {KEY}"),
            httpx.Response(401, json=echo_body),
        ]
    )
    vt = VirtualTime()
    engine = make_engine(api, vt)
    with pytest.raises(AuthError) as caught:
        await speak(engine, vt, ["secret"])
    rendered = "".join(traceback.format_exception(caught.value))
    texts = [str(caught.value), rendered, repr(engine), caplog.text, repr(engine.stats)]
    for text in texts:
        assert KEY not in text and KEY[:6] not in text and KEY[-6:] not in text
    assert "ASYNCAI_API_KEY" in str(caught.value)
    assert len(api.seen) == 3


def test_api_key_from_env_names_the_variable_never_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = engine_config(api_key_env="MY_TTS_KEY")
    monkeypatch.delenv("MY_TTS_KEY", raising=False)
    with pytest.raises(AuthError, match="MY_TTS_KEY"):
        api_key_from_env(cfg)
    monkeypatch.setenv("MY_TTS_KEY", "  ")
    with pytest.raises(AuthError, match="MY_TTS_KEY"):
        api_key_from_env(cfg)
    monkeypatch.setenv("MY_TTS_KEY", "sk_bad\nvalue")
    with pytest.raises(AuthError) as caught:
        api_key_from_env(cfg)
    assert "sk_bad" not in str(caught.value)
    monkeypatch.setenv("MY_TTS_KEY", f" {KEY}\n")
    assert api_key_from_env(cfg) == KEY


def test_identity_is_what_shapes_the_audio() -> None:
    vt = VirtualTime()
    engine = make_engine(FakeApi(), vt, speed=1.1)
    identity = engine.identity()
    assert identity == {
        "engine": "asyncflow",
        "model": "async_flash_v1.0",
        "voice": VOICE,
        "language": "en",
        "speed": 1.1,
        "stability": None,
        "sample_rate": 24000,
        "container": "wav",
        "encoding": "pcm_s16le",
    }
    other = make_engine(FakeApi(), vt, speed=1.1, base_url="https://api.async.ai").identity()
    assert other == identity


# --- check and voices --------------------------------------------------------------------


async def test_check_passes_for_a_good_key_and_voice() -> None:
    api, vt = FakeApi(), VirtualTime()
    await vt.run(make_engine(api, vt).check())
    assert [(s.method, s.path) for s in api.seen] == [("GET", "/"), ("GET", f"/voices/{VOICE}")]


@pytest.mark.parametrize(
    ("reply", "exc_type"),
    [
        (error(401, "INVALID_API_KEY"), AuthError),
        (error(404, "VOICE_NOT_FOUND"), VoiceNotFoundError),
    ],
)
async def test_check_fails_fast_on_a_wrong_key_or_voice(reply: httpx.Response, exc_type: type[EngineError]) -> None:
    ok = httpx.Response(200, json={"ok": True, "version": "v1"})
    api, vt = FakeApi(script=[ok, reply]), VirtualTime()
    with pytest.raises(exc_type):
        await vt.run(make_engine(api, vt).check())
    assert len(api.seen) == 2


async def test_check_falls_back_to_voices_batch_when_get_voice_is_missing() -> None:
    ok = httpx.Response(200, json={"status": "ok"})
    missing = httpx.Response(404, json={"detail": "Not Found"})
    api, vt = FakeApi(script=[ok, missing, httpx.Response(200, json=[])]), VirtualTime()
    with pytest.raises(VoiceNotFoundError, match=r"engine\.voice"):
        await vt.run(make_engine(api, vt).check())
    assert api.seen[-1].path == "/voices/batch" and api.seen[-1].body == {"voice_ids": [VOICE]}


async def test_list_voices_follows_next_cursor() -> None:
    def page(ids: list[str], cursor: str | None) -> httpx.Response:
        return httpx.Response(200, json={"voices": [{"voice_id": i, "name": i} for i in ids], "next_cursor": cursor})

    busy = httpx.Response(503, text="busy")
    api = FakeApi(script=[page(["a", "b"], "b"), busy, page(["c"], "c"), page([], None)])
    vt = VirtualTime()
    voices = await vt.run(
        list_voices(
            engine_config(),
            KEY,
            transport=api.transport(),
            sleep=vt.sleep,
            clock=vt.clock,
            language="en",
            gender=None,
        )
    )
    assert [v["voice_id"] for v in voices] == ["a", "b", "c"]
    assert [s.body.get("after") for s in api.seen] == [None, "b", "b", "c"]  # 503 retried
    assert all(s.body["language"] == "en" and "gender" not in s.body for s in api.seen)
    assert all(s.path == "/voices" and s.headers["x-api-key"] == KEY for s in api.seen)


async def test_list_voices_refuses_a_cursor_loop_and_unknown_filters() -> None:
    loop = httpx.Response(200, json={"voices": [{"voice_id": "a"}], "next_cursor": "a"})
    api, vt = FakeApi(script=[loop, loop]), VirtualTime()
    with pytest.raises(BadResponseError, match="already used"):
        await vt.run(list_voices(engine_config(), KEY, transport=api.transport(), sleep=vt.sleep, clock=vt.clock))
    with pytest.raises(RequestRejectedError, match="colour"):
        await list_voices(engine_config(), KEY, transport=api.transport(), colour="blue")


def test_redaction_catches_truncated_keys_but_not_ordinary_words() -> None:
    text = f"bad key {KEY[:8]}..., also ...{KEY[-6:]} and sk_abc; see task_list"
    cleaned = redact(text, KEY)
    assert KEY[:6] not in cleaned and KEY[-6:] not in cleaned and "sk_abc" not in cleaned
    assert "task_list" in cleaned


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_header("3", now=now) == 3.0
    assert retry_after_header("Wed, 01 Jan 2025 12:00:09 GMT", now=now) == 9.0
    assert retry_after_header("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert retry_after_header("soon", now=now) is None and retry_after_header(None) is None
