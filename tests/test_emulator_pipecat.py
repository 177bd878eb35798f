"""Real third-party clients of the API, Pipecat's ``AsyncAIHttpTTSService`` and its WebSocket
``AsyncAITTSService``, against the emulator on a loopback port: they get real speech back, and
the API's error text on a bad key."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.task import PipelineParams
from pipecat.services.asyncai.tts import AsyncAIHttpTTSService, AsyncAITTSService
from pipecat.tests.utils import run_test

from pipeline.emulator.server import serve_in_thread
from pipeline.emulator.settings import EmulatorSettings
from pipeline.emulator.ws_route import WS_PATH
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


async def _speak_ws(url: str, key: str, sentences: list[str]) -> tuple[list[Frame], list[Frame]]:
    tts = AsyncAITTSService(
        api_key=key,
        url=url.replace("http://", "ws://") + WS_PATH,
        settings=AsyncAITTSService.Settings(voice=SARAH, model="async_flash_v1.5", language=None),
    )
    down, up = await run_test(
        tts,
        frames_to_send=[TTSSpeakFrame(text=s) for s in sentences],
        pipeline_params=PipelineParams(audio_out_sample_rate=RATE),
    )
    return list(down), list(up)


async def test_pipecat_websocket_service_streams_several_sentences_from_the_emulator() -> None:
    sentences = ["The first sentence comes over the socket.", "A second one follows.", "And a third ends it."]
    with serve_in_thread(EmulatorSettings(api_keys=(KEY,))) as emulator:
        down, up = await _speak_ws(emulator.url, KEY, sentences)
        stats = emulator.stats()
    assert not [f for f in down + up if isinstance(f, ErrorFrame)]
    audio_frames = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert all(f.sample_rate == RATE and f.num_channels == 1 for f in audio_frames)
    # Every sentence was spoken (one context each, as Pipecat sends them) and heard.
    contexts = list(dict.fromkeys(f.context_id for f in audio_frames))
    assert len(contexts) == len(sentences)
    for context in contexts:
        samples = np.frombuffer(b"".join(f.audio for f in audio_frames if f.context_id == context), "<i2")
        assert_speech(samples, RATE, min_s=0.8, max_s=6.0)
    assert stats["requests"] == {WS_PATH: {"101": 1}}  # one socket for all of them
    assert stats["characters_synthesized"] == sum(len(s) for s in sentences)
    assert stats["websocket"]["text"] >= len(sentences)
