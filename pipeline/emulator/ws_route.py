"""The WebSocket endpoint, ``/text_to_speech/websocket/ws?api_key=..&version=v1``.

One socket is one session: an initialize message (model, voice, output format, language), then
text for one or more contexts. Each context holds the text it has been sent and speaks whole
sentences as soon as they are there (``ws_text.take_ready``), in order, on its own task, so a
client hears its first sentence while it is still sending the rest. Server frames:
``{"audio": <base64>, "final": false}`` while speaking, ``{"audio": "", "final": true}`` when a
context is closed, and flat ``{"error_code", "message", "extra"}`` errors; every frame of a
context the client named carries its ``context_id``.

Client messages: ``{"transcript"|"text": "...", "context_id"?, "force"?}`` (whitespace only is a
keepalive), ``{"context_id", "close_context": true}`` (speak what is held, then the final
frame), ``{"text": ""}`` (the documented close: every context is finished, then the socket
closes) and ``{"terminate": true}`` (close now). A socket that receives nothing for
``ws_idle_timeout_s`` gets a ``TIMEOUT`` error frame and is closed.

Limits: an open socket is one request in flight for ``--concurrency`` and one request for
``--rpm`` (counted when it opens); every piece of text spoken is billed against
``--monthly-chars``. Faults (``--ws-faults``, drawn with ``--fail-rate`` and ``--seed`` per
piece of text) strike after half of that piece's audio has been sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
from starlette.websockets import WebSocket

from pipeline.emulator.audio import encode, pcm_bytes
from pipeline.emulator.responses import TRANSPORT_KEY, ApiError
from pipeline.emulator.settings import WsFaultKind
from pipeline.emulator.state import API_VERSION, EmulatorState
from pipeline.emulator.synthesis import check_markup, speak
from pipeline.emulator.validation import OutputFormat, SynthesisRequest, parse_json_object, parse_ws_init
from pipeline.emulator.voices import Voice
from pipeline.emulator.ws_text import take_ready

WS_PATH = "/text_to_speech/websocket/ws"
# Audio goes out in frames of about this much speech.
FRAME_MS = 200
# Close codes: a refused session (bad key, limits, bad initialize message), a dropped context.
CLOSE_POLICY = 1008
_CLOSE = None  # queue sentinel: finish the context


def _error_body(err: ApiError, context_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"error_code": err.code, "message": err.message, "extra": err.extra}
    if context_id is not None:
        body["context_id"] = context_id
    return body


def audio_pieces(samples: np.ndarray, fmt: OutputFormat) -> list[bytes]:
    """The audio of one piece of text as the payloads of its frames (whole samples each)."""
    if fmt.container == "raw":
        step = max(1, fmt.sample_rate * FRAME_MS // 1000)
        return [pcm_bytes(samples[i : i + step], fmt.encoding) for i in range(0, len(samples), step)] or [b""]
    data = encode(samples, fmt)
    count = max(1, math.ceil(len(samples) / max(1, fmt.sample_rate * FRAME_MS // 1000)))
    size = max(1, math.ceil(len(data) / count))
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


class _Context:
    def __init__(self, context_id: str | None) -> None:
        self.id = context_id
        self.held = ""
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


class _SessionEnded(Exception):
    """A fault cut the connection: every context stops."""


class Session:
    def __init__(self, ws: WebSocket, state: EmulatorState, key: str, request: SynthesisRequest, voice: Voice) -> None:
        self.ws = ws
        self.state = state
        self.key = key
        self.request = request
        self.voice = voice
        self.contexts: dict[str | None, _Context] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._ended = asyncio.Event()

    # --- frames ----------------------------------------------------------------------------

    async def send(self, body: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps(body))

    async def error(self, err: ApiError, context_id: str | None = None) -> None:
        self.state.stats.ws_event("error_frames")
        await self.send(_error_body(err, context_id))

    async def final(self, context_id: str | None) -> None:
        body: dict[str, Any] = {"audio": "", "final": True}
        if context_id is not None:
            body["context_id"] = context_id
        await self.send(body)

    # --- contexts --------------------------------------------------------------------------

    def _context(self, context_id: str | None) -> _Context:
        ctx = self.contexts.get(context_id)
        if ctx is None:
            ctx = self.contexts[context_id] = _Context(context_id)
            ctx.task = asyncio.create_task(self._speak_context(ctx))
            self._tasks.add(ctx.task)
            ctx.task.add_done_callback(self._tasks.discard)
            self.state.stats.ws_event("contexts")
        return ctx

    def _finish(self, ctx: _Context) -> None:
        """Speak what the context holds, then send its final frame; later text with the same
        id starts a new context."""
        if ctx.held.strip():
            ctx.queue.put_nowait(ctx.held)
        ctx.held = ""
        ctx.queue.put_nowait(_CLOSE)
        self._forget(ctx)

    def _forget(self, ctx: _Context) -> None:
        if self.contexts.get(ctx.id) is ctx:
            del self.contexts[ctx.id]

    async def _speak_context(self, ctx: _Context) -> None:
        try:
            while (text := await ctx.queue.get()) is not _CLOSE:
                if not await self._speak(ctx, text):
                    return
            await self.final(ctx.id)
        except _SessionEnded:
            self._ended.set()
        except Exception:  # the client went away while we were sending: nothing to tell it
            self._ended.set()

    async def _speak(self, ctx: _Context, text: str) -> bool:
        """Speak one piece of text on ``ctx``; False when the context is over (error, stall)."""
        state, settings = self.state, self.state.settings
        spoken = text.strip()
        chars = len(spoken)
        try:
            entries = check_markup(spoken)
            state.accounts.charge(self.key, chars, settings)
        except ApiError as err:
            if err.status == 429:
                state.stats.rejection(err.code)
            self._forget(ctx)
            await self.error(err, ctx.id)
            return False
        try:
            fault = state.faults.decide_ws(settings, spoken)
            delay_ms = settings.latency_ms + settings.latency_per_char_ms * chars
            if delay_ms > 0:
                await state.sleep(delay_ms / 1000)
            speech = await speak(replace(self.request, transcript=spoken), self.voice, entries)
        except BaseException:
            state.accounts.refund(self.key, chars)
            raise
        pieces = audio_pieces(speech.audio.samples, self.request.output_format)
        if fault is not None:
            state.accounts.refund(self.key, chars)
            state.stats.fault(f"ws_{fault.value}")
            pieces = pieces[: len(pieces) // 2]
        for piece in pieces:
            body: dict[str, Any] = {"audio": base64.b64encode(piece).decode("ascii"), "final": False}
            if ctx.id is not None:
                body["context_id"] = ctx.id
            await self.send(body)
            state.stats.ws_event("audio_frames")
            await asyncio.sleep(0)  # let each frame go out on its own
        if fault is None:
            state.stats.success(spoken, chars)
            return True
        return await self._fault(ctx, fault)

    async def _fault(self, ctx: _Context, fault: WsFaultKind) -> bool:
        if fault is WsFaultKind.DISCONNECT:
            transport = self.ws.scope.get("extensions", {}).get(TRANSPORT_KEY)
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            else:  # no socket to cut (in-process): close abnormally instead
                await self.ws.close(1011)
            raise _SessionEnded
        if fault is WsFaultKind.ERROR:
            self._forget(ctx)
            err = ApiError(500, "INTERNAL_SERVER_ERROR", "injected fault: generation failed mid-stream")
            await self.error(err, ctx.id)
            return False
        await self._ended.wait()  # STALL: nothing more for this context, ever
        return False

    # --- the receive loop ------------------------------------------------------------------

    async def _receive(self, timeout_s: float) -> dict[str, Any] | None:
        """The next message as a JSON object; None when the client has gone or timed out."""
        while True:
            receive = asyncio.ensure_future(self.ws.receive())
            ended = asyncio.ensure_future(self._ended.wait())
            done, _ = await asyncio.wait({receive, ended}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if receive not in done:
                receive.cancel()
                if not done:
                    self.state.stats.ws_event("timeouts")
                    err = ApiError(408, "TIMEOUT", f"no message for {timeout_s:g} s; closing", {"idle_s": timeout_s})
                    await self.error(err)
                    await self.ws.close(1000)
                return None
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return None
            raw = message.get("text")
            if raw is None:
                raw = (message.get("bytes") or b"").decode("utf-8", "replace")
            try:
                return parse_json_object(raw.encode())
            except ApiError as err:
                await self.error(err)

    async def run(self) -> None:
        timeout_s = self.state.settings.ws_idle_timeout_s
        try:
            while (msg := await self._receive(timeout_s)) is not None:
                if not await self._handle(msg):
                    break
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, msg: dict[str, Any]) -> bool:
        """Act on one client message; False when the session is over."""
        stats = self.state.stats
        if msg.get("terminate") is True:
            stats.ws_event("terminate")
            await self.ws.close(1000)
            return False
        context_id = msg.get("context_id")
        if context_id is not None and not isinstance(context_id, str):
            await self.error(ApiError(400, "VALIDATION_ERROR", "context_id: must be a string"))
            return True
        context_id = context_id or None
        text = msg.get("transcript", msg.get("text"))
        if msg.get("close_context") is True:
            stats.ws_event("close_context")
            ctx = self.contexts.get(context_id)
            if ctx is None:
                await self.final(context_id)
            else:
                ctx.held += text if isinstance(text, str) else ""
                self._finish(ctx)
            return True
        if not isinstance(text, str):
            await self.error(ApiError(400, "VALIDATION_ERROR", "transcript: must be a string", {"field": "transcript"}))
            return True
        if text == "":
            stats.ws_event("close")
            await self._close_all()
            return False
        force = msg.get("force") is True
        ctx = self.contexts.get(context_id)
        if ctx is None and not text.strip():
            stats.ws_event("keepalive")
            return True  # a keepalive opens no context
        stats.ws_event("keepalive" if not text.strip() and not force else "text")
        ctx = self._context(context_id)
        ready, ctx.held = take_ready(ctx.held + text, force=force)
        if ready.strip():
            ctx.queue.put_nowait(ready)
        return True

    async def _close_all(self) -> None:
        """The documented close: every context speaks what it holds and sends its final frame
        (the default one too, if nothing else), then the socket closes."""
        if not self.contexts:
            await self.final(None)
        for ctx in list(self.contexts.values()):
            self._finish(ctx)
        pending = list(self._tasks)
        if pending:
            # A stalled context never finishes: give up on it after the idle timeout.
            await asyncio.wait(pending, timeout=self.state.settings.ws_idle_timeout_s)
        if not self._ended.is_set():
            await self.ws.close(1000)


def _credentials(ws: WebSocket) -> tuple[str, str | None]:
    key = ws.query_params.get("api_key") or ws.headers.get("x-api-key", "")
    version = ws.query_params.get("version") or ws.headers.get("version")
    return key, version


async def websocket_endpoint(ws: WebSocket) -> None:
    state: EmulatorState = ws.app.state.emulator
    settings = state.settings
    stats = state.stats
    await ws.accept()
    key, version = _credentials(ws)
    try:
        if version is not None and version != API_VERSION:
            raise ApiError(404, "VERSION_NOT_FOUND", f"API version {version!r} not found; use {API_VERSION!r}")
        state.authorize_key(key, missing="missing api_key query parameter")
    except ApiError as err:
        stats.request(WS_PATH, str(err.status))
        await ws.send_text(json.dumps(_error_body(err, None)))
        await ws.close(CLOSE_POLICY)
        return
    state.accounts.arrive(key, settings)
    try:
        try:
            state.accounts.admit(key, settings)
        except ApiError as err:
            stats.rejection(err.code)
            stats.request(WS_PATH, str(err.status))
            await ws.send_text(json.dumps(_error_body(err, None)))
            await ws.close(CLOSE_POLICY)
            return
        session = await _open(ws, state, key)
        if session is not None:
            await session.run()
    finally:
        state.accounts.leave(key)


async def _open(ws: WebSocket, state: EmulatorState, key: str) -> Session | None:
    """Read and check the initialize message; None (after an error frame) if it is wrong."""
    stats = state.stats
    try:
        raw = await asyncio.wait_for(ws.receive_text(), state.settings.ws_idle_timeout_s)
    except TimeoutError:
        stats.request(WS_PATH, "408")
        err = ApiError(408, "TIMEOUT", "no initialize message in time; closing")
        await ws.send_text(json.dumps(_error_body(err, None)))
        await ws.close(1000)
        return None
    except Exception:  # disconnected, or a binary frame
        stats.request(WS_PATH, "400")
        return None
    try:
        request = parse_ws_init(parse_json_object(raw.encode()))
        voice = state.voices.get(request.voice_id)
    except ApiError as err:
        stats.request(WS_PATH, str(err.status))
        await ws.send_text(json.dumps(_error_body(err, None)))
        await ws.close(CLOSE_POLICY)
        return None
    stats.request(WS_PATH, "101")
    return Session(ws, state, key, request, voice)
