"""What an emulator run is configured with: limits, accepted keys, faults, latency.

One immutable value; the running server swaps in a new one when a test reconfigures it, so a
request always sees one consistent set of settings.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class FaultKind(StrEnum):
    """The failures the emulator can inject into synthesis requests."""

    RATE_429 = "429_rate"  # 429 RATE_LIMIT_EXCEEDED with retry_after_ms
    CONCURRENCY_429 = "429_concurrency"  # 429 TOO_MANY_CONCURRENT_REQUESTS
    SERVER_500 = "500"  # 500 with the API's internal-error body
    UNAVAILABLE_503 = "503"
    DROP = "drop"  # connection closed before any response
    TRUNCATE = "truncate"  # headers promise more bytes than the body delivers
    MALFORMED_JSON = "malformed_json"  # a 200 whose JSON does not parse (timestamps endpoint)
    BAD_ALIGNMENT = "bad_alignment"  # a 200 whose alignment arrays differ in length


class WsFaultKind(StrEnum):
    """The failures the emulator can inject into a WebSocket context, part-way through the
    audio of one piece of text."""

    DISCONNECT = "disconnect"  # the TCP connection is cut, no close frame
    ERROR = "error"  # a flat error frame; the context is dropped, the socket stays open
    STALL = "stall"  # the context never sends another frame; the socket stays open


# Every kind a client is expected to survive by retrying.
ALL_FAULTS: tuple[FaultKind, ...] = tuple(FaultKind)
ALL_WS_FAULTS: tuple[WsFaultKind, ...] = tuple(WsFaultKind)

# The examples in the API's own documentation use these; the client defaults to them too.
DEFAULT_RPM = 120
DEFAULT_CONCURRENCY = 5


class EmulatorSettings(BaseModel):
    """Limits are per API key (one key is one account). 0 for ``rpm``/``concurrency`` and
    None for ``monthly_chars`` mean unlimited. An empty ``api_keys`` accepts any non-empty key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_keys: tuple[str, ...] = ()
    rpm: int = Field(default=DEFAULT_RPM, ge=0)
    # The sliding window behind ``rpm``; only tests shorten it, so they need not wait a minute.
    rpm_window_s: float = Field(default=60.0, gt=0)
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=0)
    monthly_chars: int | None = Field(default=None, ge=0)
    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    faults: tuple[FaultKind, ...] = ALL_FAULTS
    # What an injected RATE_LIMIT_EXCEEDED asks the client to wait.
    fault_retry_after_ms: int = Field(default=200, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    latency_per_char_ms: float = Field(default=0.0, ge=0)
    # WebSocket faults are drawn with ``fail_rate`` too, once per piece of text spoken.
    ws_faults: tuple[WsFaultKind, ...] = ALL_WS_FAULTS
    # A socket that receives no message for this long gets a TIMEOUT error frame and is closed.
    ws_idle_timeout_s: float = Field(default=60.0, gt=0)
    seed: int = 0
    flat_errors: bool = False

    def key_accepted(self, key: str) -> bool:
        if not key:
            return False
        return not self.api_keys or key in self.api_keys


def parse_faults(text: str) -> tuple[FaultKind, ...]:
    """``"500,drop"`` -> the kinds; ``"all"`` or ``""`` -> every kind. Unknown names raise
    ValueError naming the valid ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or names == ["all"]:
        return ALL_FAULTS
    valid = {k.value: k for k in FaultKind}
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown fault kind {unknown[0]!r}; choose from {', '.join(valid)} or 'all'")
    return tuple(dict.fromkeys(valid[n] for n in names))


def parse_ws_faults(text: str) -> tuple[WsFaultKind, ...]:
    """``"disconnect,stall"`` -> the kinds; ``"all"`` or ``""`` -> every kind."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or names == ["all"]:
        return ALL_WS_FAULTS
    valid = {k.value: k for k in WsFaultKind}
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown WebSocket fault kind {unknown[0]!r}; choose from {', '.join(valid)} or 'all'")
    return tuple(dict.fromkeys(valid[n] for n in names))
