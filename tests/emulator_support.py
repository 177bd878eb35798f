"""Shared pieces for the emulator tests: request bodies, clients, audio checks."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import soundfile

from pipeline.emulator.app import create_app
from pipeline.emulator.state import EmulatorState

KEY = "sk_test_emulator_key_0001"
HEADERS = {"x-api-key": KEY, "version": "v1"}
SARAH = "e0f39dc4-f691-4e78-bba5-5c636692cc04"  # the id Async's own examples use
AMELIE = "32bc7677-3646-5bf2-a004-7504d2bc51be"
SENTENCE = "The quick brown fox jumps over the lazy dog."


def synth_body(transcript: str = SENTENCE, **changes: Any) -> dict[str, Any]:
    """A valid request body; ``changes`` replace top-level fields, ``output_format`` merges."""
    body: dict[str, Any] = {
        "model_id": "async_flash_v1.0",
        "transcript": transcript,
        "voice": {"mode": "id", "id": SARAH},
        "output_format": {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 24000},
        "language": "en",
    }
    fmt = changes.pop("output_format", None)
    if fmt is not None:
        body["output_format"] = {**body["output_format"], **fmt}
    body.update(changes)
    return body


@asynccontextmanager
async def in_process(state: EmulatorState) -> AsyncIterator[httpx.AsyncClient]:
    """A client talking to the app in-process (no socket): for everything but broken
    connections and chunked delivery, which need a real server."""
    transport = httpx.ASGITransport(app=create_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator", headers=HEADERS) as c:
        yield c


def read_wav(content: bytes) -> tuple[np.ndarray, int]:
    assert content[:4] == b"RIFF" and content[8:12] == b"WAVE"
    data, rate = soundfile.read(io.BytesIO(content), dtype="int16")
    return data, rate


def rms_dbfs(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) / 32768.0
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))


def assert_speech(samples: np.ndarray, rate: int, *, min_s: float = 0.5, max_s: float = 10.0) -> None:
    """Real speech: a plausible duration and clearly more energy than silence."""
    duration = len(samples) / rate
    assert min_s <= duration <= max_s, duration
    assert rms_dbfs(samples) > -40, rms_dbfs(samples)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``{"error_code", "message", "extra"}`` part of either body shape."""
    body = response.json()
    detail = body.get("detail")
    return detail if isinstance(detail, dict) else body
