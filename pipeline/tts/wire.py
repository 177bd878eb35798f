"""What goes over the wire to AsyncFlow and what comes back, with no I/O of its own.

Building the request body, turning a non-200 answer (either error body shape, the 500 shape, a
FastAPI 422 list, or no JSON at all) into the right exception from ``pipeline.errors``, and
checking a 200 before we trust it. Every message is one line that starts with its context
(``chunk c0001-00002``) and passes through :func:`redact`, so the API key never leaves here.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import struct
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import numpy as np
import soundfile

from pipeline.config import EngineConfig
from pipeline.errors import (
    AuthError,
    BadResponseError,
    EngineError,
    QuotaExceededError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    VoiceNotFoundError,
)
from pipeline.tts.wordmap import Alignment

API_VERSION = "v1"
SPEECH_PATH = "/text_to_speech"
TIMESTAMPS_PATH = "/text_to_speech/with_timestamps"
ENCODING = "pcm_s16le"
# Word end times may run past the audio by a rounding error; more than this is a broken reply.
END_TOLERANCE_MS = 10.0
_MAX_SERVER_TEXT = 200

# Request fields the server may name in a validation error, and the job key that sets each.
_FIELD_TO_JOB_KEY = {
    "model_id": "engine.model",
    "voice": "engine.voice",
    "voice.id": "engine.voice",
    "output_format": "engine.container/engine.sample_rate",
    "output_format.container": "engine.container",
    "output_format.sample_rate": "engine.sample_rate",
    "output_format.encoding": "output_format.encoding",
    "language": "engine.language",
    "speed_control": "engine.speed",
    "stability": "engine.stability",
    "transcript": "the chunk's text",
}


def output_format(engine: EngineConfig) -> dict[str, Any]:
    return {"container": engine.container, "encoding": ENCODING, "sample_rate": engine.sample_rate}


def synthesis_body(engine: EngineConfig, transcript: str) -> dict[str, Any]:
    """The JSON body of both synthesis endpoints; optional fields only when the job sets them."""
    body: dict[str, Any] = {
        "model_id": engine.model,
        "transcript": transcript,
        "voice": {"mode": "id", "id": engine.voice},
        "output_format": output_format(engine),
    }
    if engine.language is not None:
        body["language"] = engine.language
    if engine.speed is not None:
        body["speed_control"] = engine.speed
    if engine.stability is not None:
        body["stability"] = engine.stability
    return body


_KEY_LIKE = re.compile(r"(?<![A-Za-z0-9])sk_[A-Za-z0-9_\-.*…]*")


def redact(text: str, secret: str) -> str:
    """``text`` with the key removed, including truncated forms ("sk_ab12...", first or last
    characters) that servers like to echo back."""
    if secret:
        for size in range(len(secret), min(6, len(secret)) - 1, -1):
            for part in {secret[:size], secret[-size:]}:
                if part in text:
                    text = text.replace(part, "[key]")
    return _KEY_LIKE.sub("[key]", text)


def one_line(text: str, secret: str) -> str:
    """Server-supplied text made safe to show: one line, bounded, no key."""
    flat = " ".join(str(text).split())
    if len(flat) > _MAX_SERVER_TEXT:
        flat = flat[: _MAX_SERVER_TEXT - 1] + "…"
    return redact(flat, secret)


def retry_after_header(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _error_fields(payload: Any) -> tuple[str | None, str | None, dict[str, Any], str | None]:
    """(error_code, message, extra, field) from any of the documented body shapes."""
    if not isinstance(payload, dict):
        return None, None, {}, None
    detail = payload.get("detail")
    if isinstance(detail, dict) and ("error_code" in detail or "message" in detail):
        payload = detail  # FastAPI style: {"detail": {"error_code", "message", "extra"}}
    elif isinstance(detail, list) and detail and isinstance(detail[0], dict):
        # FastAPI request validation: {"detail": [{"loc": ["body", "language"], "msg": ...}]}
        first = detail[0]
        loc = [str(p) for p in first.get("loc", []) if p != "body" and not isinstance(p, int)]
        return "VALIDATION_ERROR", str(first.get("msg", "")), {}, ".".join(loc) or None
    code = payload.get("error_code")
    message = payload.get("message")
    if isinstance(detail, str) and detail:
        # The 500 shape: {"message", "method", "url", "detail"}; detail says what broke.
        message = f"{message}: {detail}" if message else detail
    extra = payload.get("extra")
    field = extra.get("field") if isinstance(extra, dict) else None
    return (
        str(code) if code is not None else None,
        str(message) if message is not None else None,
        extra if isinstance(extra, dict) else {},
        str(field) if field else None,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def error_from_response(response: httpx.Response, *, context: str, engine: EngineConfig, secret: str) -> EngineError:
    """The exception a non-200 answer stands for; the caller raises it."""
    status = response.status_code
    payload = _payload(response)
    code, message, extra, field = _error_fields(payload)
    if message is None and payload is None:
        message = response.text
    said = one_line(message, secret) if message else ""
    tag = f"{status} {code}" if code else str(status)
    detail = f": {said}" if said else ""

    if status == 401 or code == "INVALID_API_KEY":
        # extra.api_key (a truncated key) is deliberately never read.
        return AuthError(f"{context}: AsyncFlow rejected the API key from ${engine.api_key_env} ({tag})")
    if code == "VOICE_NOT_FOUND":
        return VoiceNotFoundError(
            f"{context}: voice {engine.voice!r} (engine.voice) does not exist at AsyncFlow ({tag})"
        )
    if code == "USAGE_LIMIT_EXCEEDED":
        used = _usage(extra)
        return QuotaExceededError(
            f"{context}: the account's monthly character quota is used up{used} ({tag}); "
            "finished chunks are kept, run again when the quota renews"
        )
    if status == 429:
        retry_after_ms = _number(extra.get("retry_after_ms"))
        retry_after_s = (
            max(0.0, retry_after_ms / 1000)
            if retry_after_ms is not None
            else retry_after_header(response.headers.get("retry-after"))
        )
        return RateLimitedError(
            f"{context}: rate limited ({tag}){detail}",
            retry_after_s=retry_after_s,
            concurrency=code == "TOO_MANY_CONCURRENT_REQUESTS",
        )
    if status >= 500 or status == 408:
        return ServerError(f"{context}: server error ({tag}){detail}")
    if code == "VERSION_NOT_FOUND":
        return RequestRejectedError(
            f"{context}: the server does not know API version {API_VERSION} ({tag}); check engine.base_url"
        )
    if code == "INVALID_LANGUAGE":
        field = field or "language"
    if field:
        return RequestRejectedError(
            f"{context}: request field {field!r} ({_job_setting(field, engine)}) rejected ({tag}){detail}"
        )
    if status == 404:
        return RequestRejectedError(f"{context}: {response.request.url.path} not found ({tag}); check engine.base_url")
    return RequestRejectedError(f"{context}: request rejected ({tag}){detail}")


def _job_setting(field: str, engine: EngineConfig) -> str:
    """The job key behind a request field, with the value we sent: "engine.language='xx'"."""
    job_key = _FIELD_TO_JOB_KEY.get(field, field)
    attr = job_key.removeprefix("engine.")
    if job_key.startswith("engine.") and attr in EngineConfig.model_fields:
        return f"{job_key}={getattr(engine, attr)!r}"
    return job_key


def _usage(extra: dict[str, Any]) -> str:
    current, limit = _number(extra.get("current")), _number(extra.get("limit"))
    if current is None or limit is None:
        return ""
    return f" ({current:.0f} of {limit:.0f} characters)"


def _payload(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def error_code(response: httpx.Response) -> str | None:
    return _error_fields(_payload(response))[0]


def concurrency_limit_hint(error: RateLimitedError, response: httpx.Response) -> int | None:
    """The server's in-flight limit from a TOO_MANY_CONCURRENT_REQUESTS body, if it gave one."""
    limit = _number(_error_fields(_payload(response))[2].get("limit"))
    return int(limit) if error.concurrency and limit is not None and limit >= 1 else None


