"""The emulator's WebSocket endpoint on a real loopback server, driven with the ``websockets``
client: every message kind, every error frame, the idle timeout, several contexts on one
socket, the limits and the injected faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
import soundfile
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from pipeline.emulator.faults import FaultInjector
from pipeline.emulator.server import RunningEmulator, serve_in_thread
from pipeline.emulator.settings import EmulatorSettings, WsFaultKind
from pipeline.emulator.ws_route import WS_PATH
from pipeline.emulator.ws_text import take_ready
from tests.emulator_support import KEY, SARAH, assert_speech

pytestmark = pytest.mark.slow

RATE = 16000
INIT: dict[str, Any] = {
    "model_id": "async_flash_v1.0",
    "voice": {"mode": "id", "id": SARAH},
    "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": RATE},
    "language": "en",
}
WAIT_S = 20.0  # for a frame that must come: generous, the machine is shared


@pytest.fixture(scope="module")
def server() -> Iterator[RunningEmulator]:
    with serve_in_thread(EmulatorSettings(api_keys=(KEY,))) as emulator:
        yield emulator


@pytest.fixture
def emulator(server: RunningEmulator) -> Iterator[RunningEmulator]:
    server.configure(**EmulatorSettings(api_keys=(KEY,)).model_dump())
    server.reset()
    yield server


def ws_url(emulator: RunningEmulator, key: str = KEY, version: str = "v1") -> str:
    return f"{emulator.url.replace('http://', 'ws://')}{WS_PATH}?api_key={key}&version={version}"


async def opened(emulator: RunningEmulator, init: dict[str, Any] | None = None, **kw: str) -> ClientConnection:
    ws = await connect(ws_url(emulator, **kw))
    # A session refused before the initialize message is closed already; its frames are still there.
    with contextlib.suppress(ConnectionClosed):
        await ws.send(json.dumps(INIT if init is None else init))
    return ws


async def next_frame(ws: ClientConnection, timeout: float = WAIT_S) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def frames_until_final(ws: ClientConnection, context_id: str | None = None) -> list[dict[str, Any]]:
    """Frames (of any context) up to and including the final frame of ``context_id``."""
    got = []
    while True:
        frame = await next_frame(ws)
        got.append(frame)
        assert "error_code" not in frame, frame
        if frame.get("final") and frame.get("context_id") == context_id:
            return got


def pcm(frames: list[dict[str, Any]], context_id: str | None = None) -> np.ndarray:
    data = b"".join(base64.b64decode(f["audio"]) for f in frames if f.get("context_id") == context_id)
    return np.frombuffer(data, "<i2")


async def closed_with(ws: ClientConnection) -> int | None:
    """Drain the socket until it closes; the close code the server sent (None: no close frame)."""
    try:
        async with asyncio.timeout(WAIT_S):
            async for _ in ws:
                pass
    except ConnectionClosedError:
        pass
    return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None


async def aiter_frames(ws: ClientConnection, seconds: float) -> AsyncIterator[dict[str, Any]]:
    """Whatever frames arrive within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            async for raw in ws:
                yield json.loads(raw)
    except TimeoutError:
        return


# --- the documented flow and every message kind --------------------------------------------


async def test_the_documented_flow_with_default_format(emulator: RunningEmulator) -> None:
    init = {k: v for k, v in INIT.items() if k != "output_format"}  # defaults: raw s16le 44.1 kHz
    ws = await opened(emulator, init)
    await ws.send(json.dumps({"text": "Welcome to Async. "}))
    await ws.send(json.dumps({"text": ""}))
    frames = await frames_until_final(ws)
    assert await closed_with(ws) == 1000
    assert all("context_id" not in f for f in frames)  # the client named no context
    assert [f["final"] for f in frames] == [False] * (len(frames) - 1) + [True] and frames[-1]["audio"] == ""
    assert len(frames) > 2  # audio comes in several frames
    assert_speech(pcm(frames), 44100, min_s=0.5, max_s=4)
    stats = emulator.stats()
    assert stats["requests"][WS_PATH] == {"101": 1}
    assert stats["characters_synthesized"] == len("Welcome to Async.")


