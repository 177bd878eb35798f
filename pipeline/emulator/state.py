"""Everything one running emulator holds, shared by its routes and by tests in-process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from pipeline.emulator.faults import FaultInjector
from pipeline.emulator.limits import Accounts
from pipeline.emulator.responses import ApiError, truncate_key
from pipeline.emulator.settings import EmulatorSettings
from pipeline.emulator.stats import Stats
from pipeline.emulator.voices import VoiceStore

API_VERSION = "v1"


class EmulatorState:
    def __init__(self, settings: EmulatorSettings, clock: Callable[[], float] | None = None) -> None:
        self._lock = threading.Lock()
        self.settings = settings
        self.stats = Stats()
        self.accounts = Accounts(clock) if clock else Accounts()
        self.faults = FaultInjector()
        self.voices = VoiceStore()
        # How a request waits out its configured latency; tests may record instead of wait.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def configure(self, **changes: Any) -> EmulatorSettings:
        """Swap in new settings (validated); requests already running keep the old ones."""
        with self._lock:
            merged = self.settings.model_dump() | changes
            self.settings = EmulatorSettings.model_validate(merged)
            return self.settings

    def reset(self) -> None:
        """Forget counters, usage, rate windows, fault history and cloned voices."""
        self.stats.reset()
        self.accounts.reset()
        self.faults.reset()
        self.voices.reset()

    def snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot() | self.accounts.snapshot()

    def describe_settings(self) -> dict[str, Any]:
        """The settings as JSON, keys shortened so that a stats dump never holds a whole key."""
        data = self.settings.model_dump(mode="json")
        data["api_keys"] = [truncate_key(k) for k in self.settings.api_keys]
        return data

    def authorize(self, request: Request) -> str:
        """The caller's API key, after the version and key checks every API route makes."""
        version = request.headers.get("version")
        # Some official examples omit the header, so a missing one is accepted.
        if version is not None and version != API_VERSION:
            raise ApiError(
                404,
                "VERSION_NOT_FOUND",
                f"API version {version!r} not found; use {API_VERSION!r}",
                {"version": version},
            )
        key = request.headers.get("x-api-key", "")
        return self.authorize_key(key)

    def authorize_key(self, key: str, missing: str = "missing x-api-key header") -> str:
        """``key`` if it is accepted; 401 INVALID_API_KEY (showing a truncated key) if not."""
        if not self.settings.key_accepted(key):
            shown = truncate_key(key)
            message = missing if not key else f"invalid API key {shown!r}"
            raise ApiError(401, "INVALID_API_KEY", message, {"api_key": shown})
        return key
