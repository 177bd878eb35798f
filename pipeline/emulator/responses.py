"""The API's error bodies, and the two broken responses a fault can produce.

Async's own export shows two error shapes (FastAPI's ``{"detail": {...}}`` and a flat one) and
a separate body for 500; the emulator speaks the first by default and the flat one on request,
so clients are exercised against both.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

# Where the outermost ASGI layer leaves the connection's transport for the fault responses.
TRANSPORT_KEY = "emulator.transport"
# Where a fault response records what it did, for the request counters.
OUTCOME_KEY = "emulator.outcome"


class ApiError(Exception):
    """An error the API documents: HTTP status, ``error_code``, message and ``extra``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self, *, flat: bool) -> JSONResponse:
        body: dict[str, Any] = {
            "error_code": self.code,
            "message": self.message,
            "extra": self.extra,
        }
        return JSONResponse(body if flat else {"detail": body}, self.status, headers=self.headers)


def internal_error(method: str, url: str, detail: str) -> JSONResponse:
    """The 500 body, which differs from every other error."""
    body = {"message": "Internal Server Error", "method": method, "url": url, "detail": detail}
    return JSONResponse(body, 500)


def truncate_key(key: str) -> str:
    """What ``INVALID_API_KEY`` echoes back: enough to recognise a key, never all of it."""
    if len(key) <= 8:
        return key[:2] + "..." if key else ""
    return f"{key[:6]}...{key[-2:]}"


def _transport(scope: Scope) -> asyncio.Transport | None:
    transport = scope.get("extensions", {}).get(TRANSPORT_KEY)
    return transport if isinstance(transport, asyncio.Transport) else None


class DroppedConnection(Response):
    """Closes the TCP connection before any byte of a response is sent."""

    def __init__(self) -> None:
        super().__init__(b"", 500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("extensions", {})[OUTCOME_KEY] = "dropped"
        transport = _transport(scope)
        if transport is None:
            # No socket to close (an in-process transport): fail the exchange instead.
            raise ConnectionAbortedError("connection dropped by fault injection")
        transport.abort()
        # The server still wants a complete response; it goes nowhere once the socket is gone.
        await super().__call__(scope, receive, send)


class TruncatedBody(Response):
    """Promises ``len(content)`` bytes, sends a part, then closes the connection."""

    def __init__(self, content: bytes, media_type: str, fraction: float = 0.5) -> None:
        super().__init__(content, 200, media_type=media_type)
        self.cut = max(1, int(len(content) * fraction))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("extensions", {})[OUTCOME_KEY] = "truncated"
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: self.cut], "more_body": True})
        transport = _transport(scope)
        if transport is None:
            raise ConnectionAbortedError("response truncated by fault injection")
        # Let the first part reach the socket (bounded wait), then cut the connection.
        for _ in range(200):
            if transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.005)
        transport.abort()
        # The rest goes nowhere: an aborted transport discards writes.
        await send({"type": "http.response.body", "body": self.body[self.cut :]})
