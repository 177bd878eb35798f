"""The three synthesis endpoints: checks, limits, faults, latency, then real speech.

Order of checks for one request: API version, key, the per-minute and concurrency limits,
the body, the voice, the monthly quota. Then the request waits its configured latency, may be
turned into a fault, and otherwise is synthesized and billed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from pipeline.emulator.audio import MEDIA_TYPES, encode
from pipeline.emulator.faults import (
    AFTER_SYNTHESIS,
    FAULT_429_CODES,
    corrupted_response,
    replacement_response,
)
from pipeline.emulator.responses import ApiError
from pipeline.emulator.settings import EmulatorSettings
from pipeline.emulator.state import EmulatorState
from pipeline.emulator.synthesis import Speech, check_markup, speak
from pipeline.emulator.validation import Endpoint, SynthesisRequest, parse_synthesis_request

QUOTA_MARKER = b"--ERROR:QUOTA_EXCEEDED--"
# Streaming sends audio in pieces of about this much speech.
STREAM_PIECE_MS = 200


class _ReleaseAfter(Response):
    """Runs ``release`` once the wrapped response has been sent (or has failed), so a streamed
    request counts as in flight for as long as its body is flowing."""

    def __init__(self, inner: Response, release: Callable[[], None]) -> None:
        self.inner = inner
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            self.release()


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


async def synthesis_endpoint(request: Request) -> Response:
    state = _state(request)
    settings = state.settings
    endpoint = Endpoint(request.url.path)
    try:
        key = state.authorize(request)
    except ApiError as err:
        return err.response(flat=settings.flat_errors)
    state.accounts.arrive(key, settings)
    try:
        response = await _handle(request, endpoint, state, settings, key)
    except ApiError as err:
        state.accounts.leave(key)
        if err.status == 429:
            state.stats.rejection(err.code)
        return err.response(flat=settings.flat_errors)
    except BaseException:
        state.accounts.leave(key)
        raise
    return _ReleaseAfter(response, lambda: state.accounts.leave(key))


async def _handle(
    request: Request, endpoint: Endpoint, state: EmulatorState, settings: EmulatorSettings, key: str
) -> Response:
    state.accounts.admit(key, settings)
    synth = parse_synthesis_request(await request.body(), endpoint)
    entries = check_markup(synth.transcript)
    voice = state.voices.get(synth.voice_id)
    chars = len(synth.transcript)
    granted = state.accounts.charge(key, chars, settings, partial=endpoint is Endpoint.STREAMING)
    try:
        fault = state.faults.decide(settings, endpoint, synth.transcript)
        delay_ms = settings.latency_ms + settings.latency_per_char_ms * chars
        if delay_ms > 0:
            await state.sleep(delay_ms / 1000)
        if fault is not None and fault not in AFTER_SYNTHESIS:
            state.accounts.refund(key, granted)
            replacement = replacement_response(fault, settings, request.method, str(request.url))
            state.stats.fault(fault.value, FAULT_429_CODES.get(fault))
            return replacement
        speech = await speak(synth, voice, entries)
        if endpoint is Endpoint.STREAMING:
            response: Response = _streaming(speech, synth, granted / chars)
            body, media_type = b"", "application/octet-stream"
        else:
            body, media_type = _whole_body(speech, synth, endpoint)
            response = Response(body, 200, media_type=media_type)
    except BaseException:
        state.accounts.refund(key, granted)
        raise
    if fault is not None:
        state.accounts.refund(key, granted)
        state.stats.fault(fault.value)
        if endpoint is Endpoint.STREAMING:
            body = encode(speech.audio.samples, synth.output_format)
        return corrupted_response(fault, body, media_type)
    if granted == chars:
        state.stats.success(synth.transcript, chars)
    return response


def _whole_body(speech: Speech, synth: SynthesisRequest, endpoint: Endpoint) -> tuple[bytes, str]:
    audio = encode(speech.audio.samples, synth.output_format)
    if endpoint is Endpoint.BYTES:
        return audio, MEDIA_TYPES[synth.output_format.container]
    document = {
        "audio_base64": base64.b64encode(audio).decode("ascii"),
        "alignment": {
            "words": list(speech.words),
            "word_start_times_milliseconds": list(speech.starts_ms),
            "word_end_times_milliseconds": list(speech.ends_ms),
        },
    }
    return json.dumps(document).encode(), "application/json"


def _streaming(speech: Speech, synth: SynthesisRequest, fraction: float) -> Response:
    """Audio in several pieces; when the quota covered only ``fraction`` of the transcript,
    that share of the audio and then the quota marker, inside the 200 body."""
    samples = speech.audio.samples
    if fraction < 1:
        samples = samples[: int(len(samples) * fraction)]
    data = encode(samples, synth.output_format)
    fmt = synth.output_format
    piece_samples = max(1, fmt.sample_rate * STREAM_PIECE_MS // 1000)
    pieces = max(2, math.ceil(len(samples) / piece_samples))
    size = max(1, math.ceil(len(data) / pieces))
    if fmt.container == "raw":
        width = {"pcm_s16le": 2, "pcm_f32le": 4, "pcm_mulaw": 1}[fmt.encoding]
        size += -size % width  # keep every piece whole samples
    cut_short = fraction < 1

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]
            await asyncio.sleep(0)  # let each piece go out as its own chunk
        if cut_short:
            yield QUOTA_MARKER

    return StreamingResponse(body(), 200, media_type="application/octet-stream")
