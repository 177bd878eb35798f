"""One WebSocket session with the AsyncFlow API: connect, initialize, send text, read frames.

The key travels in the URL's query (``?api_key=..&version=v1``, as the API documents), so the
URL is built at connect time and never kept, logged or shown: ``websockets`` gets a logger
that is switched off (its debug lines show the request line), and every error that could
carry the URL is rewritten through ``wire.one_line`` before it leaves this module.

Error frames become the same exceptions as HTTP errors (``wire.error_from_response`` on the
frame, with the status the error code stands for), so the retry rules are the same.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from pipeline.config import EngineConfig
from pipeline.errors import BadResponseError, EngineError, ServerError
from pipeline.tts import wire

WS_PATH = "/text_to_speech/websocket/ws"
# The status an error frame's code would have had over HTTP: it decides fatal or retryable.
_STATUS_OF_CODE = {
    "INVALID_API_KEY": 401,
    "VOICE_NOT_FOUND": 404,
    "VERSION_NOT_FOUND": 404,
    "USAGE_LIMIT_EXCEEDED": 429,
    "RATE_LIMIT_EXCEEDED": 429,
    "TOO_MANY_CONCURRENT_REQUESTS": 429,
    "TIMEOUT": 408,
    "INVALID_MODEL": 400,
    "INVALID_LANGUAGE": 400,
    "VALIDATION_ERROR": 400,
    "INVALID_REQUEST": 400,
}
_QUIET = logging.getLogger("narrate.websocket.silenced")
_QUIET.disabled = True
_QUIET.propagate = False


def ws_base(base_url: str) -> str:
    """``https://host`` -> ``wss://host/text_to_speech/websocket/ws`` (no query)."""
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + WS_PATH, "", ""))


def init_message(engine: EngineConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model_id": engine.model,
        "voice": {"mode": "id", "id": engine.voice},
        # Raw PCM: frames are pieces of one stream, which only a headerless format allows.
        "output_format": {"container": "raw", "encoding": wire.ENCODING, "sample_rate": engine.sample_rate},
        "language": engine.language,
    }
    if engine.speed is not None:
        body["speed_control"] = engine.speed
    if engine.stability is not None:
        body["stability"] = engine.stability
    return body


def frame_error(frame: dict[str, Any], *, context: str, engine: EngineConfig, secret: str) -> EngineError:
    code = str(frame.get("error_code"))
    status = _STATUS_OF_CODE.get(code, 500)
    fake = httpx.Response(status, json=frame, request=httpx.Request("GET", ws_base(engine.base_url)))
    return wire.error_from_response(fake, context=context, engine=engine, secret=secret)


class WsSession:
    """An open, initialized socket. ``recv`` returns ``(context_id, pcm bytes, final)`` per
    audio frame and raises the mapped error for an error frame."""

    def __init__(self, engine: EngineConfig, secret: str, *, timeout_s: float) -> None:
        self._engine = engine
        self._secret = secret
        self._timeout_s = timeout_s
        self._ws: ClientConnection | None = None

    def __repr__(self) -> str:
        return f"WsSession({ws_base(self._engine.base_url)!r})"

    def _failure(self, exc: BaseException, context: str) -> ServerError:
        reason = wire.one_line(str(exc), self._secret) or type(exc).__name__
        return ServerError(f"{context}: WebSocket connection failed ({reason})")

    async def open(self, context: str) -> None:
        url = f"{ws_base(self._engine.base_url)}?api_key={quote(self._secret, safe='')}&version={wire.API_VERSION}"
        try:
            self._ws = await connect(
                url, open_timeout=self._timeout_s, max_size=None, logger=_QUIET, compression=None
            )
            await self._ws.send(json.dumps(init_message(self._engine)))
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise self._failure(exc, context) from None
        finally:
            del url

    async def send(self, message: dict[str, Any], context: str) -> None:
        if self._ws is None:
            raise ServerError(f"{context}: the WebSocket is not open")
        try:
            await self._ws.send(json.dumps(message))
        except (OSError, WebSocketException) as exc:
            raise self._failure(exc, context) from None

    async def recv(self, timeout_s: float, context: str) -> tuple[str | None, bytes, bool] | None:
        """The next audio frame; None if nothing came within ``timeout_s``."""
        if self._ws is None:
            raise ServerError(f"{context}: the WebSocket is not open")
        try:
            raw = await asyncio.wait_for(self._ws.recv(), timeout_s)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise self._failure(exc, context) from None
        except (OSError, WebSocketException) as exc:
            raise self._failure(exc, context) from None
        try:
            frame = json.loads(raw)
        except (ValueError, TypeError):
            raise BadResponseError(f"{context}: a WebSocket frame is not JSON") from None
        if not isinstance(frame, dict):
            raise BadResponseError(f"{context}: a WebSocket frame is not a JSON object")
        if "error_code" in frame:
            raise frame_error(frame, context=context, engine=self._engine, secret=self._secret)
        audio = frame.get("audio") or ""
        try:
            data = base64.b64decode(audio, validate=True) if audio else b""
        except (binascii.Error, TypeError):
            raise BadResponseError(f"{context}: a WebSocket frame's audio is not base64") from None
        context_id = frame.get("context_id")
        return (str(context_id) if context_id is not None else None), data, frame.get("final") is True

    async def close(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            with contextlib.suppress(OSError, WebSocketException, TimeoutError):
                await asyncio.wait_for(ws.close(), 5)