# --- successful answers -------------------------------------------------------------------


def parse_timestamps_body(content: bytes, *, context: str) -> tuple[bytes, Alignment]:
    """The audio bytes and the structurally checked alignment of a ``with_timestamps`` reply."""
    try:
        payload = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadResponseError(f"{context}: the reply is not valid JSON ({len(content)} bytes)") from None
    if not isinstance(payload, dict):
        raise BadResponseError(f"{context}: the reply is not a JSON object")
    encoded = payload.get("audio_base64")
    if not isinstance(encoded, str) or not encoded:
        raise BadResponseError(f"{context}: the reply has no audio_base64")
    try:
        audio = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadResponseError(f"{context}: audio_base64 is not valid base64") from None
    alignment = payload.get("alignment")
    if not isinstance(alignment, dict):
        raise BadResponseError(f"{context}: the reply has no alignment object")
    arrays = []
    for key in ("words", "word_start_times_milliseconds", "word_end_times_milliseconds"):
        value = alignment.get(key)
        if not isinstance(value, list):
            raise BadResponseError(f"{context}: alignment.{key} is missing or not a list")
        arrays.append(value)
    words, starts, ends = arrays
    if not len(words) == len(starts) == len(ends):
        raise BadResponseError(
            f"{context}: alignment arrays differ in length (words {len(words)}, starts {len(starts)}, ends {len(ends)})"
        )
    if not all(isinstance(w, str) for w in words):
        raise BadResponseError(f"{context}: alignment.words holds a value that is not a string")
    start_ms = [_number(v) for v in starts]
    end_ms = [_number(v) for v in ends]
    if any(v is None for v in start_ms + end_ms):
        raise BadResponseError(f"{context}: an alignment time is not a finite number")
    return audio, Alignment(
        tuple(words),
        tuple(s for s in start_ms if s is not None),
        tuple(e for e in end_ms if e is not None),
    )


