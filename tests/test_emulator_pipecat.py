"""A real third-party client of the API, Pipecat's ``AsyncAIHttpTTSService``, against the
emulator on a loopback port: it gets real speech back, and the API's error text on a bad key."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.task import PipelineParams
from pipecat.services.asyncai.tts import AsyncAIHttpTTSService
from pipecat.tests.utils import run_test

from pipeline.emulator.server import serve_in_thread
from pipeline.emulator.settings import EmulatorSettings
from tests.emulator_support import KEY, SARAH, assert_speech

pytestmark = pytest.mark.slow

RATE = 24000


async def _speak(url: str, key: str, text: str) -> tuple[list[Frame], list[Frame]]:
    async with aiohttp.ClientSession() as session:
        tts = AsyncAIHttpTTSService(
            api_key=key,
            aiohttp_session=session,
            url=url,
            # Pipecat's own default model for this service; the emulator serves it on streaming.
            settings=AsyncAIHttpTTSService.Settings(voice=SARAH, model="async_flash_v1.5", language=None),
        )
        down, up = await run_test(
            tts,
            frames_to_send=[TTSSpeakFrame(text=text)],
            pipeline_params=PipelineParams(audio_out_sample_rate=RATE),
        )
    return list(down), list(up)


async def test_pipecat_http_service_gets_speech_from_the_emulator() -> None:
    text = "Hello from the emulator. Every word of this is real speech."
    with serve_in_thread(EmulatorSettings(api_keys=(KEY,))) as emulator:
        down, up = await _speak(emulator.url, KEY, text)
        stats = emulator.stats()
    audio_frames = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio_frames and not [f for f in down + up if isinstance(f, ErrorFrame)]
    assert all(f.sample_rate == RATE and f.num_channels == 1 for f in audio_frames)
    samples = np.frombuffer(b"".join(f.audio for f in audio_frames), "<i2")
    assert_speech(samples, RATE, min_s=2.0, max_s=8.0)
    # Pipecat posted to the streaming endpoint with the headers and body the API documents.
    assert stats["requests"] == {"/text_to_speech/streaming": {"200": 1}}
    assert stats["characters_synthesized"] == len(text)


async def test_pipecat_reports_the_api_error_for_a_wrong_key() -> None:
    with serve_in_thread(EmulatorSettings(api_keys=(KEY,))) as emulator:
        down, up = await _speak(emulator.url, "sk_not_a_real_key_000000", "Hello.")
        stats = emulator.stats()
    assert not [f for f in down if isinstance(f, TTSAudioRawFrame)]
    errors = [f.error for f in down + up if isinstance(f, ErrorFrame)]
    assert errors and "INVALID_API_KEY" in errors[0]
    assert stats["requests"]["/text_to_speech/streaming"] == {"401": 1}
