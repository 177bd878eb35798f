"""Checks a synthesis request body the way ASYNCFLOW_API.md documents it.

Every problem becomes one ``ApiError`` whose message starts with the dotted field name, so a
client can tell its user exactly what to fix. Validation errors are 400 with ``error_code``
``VALIDATION_ERROR`` (``extra.field`` names the field), except the documented special cases:
``INVALID_LANGUAGE`` and ``INVALID_MODEL``. Unknown fields are ignored, as the service does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipeline.emulator.responses import ApiError


class Endpoint(StrEnum):
    BYTES = "/text_to_speech"
    TIMESTAMPS = "/text_to_speech/with_timestamps"
    STREAMING = "/text_to_speech/streaming"


SUPPORTED_LANGUAGES = frozenset(
    {"en", "fr", "es", "de", "it", "pt", "ar", "ru", "ro", "ja", "he", "hy", "tr", "hi", "zh", "nl"}
)

FLASH_V1 = "async_flash_v1.0"
_LEGACY_MODELS = ("asyncflow_v2.0", "asyncflow_multilingual_v1.0")
# async_flash_v1.5 and async_pro_v1.0 are documented for streaming (and the WebSocket) only.
MODELS_BY_ENDPOINT: dict[Endpoint, tuple[str, ...]] = {
    Endpoint.BYTES: (FLASH_V1, *_LEGACY_MODELS),
    Endpoint.TIMESTAMPS: (FLASH_V1, *_LEGACY_MODELS),
    Endpoint.STREAMING: (FLASH_V1, "async_flash_v1.5", "async_pro_v1.0", *_LEGACY_MODELS),
}
CONTAINERS_BY_ENDPOINT: dict[Endpoint, tuple[str, ...]] = {
    Endpoint.BYTES: ("raw", "mp3", "wav"),
    Endpoint.TIMESTAMPS: ("raw", "mp3", "wav"),
    Endpoint.STREAMING: ("raw", "mp3"),
}
ENCODINGS_BY_ENDPOINT: dict[Endpoint, tuple[str, ...]] = {
    Endpoint.BYTES: ("pcm_s16le", "pcm_f32le"),
    Endpoint.TIMESTAMPS: ("pcm_s16le", "pcm_f32le"),
    Endpoint.STREAMING: ("pcm_s16le", "pcm_f32le", "pcm_mulaw"),
}


@dataclass(frozen=True, slots=True)
class OutputFormat:
    container: str
    encoding: str
    sample_rate: int
    bit_rate: int = 192_000


@dataclass(frozen=True, slots=True)
class SynthesisRequest:
    model_id: str
    transcript: str
    voice_id: str
    output_format: OutputFormat
    language: str | None = None
    speed: float | None = None  # speed_control; only async_flash_v1.0 honours it
    stability: float | None = None


def invalid(field: str, problem: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", f"{field}: {problem}", {"field": field})


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj or obj[key] is None:
        raise invalid(path, "field required")
    return obj[key]


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise invalid(path, f"must be a string, got {type(value).__name__}")
    return value


def _integer(value: Any, path: str, low: int, high: int) -> int:
    # JSON numbers like 44100.0 are integers too; booleans are not.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise invalid(path, f"must be an integer between {low} and {high}, got {value!r}")
    if not low <= value <= high:
        raise invalid(path, f"must be between {low} and {high}, got {value!r}")
    return int(value)


def _number(value: Any, path: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(path, f"must be a number between {low} and {high}, got {value!r}")
    if not low <= value <= high:
        raise invalid(path, f"must be between {low} and {high}, got {value!r}")
    return float(value)


def _choice(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise invalid(path, f"must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "INVALID_REQUEST", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_REQUEST", "the request body must be a JSON object")
    return data


def check_language(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in SUPPORTED_LANGUAGES:
        raise ApiError(
            400,
            "INVALID_LANGUAGE",
            f"language: unsupported language {value!r}; use one of {', '.join(sorted(SUPPORTED_LANGUAGES))}",
            {"language": value},
        )
    return value


def output_format_of(value: Any, endpoint: Endpoint) -> OutputFormat:
    if not isinstance(value, dict):
        raise invalid("output_format", "must be an object")
    container = _choice(
        _required(value, "container", "output_format.container"),
        "output_format.container",
        CONTAINERS_BY_ENDPOINT[endpoint],
    )
    sample_rate = _integer(
        _required(value, "sample_rate", "output_format.sample_rate"),
        "output_format.sample_rate",
        8000,
        48000,
    )
    encoding = value.get("encoding")
    if container == "mp3":
        encoding = "mp3"  # the API ignores the encoding for mp3
    elif encoding is None:
        encoding = "pcm_s16le"
    else:
        encoding = _choice(encoding, "output_format.encoding", ENCODINGS_BY_ENDPOINT[endpoint])
    bit_rate = value.get("bit_rate")
    if bit_rate is None:
        bit_rate = 192_000
    elif container != "mp3":
        raise invalid("output_format.bit_rate", "applies to the mp3 container only")
    else:
        bit_rate = _integer(bit_rate, "output_format.bit_rate", 32_000, 320_000)
    return OutputFormat(container, encoding, sample_rate, bit_rate)


def parse_synthesis_request(body: bytes, endpoint: Endpoint) -> SynthesisRequest:
    """The validated request, or ApiError for the first problem found."""
    data = parse_json_object(body)
    model_id = _string(_required(data, "model_id", "model_id"), "model_id")
    allowed_models = MODELS_BY_ENDPOINT[endpoint]
    if model_id not in allowed_models:
        raise ApiError(
            400,
            "INVALID_MODEL",
            f"model_id: {model_id!r} is not available on {endpoint.value}; use one of {', '.join(allowed_models)}",
            {"model_id": model_id, "allowed": list(allowed_models)},
        )
    transcript = _string(_required(data, "transcript", "transcript"), "transcript")
    if not transcript.strip():
        raise invalid("transcript", "must not be empty")
    voice = _required(data, "voice", "voice")
    if not isinstance(voice, dict):
        raise invalid("voice", 'must be an object like {"mode": "id", "id": "..."}')
    _choice(_required(voice, "mode", "voice.mode"), "voice.mode", ("id",))
    voice_id = _string(_required(voice, "id", "voice.id"), "voice.id")
    output_format = output_format_of(_required(data, "output_format", "output_format"), endpoint)
    language = check_language(data.get("language"))
    speed = _number(data.get("speed_control"), "speed_control", 0.7, 2.0)
    stability = _number(data.get("stability"), "stability", 0, 100)
    if model_id != FLASH_V1:
        speed = stability = None  # documented as effective on async_flash_v1.0 only
    return SynthesisRequest(model_id, transcript, voice_id, output_format, language, speed, stability)


# The WebSocket takes the streaming endpoint's models and formats; its output_format is optional.
WS_DEFAULT_FORMAT: dict[str, Any] = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 44100}


def parse_ws_init(data: dict[str, Any]) -> SynthesisRequest:
    """The WebSocket's initialize message, checked like a synthesis body (no transcript yet)."""
    model_id = _string(_required(data, "model_id", "model_id"), "model_id")
    allowed_models = MODELS_BY_ENDPOINT[Endpoint.STREAMING]
    if model_id not in allowed_models:
        raise ApiError(
            400,
            "INVALID_MODEL",
            f"model_id: {model_id!r} is not available on the WebSocket; use one of {', '.join(allowed_models)}",
            {"model_id": model_id, "allowed": list(allowed_models)},
        )
    voice = _required(data, "voice", "voice")
    if not isinstance(voice, dict):
        raise invalid("voice", 'must be an object like {"mode": "id", "id": "..."}')
    _choice(_required(voice, "mode", "voice.mode"), "voice.mode", ("id",))
    voice_id = _string(_required(voice, "id", "voice.id"), "voice.id")
    given = data.get("output_format")
    if given is not None and not isinstance(given, dict):
        raise invalid("output_format", "must be an object")
    output_format = output_format_of({**WS_DEFAULT_FORMAT, **(given or {})}, Endpoint.STREAMING)
    language = check_language(data.get("language"))
    speed = _number(data.get("speed_control"), "speed_control", 0.7, 2.0)
    stability = _number(data.get("stability"), "stability", 0, 100)
    if model_id != FLASH_V1:
        speed = stability = None
    return SynthesisRequest(model_id, "", voice_id, output_format, language, speed, stability)
