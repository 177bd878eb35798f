"""The voice endpoints: list (POST, with filters and a cursor), batch, get, preview, and clone /
update / delete for cloned voices. They need a key but are not rate limited or billed."""

from __future__ import annotations

import io
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import soundfile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.emulator.responses import ApiError
from pipeline.emulator.state import EmulatorState
from pipeline.emulator.synthesis import speak_text
from pipeline.emulator.validation import (
    MODELS_BY_ENDPOINT,
    check_language,
    invalid,
    parse_json_object,
)

PREVIEW_SAMPLE_RATE = 24_000
_ALL_MODELS = frozenset(m for models in MODELS_BY_ENDPOINT.values() for m in models)


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _error(state: EmulatorState, err: ApiError) -> JSONResponse:
    return err.response(flat=state.settings.flat_errors)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    return parse_json_object(body) if body.strip() else {}


async def list_voices(request: Request) -> Response:
    state = _state(request)
    try:
        state.authorize(request)
        filters = await _json_body(request)
        model_id = filters.get("model_id")
        if model_id is not None and model_id not in _ALL_MODELS:
            raise invalid("model_id", f"unknown model {model_id!r}")
        check_language(filters.get("language"))
        my_voice = filters.get("my_voice")
        if my_voice is not None and not isinstance(my_voice, bool):
            raise invalid("my_voice", "must be true or false")
        page, next_cursor = state.voices.query(filters)
    except ApiError as err:
        return _error(state, err)
    return JSONResponse({"voices": [v.to_api() for v in page], "next_cursor": next_cursor})


async def batch_voices(request: Request) -> Response:
    state = _state(request)
    try:
        state.authorize(request)
        ids = (await _json_body(request)).get("voice_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise invalid("voice_ids", "must be a non-empty list of voice ids")
        voices = [state.voices.get(i) for i in ids]
    except ApiError as err:
        return _error(state, err)
    return JSONResponse([v.to_api() for v in voices])


async def get_voice(request: Request) -> Response:
    state = _state(request)
    try:
        state.authorize(request)
        voice = state.voices.get(request.path_params["voice_id"])
    except ApiError as err:
        return _error(state, err)
    return JSONResponse(voice.to_api())


async def update_voice(request: Request) -> Response:
    state = _state(request)
    try:
        state.authorize(request)
        voice_id = request.path_params["voice_id"]
        if "multipart/form-data" in request.headers.get("content-type", ""):
            changes: dict[str, Any] = {k: v.decode() for k, v in (await _form(request)).items()}
        else:
            changes = await _json_body(request)
        state.voices.update(voice_id, changes)
    except ApiError as err:
        return _error(state, err)
    return Response(status_code=204)


async def delete_voice(request: Request) -> Response:
    state = _state(request)
    try:
        state.authorize(request)
        state.voices.delete(request.path_params["voice_id"])
    except ApiError as err:
        return _error(state, err)
    return Response(status_code=204)


async def _form(request: Request) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (file fields as their bytes)."""
    content_type = request.headers.get("content-type", "")
    if "multipart/form-data" not in content_type or "boundary=" not in content_type:
        raise invalid("body", "must be multipart/form-data")
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + await request.body()
    message = BytesParser(policy=HTTP).parsebytes(raw)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


async def clone_voice(request: Request) -> Response:
    state = _state(request)
    try:
        state.authorize(request)
        fields = await _form(request)
        if not fields.get("audio"):
            raise invalid("audio", "a recording of the voice is required")
        name = fields.get("name", b"").decode().strip()
        if not name:
            raise invalid("name", "field required")
        language = fields.get("language", b"en").decode().strip() or "en"
        for code in language.split(","):
            check_language(code.strip())
        voice = state.voices.clone(name, fields.get("description", b"").decode(), language)
    except ApiError as err:
        return _error(state, err)
    body = {
        "id": voice.voice_id,
        "name": voice.name,
        "description": voice.description,
        "language": voice.language,
    }
    return JSONResponse(body)


async def preview_link(request: Request) -> Response:
    state = _state(request)
    try:
        state.authorize(request)
        voice = state.voices.get(request.path_params["voice_id"])
    except ApiError as err:
        return _error(state, err)
    url = request.url_for("preview_audio", voice_id=voice.voice_id)
    return JSONResponse({"signed_url": str(url)})


async def preview_audio(request: Request) -> Response:
    """What a preview's signed URL serves: the voice introducing itself, as WAV."""
    state = _state(request)
    try:
        voice = state.voices.get(request.path_params["voice_id"])
    except ApiError as err:
        return _error(state, err)
    audio = await speak_text(f"Hello, my name is {voice.name}.", voice, PREVIEW_SAMPLE_RATE)
    out = io.BytesIO()
    soundfile.write(out, audio.samples, audio.sample_rate, format="WAV", subtype="PCM_16")
    return Response(out.getvalue(), 200, media_type="audio/wav")