def check_alignment(alignment: Alignment, duration_ms: float, *, context: str) -> None:
    """0 <= start <= end, starts and ends never go back in time, nothing after the audio."""
    previous_start = previous_end = 0.0
    for i, (start, end) in enumerate(zip(alignment.starts, alignment.ends, strict=True)):
        where = f"{context}: alignment word {i} ({alignment.words[i][:40]!r})"
        if not 0 <= start <= end:
            raise BadResponseError(f"{where}: start {start:g} ms / end {end:g} ms out of order")
        if start < previous_start or end < previous_end:
            raise BadResponseError(f"{where}: times go backwards ({start:g} ms after {previous_start:g} ms)")
        if end > duration_ms + END_TOLERANCE_MS:
            raise BadResponseError(f"{where}: ends at {end:g} ms, after the audio ({duration_ms:g} ms)")
        previous_start, previous_end = start, end


def decode_audio(content: bytes, *, container: str, sample_rate: int, context: str) -> np.ndarray:
    """Mono int16 samples at ``sample_rate`` from a wav file or headerless pcm_s16le."""
    if container == "raw":
        if len(content) % 2:
            raise BadResponseError(f"{context}: raw pcm_s16le audio has an odd byte count ({len(content)})")
        return np.frombuffer(content, dtype="<i2").astype(np.int16)
    _check_wav_complete(content, context=context)
    try:
        data, rate = soundfile.read(io.BytesIO(content), dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise BadResponseError(f"{context}: the audio is not a readable wav file ({one_line(str(exc), '')})") from None
    if rate != sample_rate:
        raise BadResponseError(f"{context}: audio comes at {rate} Hz, asked for {sample_rate} Hz")
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0])
    # The API promises mono; if it ever sends more channels, their mean is the mono mix.
    return np.round(data.mean(axis=1)).astype(np.int16)


def _check_wav_complete(content: bytes, *, context: str) -> None:
    """libsndfile quietly reads a cut-off wav as a shorter one, so compare the declared size
    of the data chunk with what arrived. Streaming placeholders (0 or 0xFFFFFFFF) pass."""
    if len(content) < 12 or content[:4] != b"RIFF" or content[8:12] != b"WAVE":
        raise BadResponseError(f"{context}: the audio is not a wav file ({len(content)} bytes)")
    pos = 12
    while pos + 8 <= len(content):
        chunk_id, size = content[pos : pos + 4], struct.unpack("<I", content[pos + 4 : pos + 8])[0]
        if chunk_id == b"data":
            available = len(content) - pos - 8
            if size not in (0, 0xFFFFFFFF) and size > available:
                raise BadResponseError(f"{context}: the wav audio is cut short ({available} of {size} data bytes)")
            return
        pos += 8 + size + (size & 1)
    raise BadResponseError(f"{context}: the wav file has no data chunk")