async def test_audio_arrives_sentence_by_sentence_as_text_is_sent(emulator: RunningEmulator) -> None:
    ws = await opened(emulator)
    await ws.send(json.dumps({"transcript": "The first sentence is here. ", "context_id": "a"}))
    first = await next_frame(ws)  # before the second sentence has been sent
    assert first["context_id"] == "a" and first["audio"] and first["final"] is False
    # Text without a sentence end is held until more text, force or a close.
    await ws.send(json.dumps({"transcript": "And then some words ", "context_id": "a"}))
    early = [f async for f in aiter_frames(ws, 1.5)]
    assert early and not [f for f in early if f.get("final")]
    held_chars = emulator.stats()["characters_synthesized"]
    assert held_chars == len("The first sentence is here.")
    await ws.send(json.dumps({"transcript": "without an end ", "context_id": "a", "force": True}))
    rest = await frames_until_final_after_close(ws, "a")
    assert_speech(pcm([first, *early, *rest], "a"), RATE, min_s=2, max_s=8)
    assert emulator.stats()["characters_synthesized"] == held_chars + len("And then some words without an end")
    await ws.send(json.dumps({"terminate": True}))
    assert await closed_with(ws) == 1000


async def frames_until_final_after_close(ws: ClientConnection, context_id: str) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"context_id": context_id, "close_context": True, "transcript": ""}))
    return await frames_until_final(ws, context_id)


async def test_several_contexts_on_one_socket(emulator: RunningEmulator) -> None:
    ws = await opened(emulator)
    await ws.send(json.dumps({"transcript": "Context one speaks first. ", "context_id": "one", "force": True}))
    await ws.send(json.dumps({"transcript": "Context two has more to say than one. ", "context_id": "two"}))
    frames = await frames_until_final_after_close(ws, "one")
    # "two" is still open: closing "one" sent no final for it, and it takes more text.
    assert not [f for f in frames if f.get("final") and f["context_id"] == "two"]
    await ws.send(json.dumps({"transcript": "It goes on. ", "context_id": "two"}))
    frames += await frames_until_final_after_close(ws, "two")
    assert {f["context_id"] for f in frames} == {"one", "two"}
    one, two = pcm(frames, "one"), pcm(frames, "two")
    assert_speech(one, RATE, min_s=0.8, max_s=5)
    assert_speech(two, RATE, min_s=len(one) / RATE + 0.5, max_s=10)
    # A closed context's id may be used again: it is a new context.
    await ws.send(json.dumps({"transcript": "Again. ", "context_id": "one", "force": True}))
    again = await frames_until_final_after_close(ws, "one")
    assert_speech(pcm(again, "one"), RATE, min_s=0.3, max_s=3)
    # Closing a context that holds nothing answers with its final frame at once.
    assert (await frames_until_final_after_close(ws, "never-used"))[-1] == {
        "audio": "",
        "final": True,
        "context_id": "never-used",
    }
    await ws.send(json.dumps({"text": ""}))
    assert await closed_with(ws) == 1000
    assert emulator.stats()["websocket"]["contexts"] == 3


async def test_keepalive_holds_an_idle_socket_open_until_the_timeout(emulator: RunningEmulator) -> None:
    emulator.configure(ws_idle_timeout_s=0.6)
    ws = await opened(emulator)
    for _ in range(5):  # 1.5 s of keepalives, longer than the timeout
        await asyncio.sleep(0.3)
        await ws.send(json.dumps({"transcript": " "}))
    await ws.send(json.dumps({"transcript": "Still here. ", "force": True}))
    frame = await next_frame(ws)
    assert frame["audio"] and "error_code" not in frame
    frames = [frame, *[f async for f in aiter_frames(ws, 3)]]
    timeout = frames[-1]
    assert timeout["error_code"] == "TIMEOUT" and timeout["extra"] == {"idle_s": 0.6}
    assert set(timeout) == {"error_code", "message", "extra"}  # flat, no context
    assert await closed_with(ws) == 1000
    stats = emulator.stats()["websocket"]
    assert stats["keepalive"] == 5 and stats["timeouts"] == 1


async def test_terminate_closes_at_once_without_finals(emulator: RunningEmulator) -> None:
    ws = await opened(emulator)
    await ws.send(json.dumps({"transcript": "A sentence that will be cut off. ", "context_id": "t"}))
    await ws.send(json.dumps({"terminate": True}))
    frames = []
    with pytest.raises(ConnectionClosed):
        while True:
            frames.append(await next_frame(ws))
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
    assert not [f for f in frames if f.get("final")]


