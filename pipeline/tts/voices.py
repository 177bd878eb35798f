"""``narrate voices``: list the account's AsyncFlow voices (``POST /voices``, page by page)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from pipeline.config import EngineConfig, LimitsConfig
from pipeline.errors import BadResponseError, RequestRejectedError
from pipeline.tts.asyncflow import AsyncFlowEngine

VOICES_PATH = "/voices"
PAGE_SIZE = 100  # the API's maximum
# A server that keeps handing out cursors is broken; no account has this many voices.
MAX_PAGES = 1000
FILTERS = frozenset({"model_id", "language", "accent", "gender", "style", "my_voice"})


async def list_voices(
    engine: EngineConfig,
    api_key: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    limits: LimitsConfig | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Every voice matching ``filters`` (the API's list filters; None values are left out),
    following ``next_cursor`` until the server stops giving one. Requests go through the same
    limits and retries as synthesis."""
    unknown = sorted(set(filters) - FILTERS)
    if unknown:
        raise RequestRejectedError(f"voices: unknown filter {unknown[0]!r} (known: {', '.join(sorted(FILTERS))})")
    query = {k: v for k, v in filters.items() if v is not None}
    client = AsyncFlowEngine(
        engine=engine,
        limits=limits or LimitsConfig(),
        api_key=api_key,
        sleep=sleep,
        transport=transport,
        clock=clock,
    )
    voices: list[dict[str, Any]] = []
    seen_cursors: set[str] = set()
    cursor: str | None = None
    try:
        for page in range(1, MAX_PAGES + 1):
            body = {"limit": PAGE_SIZE, **query}
            if cursor is not None:
                body["after"] = cursor
            context = f"voices page {page}"
            payload = await client.request_json("POST", VOICES_PATH, context=context, json=body)
            batch, cursor = _page(payload, context=context)
            voices.extend(batch)
            if not cursor or not batch:
                return voices
            if cursor in seen_cursors:
                raise BadResponseError(f"{context}: next_cursor {cursor!r} was already used")
            seen_cursors.add(cursor)
    finally:
        await client.aclose()
    raise BadResponseError(f"voices: still more pages after {MAX_PAGES}; giving up")


def _page(payload: Any, *, context: str) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(payload, dict) or not isinstance(payload.get("voices"), list):
        raise BadResponseError(f"{context}: the reply has no 'voices' list")
    batch = payload["voices"]
    if not all(isinstance(v, dict) and isinstance(v.get("voice_id"), str) for v in batch):
        raise BadResponseError(f"{context}: a voice in the reply has no voice_id")
    cursor = payload.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise BadResponseError(f"{context}: next_cursor is not a string")
    return batch, cursor
