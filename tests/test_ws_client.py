"""The WebSocket client's pure parts: the socket URL, the initialize message, and how error
frames map onto the engine's errors (fatal or worth a retry)."""

from __future__ import annotations

import pytest

from pipeline.config import EngineConfig
from pipeline.errors import (
    AuthError,
    QuotaExceededError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    VoiceNotFoundError,
)
from pipeline.tts.ws_client import frame_error, init_message, ws_base
from pipeline.tts.ws_engine import chapter_of

SECRET = "sk_live_Secret123456789"
ENGINE = EngineConfig(kind="asyncflow", voice="v-1", transport="websocket", speed=1.2)


def test_socket_url_follows_the_base_url_scheme() -> None:
    assert ws_base("https://api.async.com") == "wss://api.async.com/text_to_speech/websocket/ws"
    assert ws_base("http://127.0.0.1:8200/") == "ws://127.0.0.1:8200/text_to_speech/websocket/ws"


def test_init_message_asks_for_raw_pcm_at_the_job_rate() -> None:
    msg = init_message(ENGINE)
    assert msg["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}
    assert msg["voice"] == {"mode": "id", "id": "v-1"} and msg["speed_control"] == 1.2
    assert "api_key" not in str(msg)


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ({"error_code": "INVALID_API_KEY", "message": "invalid API key 'sk_liv...89'"}, AuthError),
        ({"error_code": "VOICE_NOT_FOUND", "message": "voice 'v-1' not found"}, VoiceNotFoundError),
        ({"error_code": "USAGE_LIMIT_EXCEEDED", "extra": {"limit": 5, "current": 5}}, QuotaExceededError),
        ({"error_code": "TOO_MANY_CONCURRENT_REQUESTS", "message": "busy", "extra": {"limit": 2}}, RateLimitedError),
        ({"error_code": "RATE_LIMIT_EXCEEDED", "message": "slow", "extra": {"retry_after_ms": 1500}}, RateLimitedError),
        ({"error_code": "TIMEOUT", "message": "idle"}, ServerError),
        ({"error_code": "INTERNAL_SERVER_ERROR", "message": "boom " + SECRET}, ServerError),
        ({"error_code": "SOMETHING_NEW", "message": "?"}, ServerError),
        ({"error_code": "INVALID_MODEL", "message": "model_id: no"}, RequestRejectedError),
    ],
)
def test_error_frames_map_onto_engine_errors(frame: dict[str, object], kind: type[Exception]) -> None:
    error = frame_error(frame, context="chunk c0000-00001", engine=ENGINE, secret=SECRET)
    assert type(error) is kind
    assert "chunk c0000-00001" in str(error) and SECRET not in str(error) and "sk_liv" not in str(error)
    if frame["error_code"] == "RATE_LIMIT_EXCEEDED":
        assert isinstance(error, RateLimitedError) and error.retry_after_s == 1.5


def test_chunk_ids_name_their_chapter() -> None:
    assert chapter_of("c0003-00012") == (3, 12)
    assert chapter_of("probe") == (-1, 0)
