"""One API account's limits, shared by every process that uses its key, on a Prefect server.

The in-process limiter (:mod:`pipeline.tts.limits`) keeps one process under the account's
limits. Two workers with the same key would each do so and together exceed them, so when a
Prefect server is configured, each HTTP exchange also passes two Prefect global concurrency
limits (GCLs) named after the account (a short SHA-256 of the key, never the key):

- ``narrate-asyncflow-<account>-concurrency``: ``max_concurrency`` slots, one held for the
  length of each exchange (see :mod:`pipeline.orchestrate.leases` for how slots are lent);
- ``narrate-asyncflow-<account>-rpm``: a rate limit (a GCL whose slots decay), taken once
  just before the request leaves.

Why the rate limit is sized the way it is: the server lets at most ``burst`` requests through
at once and then frees ``rate`` per second, so any interval of ``T`` seconds holds at most
``burst + rate * T`` requests. With ``rate = (rpm - burst) / (window + margin)`` no window of the
API ever holds more than ``rpm``; the margin covers network jitter between our grant and the
API's clock. The server applies decay as ``floor(decay_per_second * elapsed)`` since the row's
last update, and every update (a denial included) restarts that clock, so with one slot per
request a busy limit would lose most of its decay to rounding and crawl. Each request
therefore occupies ``RATE_QUANTUM`` slots of a limit ``RATE_QUANTUM`` times larger: the same
rate, with rounding losses of a hundredth of a request.

Each request costs a round trip to the server for its rate slot (and now and then one for a
concurrency slot), which is why this is only used to share an account across processes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import tomllib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import JobConfig
from pipeline.errors import ServerError
from pipeline.orchestrate.leases import SharedSlots, SlotsUnavailable

WINDOW_S = 60.0  # the API counts requests per minute
WINDOW_MARGIN_S = 1.0
RATE_QUANTUM = 100


def account_id(api_key: str) -> str:
    """Names the account in limit names: 8 hex digits of SHA-256, which reveal nothing usable."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class AccountLimits:
    """An account's limits and the Prefect limits that enforce them. ``window_s`` is the API's
    counting window (a minute); tests use a shorter one to see the limit bind in seconds."""

    account: str
    requests_per_minute: int
    max_concurrency: int
    window_s: float = WINDOW_S

    def __post_init__(self) -> None:
        if self.requests_per_minute < 1 or self.max_concurrency < 1 or self.window_s <= 0:
            raise ValueError("requests_per_minute, max_concurrency and window_s must be positive")

    @classmethod
    def for_job(cls, cfg: JobConfig, api_key: str) -> AccountLimits:
        return cls(account_id(api_key), cfg.limits.requests_per_minute, cfg.limits.max_concurrency)

    @property
    def rate_name(self) -> str:
        return f"narrate-asyncflow-{self.account}-rpm"

    @property
    def concurrency_name(self) -> str:
        return f"narrate-asyncflow-{self.account}-concurrency"

    @property
    def burst(self) -> int:
        # A small burst absorbs the polling delay of a waiting client (it is told to come back
        # after about one interval) without giving away much of the window.
        return max(1, self.requests_per_minute // 30)

    @property
    def requests_per_second(self) -> float:
        return (self.requests_per_minute - self.burst) / (self.window_s + WINDOW_MARGIN_S)

    def most_requests_in(self, seconds: float) -> int:
        """The most requests the shared limit lets through in any interval of ``seconds``."""
        return math.floor(self.burst + self.requests_per_second * seconds + 1 / RATE_QUANTUM)

    def rate_limit_settings(self) -> tuple[int, float]:
        """(limit, slot_decay_per_second) of the rate GCL, in quantum slots."""
        return self.burst * RATE_QUANTUM, self.requests_per_second * RATE_QUANTUM


async def ensure_account_limits(limits: AccountLimits) -> None:
    """Create the two GCLs, or bring them to these values (the job that starts last sets the
    account's limits: they describe the account, so every job using it should agree)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    rate_limit, decay = limits.rate_limit_settings()
    wanted = ((limits.concurrency_name, limits.max_concurrency, None), (limits.rate_name, rate_limit, decay))
    try:
        async with get_client() as client:
            for name, limit, decay_per_s in wanted:
                try:
                    await client.upsert_global_concurrency_limit_by_name(name, limit, decay_per_s)
                except ObjectAlreadyExists:
                    # Another process created it between our read and our create (Prefect's
                    # upsert is not atomic): now it exists, so this one reads and updates.
                    await client.upsert_global_concurrency_limit_by_name(name, limit, decay_per_s)
    except Exception as exc:
        raise ServerError(
            f"limits.shared: cannot set the shared limits on the Prefect server ({type(exc).__name__}: {exc})"
        ) from None


class SharedRequestGate:
    """Called once per HTTP exchange (``async with gate():``); waits for both shared limits."""

    def __init__(self, limits: AccountLimits) -> None:
        self.limits = limits
        self.slots = SharedSlots(limits.concurrency_name)

    def __repr__(self) -> str:
        return f"SharedRequestGate({self.limits.concurrency_name}, {self.limits.rate_name})"

    async def aclose(self) -> None:
        """Return every concurrency slot this process still holds (the end of a run)."""
        await self.slots.close()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        from prefect.concurrency.asyncio import rate_limit

        # The in-flight slot first, then the start time, as the in-process limiter does: a
        # request leaves the moment its rate slot is granted.
        try:
            lease = await self.slots.acquire()
        except SlotsUnavailable as exc:
            raise ServerError(f"the shared API limits on the Prefect server are unavailable ({exc})") from None
        try:
            try:
                await rate_limit(self.limits.rate_name, occupy=RATE_QUANTUM, strict=True)
            except Exception as exc:
                raise ServerError(
                    f"the shared API rate limit on the Prefect server is unavailable ({type(exc).__name__}: {exc})"
                ) from None
            yield
        finally:
            await self.slots.release(lease)


def prefect_server_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when the user pointed Prefect at a server: PREFECT_API_URL in the environment (as
    `narrate serve` and workers pass it to their runs) or in the active Prefect profile. Not
    the embedded temporary server, and not a test harness's private one.

    Read without importing Prefect (its settings alone take most of a second to import, which
    a one-off `narrate run` without a server should not pay): the profile is the one
    PREFECT_PROFILE names, else the ``active`` one of ``$PREFECT_HOME/profiles.toml``
    (``~/.prefect``), laid over the defaults Prefect ships, as Prefect resolves them.
    """
    env = os.environ if environ is None else environ
    if env.get("PREFECT_API_URL", "").strip():
        return True
    home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    user = _read_toml(Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser())
    spec = importlib.util.find_spec("prefect")  # locates the package without running it
    shipped = _read_toml(Path(spec.origin).parent / "settings" / "profiles.toml") if spec and spec.origin else {}
    active = env.get("PREFECT_PROFILE") or user.get("active") or shipped.get("active") or "ephemeral"
    settings: dict[str, Any] = {}
    for source in (shipped, user):
        profile = (source.get("profiles") or {}).get(active)
        if isinstance(profile, dict):
            settings.update(profile)
    return bool(str(settings.get("PREFECT_API_URL", "")).strip())


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def shares_limits(cfg: JobConfig) -> bool:
    if cfg.engine.kind != "asyncflow" or cfg.limits.shared == "off":
        return False
    return cfg.limits.shared == "on" or prefect_server_configured()


async def shared_gate_for(cfg: JobConfig) -> SharedRequestGate | None:
    """The gate a job's engine should use, with its limits in place; None for in-process only."""
    if not shares_limits(cfg):
        return None
    from pipeline.tts.asyncflow import api_key_from_env

    limits = AccountLimits.for_job(cfg, api_key_from_env(cfg.engine))
    await ensure_account_limits(limits)
    return SharedRequestGate(limits)