# --- error frames --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "init_change", "code", "message_part"),
    [
        ({"key": "sk_wrong_key_12345678"}, {}, "INVALID_API_KEY", "invalid API key 'sk_wro...78'"),
        ({"key": ""}, {}, "INVALID_API_KEY", "missing api_key"),
        ({"version": "v9"}, {}, "VERSION_NOT_FOUND", "'v9'"),
        ({}, {"voice": {"mode": "id", "id": "no-such-voice"}}, "VOICE_NOT_FOUND", "no-such-voice"),
        ({}, {"model_id": "gpt-voice"}, "INVALID_MODEL", "model_id"),
        ({}, {"output_format": {"container": "wav"}}, "VALIDATION_ERROR", "output_format.container"),
        ({}, {"output_format": {"sample_rate": 4}}, "VALIDATION_ERROR", "output_format.sample_rate"),
        ({}, {"language": "xx"}, "INVALID_LANGUAGE", "language"),
    ],
)
async def test_a_refused_session_gets_one_error_frame_and_a_policy_close(
    emulator: RunningEmulator, query: dict[str, str], init_change: dict[str, Any], code: str, message_part: str
) -> None:
    ws = await opened(emulator, {**INIT, **init_change}, **query)
    frame = await next_frame(ws)
    assert frame["error_code"] == code and message_part in frame["message"]
    assert set(frame) == {"error_code", "message", "extra"}
    assert await closed_with(ws) == 1008
    assert KEY not in json.dumps(frame)


async def test_bad_messages_get_error_frames_and_the_socket_goes_on(emulator: RunningEmulator) -> None:
    ws = await opened(emulator)
    await ws.send("not json")
    assert (await next_frame(ws))["error_code"] == "INVALID_REQUEST"
    await ws.send(json.dumps({"context_id": "x", "force": True}))
    assert (await next_frame(ws))["message"].startswith("transcript")
    await ws.send(json.dumps({"transcript": "Fine. ", "context_id": 7}))
    assert (await next_frame(ws))["message"].startswith("context_id")
    await ws.send(json.dumps({"transcript": "Broken <digits>12 markup. ", "context_id": "m", "force": True}))
    frame = await next_frame(ws)
    assert frame["error_code"] == "VALIDATION_ERROR" and frame["context_id"] == "m"
    await ws.send(json.dumps({"transcript": "Still fine. ", "context_id": "ok", "force": True}))
    frames = await frames_until_final_after_close(ws, "ok")
    assert_speech(pcm(frames, "ok"), RATE, min_s=0.3, max_s=3)
    await ws.close()


# --- limits --------------------------------------------------------------------------------


async def test_open_sockets_count_against_concurrency(emulator: RunningEmulator) -> None:
    emulator.configure(concurrency=1)
    first = await opened(emulator)
    await first.send(json.dumps({"transcript": "One. ", "force": True}))
    await next_frame(first)  # the session is up and counted
    second = await opened(emulator)
    frame = await next_frame(second)
    assert frame["error_code"] == "TOO_MANY_CONCURRENT_REQUESTS" and frame["extra"] == {"limit": 1, "current": 1}
    assert await closed_with(second) == 1008
    await first.send(json.dumps({"terminate": True}))
    await closed_with(first)
    for _ in range(100):  # the server notices the close a moment later
        if emulator.stats()["in_flight"] == 0:
            break
        await asyncio.sleep(0.02)
    third = await opened(emulator)
    await third.send(json.dumps({"transcript": "Three. ", "force": True}))
    assert "audio" in await next_frame(third)
    await third.close()
    stats = emulator.stats()
    assert stats["requests"][WS_PATH] == {"101": 2, "429": 1}
    assert stats["rate_limited"] == {"TOO_MANY_CONCURRENT_REQUESTS": 1}


async def test_sockets_count_against_the_rate_limit(emulator: RunningEmulator) -> None:
    emulator.configure(rpm=1)
    first = await opened(emulator)
    second = await opened(emulator)
    frame = await next_frame(second)
    assert frame["error_code"] == "RATE_LIMIT_EXCEEDED" and frame["extra"]["retry_after_ms"] > 0
    await first.close()


async def test_characters_count_against_the_monthly_quota(emulator: RunningEmulator) -> None:
    first, second = "Twenty characters!! ", "This one is over the quota. "
    emulator.configure(monthly_chars=25)
    ws = await opened(emulator)
    await ws.send(json.dumps({"transcript": first, "context_id": "q", "force": True}))
    await ws.send(json.dumps({"transcript": second, "context_id": "q", "force": True}))
    frames = []
    while "error_code" not in (frame := await next_frame(ws)):
        frames.append(frame)
    assert frame["error_code"] == "USAGE_LIMIT_EXCEEDED" and frame["context_id"] == "q"
    assert frame["extra"] == {"limit": 25, "current": len(first.strip())}
    assert_speech(pcm(frames, "q"), RATE, min_s=0.5, max_s=4)  # what was paid for was spoken
    stats = emulator.stats()
    assert stats["characters_synthesized"] == len(first.strip())
    assert next(iter(stats["accounts"].values()))["characters_used"] == len(first.strip())
    await ws.close()


