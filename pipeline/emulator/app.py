"""The emulator as an ASGI app: the AsyncFlow routes plus a private ``/_emulator`` area.

Private routes (no key needed): ``GET /_emulator/stats`` (counters), ``POST /_emulator/reset``
(forget counters, usage and limit windows), ``GET|POST /_emulator/config`` (read or change the
settings of a running server, e.g. raise a quota between two runs of a job), and the audio
behind preview links.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.emulator import synth_routes, voice_routes, ws_route
from pipeline.emulator.responses import OUTCOME_KEY, TRANSPORT_KEY, internal_error
from pipeline.emulator.settings import EmulatorSettings
from pipeline.emulator.state import API_VERSION, EmulatorState
from pipeline.emulator.validation import Endpoint, parse_json_object

PRIVATE_PREFIX = "/_emulator/"
UNMATCHED = "(no route)"


async def status(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": API_VERSION})


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


async def stats(request: Request) -> Response:
    return JSONResponse(_state(request).snapshot())


async def reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"reset": True})


async def config(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        body = await request.body()
        try:
            changes = parse_json_object(body) if body.strip() else {}
            state.configure(**changes)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return JSONResponse({"detail": f"{where}: {first['msg']}"}, 400)
        except Exception as exc:  # an ApiError from the JSON parse
            return JSONResponse({"detail": str(exc)}, 400)
    return JSONResponse(state.describe_settings())


async def _not_found(request: Request, exc: Exception) -> Response:
    code = exc.status_code if isinstance(exc, HTTPException) else 404
    detail = exc.detail if isinstance(exc, HTTPException) else "Not Found"
    return JSONResponse({"detail": detail}, code)


async def _crashed(request: Request, exc: Exception) -> Response:
    return internal_error(request.method, str(request.url), f"{type(exc).__name__}: {exc}")


class _Connection:
    """Outermost layer: hands the socket's transport to fault responses (which must close it
    themselves) and counts every API request by route and status."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        extensions = scope.setdefault("extensions", {})
        # uvicorn's ``send`` is a bound method of the request cycle (or WebSocket protocol)
        # that owns the transport.
        cycle = getattr(send, "__self__", None)
        extensions[TRANSPORT_KEY] = getattr(cycle, "transport", None)
        if scope["type"] == "websocket":  # the WebSocket route counts its own sessions
            await self.app(scope, receive, send)
            return
        outcome = "500"

        async def counting_send(message: Message) -> None:
            nonlocal outcome
            if message["type"] == "http.response.start":
                outcome = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if not scope["path"].startswith(PRIVATE_PREFIX):
                # Count by route template, so voice ids or a scanner's paths make no new keys.
                route = getattr(scope.get("route"), "path", UNMATCHED)
                self.state.stats.request(route, str(extensions.get(OUTCOME_KEY, outcome)))


def create_app(settings: EmulatorSettings | None = None, *, state: EmulatorState | None = None) -> ASGIApp:
    """The emulator app; pass ``state`` to share (and inspect) it from the calling code."""
    state = state or EmulatorState(settings or EmulatorSettings())
    routes = [
        Route("/", status, methods=["GET"]),
        *(Route(e.value, synth_routes.synthesis_endpoint, methods=["POST"]) for e in Endpoint),
        Route("/voices", voice_routes.list_voices, methods=["POST"]),
        Route("/voices/batch", voice_routes.batch_voices, methods=["POST"]),
        Route("/voices/clone", voice_routes.clone_voice, methods=["POST"]),
        Route("/voices/preview/{voice_id}", voice_routes.preview_link, methods=["GET"]),
        Route("/voices/{voice_id}", voice_routes.get_voice, methods=["GET"]),
        Route("/voices/{voice_id}", voice_routes.update_voice, methods=["PUT"]),
        Route("/voices/{voice_id}", voice_routes.delete_voice, methods=["DELETE"]),
        WebSocketRoute(ws_route.WS_PATH, ws_route.websocket_endpoint),
        Route(PRIVATE_PREFIX + "stats", stats, methods=["GET"]),
        Route(PRIVATE_PREFIX + "reset", reset, methods=["POST"]),
        Route(PRIVATE_PREFIX + "config", config, methods=["GET", "POST"]),
        Route(
            PRIVATE_PREFIX + "preview/{voice_id}.wav",
            voice_routes.preview_audio,
            methods=["GET"],
            name="preview_audio",
        ),
    ]
    handlers: dict[Any, Any] = {404: _not_found, 405: _not_found, Exception: _crashed}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.emulator = state
    return _Connection(app, state)