# --- faults --------------------------------------------------------------------------------


async def _fault_run(emulator: RunningEmulator, kind: WsFaultKind) -> tuple[ClientConnection, list[dict[str, Any]]]:
    emulator.configure(fail_rate=1.0, ws_faults=(kind,), ws_idle_timeout_s=5)
    ws = await opened(emulator)
    await ws.send(json.dumps({"transcript": "This sentence fails half way through. ", "context_id": "f"}))
    return ws, [f async for f in aiter_frames(ws, 2.5)]


async def test_disconnect_fault_cuts_the_connection_mid_context(emulator: RunningEmulator) -> None:
    emulator.configure(fail_rate=1.0, ws_faults=(WsFaultKind.DISCONNECT,))
    ws = await opened(emulator)
    await ws.send(json.dumps({"transcript": "This sentence fails half way through. ", "context_id": "f"}))
    frames = []
    with pytest.raises(ConnectionClosedError):
        while True:
            frames.append(await next_frame(ws))
    assert ws.protocol.close_rcvd is None  # no close frame: the TCP connection was cut
    assert frames and all(f["audio"] and not f["final"] for f in frames)  # half of the audio
    assert emulator.stats()["faults_injected"] == {"ws_disconnect": 1}
    assert emulator.stats()["characters_synthesized"] == 0  # a failed piece is not billed


async def test_error_fault_sends_a_flat_error_frame_and_the_socket_stays(emulator: RunningEmulator) -> None:
    ws, frames = await _fault_run(emulator, WsFaultKind.ERROR)
    audio, error = frames[:-1], frames[-1]
    assert audio and all(f["audio"] for f in audio)
    assert error["error_code"] == "INTERNAL_SERVER_ERROR" and error["context_id"] == "f"
    emulator.configure(fail_rate=0.0)
    await ws.send(json.dumps({"transcript": "Now it works. ", "context_id": "f", "force": True}))
    again = await frames_until_final_after_close(ws, "f")
    assert_speech(pcm(again, "f"), RATE, min_s=0.3, max_s=3)
    await ws.close()


async def test_stall_fault_stops_the_context_and_nothing_else(emulator: RunningEmulator) -> None:
    ws, frames = await _fault_run(emulator, WsFaultKind.STALL)
    assert frames and all(f["audio"] and not f["final"] for f in frames)
    emulator.configure(fail_rate=0.0)
    await ws.send(json.dumps({"transcript": "Another context is served. ", "context_id": "g", "force": True}))
    other = await frames_until_final_after_close(ws, "g")
    assert not [f for f in other if f.get("context_id") == "f"]  # the stalled one stays silent
    await ws.send(json.dumps({"terminate": True}))
    assert await closed_with(ws) == 1000
    assert emulator.stats()["faults_injected"] == {"ws_stall": 1}


def test_faults_depend_on_the_seed_and_the_text_only() -> None:
    texts = [f"Sentence number {n}. " for n in range(40)]

    def decisions(seed: int) -> list[WsFaultKind | None]:
        injector, settings = FaultInjector(), EmulatorSettings(fail_rate=0.5, seed=seed)
        return [injector.decide_ws(settings, t) for t in texts]

    assert decisions(3) == decisions(3)
    assert decisions(3) != decisions(4)
    assert {d for d in decisions(3)} == {None, *WsFaultKind}


# --- formats and text splitting ------------------------------------------------------------


async def test_mp3_frames_join_into_one_playable_file(emulator: RunningEmulator) -> None:
    ws = await opened(emulator, {**INIT, "output_format": {"container": "mp3", "sample_rate": 24000}})
    await ws.send(json.dumps({"transcript": "Compressed speech. ", "force": True}))
    await ws.send(json.dumps({"text": ""}))
    frames = await frames_until_final(ws)
    data, rate = soundfile.read(io.BytesIO(b"".join(base64.b64decode(f["audio"]) for f in frames)), dtype="int16")
    assert rate == 24000
    assert_speech(data, rate, min_s=0.5, max_s=4)


def test_take_ready_speaks_whole_sentences() -> None:
    assert take_ready("One. Two", force=False) == ("One. ", "Two")
    assert take_ready('He said "stop." Then ', force=False) == ('He said "stop." ', "Then ")
    assert take_ready("No end yet ", force=False) == ("", "No end yet ")
    assert take_ready("No end yet", force=True) == ("No end yet", "")
    long = "word " * 80
    ready, rest = take_ready(long + "tail", force=False)
    assert ready == long and rest == "tail"
